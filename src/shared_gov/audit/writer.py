"""The process's audit writer: group commit for reads' and refusals' events.

A read used to write its event in its own transaction, which made every read
a write transaction with its own WAL flush (DESIGN.md, "Performance
posture"). Now the read's transaction is read-only, and its event is handed
to this writer (one per process and event loop, with a connection of its
own), which writes every pending event in ONE round trip — per town, the
town's role bound and one ``audit.record_many`` call with all of that town's
events, all towns in one transaction — and commits. Each waiting request
answers only then. If the batch fails (connection lost, database restarted,
statement timeout), every request in it fails with 503 and discloses
nothing: "no disclosure without a durable event" holds per request.

Why one transaction with a role switch per town rather than a function that
takes several towns: ``audit.record_many`` keeps ``audit.record``'s rule, the
town comes from the role the caller runs under, so a town's role can never
write into another town's log, and no new privileged entry point exists; the
switches cost no extra round trip (one simple query carries the whole batch).

Waiting for company. A batch's commit costs about the same for one event as
for ten (a round trip, a transaction, a WAL flush: bench/profile_pg.py), so
before taking a batch the writer waits while requests that may still add an
event are in flight — HTTP requests inside the app that are not yet waiting
for it — at most ``Settings.audit_linger`` (2 ms), woken by every event that
arrives and every request that ends. A lone request (one connection, a quiet
service) never waits: nothing else is in flight. Under load a commit carries
most of the worker's requests instead of two or three.

Chains. The writer MACs each event with its town's audit key
(:mod:`shared_gov.audit.mac`) and chains them per town: writer id (a random
UUID per writer and chain), sequence number from 0, and the previous event's
MAC inside the MAC. After a failed batch the writer starts a new chain (new
id): the failed batch may or may not have committed (a lost acknowledgement),
and a chain must never fork. ``audit verify`` checks that every chain runs
0, 1, 2, … with each link intact.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

from shared_gov import errors, metrics
from shared_gov.audit.recorder import Actor, AuditEvent, _payload, seal
from shared_gov.crypto.keyring import town_keys
from shared_gov.db import Database
from shared_gov.db.binding import TownBinding as TenantNames
from shared_gov.db.engine import dollar_quoted, server_settings
from shared_gov.logs import get_logger
from shared_gov.messages import audit as m
from shared_gov.messages import http as mh

__all__ = ["AuditWriter", "request_ended", "request_started", "running", "start", "stop"]

log = get_logger(__name__)

_JSON = msgspec.json.Encoder()


MAX_BATCH = 256
"""Events per batch at most (one statement's size)."""


class _InFlight:
    """HTTP requests inside the app right now, in this process (the middleware counts)."""

    __slots__ = ("count", "watchers")

    def __init__(self) -> None:
        self.count = 0
        self.watchers: list[asyncio.Future[None]] = []
        """Writers waiting for company, woken when a request ends."""


_IN_FLIGHT = _InFlight()


def request_started() -> None:
    """A request entered the app (``app.request_context_middleware``)."""
    _IN_FLIGHT.count += 1


def request_ended() -> None:
    """A request left the app: a waiting writer re-counts who may still come."""
    _IN_FLIGHT.count -= 1
    if _IN_FLIGHT.watchers:
        _wake_all(_IN_FLIGHT.watchers)


def _wake_all(watchers: list[asyncio.Future[None]]) -> None:
    for watcher in watchers:
        if not watcher.done():
            watcher.set_result(None)
    watchers.clear()


def _wake(watcher: asyncio.Future[None]) -> None:
    if not watcher.done():
        watcher.set_result(None)


@dataclass(slots=True)
class _Pending:
    names: TenantNames
    key: bytes | None
    payload: dict[str, Any]
    done: asyncio.Future[None]


class AuditWriter:
    """Group-commits audit events on a connection of its own (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._loop = asyncio.get_running_loop()
        self._conn: asyncpg.Connection | None = None
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        self._linger = db.settings.audit_linger
        self.batches = 0
        """Batches committed (for tests and benchmarks)."""
        self._new_chain()

    def _new_chain(self) -> None:
        self.writer_id = str(uuid.uuid4())
        # Per town and audit key: a town onboarded again (a new incarnation,
        # a new log) has a new key, and its chain starts from 0.
        self._chains: dict[tuple[str, bytes | None], tuple[int, bytes | None]] = {}

    @property
    def backend_pid(self) -> int | None:
        """The writer connection's server process (fault tests terminate it)."""
        conn = self._conn
        return None if conn is None or conn.is_closed() else conn.get_server_pid()

    async def submit(self, names: TenantNames, actor: Actor, event: AuditEvent) -> None:
        """Write ``event`` in town ``names``'s log; return once it has committed.

        Raises a 503 :class:`~shared_gov.errors.DomainError` if its batch failed.
        """
        keys = await town_keys(self._db, names.code)
        payload = _payload(lambda rid: keys.index("audit_subject", rid), actor, event)
        if self._closed:
            raise errors.unavailable(mh.SHUTTING_DOWN)
        done: asyncio.Future[None] = self._loop.create_future()
        self._pending.append(_Pending(names, keys.audit_mac, payload, done))
        if _IN_FLIGHT.watchers:
            _wake_all(_IN_FLIGHT.watchers)
        if self._flusher is None or self._flusher.done():
            self._flusher = self._loop.create_task(self._flush(), name="audit-writer")
        # A request that is cancelled (client gone) cancels only its own
        # future, never the batch the others wait for (the flusher task):
        # the flusher skips futures already done. No shield needed.
        await done

    async def _gather(self) -> None:
        """Wait while requests in flight may still add events (module docstring)."""
        deadline = self._loop.time() + self._linger
        while (
            self._pending
            and len(self._pending) < min(_IN_FLIGHT.count, MAX_BATCH)
            and not self._closed
        ):
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return
            watcher: asyncio.Future[None] = self._loop.create_future()
            _IN_FLIGHT.watchers.append(watcher)
            timer = self._loop.call_later(remaining, _wake, watcher)
            try:
                await watcher
            finally:
                timer.cancel()
                if not watcher.done():  # cancelled: leave nothing behind
                    _IN_FLIGHT.watchers.remove(watcher)

    async def _flush(self) -> None:
        while self._pending:
            if self._linger > 0:
                await self._gather()
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self._write(batch)
            except Exception as exc:
                log.warning("audit.batch_failed", events=len(batch), error=type(exc).__name__)
                self._new_chain()
                await self._drop_connection()
                detail = (
                    m.LOG_NOT_WRITTEN
                    if _rolled_back(exc)
                    # The batch's COMMIT may have been applied before the
                    # connection went: its events may be in the log (never
                    # the reverse: no answer without its event).
                    else m.DB_GONE_DURING_COMMIT
                )
                for item in batch:
                    if not item.done.done():
                        failure = errors.unavailable(detail)
                        item.done.set_exception(failure)
                        # Retrieved by the waiting request; silence "never retrieved"
                        # for one that was cancelled meanwhile.
                        item.done.exception()
                continue
            self.batches += 1
            metrics.AUDIT_BATCH_EVENTS.observe(len(batch))
            for item in batch:
                if not item.done.done():
                    item.done.set_result(None)

    def _statement(self, batch: list[_Pending]) -> str:
        by_town: dict[str, list[_Pending]] = {}
        for item in batch:
            by_town.setdefault(item.names.code, []).append(item)
        parts = ["BEGIN"]
        for code, items in by_town.items():
            for item in items:
                chain = (code, item.key)
                wseq, prev = self._chains.get(chain, (0, None))
                mac = seal(item.payload, code, item.key, self.writer_id, wseq, prev)
                if mac is not None:
                    self._chains[chain] = (wseq + 1, mac)
            # The role is a checked identifier (towns.names: <prefix>_t_[0-9]{6}),
            # safe to inline as binding_sql does.
            parts.append(f"SELECT set_config('role', '{items[0].names.role}', true)")
            events = _JSON.encode([item.payload for item in items]).decode()
            parts.append("SELECT audit.record_many(" + dollar_quoted(events) + "::jsonb)")
        parts.append("COMMIT")
        return "; ".join(parts)

    async def _write(self, batch: list[_Pending]) -> None:
        settings = self._db.settings
        conn = await self._connection()
        try:
            await conn.execute(self._statement(batch), timeout=settings.pool_acquire_timeout)
        except BaseException:
            # Whatever happened, this connection's transaction state is unknown.
            await self._drop_connection()
            raise

    async def _connection(self) -> asyncpg.Connection:
        conn = self._conn
        if conn is not None and not conn.is_closed():
            return conn
        settings = self._db.settings
        timeout = settings.pool_acquire_timeout
        self._conn = await asyncpg.connect(
            self._db.url,
            timeout=timeout,
            server_settings={
                **server_settings(settings),
                # The server gives up on a batch before this process does
                # (statement_timeout below the client's timeout), and notices
                # within a second when this side is gone: a batch whose
                # requests were answered 503 must not commit afterwards,
                # e.g. once a lock it waited for is released.
                "statement_timeout": str(int(max(0.5, timeout - 0.5) * 1000)),
                "client_connection_check_interval": "1000",
            },
            statement_cache_size=0,
        )
        return self._conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    async def close(self) -> None:
        """Finish the pending batches, then close the connection."""
        self._closed = True
        flusher = self._flusher
        if flusher is not None:
            await asyncio.gather(flusher, return_exceptions=True)
        await self._drop_connection()


def _rolled_back(exc: BaseException) -> bool:
    """The server reported the batch failed before its COMMIT (an error in a
    statement, a statement timeout): nothing of it was committed. A lost
    connection, a terminated or crashed backend: unknown."""
    if isinstance(exc, asyncpg.QueryCanceledError):
        return True
    return isinstance(exc, asyncpg.PostgresError) and not isinstance(
        exc, (asyncpg.exceptions.OperatorInterventionError, asyncpg.PostgresConnectionError)
    )


_WRITERS: weakref.WeakKeyDictionary[Database, AuditWriter] = weakref.WeakKeyDictionary()


def start(db: Database) -> AuditWriter:
    """Run an audit writer for ``db`` on the current event loop (the app's lifespan)."""
    writer = _WRITERS[db] = AuditWriter(db)
    return writer


def running(db: Database) -> AuditWriter | None:
    """The writer of ``db`` on the current event loop, if one was started."""
    writer = _WRITERS.get(db)
    if writer is None or writer._closed:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return writer if writer._loop is loop else None


async def stop(db: Database) -> None:
    writer = _WRITERS.pop(db, None)
    if writer is not None:
        await writer.close()
