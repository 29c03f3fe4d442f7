"""The server ends a session between two statements of a unit of work.

Found by the restart test (about one run in four answered a few requests
500): a fast shutdown sends each session a FATAL "terminating connection due
to administrator command" and then closes it. A unit of work that is between
statements (idle in its transaction) receives the error unsolicited; asyncpg
puts the connection in an error state, and if the request's next statement
comes before the end of the stream is read, asyncpg raises
``InternalClientError`` ("cannot switch to state …; another operation is in
progress") — neither a ``PostgresConnectionError`` nor an ``InterfaceError``,
so the service answered 500 instead of 503, and the rollback and the pool's
reset raised it again.

Reproduced deterministically here: the connection goes through a proxy that
passes the server's FATAL on at once and its end of stream one second later,
as a network can (the FIN may trail the data).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared_gov.crypto.keyring import keyring_from_settings
from shared_gov.db import Database
from shared_gov.db.engine import UNAVAILABLE_ERRORS
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA
from tests.faults.cluster import Town

pytestmark = pytest.mark.faults

EOF_LAG = 2.0


class LaggingEofProxy:
    """127.0.0.1:<port> → the cluster's Unix socket; the server's end of stream
    reaches the client ``lag`` seconds after its last bytes."""

    def __init__(self, unix: str, lag: float) -> None:
        self._unix = unix
        self._lag = lag
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(self._unix)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, lag: float) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                await asyncio.sleep(lag)
            dst.close()

        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await asyncio.gather(pipe(reader, up_writer, 0), pipe(up_reader, writer, self._lag))
        finally:
            self._tasks.discard(task)


@pytest.fixture
async def lagging_db(town: Town) -> AsyncIterator[Database]:
    info = town.cluster.server.get_postmaster_info()
    proxy = LaggingEofProxy(f"{town.cluster.socket_dir}/.s.PGSQL.{info.port or 5432}", EOF_LAG)
    await proxy.start()
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/{town.database}"
    settings = dataclasses.replace(town.settings, pool_min=1, pool_max=2)
    db = Database(url, settings, keyring_from_settings(settings))
    await db.open()
    try:
        yield db
    finally:
        await db.close()
        await proxy.stop()


async def test_a_session_ended_between_statements_is_unavailable(
    town: Town, lagging_db: Database
) -> None:
    names = tenant_names(KAGA, town.settings.role_prefix)
    admin = await asyncpg.connect(town.url, timeout=10)
    try:
        with pytest.raises(UNAVAILABLE_ERRORS):
            async with lagging_db.tenant(names) as uow:
                pid = await uow.fetchval("SELECT pg_backend_pid()")
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
                # The backend has sent its FATAL and exited; the proxy passed
                # the FATAL on and holds the end of stream back.
                deadline = time.monotonic() + 10
                while await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
                ):
                    assert time.monotonic() < deadline, "the backend did not exit"
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.1)
                await uow.fetchval("SELECT count(*) FROM residents")
    finally:
        await admin.close()
    # The pool let the broken connection go: the next unit of work is fine.
    async with lagging_db.tenant(names) as uow:
        assert await uow.fetchval("SELECT 1") == 1
