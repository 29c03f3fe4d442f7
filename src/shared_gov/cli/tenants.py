"""``shared-gov tenants …``: onboard, list and offboard towns; enrolment codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shared_gov import errors
from shared_gov.audit.recorder import operator_actor
from shared_gov.console import _run, err, out
from shared_gov.db import Database
from shared_gov.settings import get_settings
from shared_gov.tenancy import enrolment
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.enrolment import EnrolmentCode
from shared_gov.tenancy.manifest import load_manifest

tenants_app = typer.Typer(help="Onboard, list and offboard towns.", no_args_is_help=True)


@tenants_app.command("onboard")
def tenants_onboard(
    manifests: Annotated[list[Path], typer.Argument(help="tenants/*.toml files")],
) -> None:
    """Validate manifests and provision each town (idempotent)."""
    loaded = []
    for path in manifests:
        try:
            loaded.append(load_manifest(path))
        except errors.DomainError as exc:
            err.print(f"[red]{path}[/red]: {exc.detail}")
            for item in exc.extra.get("errors", []):
                err.print(f"  {item['pointer']}: {item['detail']}")
            raise typer.Exit(2) from None

    async def work(db: Database) -> None:
        await tenancy.migrate_catalog(db)
        for manifest in loaded:
            try:
                result = await tenancy.onboard(db, manifest, operator_actor("tenants onboard"))
            except errors.DomainError as exc:
                err.print(f"[red]{manifest.code} {manifest.name}[/red]: {exc.detail}")
                raise typer.Exit(1) from None
            out.print(f"{result.code} {manifest.name}: {result.outcome}")
            if result.enrolment is not None:
                _print_enrolment(result.code, result.enrolment)

    _run(work)


def _print_enrolment(code: str, enrolment: EnrolmentCode) -> None:
    out.print(
        f"  enrolment code for {code} (shown once; hand it to the town's information-policy "
        f"office, valid until {enrolment.expires_at:%Y-%m-%d %H:%M} UTC):"
    )
    out.print(f"  {enrolment.code}", soft_wrap=True)


@tenants_app.command("enrolment-code")
def tenants_enrolment_code(
    code: Annotated[str, typer.Argument(help="town code, e.g. 172065")],
) -> None:
    """(Re)issue a town's one-time enrolment code while the town is not enrolled.

    The previous code stops working. Once the town has redeemed a code (or its
    admins registered an issuer) this is refused: the town's identity is its own.
    """

    async def work(db: Database) -> EnrolmentCode:
        await tenancy.migrate_catalog(db)
        return await enrolment.issue(db, code, operator_actor("tenants enrolment-code"))

    _print_enrolment(code, _run(work))


@tenants_app.command("list")
def tenants_list(
    all_: Annotated[bool, typer.Option("--all", help="include offboarded towns")] = False,
) -> None:
    """List towns with their status and schema revision."""
    rows = _run(lambda db: tenancy.list_tenants(db, include_offboarded=all_))
    table = Table("code", "name", "prefecture", "status", "revision", "departments")
    for r in rows:
        table.add_row(
            r.code,
            r.name,
            r.prefecture,
            r.status,
            r.schema_revision or "-",
            " ".join(d["code"] for d in r.departments),
        )
    out.print(table)


@tenants_app.command("offboard")
def tenants_offboard(
    code: str,
    yes: Annotated[bool, typer.Option("--yes", help="confirm: drops the town's schema")] = False,
    export_dir: Annotated[
        Path | None, typer.Option(help="where the export goes (default <data_dir>/exports)")
    ] = None,
) -> None:
    """Mark inactive, export the town's data to a file, then drop its schema and role."""
    if not yes:
        err.print("offboarding drops the town's data after exporting it; pass --yes to confirm")
        raise typer.Exit(2)
    target = export_dir or get_settings().data_dir / "exports"
    path = _run(lambda db: tenancy.offboard(db, code, target))
    out.print(f"exported to {path}; schema and role dropped")
