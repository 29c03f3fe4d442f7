"""Fixtures and helpers of the event-feed tests: integration tokens and a feed reader.

Events only appear once every transaction older than theirs has ended (the
feed's watermark), and the test server may be shared with other runs, so
readers poll with a deadline instead of expecting an event on the first read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from shared_gov.domains.residents.events import Cursor
from tests.conftest import KAGA, KOMATSU, auth

DEADLINE_SECONDS = 30.0


@pytest.fixture(scope="session")
def feed_tokens(issuer: BuiltinIssuer) -> dict[str, str]:
    """Department systems of Kaga and Komatsu (role ``integration``)."""
    return {
        "kaga": issuer.mint(
            subject="kaigo-system", tenant=KAGA, department="kaigo", roles=["integration"]
        ),
        "komatsu": issuer.mint(
            subject="kaigo-system", tenant=KOMATSU, department="kaigo", roles=["integration"]
        ),
    }


async def read_feed(
    client: httpx.AsyncClient, token: str, code: str = KAGA, **params: Any
) -> httpx.Response:
    return await client.get(
        f"/api/v1/tenants/{code}/events",
        params={k: v for k, v in params.items() if v is not None},
        headers=auth(token, None),
    )


async def drain(
    client: httpx.AsyncClient, token: str, after: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every event served now after ``after``, and the cursor to continue from."""
    events: list[dict[str, Any]] = []
    while True:
        response = await read_feed(client, token, after=after, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        events.extend(body["events"])
        after = body["next"]
        if not body["more"]:
            assert after is not None
            return events, after


async def wait_for(
    client: httpx.AsyncClient,
    token: str,
    after: str | None,
    done: Callable[[list[dict[str, Any]]], object],
    **params: Any,
) -> tuple[list[dict[str, Any]], str]:
    """Read on from ``after`` until ``done(events so far)``; fails after the deadline."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    cursor = after
    while True:
        page, cursor = await drain(client, token, cursor, **params)
        seen.extend(page)
        if done(seen):
            return seen, cursor
        if time.monotonic() > deadline:
            raise AssertionError(f"events did not arrive in time; got {len(seen)}")
        await asyncio.sleep(0.05)


async def start(client: httpx.AsyncClient, token: str, db: Database, code: str = KAGA) -> str:
    """A cursor past every event committed before the call.

    Draining once is not enough when a transaction elsewhere on the server
    holds the watermark back: an event committed earlier could still appear
    after the cursor and land in the next test's pages. So: take a fresh
    transaction id X (every earlier commit had a smaller one) and read on
    until the feed's position has passed X.
    """
    async with db.pool.acquire() as conn:
        now = int(await conn.fetchval("SELECT pg_current_xact_id()"))
    deadline = time.monotonic() + DEADLINE_SECONDS
    cursor: str | None = None
    while True:
        _events, cursor = await drain(client, token, cursor, code=code)
        if Cursor.decode(cursor, code).xid >= now:
            return cursor
        if time.monotonic() > deadline:
            raise AssertionError("the feed's watermark did not move in time")
        await asyncio.sleep(0.05)


def of(events: list[dict[str, Any]], resident_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["resident_id"] == resident_id]
