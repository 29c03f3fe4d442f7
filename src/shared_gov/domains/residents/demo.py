"""The residents domain's demo data: synthetic people registered through the
normal ``register`` use case (so every rule and check digit applies), a few
hundred per transaction. Registered through the domain's spec (``SPEC.demo``).
"""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from shared_gov import errors, policy
from shared_gov.audit.recorder import AuditEvent, operator_actor, record
from shared_gov.auth.principal import Principal
from shared_gov.clock import today_jst
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.domains.residents import linkage, repository, service
from shared_gov.domains.residents.models import EntryEvent
from shared_gov.domains.residents.schemas import ResidentCreate
from shared_gov.domains.residents.seed import SyntheticHousehold, generate_town
from shared_gov.domains.residents.transfer import ALL_FIELDS
from shared_gov.messages import identity as mi
from shared_gov.policy import Access, Actor
from shared_gov.policy.purposes import purposes
from shared_gov.tenancy.manifest import Manifest, parse_manifest
from shared_gov.towns.names import tenant_names

BATCH = 200


async def count(uow: TenantUnitOfWork) -> int:
    """How many resident records the town holds (an empty town is seeded)."""
    return await repository.count(uow)


async def upgrade(uow: TenantUnitOfWork) -> None:
    """``shared-gov residents relink`` (tenant revision t0011): a demo database
    made before the upgrade gets its rule-1 links rebuilt before serving."""
    await linkage.relink(uow)


async def sample(uow: TenantUnitOfWork) -> tuple[str, str]:
    """A request that works as printed: (path under the town, purpose)."""
    ids = await repository.sample_ids(uow, 1)
    target = f"residents/{ids[0]}" if ids else "households/00000019"
    return target, "juki.certificate"


def _seeder(code: str) -> Access:
    """The demo seeder acts as 市民課 staff doing registration work, through Cedar."""
    principal = Principal("demo-seeder", code, "shimin", frozenset({"staff"}), frozenset())
    actor = Actor(
        tenant=code,
        department="shimin",
        roles=principal.roles,
        mfa=True,  # it records individual numbers, which needs two-factor auth
        purposes=frozenset({"juki.registration"}),
        staff_id=principal.subject,
    )
    return Access(principal, actor, purposes()["juki.registration"], policy.engine(), code)


async def _register_household(
    uow: TenantUnitOfWork, access: Access, household: SyntheticHousehold
) -> int:
    household_no: str | None = None
    for person in household.members:
        born_here = person.birth_date > household.resident_since
        move_date = person.birth_date if born_here else household.resident_since
        data = ResidentCreate(
            event=EntryEvent.BIRTH if born_here else EntryEvent.MOVE_IN_DOMESTIC,
            family_name=person.family_name,
            given_name=person.given_name,
            family_name_kana=person.family_name_kana,
            given_name_kana=person.given_name_kana,
            birth_date=person.birth_date,
            sex=person.sex,
            address=household.address,
            postal_code=household.postal_code,
            individual_number=person.individual_number,
            juminhyo_code=person.juminhyo_code,
            household_no=household_no,
            relationship=None if household_no is None else person.relationship,
            move_date=move_date,
            notified_on=min(move_date + timedelta(days=7), today_jst()),
            phone=person.phone,
        )
        resident = await service.register(uow, access, data)
        household_no = resident.household_no
    return len(household.members)


async def seed_town(
    db: Database, code: str, residents: int, seed: int, progress_console: Console | None = None
) -> int:
    """Register ``residents`` synthetic people in town ``code``; returns the count."""
    names = tenant_names(code, db.settings.role_prefix)
    manifest = await _manifest(db, code)
    async with db.tenant(names) as uow:
        existing = await repository.count(uow)
    households = generate_town(
        prefecture=manifest.prefecture,
        city=manifest.name,
        postal_prefix=manifest.postal_prefix,
        phone_area_code=manifest.phone_area_code,
        residents=residents,
        # A town seeded before gets other people (and other individual numbers).
        seed=seed * 1_000_003 + existing,
        today=today_jst(),
    )
    access = _seeder(code)
    added = batch = 0
    console = progress_console or Console(stderr=True)
    with Progress(
        TextColumn(f"[bold]seed {code}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        # Only for a person watching: piped, a transient bar leaves an empty line.
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("residents", total=residents)
        for start in range(0, len(households), BATCH // 3):
            async with db.tenant(names) as uow:
                for household in households[start : start + BATCH // 3]:
                    n = await _register_household(uow, access, household)
                    added += n
                    batch += n
                    progress.advance(task, n)
                # One event per transaction, in it (as an import's load): the
                # history and outbox rows it wrote are then accounted for by
                # ``audit verify``. A bulk job records a count, not subjects.
                await record(
                    uow,
                    operator_actor("demo seed"),
                    AuditEvent(action="demo.seed", fields=list(ALL_FIELDS), rows=batch),
                )
                batch = 0
    return added


async def _manifest(db: Database, code: str) -> Manifest:
    """The town's stored manifest (one query: seeding many towns stays linear)."""
    async with db.catalog() as conn:
        document = await conn.fetchval(
            "SELECT manifest FROM catalog.tenants WHERE code = $1 AND status = 'active'", code
        )
    if document is None:
        raise errors.not_found(mi.NO_SUCH_ACTIVE_TENANT)
    return parse_manifest(document)
