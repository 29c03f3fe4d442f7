"""The console's shared store (web/store.py, catalog c0017): Litestar's store
protocol over PostgreSQL, so that every host of the service knows every
session; keys kept hashed; expiry by the database's clock; sign-out on one
host ends the session on all."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_gov.app import create_app
from shared_gov.db import Database
from shared_gov.settings import Settings
from shared_gov.web.store import DatabaseStore, StorePool
from tests.conftest import KAGA

from .flows import csrf_of, sign_in


@pytest.fixture
async def pool(db: Database) -> AsyncIterator[StorePool]:
    shared = StorePool(db.url)
    yield shared
    await shared.close()


async def _rows(db: Database, namespace: str) -> int:
    async with db.catalog() as conn:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM catalog.console_store WHERE namespace = $1", namespace
        )
    return n


async def test_the_store_keeps_gets_renews_and_deletes(pool: StorePool, db: Database) -> None:
    store = DatabaseStore(pool, "test-basic")
    await store.delete_all()
    assert await store.get("k") is None
    await store.set("k", b"value", expires_in=60)
    assert await store.get("k") == b"value"
    assert await store.exists("k")
    remaining = await store.expires_in("k")
    assert remaining is not None
    assert 55 <= remaining <= 60
    await store.set("k", "replaced")  # no expiry
    assert await store.get("k") == b"replaced"
    assert await store.expires_in("k") is None
    # Renewing a value without expiry is a no-op (the protocol's rule).
    assert await store.get("k", renew_for=5) == b"replaced"
    assert await store.expires_in("k") is None
    await store.set("short", b"x", expires_in=5)
    assert await store.get("short", renew_for=600) == b"x"
    renewed = await store.expires_in("short")
    assert renewed is not None
    assert renewed > 500
    await store.delete("k")
    assert await store.get("k") is None
    assert not await store.exists("k")
    await store.delete("never-there")  # no error


async def test_namespaces_are_apart_and_delete_all_takes_children(pool: StorePool) -> None:
    parent = DatabaseStore(pool, "test-ns")
    child = parent.with_namespace("child")
    other = DatabaseStore(pool, "test-ns-other")
    for store in (parent, child, other):
        await store.set("same", store.namespace.encode())
    assert await parent.get("same") == b"test-ns"
    assert await child.get("same") == b"test-ns/child"
    await parent.delete_all()
    assert await parent.get("same") is None
    assert await child.get("same") is None
    # A namespace that merely starts with the same letters is another store.
    assert await other.get("same") == b"test-ns-other"
    await other.delete_all()


async def test_keys_are_kept_hashed(pool: StorePool, db: Database) -> None:
    store = DatabaseStore(pool, "test-hash")
    secret_key = "a-session-id-that-must-not-be-stored"
    await store.set(secret_key, b"data", expires_in=60)
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT key_digest FROM catalog.console_store WHERE namespace = 'test-hash'"
        )
    assert [bytes(r["key_digest"]) for r in rows] == [hashlib.sha256(secret_key.encode()).digest()]
    await store.delete_all()


async def test_expired_values_are_not_returned_and_are_gone(pool: StorePool, db: Database) -> None:
    store = DatabaseStore(pool, "test-expiry")
    await store.delete_all()
    await store.set("soon", b"x", expires_in=1)
    await store.set("later", b"y", expires_in=600)
    await store.set("swept", b"z", expires_in=1)
    await asyncio.sleep(1.3)
    assert not await store.exists("soon")
    assert await store.expires_in("soon") is None
    assert await store.get("soon") is None
    assert await store.get("soon", renew_for=600) is None  # not brought back
    # Reading an expired value deletes it; the sweep takes the others.
    assert await _rows(db, "test-expiry") == 2
    assert await store.purge() >= 1
    assert await _rows(db, "test-expiry") == 1
    assert await store.get("later") == b"y"
    await store.delete_all()


@asynccontextmanager
async def _running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another instance of the service (another host: its own data directory)."""
    assert settings.database_url
    app = create_app(settings, settings.database_url)
    started, stop = asyncio.Event(), asyncio.Event()

    async def lifespan() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(lifespan())
    await started.wait()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
            yield c
    finally:
        stop.set()
        await task


