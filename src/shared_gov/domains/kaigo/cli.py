"""``shared-gov kaigo …``: the consumer and the daily job by hand (operations, benches).

The service runs both in every worker (``SHARED_GOV_KAIGO_CONSUMER``); these
commands do one catch-up of one town, a replay from the outbox's beginning
(determinations already written stay: nothing is written twice), or the daily
job for a given day. Registered through the domain's spec (``SPEC.cli_groups``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from shared_gov.console import _run, out
from shared_gov.db import Database

kaigo_app = typer.Typer(
    help="介護保険: the outbox consumer and the daily 65 job, by hand.", no_args_is_help=True
)


@kaigo_app.command("consume")
def consume(tenant: Annotated[str, typer.Option(help="town code")]) -> None:
    """Read the town's outbox until caught up, then run the daily job up to tomorrow."""
    from shared_gov.domains.kaigo.consumer import catch_up, lag

    async def work(db: Database) -> tuple[int, float]:
        return await catch_up(db, tenant), await lag(db, tenant)

    written, behind = _run(work)
    out.print(f"{tenant}: {written} determinations written, {behind:.1f} s behind")


@kaigo_app.command("replay")
def replay(tenant: Annotated[str, typer.Option(help="town code")]) -> None:
    """Read the outbox again from its beginning (idempotent: nothing is written twice)."""
    from shared_gov.domains.kaigo.consumer import catch_up
    from shared_gov.domains.kaigo.repository import watch
    from shared_gov.towns.names import tenant_names

    async def work(db: Database) -> int:
        async with db.tenant(tenant_names(tenant, db.settings.role_prefix)) as uow:
            await watch.rewind(uow)
        return await catch_up(db, tenant)

    out.print(f"{tenant}: {_run(work)} new determinations")


@kaigo_app.command("job65")
def job65(
    tenant: Annotated[str, typer.Option(help="town code")],
    today: Annotated[str | None, typer.Option(help="run as if today were YYYY-MM-DD")] = None,
) -> None:
    """Propose 第1号 for everyone reaching 65 up to tomorrow (days not covered yet)."""
    from shared_gov.clock import today_jst
    from shared_gov.domains.kaigo import job65 as job

    day = date.fromisoformat(today) if today else today_jst()

    async def work(db: Database) -> int:
        return await job.run(db, tenant, today=day)

    out.print(f"{tenant}: {_run(work)} determinations")
