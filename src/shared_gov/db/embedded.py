"""The embedded PostgreSQL (``pgserver``) used when no database URL is set.

``make run`` and ``make test`` need nothing but Python: pgserver ships the
PostgreSQL binaries in its wheel. The cluster lives in ``<data_dir>/pgdata``
so a restart keeps every town's data. pgserver reference-counts the
processes using a cluster and stops it when the last one exits.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg

from shared_gov.db.urls import with_database

DATABASE = "shared_gov"


def start_embedded(data_dir: Path, database: str = DATABASE) -> str:
    """Start (or join) the embedded cluster and return a URL for ``database``."""
    pgdata = data_dir / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs (under pgserver) warns when XDG_RUNTIME_DIR is unset, as in
        # containers, CI and su shells, and falls back to /tmp: noise on every
        # CLI command's stderr, and nothing for the user to do.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver  # imported lazily: only the embedded mode needs it

        server = pgserver.get_server(str(pgdata))  # type: ignore[attr-defined]
    admin_url = f"postgresql://postgres@/postgres?host={pgdata}"
    _run_blocking(_ensure_database(admin_url, database))
    # Keep a reference so the server object (and its cleanup hook) lives as
    # long as this process.
    _servers.append(server)
    return with_database(admin_url, database)


_servers: list[object] = []


def _run_blocking(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to completion even when called from inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


async def _ensure_database(admin_url: str, database: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # Identifier comes from our own constant or a test fixture, not user input.
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
