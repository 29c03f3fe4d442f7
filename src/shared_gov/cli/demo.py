"""``shared-gov demo …``: synthetic demo data."""

from __future__ import annotations

from typing import Annotated

import typer

from shared_gov.console import _run, err, out

demo_app = typer.Typer(help="Synthetic demo data.", no_args_is_help=True)


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