async def test_a_session_started_on_one_host_is_valid_on_another(
    browser: httpx.AsyncClient, settings: Settings, db: Database, tmp_path: Path, client: Any
) -> None:
    done = await sign_in(browser, KAGA, "audit-0001")
    assert done.status_code in (302, 303)
    session = browser.cookies.get("sg_console", domain="testserver.local", path="/console")
    assert session
    digest = hashlib.sha256(session.encode()).digest()
    async with db.catalog() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM catalog.console_store "
            "WHERE namespace = 'console-sessions' AND key_digest = $1",
            digest,
        )
    assert stored == 1
    other_host = dataclasses.replace(settings, data_dir=tmp_path / "host-b", access_log=False)
    async with _running(other_host) as host_b:
        # Only the session cookie travels (host B has its own CSRF cookie).
        host_b.cookies.set("sg_console", session, domain="testserver.local", path="/console")
        home = await host_b.get("/console/home")
        assert home.status_code == 200, home.text
        assert "audit-0001" in home.text
        log = await host_b.get(f"/console/towns/{KAGA}/audit/")
        assert log.status_code == 200
        # Signing out on host B ends the session everywhere.
        out = await host_b.post("/console/sign-out", data={"_csrf_token": csrf_of(home.text)})
        assert out.status_code in (302, 303), out.text
    async with db.catalog() as conn:
        left = await conn.fetchval(
            "SELECT count(*) FROM catalog.console_store WHERE key_digest = $1", digest
        )
    assert left == 0
    again = await browser.get("/console/home")
    assert again.status_code in (302, 303)
    assert again.headers["location"].startswith("/console/")


async def _expiry(db: Database, session: str) -> Any:
    async with db.catalog() as conn:
        return await conn.fetchval(
            "SELECT expires_at FROM catalog.console_store "
            "WHERE namespace = 'console-sessions' AND key_digest = $1",
            hashlib.sha256(session.encode()).digest(),
        )


async def test_only_sessions_worth_keeping_are_written(
    browser: httpx.AsyncClient, db: Database
) -> None:
    """The store is the shared database: an anonymous page leaves no row and no
    cookie, a static file does not write the session again, a page does."""
    async with db.catalog() as conn:
        before = await conn.fetchval(
            "SELECT count(*) FROM catalog.console_store WHERE namespace = 'console-sessions'"
        )
    anonymous = await browser.get("/console/")
    assert anonymous.status_code == 200
    assert not any(c.startswith("sg_console=") for c in anonymous.headers.get_list("set-cookie"))
    # A cookie that names no session is cleared, not stored.
    browser.cookies.set("sg_console", "e" * 64, domain="testserver.local", path="/console")
    planted = await browser.get("/console/")
    assert any(c.startswith("sg_console=null") for c in planted.headers.get_list("set-cookie"))
    async with db.catalog() as conn:
        after = await conn.fetchval(
            "SELECT count(*) FROM catalog.console_store WHERE namespace = 'console-sessions'"
        )
    assert after <= before
    browser.cookies.delete("sg_console", domain="testserver.local", path="/console")
    await sign_in(browser, KAGA, "audit-0001")
    home = await browser.get("/console/home")
    session = browser.cookies.get("sg_console", domain="testserver.local", path="/console")
    assert session
    first = await _expiry(db, session)
    css = re.search(r'href="(/console/static/[^"]+\.css)"', home.text)
    assert css
    await asyncio.sleep(0.05)
    assert (await browser.get(css.group(1))).status_code == 200
    assert await _expiry(db, session) == first  # not written again
    await browser.get("/console/home")
    assert await _expiry(db, session) > first  # a page is a use: written
