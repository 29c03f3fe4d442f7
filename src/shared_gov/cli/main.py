"""``shared-gov``: operate the platform from a terminal.

Every command reads the same ``SHARED_GOV_*`` settings as the service. With
no ``SHARED_GOV_DATABASE_URL`` it starts (or joins) the embedded PostgreSQL in
the data directory, so a fresh checkout needs nothing else.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from shared_gov.auth.issuer import builtin_issuer
from shared_gov.cli.audit import audit_app
from shared_gov.cli.demo import demo_app
from shared_gov.cli.keys import keys_app
from shared_gov.cli.policy import policy_app
from shared_gov.cli.tenants import tenants_app
from shared_gov.console import _database_url, _progress, _run, err, out
from shared_gov.db import Database
from shared_gov.domains import registry as domain_registry
from shared_gov.settings import Settings, get_settings
from shared_gov.tenancy import service as tenancy

app = typer.Typer(help="shared-gov: backend of a shared municipal cloud.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
# `shared-gov tenant enrolment-code CODE` reads naturally too.
app.add_typer(tenants_app, name="tenant", hidden=True)
app.add_typer(demo_app, name="demo")
app.add_typer(policy_app, name="policy")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
# Each installed domain's command groups (``shared-gov residents …``), as its spec lists them.
for _name, _group in domain_registry.cli_groups():
    app.add_typer(_group, name=_name)

_TTL = re.compile(r"^(\d+)([smhd]?)$")


@app.command()
def migrate() -> None:
    """Migrate the catalog, then every tenant that is behind (skips those at head)."""

    async def work(db: Database) -> tenancy.MigrateReport:
        with _progress("[bold]migrate") as progress:
            task = progress.add_task("tenants", total=0)

            def on_start(n: int) -> None:
                progress.update(task, total=n)

            def on_done(code: str, failure: str | None) -> None:
                progress.advance(task)
                if failure:
                    progress.console.print(f"[red]FAILED[/red] {code}: {failure}")

            return await tenancy.migrate_all(db, on_start=on_start, on_done=on_done)

    report = _run(work)
    err.print(
        f"{report.total} tenants, {report.behind} behind, {len(report.upgraded)} upgraded, "
        f"{len(report.failed)} failed"
    )
    if report.failed:
        raise typer.Exit(1)


def _ttl_seconds(ttl: str) -> int:
    match = _TTL.match(ttl)
    if not match:
        raise typer.BadParameter("use e.g. 900, 15m, 8h or 1d")
    number, unit = int(match.group(1)), match.group(2) or "s"
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


@app.command()
def token(
    tenant: Annotated[str | None, typer.Option(help="town code, e.g. 172065")] = None,
    staff: Annotated[str | None, typer.Option(help="staff id (sub claim)")] = None,
    department: Annotated[str | None, typer.Option(help="department code, e.g. kaigo")] = None,
    role: Annotated[str, typer.Option(help="staff | admin | auditor | integration")] = "staff",
    mfa: Annotated[bool, typer.Option("--mfa", help="token shows two-factor auth")] = False,
    ttl: Annotated[str, typer.Option(help="lifetime: 900, 15m, 8h, 1d")] = "8h",
    operator: Annotated[bool, typer.Option("--operator", help="platform operator token")] = False,
    supplier: Annotated[
        str | None,
        typer.Option(help="a supplier's system token (development): its supplier key"),
    ] = None,
) -> None:
    """Print a token from the built-in issuer, and nothing else, on stdout."""
    settings = get_settings()
    issuer = builtin_issuer(settings.data_dir, settings.issuer, settings.audience)
    seconds = _ttl_seconds(ttl)
    longest = (
        settings.max_integration_token_lifetime
        if role == "integration" and not operator
        else settings.max_token_lifetime
    )
    if seconds > longest:
        # The service would refuse it (401, "lifetime too long"): say so here.
        raise typer.BadParameter(
            f"--ttl is above the service's maximum token lifetime ({longest} s; "
            "SHARED_GOV_MAX_TOKEN_LIFETIME_SECONDS)"
        )
    if supplier is not None:
        if not settings.is_dev:
            raise typer.BadParameter("suppliers' tokens come from their own issuer outside dev")
        value = issuer.mint(
            subject=supplier, tenant=None, department=None, roles=["supplier"], ttl_seconds=seconds
        )
    elif operator:
        value = issuer.mint(
            subject=staff or "operator",
            tenant=None,
            department=None,
            roles=["operator"],
            mfa=mfa,
            ttl_seconds=seconds,
        )
    else:
        if not tenant or not staff:
            raise typer.BadParameter("--tenant and --staff are required (or --operator)")
        if role not in ("staff", "admin", "auditor", "integration"):
            raise typer.BadParameter("--role must be staff, admin, auditor or integration")
        if not settings.is_dev:
            # The service refuses such tokens outside development anyway; say so here.
            raise typer.BadParameter("town staff tokens come from the town's own IdP outside dev")
        value = issuer.mint(
            subject=staff,
            tenant=tenant,
            department=department,
            roles=[role],
            mfa=mfa,
            ttl_seconds=seconds,
        )
    sys.stdout.write(value + "\n")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address")] = None,
    port: Annotated[int | None, typer.Option(help="port")] = None,
    workers: Annotated[
        int, typer.Option(help="worker processes", envvar="SHARED_GOV_WORKERS", min=1)
    ] = 1,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="migrate, onboard tenants/*.toml, seed once, print tokens"),
    ] = False,
    demo_residents: Annotated[int, typer.Option(help="residents per demo town")] = 1000,
) -> None:
    """Serve the API (granian workers). With --demo, prepare the demo towns first."""
    from shared_gov import serving

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    if demo and not settings.is_dev:
        raise typer.BadParameter("--demo seeds synthetic towns: development only")
    _database_url(settings)
    if demo:
        from shared_gov.demo.loader import prepare_demo

        lines = _run(lambda db: prepare_demo(db, Path("tenants"), demo_residents, err))
        for line in lines:
            out.print(line, soft_wrap=True, highlight=False)
    if settings.is_dev:
        # Outside development stdout carries JSON log lines only.
        local = dataclasses.replace(settings, host=host, port=port)
        for line in where_things_are(local):
            out.print(line, soft_wrap=True, highlight=False)
    serving.serve(settings, host=host, port=port, workers=workers)


def where_things_are(settings: Settings) -> list[str]:
    """What a newcomer needs after ``make run``: where, how to sign in, the port, stopping."""
    url = settings.local_url
    database = (
        "the server in SHARED_GOV_DATABASE_URL"
        if settings.database_url
        else f"embedded PostgreSQL in {settings.data_dir / 'pgdata'} (stops with the service)"
    )
    return [
        "",
        f"shared-gov is serving on {url}",
        f"  API            {url}/api/v1/tenants/<code>/…   (docs: {url}/docs)",
        f"  console        {url}/console/   (development sign-in: pick a town, then a member "
        "of staff, e.g. audit-0001)",
        f"  health         {url}/health, {url}/ready, {url}/metrics",
        f"  token issuer   {url}/.well-known/openid-configuration  (iss {settings.issuer})",
        f"  data           {settings.data_dir}: {database}, the issuer and town keys",
        "  tokens         .venv/bin/shared-gov token --tenant 172065 --staff k-0001 "
        "--department shimin [--role admin|auditor|integration] [--mfa]",
        "                 (signed with the key in the data directory; they do not depend "
        "on the port)",
        "  another port   SHARED_GOV_PORT=8001 make run   (or: shared-gov serve --port 8001)",
        "  stop           Ctrl-C: stops the service and the embedded PostgreSQL with it",
        "",
    ]


if __name__ == "__main__":  # pragma: no cover
    app()
