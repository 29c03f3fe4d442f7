"""``shared-gov``: operate the platform from a terminal.

Every command reads the same ``SHARED_GOV_*`` settings as the service. With
no ``SHARED_GOV_DATABASE_URL`` it starts (or joins) the embedded PostgreSQL in
the data directory, so a fresh checkout needs nothing else.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shared_gov import errors
from shared_gov.audit.recorder import operator_actor
from shared_gov.auth.issuer import builtin_issuer
from shared_gov.cli.audit import audit_app
from shared_gov.cli.common import _database_url, _progress, _run, err, out
from shared_gov.crypto.keyring import REENCRYPT_GRACE_SECONDS
from shared_gov.db import Database
from shared_gov.domains import registry as domain_registry
from shared_gov.settings import get_settings
from shared_gov.tenancy import enrolment
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.enrolment import EnrolmentCode
from shared_gov.tenancy.manifest import load_manifest

app = typer.Typer(help="shared-gov: backend of a shared municipal cloud.", no_args_is_help=True)
tenants_app = typer.Typer(help="Onboard, list and offboard towns.", no_args_is_help=True)
demo_app = typer.Typer(help="Synthetic demo data.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
# `shared-gov tenant enrolment-code CODE` reads naturally too.
app.add_typer(tenants_app, name="tenant", hidden=True)
app.add_typer(demo_app, name="demo")
policy_app = typer.Typer(help="Validate and explain Cedar policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
keys_app = typer.Typer(help="Towns' encryption keys: status and rotation.", no_args_is_help=True)
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
    if operator:
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


@demo_app.command("seed")
def demo_seed(
    tenant: Annotated[str, typer.Option(help="town code")],
    residents: Annotated[int, typer.Option(help="how many synthetic residents")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same people)")] = 1,
) -> None:
    """Add synthetic residents and households to a town."""
    from shared_gov.demo.loader import seed_town

    count = _run(lambda db: seed_town(db, tenant, residents, seed, progress_console=err))
    out.print(f"{tenant}: {count} residents added")


@policy_app.command("validate")
def policy_validate(
    policies_dir: Annotated[
        Path | None, typer.Option(help="policies folder (default: the project's)")
    ] = None,
) -> None:
    """Validate every policy (platform and towns') against the Cedar schema."""
    from shared_gov.policy import PolicyEngine, PolicyError
    from shared_gov.policy.purposes import default_policies_dir, load_purposes

    folder = policies_dir or default_policies_dir()
    try:
        engine = PolicyEngine(folder)
        load_purposes(folder / "purposes.toml")
    except (PolicyError, ValueError) as exc:
        problems = exc.problems if isinstance(exc, PolicyError) else [str(exc)]
        for problem in problems:
            err.print(f"[red]invalid:[/red] {problem}")
        raise typer.Exit(1) from None
    towns = ", ".join(engine.towns_with_policies) or "none"
    out.print(f"policies valid ({folder}); towns with their own policies: {towns}")


@policy_app.command("explain")
def policy_explain(
    tenant: Annotated[str, typer.Option(help="town code")],
    staff: Annotated[str, typer.Option(help="staff id")],
    purpose: Annotated[str, typer.Option(help="purpose code, e.g. kaigo.qualification")],
    field: Annotated[str | None, typer.Option(help="one field (default: all)")] = None,
    department: Annotated[
        str | None, typer.Option(help="department (default: the one on record)")
    ] = None,
    mfa: Annotated[bool, typer.Option("--mfa", help="as if signed in with 2FA")] = False,
    support_measure: Annotated[
        bool, typer.Option("--support-measure", help="for a record under 支援措置")
    ] = False,
    role: Annotated[str, typer.Option(help="staff | admin | auditor")] = "staff",
) -> None:
    """Print the decision for each field, and why — for a staff member and purpose."""
    from shared_gov import policy
    from shared_gov.policy.explain import explain_staff
    from shared_gov.policy.permissions import PermissionStore

    result = _run(
        lambda db: explain_staff(
            PermissionStore(db),
            policy.engine(),
            tenant=tenant,
            staff_id=staff,
            purpose_code=purpose,
            department=department,
            mfa=mfa,
            support_measure=support_measure,
            roles=frozenset({role}),
            only_field=field,
        )
    )
    out.print(
        f"staff {result.staff_id} (department {result.department or 'none'}), "
        f"purpose {result.purpose}; granted: {', '.join(result.granted_purposes) or 'nothing'}"
    )
    table = Table("field", "decision", "why", "policies")
    for item in result.fields:
        table.add_row(
            item.field,
            "[green]allow[/green]" if item.allowed else "[red]deny[/red]",
            item.reason or "",
            ", ".join(item.policies),
        )
    out.print(table)


@keys_app.command("status")
def keys_status(
    tenant: Annotated[str | None, typer.Option(help="one town (default: all)")] = None,
) -> None:
    """Key versions per town and column, with the rows on each version."""
    from shared_gov.crypto.rotation import status

    rows = _run(lambda db: status(db, tenant))
    table = Table("town", "kind", "name", "version", "state", "kek", "bits", "rows")
    for r in rows:
        table.add_row(
            r.tenant,
            r.kind,
            r.name,
            str(r.version),
            r.state,
            str(r.kek_version),
            "" if r.bits is None else str(r.bits),
            "" if r.rows is None else str(r.rows),
        )
    out.print(table)


@keys_app.command("rotate-kek")
def keys_rotate_kek(tenant: Annotated[str, typer.Option(help="town code")]) -> None:
    """New key-encryption key for a town: re-wraps its data keys only."""
    from shared_gov.crypto.rotation import rotate_kek

    version, count = _run(lambda db: rotate_kek(db, tenant))
    out.print(f"{tenant}: KEK v{version}; {count} data keys re-wrapped; older KEKs retired")


@keys_app.command("rotate-dek")
def keys_rotate_dek(
    tenant: Annotated[str, typer.Option(help="town code")],
    column: Annotated[str, typer.Option(help="e.g. family_name or resident_history.snapshot")],
    batch: Annotated[int, typer.Option(help="rows per transaction")] = 500,
) -> None:
    """New data key for one column; re-encrypts its rows in resumable batches."""
    from shared_gov.crypto.rotation import rotate_dek

    with _progress(f"[bold]re-encrypt {column}") as progress:
        task = progress.add_task("rows", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = _run(
            lambda db: rotate_dek(db, tenant, column, batch=batch, on_progress=on_progress)
        )
    out.print(
        f"{tenant} {column}: v{result.version} is the write key; "
        f"{result.reencrypted} rows re-encrypted"
        + ("; old version retired" if result.retired else "")
    )
    if result.corrupt:
        err.print(
            f"[red]{len(result.corrupt)} rows did not decrypt[/red] (tampered or misplaced); "
            "the old key is kept until they are dealt with. Row ids:"
        )
        for rid in result.corrupt:
            err.print(f"  {rid}")
        raise typer.Exit(1)


@keys_app.command("rotate-index")
def keys_rotate_index(
    tenant: Annotated[str, typer.Option(help="town code")],
    index: Annotated[
        str, typer.Option(help="individual_number, kana_birth, phone or juminhyo_code")
    ],
    bits: Annotated[
        int | None,
        typer.Option(help="index width (default: re-planned from the town's population)"),
    ] = None,
    batch: Annotated[int, typer.Option(help="rows per transaction", min=1)] = 500,
    grace: Annotated[
        float,
        typer.Option(
            help="seconds workers get to hear of a key change before the next step "
            "(less than the default only when every worker's listener is known to be up)"
        ),
    ] = REENCRYPT_GRACE_SECONDS,
) -> None:
    """New blind-index key; fills the second column in resumable batches, then switches.

    Interrupted, run it again: it continues the same rotation (or finishes its
    clean-up) instead of starting another.
    """
    from shared_gov.crypto.index_rotation import rotate_index

    with _progress("[bold]{task.description}") as progress:
        task = progress.add_task(f"index {index}", total=None)

        def on_progress(phase: str, done: int, total: int) -> None:
            progress.update(task, description=f"{phase} {index}", completed=done, total=total)

        result = _run(
            lambda db: rotate_index(
                db,
                tenant,
                index,
                bits=bits,
                batch=batch,
                grace_seconds=grace,
                on_progress=on_progress,
            )
        )
    if result.cleanup_only:
        out.print(
            f"{tenant} {index}: finished the clean-up of the rotation to v{result.version} "
            f"({result.cleared} old values erased); run again to rotate"
        )
        return
    out.print(
        f"{tenant} {index}: v{result.version} ({result.bits} bits); "
        f"{result.filled} rows indexed with it"
        + (
            f"; old version retired and erased, {result.cleared} old values cleared"
            if result.retired
            else ""
        )
    )
    if result.unreadable:
        err.print(
            f"[red]{len(result.unreadable)} rows did not decrypt[/red] (tampered or misplaced); "
            "the old index key is kept until they are dealt with. Row ids:"
        )
        for rid in result.unreadable:
            err.print(f"  {rid}")
        raise typer.Exit(1)


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
        out.print(f"serving on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    serving.serve(settings, host=host, port=port, workers=workers)


if __name__ == "__main__":  # pragma: no cover
    app()
