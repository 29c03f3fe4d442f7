"""``shared-gov policy …``: validate and explain Cedar policies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shared_gov.console import _run, err, out

policy_app = typer.Typer(help="Validate and explain Cedar policies.", no_args_is_help=True)


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
