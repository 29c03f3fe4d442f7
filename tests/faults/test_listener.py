"""Cache invalidation across a PostgreSQL restart (issue #7, "Faults").

Every worker drops its cached permissions, issuers, keys and decisions when a
``shared_gov_policy`` notification arrives on its LISTEN connection. A restart
drops that connection, and changes committed while it is down are never
delivered, so on reconnecting the listener drops every cache ("*"). Required:
that happens within a couple of seconds of PostgreSQL being back — a staff
member suspended right after a restart must not keep their access in other
workers until a ten-second heartbeat notices — and notifications flow again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
import pytest

from shared_gov.db.notify import CHANNEL, ChangeListener
from tests.conftest import KAGA
from tests.faults.cluster import Town

pytestmark = pytest.mark.faults

RECONNECT_LIMIT = 3.0


async def _until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {within:.0f} s"
        await asyncio.sleep(0.02)


async def test_listener_drops_caches_soon_after_a_restart(town: Town) -> None:
    heard: list[tuple[float, str]] = []
    listener = ChangeListener(town.url)
    listener.subscribe(lambda tenant: heard.append((time.monotonic(), tenant)))
    await listener.start()
    try:
        # Connected: it drops everything once on (re)connecting.
        await _until(lambda: bool(heard), 10, "first connection")
        heard.clear()
        await town.cluster.restart()
        back = time.monotonic()
        await _until(lambda: any(t == "*" for _, t in heard), 15, "reconnection")
        took = next(at for at, t in heard if t == "*") - back
        print(f"listener reconnected and dropped its caches {took:.2f} s after PostgreSQL was back")
        assert took <= RECONNECT_LIMIT

        # And it listens again: a change committed now is heard.
        conn = await asyncpg.connect(town.url, timeout=10)
        try:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, KAGA)
        finally:
            await conn.close()
        await _until(lambda: any(t == KAGA for _, t in heard), 5, "notification")
    finally:
        await listener.stop()
