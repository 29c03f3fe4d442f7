"""The connection fails right after COMMIT was sent: did the change commit?

A network or a proxy can lose the server's answer to COMMIT after the server
committed. A write answered 503 although it committed would have the caller
retry into a 412 (the version moved) or a duplicate. ``Database`` asks a new
connection how the transaction ended (``pg_xact_status``) and treats a
commit as success. Reproduced with a proxy that forwards the COMMIT to the
server and then cuts the client off without passing the answer on; and, for
the opposite case, one that cuts the client off before the COMMIT reaches
the server (the transaction never commits).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit, urlunsplit

import asyncpg
import pytest

from shared_gov import errors
from shared_gov.db import Database
from shared_gov.settings import Settings
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA

pytestmark = pytest.mark.faults

COMMIT = b"COMMIT\x00"  # the end of the simple query that carries COMMIT


class CommitCuttingProxy:
    """127.0.0.1:<port> → the test database; cuts the client off at COMMIT.

    ``forward_commit`` True: the COMMIT reaches the server, its answer never
    reaches the client. False: the COMMIT is dropped and both sides are
    closed, so the server rolls the transaction back.
    """

    def __init__(self, database_url: str, forward_commit: bool) -> None:
        self._url = database_url
        self.forward_commit = forward_commit
        self.cut = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    def url(self) -> str:
        """The database URL, pointed at the proxy."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self._url)
        user = parts.username or "postgres"
        return urlunsplit(("postgresql", f"{user}@127.0.0.1:{port}", parts.path, "", ""))

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        parts = urlsplit(self._url)
        host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
        port = parts.port or 5432
        if host.startswith("/"):  # the embedded server's Unix socket
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await self._upstream()
        downstream_open = True

        async def server_to_client() -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await up_reader.read(65536):
                    if downstream_open:
                        writer.write(data)
                        await writer.drain()
                writer.close()  # the server hung up: so does the proxy

        relay = asyncio.create_task(server_to_client())
        try:
            while data := await reader.read(65536):
                if COMMIT in data and not self.cut.is_set():
                    self.cut.set()
                    downstream_open = False
                    if self.forward_commit:
                        up_writer.write(data)
                        await up_writer.drain()
                        # Let the server commit (its answer is swallowed).
                        await asyncio.sleep(0.3)
                    writer.close()
                    if not self.forward_commit:
                        up_writer.close()
                    break
                up_writer.write(data)
                await up_writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            await asyncio.sleep(0.5)
            relay.cancel()
            with contextlib.suppress(Exception):
                up_writer.close()
            with contextlib.suppress(Exception):
                writer.close()
            self._tasks.discard(task)


@contextlib.asynccontextmanager
async def through_proxy(
    settings: Settings, db: Database, forward_commit: bool
) -> AsyncIterator[tuple[Database, CommitCuttingProxy]]:
    assert settings.database_url
    proxy = CommitCuttingProxy(settings.database_url, forward_commit)
    await proxy.start()
    cut = Database(
        proxy.url(), dataclasses.replace(settings, pool_min=1, pool_max=1), keyring=db.keyring
    )
    await cut.open()
    try:
        yield cut, proxy
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(cut.close(), 5)
        await proxy.stop()


async def _household_exists(db: Database, household_no: str) -> bool:
    async with db.tenant(tenant_names(KAGA, db.settings.role_prefix)) as uow:
        found = await uow.fetchval(
            "SELECT count(*) FROM households WHERE household_no = $1", household_no
        )
    return bool(found)


def _new_household_no() -> str:
    return "test-ack-" + secrets.token_hex(6)


async def test_write_whose_commit_answer_is_lost_succeeds_when_it_committed(
    settings: Settings, db: Database
) -> None:
    household_no = _new_household_no()
    async with through_proxy(settings, db, forward_commit=True) as (cut, proxy):
        names = tenant_names(KAGA, settings.role_prefix)
        async with asyncio.timeout(20):
            async with cut.tenant(names) as uow:
                await uow.execute("INSERT INTO households (household_no) VALUES ($1)", household_no)
        assert proxy.cut.is_set(), "the proxy never saw the COMMIT"
    # No exception: the unit of work learnt that its transaction committed.
    assert await _household_exists(db, household_no)


