"""Kaga's audit log as the fault tests check it: how much is sealed and signed,
waiting for the sealer to catch up, and ``shared-gov audit verify``."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass

import asyncpg

from tests.conftest import KAGA
from tests.faults.cluster import CLI, Town


@dataclass
class Log:
    """What is sealed and signed for Kaga, read in one snapshot."""

    events: int
    leaves: int
    signed: int


async def state(conn: asyncpg.Connection) -> Log:
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM audit.events WHERE tenant = $1) AS events, "
        "(SELECT count(*) FROM audit.leaves WHERE tenant = $1) AS leaves, "
        "(SELECT COALESCE(max(tree_size), 0) FROM audit.checkpoints WHERE tenant = $1) AS signed",
        KAGA,
    )
    assert row is not None
    return Log(row["events"], row["leaves"], row["signed"])


async def until_all_signed(conn: asyncpg.Connection, within: float) -> tuple[Log, float]:
    """Until every Kaga event is sealed under a signed checkpoint; (state, seconds)."""
    started = time.monotonic()
    while True:
        now = await state(conn)
        if now.signed == now.leaves == now.events:
            return now, time.monotonic() - started
        assert time.monotonic() - started < within, f"sealing stalled: {now}"
        await asyncio.sleep(0.05)


def verify(town: Town) -> None:
    """``shared-gov audit verify --tenant 172065`` must exit 0 (blocking: use a thread)."""
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [CLI, "audit", "verify", "--tenant", KAGA],
        env=town.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"audit verify:\n{done.stdout}\n{done.stderr}"
    assert "OK" in done.stdout
