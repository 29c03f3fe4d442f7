"""Loading synthetic demo residents through the normal service layer.

:func:`seed_town` registers the people that :mod:`shared_gov.demo.seed`
generates with the same ``register`` use case staff use (so every rule and
check digit applies), a few hundred per transaction. :func:`prepare_demo`
is what ``make run`` does before serving: migrate, onboard every manifest in
``tenants/``, seed each town once, and return ready tokens and curl lines.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from shared_gov import errors, policy
from shared_gov.audit.recorder import operator_actor
from shared_gov.auth.issuer import builtin_issuer
from shared_gov.auth.principal import Principal
from shared_gov.clock import today_jst
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.demo.seed import SyntheticHousehold, generate_town
from shared_gov.domains.residents import repository, service
from shared_gov.domains.residents.models import EntryEvent
from shared_gov.domains.residents.schemas import ResidentCreate
from shared_gov.policy import Access, Actor
from shared_gov.policy.purposes import purposes
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import Manifest, load_manifest, parse_manifest
from shared_gov.tenancy.names import tenant_names

BATCH = 200


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
    return Access(principal, actor, purposes()["juki.registration"], policy.engine())


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
    added = 0
    with Progress(
        TextColumn(f"[bold]seed {code}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=progress_console or Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("residents", total=residents)
        for start in range(0, len(households), BATCH // 3):
            async with db.tenant(names) as uow:
                for household in households[start : start + BATCH // 3]:
                    n = await _register_household(uow, access, household)
                    added += n
                    progress.advance(task, n)
    return added


async def _manifest(db: Database, code: str) -> Manifest:
    """The town's stored manifest (one query: seeding many towns stays linear)."""
    async with db.catalog() as conn:
        document = await conn.fetchval(
            "SELECT manifest FROM catalog.tenants WHERE code = $1 AND status = 'active'", code
        )
    if document is None:
        raise errors.not_found("no such active tenant")
    return parse_manifest(document)


async def prepare_demo(
    db: Database, tenants_dir: Path, residents: int, console: Console
) -> list[str]:
    """Migrate, onboard every manifest, seed empty towns, return token/curl lines."""
    await tenancy.migrate_catalog(db)
    paths = sorted(tenants_dir.glob("*.toml"))  # noqa: ASYNC240 - a handful of files, once
    manifests = [load_manifest(p) for p in paths]
    for manifest in manifests:
        result = await tenancy.onboard(db, manifest, operator_actor("demo"))
        console.print(f"{manifest.code} {manifest.name}: {result.outcome}")
        if result.enrolment is not None:
            # Development: built-in tokens act for every town, so the demo needs
            # no enrolment; the code is printed to try the bootstrap with.
            console.print(f"  enrolment code (72 h, once): {result.enrolment.code}", soft_wrap=True)
    await tenancy.migrate_all(db)
    settings = db.settings
    issuer = builtin_issuer(settings.data_dir, settings.issuer, settings.audience)
    lines = [
        "",
        "Demo towns — a 市民課 staff token (8 h, no 2FA, so the individual number is",
        "withheld) and a request that works as printed:",
    ]
    for manifest in manifests:
        names = tenant_names(manifest.code, settings.role_prefix)
        async with db.tenant(names) as uow:
            empty = await repository.count(uow) == 0
        if empty:
            await seed_town(
                db, manifest.code, residents, seed=int(manifest.code), progress_console=console
            )
        async with db.tenant(names) as uow:
            sample = await repository.sample_ids(uow, 1)
        token = issuer.mint(
            subject="staff-0001", tenant=manifest.code, department="shimin", roles=["staff"]
        )
        target = f"residents/{sample[0]}" if sample else "households/00000019"
        lines += [
            "",
            f"# {manifest.name} ({manifest.code})",
            f"TOKEN_{manifest.code}={token}",
            f"curl -s -H 'Authorization: Bearer {token}' -H 'X-Purpose: juki.certificate' "
            f"{settings.issuer}/api/v1/tenants/{manifest.code}/{target}",
        ]
    return lines
