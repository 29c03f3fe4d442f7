"""``shared-gov residents …``: bulk import and export of a town's register.

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
