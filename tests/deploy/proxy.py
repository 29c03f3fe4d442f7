"""A TCP forwarder the test can cut: the database "goes away" without stopping it.

The service under test reaches PostgreSQL through this proxy. ``down()``
closes every forwarded connection and refuses new ones (they are accepted and
closed at once, like a server that resets); ``up()`` forwards again. It runs
in the test's event loop, so it keeps forwarding while the test awaits HTTP
calls.
"""

from __future__ import annotations

import asyncio
import contextlib


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to a TCP address or a Unix socket path."""

    def __init__(self, *, host: str | None = None, port: int = 5432, unix: str | None = None):
        self._target_host = host
        self._target_port = port
        self._unix = unix
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.forwarding = True

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        self.down()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def down(self) -> None:
        self.forwarding = False
        for writer in list(self._open):
            writer.close()
        self._open.clear()

    def up(self) -> None:
        self.forwarding = True

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._unix is not None:
            return await asyncio.open_unix_connection(self._unix)
        assert self._target_host is not None
        return await asyncio.open_connection(self._target_host, self._target_port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.forwarding:
            writer.close()
            return
        try:
            up_reader, up_writer = await self._connect()
        except OSError:
            writer.close()
            return
        self._open.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._open.discard(writer)
        self._open.discard(up_writer)
