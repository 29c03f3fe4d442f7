"""The connection pool exhausted (issue #7, "Faults").

The service runs with two pooled connections and a one-second acquire
timeout. The test takes an ACCESS EXCLUSIVE lock on Kaga's residents table,
so the first reads block inside the database holding both connections; every
further caller must get 503 problem+json with Retry-After within about the
acquire timeout — not queue behind them — and the service must hold no more
connections than its pool allows (plus its fixed own: listener, sealer, audit
writer). Once the lock is released the blocked reads
finish (2xx) and the service answers normally again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import KAGA
from tests.faults.cluster import Service, Town, start_service
from tests.faults.load import BASE, Outcome, synthetic_resident

pytestmark = pytest.mark.faults

POOL_MAX = 2
ACQUIRE_TIMEOUT = 1
# The acquire timeout plus the request's own work, on a busy 2-core machine.
PROMPT = ACQUIRE_TIMEOUT + 1.5
CALLERS = 24


@pytest.fixture
async def small_pool(town: Town, tmp_path: Path) -> AsyncIterator[Service]:
    """A service of its own: two connections, a one-second acquire timeout."""
    env = town.env(
        SHARED_GOV_POOL_MIN="1",
        SHARED_GOV_POOL_MAX=str(POOL_MAX),
        SHARED_GOV_POOL_ACQUIRE_TIMEOUT_SECONDS=str(ACQUIRE_TIMEOUT),
    )
    server = start_service(town, tmp_path / "serve.log", env)
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()


async def _get(client: httpx.AsyncClient, headers: dict[str, str], rid: str, tag: str) -> Outcome:
    started = time.monotonic()
    outcome = Outcome("read", tag, 0.0, 0.0)
    try:
        r = await asyncio.wait_for(
            client.get(f"{BASE}/residents/{rid}", headers={**headers, "X-Request-ID": tag}), 30
        )
        outcome.status = r.status_code
        outcome.headers = {k.lower(): v for k, v in r.headers.items()}
        outcome.body = r.json()
    except TimeoutError:
        outcome.error = "no answer within 30 s"
    outcome.ended = time.monotonic() - started
    return outcome


async def _service_connections(conn: asyncpg.Connection, database: str, locker: int) -> int:
    """The service's connections to ``database`` (not the test's own two)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
        "AND backend_type = 'client backend' AND pid NOT IN (pg_backend_pid(), $2)",
        database,
        locker,
    )
    return count


async def test_pool_exhaustion_answers_503_promptly(town: Town, small_pool: Service) -> None:
    service = small_pool
    token = town.staff_token()
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "juki.registration"}
    limits = httpx.Limits(max_connections=CALLERS + 4)
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30, limits=limits) as client:
        created = await client.post(f"{BASE}/residents", json=synthetic_resident(), headers=headers)
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        # Warm: the town's keys and permissions are cached, so the blocked
        # reads below hold pooled connections and nothing else does.
        assert (await client.get(f"{BASE}/residents/{rid}", headers=headers)).status_code == 200

        locker = await asyncpg.connect(town.url, timeout=30)
        # Watched from a connection of its own: inside the locker's transaction
        # pg_stat_activity would show the snapshot of its first read.
        monitor = await asyncpg.connect(town.url, timeout=30)
        try:
            baseline = await _service_connections(monitor, town.database, locker.get_server_pid())
            tx = locker.transaction()
            await tx.start()
            await locker.execute(f"LOCK TABLE t_{KAGA}.residents IN ACCESS EXCLUSIVE MODE")
            # First the readers that will hold every pooled connection ...
            holders = [
                asyncio.create_task(_get(client, headers, rid, f"holder-{i}"))
                for i in range(POOL_MAX)
            ]
            await _until_waiting(monitor, POOL_MAX)
            # ... then a crowd that finds the pool empty.
            crowd = await asyncio.gather(
                *(_get(client, headers, rid, f"crowd-{i}") for i in range(CALLERS))
            )
            during = await _service_connections(monitor, town.database, locker.get_server_pid())
            await tx.rollback()
        finally:
            await locker.close()
            await monitor.close()
        held = await asyncio.gather(*holders)
        after = await client.get(f"{BASE}/residents/{rid}", headers=headers)

    fastest, slowest = min(o.ended for o in crowd), max(o.ended for o in crowd)
    print(
        f"pool of {POOL_MAX}, acquire timeout {ACQUIRE_TIMEOUT} s: {CALLERS} callers answered "
        f"{sorted({o.status for o in crowd})} in {fastest:.2f}-{slowest:.2f} s; "
        f"connections {baseline} before, {during} while exhausted"
    )
    for outcome in crowd:
        assert outcome.verdict == "unavailable", outcome.describe()
        assert outcome.ended <= PROMPT, outcome.describe()
    assert [o.status for o in held] == [200] * POOL_MAX, [o.describe() for o in held]
    assert after.status_code == 200, after.text
    # No pile-up in the database: the pool's connections plus the listener's,
    # the sealer's and the audit writer's own (one each per worker, never
    # taken from the pool: an exhausted pool must not starve the writer, nor
    # the writer a request), whatever the number of callers.
    assert during <= POOL_MAX + 3
    service.assert_running()


async def _until_waiting(conn: asyncpg.Connection, n: int, within: float = 10.0) -> None:
    """Until ``n`` backends wait for the test's lock."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        )
        if waiting >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {n} requests reached the lock in {within:.0f} s")
