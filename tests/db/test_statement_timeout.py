"""A stuck transaction cannot hold the service's requests hostage.

Another session (a forgotten psql, a runaway job) holds a resident's row lock.
A move on that resident waits for the lock; ``statement_timeout`` ends the
wait, the caller gets 503 problem+json with ``Retry-After`` within a bounded
time, and nothing of the move is written. Once the lock is gone the same move
succeeds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar

from shared_gov.app import create_app
from shared_gov.clock import today_jst
from shared_gov.settings import Settings
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, auth
from tests.factories import resident_body

TIMEOUT = 1.0


@pytest.fixture
async def impatient(settings: Settings, db: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a one-second statement timeout, on the test database."""
    tight = dataclasses.replace(settings, statement_timeout=TIMEOUT)
    assert tight.database_url
    app: Litestar = create_app(tight, tight.database_url)
    started, stop = asyncio.Event(), asyncio.Event()

    async def run_lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run_lifespan())
    await asyncio.wait_for(started.wait(), 30)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
            yield c
    finally:
        stop.set()
        await task


async def test_statement_waiting_behind_a_stuck_lock_gets_503_and_writes_nothing(
    impatient: httpx.AsyncClient, tokens: dict[str, str], settings: Settings
) -> None:
    base = f"/api/v1/tenants/{KAGA}/residents"
    headers = auth(tokens["kaga"])
    created = await impatient.post(base, json=resident_body(), headers=headers)
    assert created.status_code == 201, created.text
    rid, etag = created.json()["id"], created.headers["etag"]
    today = today_jst().isoformat()
    move = {
        "event": "move_within_town",
        "move_date": today,
        "notified_on": today,
        "address": "石川県加賀市大聖寺南町1",
    }
    names = tenant_names(KAGA, settings.role_prefix)
    assert settings.database_url
    blocker = await asyncpg.connect(settings.database_url)
    try:
        # The stuck transaction: holds the row lock and does nothing.
        await blocker.execute("BEGIN")
        await blocker.execute(
            f'SELECT 1 FROM "{names.schema}".residents WHERE id = $1 FOR UPDATE', rid
        )
        started = time.monotonic()
        blocked = await asyncio.wait_for(
            impatient.post(f"{base}/{rid}/moves", json=move, headers={**headers, "If-Match": etag}),
            timeout=TIMEOUT + 10,
        )
        waited = time.monotonic() - started
    finally:
        await blocker.execute("ROLLBACK")
        await blocker.close()

    assert blocked.status_code == 503, blocked.text
    assert blocked.headers["content-type"].startswith("application/problem+json")
    assert blocked.headers.get("retry-after")
    assert "in time" in blocked.json()["detail"]
    assert waited < TIMEOUT + 5
    # Nothing of the move was written: same version, same history.
    after = await impatient.get(f"{base}/{rid}", headers=headers)
    assert after.status_code == 200
    assert after.headers["etag"] == etag
    history = await impatient.get(f"{base}/{rid}/history", headers=headers)
    assert len(history.json()["entries"]) == 1

    # The lock is gone: the same request now succeeds.
    retried = await impatient.post(
        f"{base}/{rid}/moves", json=move, headers={**headers, "If-Match": etag}
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["address"] == move["address"]
