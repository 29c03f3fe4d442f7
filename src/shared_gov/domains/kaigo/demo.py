"""The 介護保険 demo: facilities in each demo town (in Komatsu one covered 特養 and
one 地域密着型), the insured persons and a backlog of determinations made from the
seeded residents' events.

The consumer reads the town's outbox (the residents seeded before) and proposes
a gain for everyone 65 or over; the demo's 介護保険課 staff member confirms most
of them through the normal use case (Cedar decides, the record changes in the
same transaction) and leaves the rest open, so a newcomer finds a working queue.
"""

from __future__ import annotations

import random
import uuid

from rich.console import Console

from shared_gov import policy
from shared_gov.audit.recorder import AuditEvent, operator_actor, record
from shared_gov.auth.principal import Principal
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.domains.kaigo import consumer, directory, service
from shared_gov.domains.kaigo.models import Facility
from shared_gov.domains.kaigo.repository import determinations, facilities, insured
from shared_gov.domains.kaigo.vocabulary import FacilityKind, coverage
from shared_gov.policy import Access, Actor
from shared_gov.policy.purposes import purposes
from shared_gov.tenancy.service import list_tenants
from shared_gov.towns.names import tenant_names

KOMATSU = "172031"
BACKLOG = 25
"""Open determinations left per town."""
BATCH = 50

# (name, address after the town's name, kind, places)
_KOMATSU_FACILITIES = (
    ("特別養護老人ホーム 梯川の里", "小馬出町10-1", FacilityKind.TOKUYO, 80),
    ("地域密着型特養 木場潟の家", "今江町5-2", FacilityKind.CHIIKI, 29),
    ("グループホーム こまつ", "園町3-3", FacilityKind.GROUP_HOME, 18),
)
_OTHER_FACILITIES = (
    ("介護老人保健施設 ひだまり", "中央1-1", FacilityKind.ROKEN, 100),
    ("ケアハウス やすらぎ", "本町2-2", FacilityKind.KEIHI, 30),
    ("グループホーム さくら", "緑町4-4", FacilityKind.GROUP_HOME, 18),
)


async def count(uow: TenantUnitOfWork) -> int:
    """Insured persons of the town (an empty town is seeded)."""
    return await insured.count(uow)


async def sample(uow: TenantUnitOfWork) -> tuple[str, str]:
    """The open queue, for 介護保険課 (the printed token is theirs)."""
    return "kaigo/determinations?status=open", "kaigo.qualification"


def _staff(code: str) -> Access:
    """The demo's 介護保険課 staff member, through Cedar like anyone."""
    principal = Principal("demo-kaigo", code, "kaigo", frozenset({"staff"}), frozenset())
    actor = Actor(
        tenant=code,
        department="kaigo",
        roles=principal.roles,
        mfa=False,
        purposes=frozenset({"kaigo.qualification"}),
        staff_id=principal.subject,
    )
    return Access(principal, actor, purposes()["kaigo.qualification"], policy.engine(), code)


async def _facilities(db: Database, code: str) -> int:
    towns = {t.code: t for t in await list_tenants(db)}
    town = towns[code]
    rows = _KOMATSU_FACILITIES if code == KOMATSU else _OTHER_FACILITIES
    made = 0
    async with db.tenant(tenant_names(code, db.settings.role_prefix)) as uow:
        for name, street, kind, places in rows:
            covered, reason = coverage(kind, places)
            facility = Facility(
                str(uuid.uuid4()),
                code,
                name,
                f"{town.prefecture}{town.name}{street}",
                kind.value,
                places,
                covered,
                reason,
            )
            made += await facilities.insert(uow, facility)
        await record(
            uow,
            operator_actor("kaigo demo"),
            AuditEvent(action="demo.seed", resource_type="care_facility", rows=made),
        )
    directory.forget()
    return made


async def seed_town(
    db: Database, code: str, residents: int, seed: int, progress_console: Console | None = None
) -> int:
    """Facilities, the consumer's determinations, most of them confirmed; returns the
    insured persons added."""
    del residents
    console = progress_console or Console(stderr=True)
    await _facilities(db, code)
    await consumer.drain(db, code)
    names = tenant_names(code, db.settings.role_prefix)
    async with db.tenant(names) as uow:
        queue = await determinations.page(
            uow, determinations.Filters(statuses=("open",), kinds=("gain",), limit=100_000)
        )
    rng = random.Random(seed)  # noqa: S311 - which demo items stay open, nothing secret
    rng.shuffle(queue)
    to_confirm = queue[BACKLOG:]
    access = _staff(code)
    added = 0
    for start in range(0, len(to_confirm), BATCH):
        async with db.tenant(names) as uow:
            access.audit = AuditEvent(action="demo.seed", resource_type="determination")
            for d in to_confirm[start : start + BATCH]:
                done = await service.confirm(uow, access, d.id, d.version, {})
                added += done.person is not None
            await record(uow, operator_actor("kaigo demo"), access.audit)
    console.print(f"{code}: 介護保険 {added} insured, {min(BACKLOG, len(queue))} open")
    return added