async def test_a_write_that_read_its_own_transaction_id_succeeds_when_it_committed(
    settings: Settings, db: Database
) -> None:
    """``TenantUnitOfWork.written``: a write whose own statement read its transaction
    id and the checkpoint (the invoice intake's) sends COMMIT without asking for
    them again, and a lost answer is still settled: it committed, so it succeeds."""
    household_no = _new_household_no()
    async with through_proxy(settings, db, forward_commit=True) as (cut, proxy):
        names = tenant_names(KAGA, settings.role_prefix)
        async with asyncio.timeout(20):
            async with cut.tenant(names) as uow:
                row = await uow.fetchrow(
                    "WITH h AS (INSERT INTO households (household_no) VALUES ($1) RETURNING 1) "
                    "SELECT pg_current_xact_id()::text AS xid, "
                    "(SELECT checkpoint_lsn::text FROM pg_control_checkpoint()) AS checkpoint "
                    "FROM h",
                    household_no,
                )
                assert row is not None
                uow.written(row["xid"], row["checkpoint"])
        assert proxy.cut.is_set(), "the proxy never saw the COMMIT"
    assert await _household_exists(db, household_no)


async def test_write_whose_commit_never_arrived_is_503_and_absent(
    settings: Settings, db: Database
) -> None:
    household_no = _new_household_no()
    async with through_proxy(settings, db, forward_commit=False) as (cut, proxy):
        names = tenant_names(KAGA, settings.role_prefix)
        with pytest.raises(errors.DomainError) as refused:
            async with asyncio.timeout(20):
                async with cut.tenant(names) as uow:
                    await uow.execute(
                        "INSERT INTO households (household_no) VALUES ($1)", household_no
                    )
        assert proxy.cut.is_set()
    assert refused.value.status == 503
    # The server saw the client go away mid-transaction and rolled it back.
    for _ in range(50):
        if not await _household_exists(db, household_no):
            break
        await asyncio.sleep(0.1)
    assert not await _household_exists(db, household_no)


async def test_read_whose_commit_answer_is_lost_is_503(settings: Settings, db: Database) -> None:
    # A read asks for no transaction id (no extra round trip on the hot path):
    # a lost answer stays a 503, nothing changed.
    async with through_proxy(settings, db, forward_commit=True) as (cut, proxy):
        names = tenant_names(KAGA, settings.role_prefix)
        with pytest.raises(errors.DomainError) as refused:
            async with asyncio.timeout(20):
                async with cut.tenant(names) as uow:
                    await uow.fetchval("SELECT count(*) FROM households")
        assert proxy.cut.is_set()
    assert refused.value.status == 503


async def test_asyncpg_raises_an_unavailable_error_when_cut(
    settings: Settings, db: Database
) -> None:
    # The premise of the tests above: without the status check, the cut is
    # an error the service answers 503 (not a hang, not a 500).
    async with through_proxy(settings, db, forward_commit=True) as (cut, proxy):
        conn = await cut.pool.acquire()
        try:
            await conn.execute("BEGIN")
            with pytest.raises((OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)):
                async with asyncio.timeout(20):
                    await conn.execute("COMMIT")
        finally:
            with contextlib.suppress(Exception):
                await cut.pool.release(conn)
        assert proxy.cut.is_set()


async def test_a_committed_id_is_not_trusted_across_a_checkpoint(db: Database) -> None:
    """After a crash, crash recovery checkpoints and may hand an unflushed
    transaction id out again; "committed" is then another transaction's.
    The answer is trusted only under the same latest checkpoint."""
    conn = await asyncpg.connect(db.url)
    try:
        async with conn.transaction():
            xid = await conn.fetchval("SELECT pg_current_xact_id()::text")
            await conn.execute("CREATE TEMP TABLE ack_probe (x int)")
        before = await conn.fetchval("SELECT checkpoint_lsn::text FROM pg_control_checkpoint()")
        assert await db._committed(xid, before)
        await conn.execute("CHECKPOINT")  # as crash recovery would
        assert not await db._committed(xid, before)
    finally:
        await conn.close()
