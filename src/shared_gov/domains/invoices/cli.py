"""``shared-gov invoices …``: install the official rules, check an invoice file.

Registered through the domain's spec (``SPEC.cli_groups``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shared_gov.console import err, out
from shared_gov.settings import get_settings

invoices_app = typer.Typer(help="Supplier e-invoices (電子請求).", no_args_is_help=True)
rules_app = typer.Typer(help="The official JP PINT rules and the UBL 2.1 schema.")
invoices_app.add_typer(rules_app, name="rules")


@rules_app.command("install")
def rules_install(
    path: Annotated[
        Path,
        typer.Argument(
            help="a release package: the zip as published, its unpacked folder, or a folder "
            "holding several (e.g. ../shared/einvoice)",
            exists=True,
        ),
    ],
) -> None:
    """Check a release package against the known SHA-256s, compile it and install it."""
    from shared_gov.domains.invoices import releases
    from shared_gov.domains.invoices.paths import rules_dir

    target = rules_dir(get_settings())
    try:
        installed = releases.install(path, target)
    except releases.ReleaseError as exc:
        err.print(f"[red]refused[/red]: {exc}")
        raise typer.Exit(2) from None
    for release in installed:
        out.print(f"installed {release.label} ({len(release.files)} files verified)")
    missing = [n for n, v in releases.status(target).items() if v is None]
    if missing:
        err.print(f"still missing: {', '.join(missing)} (invoices are refused until installed)")


@rules_app.command("status")
def rules_status() -> None:
    """What is installed, each file's hash verified."""
    from shared_gov.domains.invoices import checks, releases
    from shared_gov.domains.invoices.paths import rules_dir

    target = rules_dir(get_settings())
    try:
        checks.installed(target)
        reason = None
    except releases.ReleaseError as exc:
        reason = str(exc)

    for name, version in releases.status(target).items():
        out.print(f"{name:12} {version or '[red]not installed[/red]'}")
    if reason is not None:
        err.print(f"[red]invoices cannot be checked[/red]: {reason}")
        raise typer.Exit(1)
    out.print("[green]ready[/green]: intake checks invoices with these rules")


@invoices_app.command("check")
def check_file(
    file: Annotated[Path, typer.Argument(help="an invoice: UBL 2.1 XML, or the JSON form")],
    t_number: Annotated[
        str, typer.Option(help="severity of sg-jp-01 (T-number check digit): warning or fatal")
    ] = "warning",
) -> None:
    """Check one invoice with the installed rules and print the report (exit 1 if fatal)."""
    from shared_gov.domains.invoices import checks, releases, rules
    from shared_gov.domains.invoices.paths import rules_dir

    if t_number not in ("warning", "fatal"):
        raise typer.BadParameter("warning or fatal", param_hint="--t-number")
    try:
        installed = checks.installed(rules_dir(get_settings()))
    except releases.ReleaseError as exc:
        err.print(f"[red]cannot check[/red]: {exc}")
        raise typer.Exit(2) from None
    data = file.read_bytes()
    form: checks.Form = "json" if data.lstrip()[:1] == b"{" else "xml"
    options = rules.Options(t_number="fatal" if t_number == "fatal" else "warning")
    outcome = checks.check(form, data, installed, options)
    report = outcome.report
    out.print(f"{file.name}: {form}, specification {report.specification or '?'}")
    out.print(f"rules: {', '.join(report.rules)}")
    for f in report.findings:
        colour = {"fatal": "red", "warning": "yellow"}.get(f.severity, "blue")
        out.print(f"[{colour}]{f.severity:11}[/{colour}] {f.rule:24} {escape(f.location)}")
        out.print(f"{'':12} {escape(f.message.ja)}")
        out.print(f"{'':12} {escape(f.message.en)}")
    out.print("[red]rejected[/red]" if report.fatal else "[green]accepted[/green]")
    if report.fatal:
        raise typer.Exit(1)
