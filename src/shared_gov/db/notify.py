"""Cross-process cache invalidation through PostgreSQL LISTEN/NOTIFY.

Changes to staff permissions, departments, issuers or policies commit a
``pg_notify('shared_gov_policy', '<town code>')`` in the same transaction.
Every worker process keeps one dedicated connection listening on that
channel and drops its cached decisions, permissions and issuer keys for the
town when the notification arrives — right after the commit, so a change
takes effect on the next request without a restart. The process that made
the change also invalidates locally before answering, so its own next
request never races the notification.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg

from shared_gov.logs import get_logger

CHANNEL = "shared_gov_policy"
HEARTBEAT_SECONDS = 10.0
log = get_logger(__name__)

Callback = Callable[[str], None]


class ChangeListener:
    """Holds the LISTEN connection and fans notifications out to callbacks."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._callbacks: list[Callback] = []
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def subscribe(self, callback: Callback) -> None:
        self._callbacks.append(callback)

    def publish_locally(self, tenant: str) -> None:
        """Run the callbacks now (the writer's own process)."""
        for callback in self._callbacks:
            callback(tenant)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shared-gov-change-listener")

    async def stop(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.publish_locally(payload)

    async def _run(self) -> None:
        # Reconnect with a pause if the database goes away; while disconnected
        # we cannot hear changes, so drop everything once we are back.
        while not self._closing:
            try:
                self._conn = await asyncpg.connect(self._url)
                # A connection the server closes (a restart, a terminated
                # session) wakes us at once: changes committed while we are
                # not listening are never delivered, so the sooner we are
                # back (dropping every cache) the shorter caches stay stale.
                lost = asyncio.Event()
                self._conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await self._conn.add_listener(CHANNEL, self._on_notify)
                self.publish_locally("*")
                # A connection dropped silently (NAT, firewall) still looks open:
                # ping it, and reconnect (which drops every cache) when it fails.
                while not self._conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), HEARTBEAT_SECONDS)
                    if self._conn.is_closed():
                        break
                    await asyncio.wait_for(self._conn.execute("SELECT 1"), HEARTBEAT_SECONDS)
                log.warning("notify.listener_down", error="ConnectionClosed")
            except asyncio.CancelledError:
                raise
            except (
                OSError,
                TimeoutError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
            ) as exc:
                log.warning("notify.listener_down", error=type(exc).__name__)
                if self._conn is not None:
                    self._conn.terminate()
            await asyncio.sleep(1.0)
