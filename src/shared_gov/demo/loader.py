"""Loading synthetic demo data through each domain's own seeder.

:func:`seed_town` runs every installed domain's demo seeder (declared in its
spec; the residents domain registers the people :mod:`shared_gov.domains.residents.seed`
generates through the normal ``register`` use case). :func:`prepare_demo`
is what ``make run`` does before serving: migrate, onboard every manifest in
``tenants/``, run each domain's data upgrades (e.g. ``residents relink``), seed
each town once, and return ready tokens and curl lines.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from shared_gov.audit.recorder import operator_actor
from shared_gov.auth.issuer import builtin_issuer
from shared_gov.db import Database
from shared_gov.domains import registry as domain_registry
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import load_manifest
from shared_gov.towns.names import tenant_names


async def seed_town(
    db: Database, code: str, residents: int, seed: int, progress_console: Console | None = None
) -> int:
    """Add ``residents`` synthetic records to town ``code`` through every installed
    domain's demo seeder (the residents domain registers people); returns the count."""
    added = 0
    for _domain, demo in domain_registry.demo_data():
        added += await demo.seed(db, code, residents, seed, progress_console=progress_console)
    return added


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
    demos = domain_registry.demo_data()
    for manifest in manifests:
        names = tenant_names(manifest.code, settings.role_prefix)
        token = issuer.mint(
            subject="staff-0001", tenant=manifest.code, department="shimin", roles=["staff"]
        )
        lines += ["", f"# {manifest.name} ({manifest.code})", f"TOKEN_{manifest.code}={token}"]
        for _domain, demo in demos:
            if demo.upgrade is not None:
                async with db.tenant(names) as uow:
                    await demo.upgrade(uow)
            async with db.tenant(names) as uow:
                empty = await demo.records(uow) == 0
            if empty:
                await demo.seed(
                    db, manifest.code, residents, int(manifest.code), progress_console=console
                )
            async with db.tenant(names) as uow:
                target, purpose = await demo.sample(uow)
            caller = token
            if demo.department != "shimin":
                # The sample works as printed: a token of the department it is for.
                caller = issuer.mint(
                    subject=f"staff-{demo.department}",
                    tenant=manifest.code,
                    department=demo.department,
                    roles=["staff"],
                )
            lines.append(
                f"curl -s -H 'Authorization: Bearer {caller}' -H 'X-Purpose: {purpose}' "
                f"{settings.local_url}/api/v1/tenants/{manifest.code}/{target}"
            )
    return lines
