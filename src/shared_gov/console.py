"""What every ``shared-gov`` command group shares: the consoles, the progress bar,
and opening the database for one job (domains' command groups use it too)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared_gov import errors
from shared_gov.crypto.keyring import keyring_from_settings
from shared_gov.db import Database
from shared_gov.db.embedded import start_embedded
from shared_gov.logs import configure_logging
from shared_gov.settings import Settings, get_settings

err = Console(stderr=True)
out = Console()
T = TypeVar("T")


def _database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    url = start_embedded(settings.data_dir)
    # Child processes (server workers) must join the same cluster.
    os.environ["SHARED_GOV_DATABASE_URL"] = url
    return url


def _progress(label: str) -> Progress:
    """The bar every long CLI job shows on stderr (gone when it finishes)."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        # A bar is for a person watching; piped or logged, it would leave an empty line.
        disable=not err.is_terminal,
    )


def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    """Open the database, run ``work``, close; domain errors exit with status 2."""
    settings = get_settings()
    configure_logging(os.environ.get("SHARED_GOV_LOG_LEVEL", "warning"))
    url = _database_url(settings)

    async def main() -> T:
        # Operators' jobs (imports, rotations, exports) may legitimately run
        # one long statement; the statement timeout protects the service.
        jobs = dataclasses.replace(settings, statement_timeout=0)
        db = Database(url, jobs, keyring_from_settings(jobs))
        await db.open()
        try:
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except asyncpg.UndefinedTableError:
        # A fresh database (the first command of a fresh clone): say what to do.
        err.print(
            "[red]error:[/red] the database has no shared-gov catalog yet: run "
            "`shared-gov migrate` (or `make run`) first"
        )
        raise typer.Exit(2) from None
    except errors.DomainError as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        for item in exc.extra.get("errors", []):
            err.print(f"  {item['pointer']}: {item['detail']}")
        raise typer.Exit(2) from None


progress = _progress
run = _run
