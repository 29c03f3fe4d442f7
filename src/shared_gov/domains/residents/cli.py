"""``shared-gov residents …``: bulk import and export of a town's register, and
the relink step of rule 1 (支援措置).

Registered through the domain's spec (``SPEC.cli_groups``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shared_gov.console import _progress, _run, err, out
from shared_gov.db import Database

residents_app = typer.Typer(
    help="Bulk import and export of a town's register.", no_args_is_help=True
)


@residents_app.command("import")
def residents_import(
    file: Annotated[Path, typer.Argument(help="CSV in the documented layout (UTF-8)")],
    tenant: Annotated[str, typer.Option(help="town code")],
    workers: Annotated[
        int | None,
        typer.Option(
            help="processes that check and encrypt (default: one per core, up to 3; 0: none)",
            min=0,
        ),
    ] = None,
) -> None:
    """Load an existing register: all rows valid, or nothing is written."""
    from shared_gov.domains.residents.transfer import ImportRejected, import_csv, report
    from shared_gov.towns.names import tenant_names

    with file.open(encoding="utf-8", newline="") as fh:
        rows = max(sum(1 for _ in fh) - 1, 0)

    async def work(db: Database) -> int:
        names = tenant_names(tenant, db.settings.role_prefix)
        with _progress(f"[bold]import {tenant}") as progress:
            task = progress.add_task("rows", total=rows)
            with file.open(encoding="utf-8", newline="") as fh:
                async with db.tenant(names) as uow:
                    return await import_csv(
                        uow, fh, lambda n: progress.advance(task, n), workers=workers
                    )

    try:
        count = _run(work)
    except ImportRejected as rejected:
        err.print(f"[red]import refused[/red]: {rejected}")
        for line in report(rejected.errors):
            err.print("  " + line)
        raise typer.Exit(2) from None
    out.print(f"{tenant}: {count} residents imported")


@residents_app.command("export")
def residents_export(
    file: Annotated[Path, typer.Argument(help="where to write the CSV (mode 0600)")],
    tenant: Annotated[str, typer.Option(help="town code")],
) -> None:
    """Write the town's register, decrypted, in the import layout."""
    import os

    from shared_gov.domains.residents.transfer import export_csv
    from shared_gov.towns.names import tenant_names

    async def work(db: Database) -> int:
        names = tenant_names(tenant, db.settings.role_prefix)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            async with db.tenant(names) as uow:
                return await export_csv(uow, fh)

    count = _run(work)
    out.print(f"{tenant}: {count} residents exported to {file}")


@residents_app.command("relink")
def residents_relink(
    tenant: Annotated[str, typer.Option(help="town code")],
    every: Annotated[
        bool,
        typer.Option(
            "--every",
            help="re-read the history of every record whose household ever changed, "
            "not only those not read yet",
        ),
    ] = False,
) -> None:
    """Rebuild rule 1's links (支援措置) from the residents' histories.

    A step of the upgrade to tenant revision t0011 (docs/support-measures.md):
    decrypts the history snapshots of records whose past households are not
    known yet, records those households, and recomputes which records are
    linked to a protected person. Until it runs, such records are withheld as
    linked. Safe to run again; prints counts only.
    """
    from shared_gov.domains.residents.linkage import relink
    from shared_gov.towns.names import tenant_names

    async def work(db: Database) -> tuple[int, int, int]:
        names = tenant_names(tenant, db.settings.role_prefix)
        async with db.tenant(names) as uow:
            done = await relink(uow, every=every)
        return done.residents_read, done.memberships_added, done.flags_changed

    read, added, changed = _run(work)
    out.print(
        f"{tenant}: histories of {read} residents read, {added} past households recorded, "
        f"{changed} links changed"
    )
