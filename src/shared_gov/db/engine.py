"""The process's database: the connection pool, and the doors to tenant and catalog tables.

:meth:`Database.tenant` is the ONE way code reaches tenant tables. It takes a
pooled connection and, in a single round trip, opens a transaction and binds
it to the tenant::

    BEGIN; SELECT set_config('search_path', 't_172065', true),
                  set_config('role', 'sg_t_172065', true)

Both settings are transaction-local (``is_local = true``), so they vanish at
COMMIT/ROLLBACK and can never leak to the next user of the pooled connection
(the most reported bug of django-tenants and apartment). The tenant role has
privileges on its own schema only, so even a faulty query cannot read another
town: PostgreSQL refuses it. Because nothing survives the transaction we skip
asyncpg's ``RESET ALL`` on release (measured +15–25 % in DESIGN.md); asyncpg
still rolls back a transaction left open.

The hot path runs hand-written SQL over asyncpg; SQLAlchemy's engine is used
only by migrations and provisioning, where Alembic needs it.

The binding SQL is in :mod:`.binding`, the unit of work in :mod:`.unit_of_work`;
the town's keys come from the :class:`~shared_gov.db.keys.KeySource` the
database is given (the db layer knows no key).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared_gov import errors
from shared_gov.db.binding import (
    CHECK_FAILED,
    BindingCheckFailed,
    TownBinding,
    binding_sql,
    commit_sql,
    dollar_quoted,
    read_only_binding_sql,
)
from shared_gov.db.keys import KeySource
from shared_gov.db.unit_of_work import PairedUnitOfWork, TenantUnitOfWork, _Binding, _Transaction
from shared_gov.db.urls import plain_url, sqlalchemy_url
from shared_gov.logs import get_logger
from shared_gov.messages import http as m
from shared_gov.settings import Settings

# Re-exported for the tests and benches that import them from here.
__all__ = [
    "UNAVAILABLE_ERRORS",
    "BindingCheckFailed",
    "Database",
    "PairedUnitOfWork",
    "TenantUnitOfWork",
    "TownConnection",
    "binding_sql",
    "commit_sql",
    "dollar_quoted",
    "server_settings",
    "sqlalchemy_engine",
]

log = get_logger(__name__)

# Errors that mean "the database is not there right now", as opposed to a bug
# or bad input. They become 503 with Retry-After, never a 500.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    # A session the server ends between two statements (a fast shutdown, a
    # terminated backend) leaves asyncpg holding an unsolicited FATAL; the next
    # statement raises this, not a connection error, until the end of stream
    # is read. The pool drops such a connection; a retry gets a fresh one.
    asyncpg.InternalClientError,
    # statement_timeout (Settings.statement_timeout) ended a statement that
    # waited or ran too long, e.g. behind a lock a stuck transaction holds.
    asyncpg.QueryCanceledError,
)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing to reset, our settings are transaction-local."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class TownConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection that remembers which towns it has served.

    Its backend keeps catalog, relation and plan caches for every town it
    has served (~110 KB per town, never given back): the pool retires the
    connection once it has served ``Settings.pool_max_towns`` towns, which
    bounds that memory without discarding warm caches while a deployment's
    towns all fit (bench/README.md, "1,741 towns").
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.towns: set[str] = set()


def sqlalchemy_engine(url: str, **options: Any) -> AsyncEngine:
    """SQLAlchemy async engine whose connections asyncpg opens from the URL itself.

    SQLAlchemy's asyncpg dialect turns query parameters into keyword arguments,
    and libpq's (``sslmode``, ``sslrootcert``, ``host=/socket/dir``) are not
    asyncpg's; asyncpg's own DSN parser understands them, so the pool and the
    migrations accept the same URL.
    """
    dsn = plain_url(url)

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn)

    parts = sqlalchemy_url(url).split("?", 1)[0]
    return create_async_engine(parts, async_creator=connect, **options)


def server_settings(settings: Settings) -> dict[str, str]:
    """Session settings of every pooled connection."""
    if settings.statement_timeout <= 0:
        return {}
    return {"statement_timeout": str(int(settings.statement_timeout * 1000))}


class Database:
    """The process's database handles: an asyncpg pool and, lazily, an engine."""

    def __init__(self, url: str, settings: Settings, keyring: KeySource) -> None:
        self.url = plain_url(url)
        self.settings = settings
        self._pool: asyncpg.Pool | None = None
        self._engine: AsyncEngine | None = None
        self.keyring = keyring
        """Where the towns' keys come from (``crypto.keyring.Keyring``)."""

    async def open(self) -> None:
        s = self.settings
        self._pool = await asyncpg.create_pool(
            self.url,
            min_size=s.pool_min,
            max_size=s.pool_max,
            # A backstop: connections are retired by the towns they served
            # (TownConnection), which is what bounds a backend's memory.
            max_queries=s.pool_max_queries,
            # Room for every town's own statements (town_plan) so that the
            # hot reads are not evicted between two uses; asyncpg's default
            # is 100.
            statement_cache_size=s.statement_cache_size,
            max_inactive_connection_lifetime=s.pool_max_inactive,
            init=_init_connection,
            reset=_keep_session,
            connection_class=TownConnection,
            # Connecting is bounded like acquiring (asyncpg's default is 60 s).
            timeout=s.pool_acquire_timeout,
            server_settings=server_settings(s),
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("Database.open() was not awaited")
        return self._pool

    def engine(self) -> AsyncEngine:
        """SQLAlchemy engine for migrations and provisioning (small pool)."""
        if self._engine is None:
            self._engine = sqlalchemy_engine(
                self.url,
                pool_size=max(2, self.settings.migrate_concurrency),
                max_overflow=0,
                pool_pre_ping=True,
            )
        return self._engine

    @asynccontextmanager
    async def _acquire(self, *towns: str) -> AsyncIterator[asyncpg.Connection]:
        pool = self.pool
        # With an open idle connection in the pool, acquiring does not wait,
        # so the acquire timeout, which asyncpg enforces with a timed wait
        # costing several percent of a resident GET's Python time, is only
        # paid when there may be a wait. (Nothing can take that connection
        # between the check and the acquire: no await lies between them. Should
        # the pool hand out a slot that must connect first, the pool's
        # connect timeout, set to the same bound in open(), still applies.)
        timeout = None if pool.get_idle_size() else self.settings.pool_acquire_timeout
        try:
            conn = await pool.acquire(timeout=timeout)
        except UNAVAILABLE_ERRORS as exc:
            log.warning("db.unavailable", error=type(exc).__name__)
            raise errors.unavailable(m.DB_BUSY) from exc
        served: set[str] = conn.towns
        served.update(towns)
        try:
            yield conn
        finally:
            if len(served) > self.settings.pool_max_towns and not conn.is_closed():
                # Retire it (see TownConnection); the pool opens a fresh one
                # when it next needs one.
                with contextlib.suppress(*UNAVAILABLE_ERRORS):
                    await conn.close(timeout=self.settings.pool_acquire_timeout)
            await pool.release(conn)

    async def town_keys(self, tenant: str, held: asyncpg.Connection | None = None) -> object:
        """The town's keys, from the key source (cached there; read from the catalog).

        Raises :class:`LookupError` when the catalog holds no (complete) keys
        for the town (offboarded, or never set up); an unreachable key
        provider is the key source's 503. ``held``: the pooled connection the
        caller already holds, read on when the keys are not cached (never
        hold two pooled connections at once).
        """
        return await self.keyring.town_keys(self.catalog, tenant, held)

    @asynccontextmanager
    async def tenant(
        self, names: TownBinding, *, exclusive: bool = False, read_only: bool = False
    ) -> AsyncIterator[TenantUnitOfWork]:
        """Open a transaction bound to ``names``; commit on success, roll back on error.

        ``exclusive``: hold the town's key lock exclusively rather than shared
        (every writing unit of work holds it shared): the binding waits until
        every other unit of work of the town has ended and keeps new ones
        waiting until this one ends. For the key jobs' last sweep before they
        retire a key (``shared_gov.keys``): no transaction that may still write
        with the old key is then in flight. Short transactions only: the
        town's requests wait for it.

        ``read_only``: a ``READ ONLY`` transaction, begun and bound with its
        first statement; a read that is one call of a town read function
        sends neither (:meth:`TenantUnitOfWork.call_read`).
        """
        # Keys first, on their own connection (cached after the first request):
        # never hold two pooled connections at once.
        try:
            keys = await self.town_keys(names.code)
        except LookupError as exc:
            # No keys: the town was offboarded (keys shredded) or never set up.
            raise errors.not_found() from exc
        async with self._acquire(names.code) as conn:
            tx = _Transaction()
            if read_only:

                async def begin() -> None:
                    await _bind(conn, read_only_binding_sql(names))

                tx.begin = begin
            else:
                await _bind(conn, binding_sql(names, exclusive=exclusive))
            try:
                yield TenantUnitOfWork(conn, names, keys, tx, read_only)
            except BaseException:
                if tx.begin is None:
                    await _rollback_quietly(conn)
                raise
            await self._commit(conn, tx)

    @asynccontextmanager
    async def pair(
        self,
        first: TownBinding,
        second: TownBinding,
        extra_locks: Sequence[str] = (),
        extra_calls: Sequence[str] = (),
    ) -> AsyncIterator[tuple[PairedUnitOfWork, PairedUnitOfWork]]:
        """One transaction for work on two towns; starts bound to ``first``.

        Commit on success, roll back on error: both towns' changes (and audit
        events) land together or not at all. A failed ``extra_calls`` check
        raises :class:`BindingCheckFailed` before anything is yielded.
        """
        try:
            first_keys = await self.town_keys(first.code)
            second_keys = await self.town_keys(second.code)
        except LookupError as exc:
            raise errors.not_found() from exc
        async with self._acquire(first.code, second.code) as conn:
            try:
                await conn.execute(binding_sql(first, extra_locks, extra_calls))
            except asyncpg.InvalidParameterValueError as exc:
                await _rollback_quietly(conn)
                raise errors.not_found() from exc
            except UNAVAILABLE_ERRORS as exc:
                raise errors.unavailable(m.DB_UNREACHABLE) from exc
            except asyncpg.PostgresError as exc:
                await _rollback_quietly(conn)
                if getattr(exc, "sqlstate", None) == CHECK_FAILED:
                    raise BindingCheckFailed from exc
                raise
            binding = _Binding(first)
            tx = _Transaction()
            try:
                yield (
                    PairedUnitOfWork(conn, first, first_keys, binding, tx),
                    PairedUnitOfWork(conn, second, second_keys, binding, tx),
                )
            except BaseException:
                await _rollback_quietly(conn)
                raise
            await self._commit(conn, tx)

    @asynccontextmanager
    async def catalog(self) -> AsyncIterator[asyncpg.Connection]:
        """A plain transaction for catalog tables (never bound to a tenant)."""
        async with self._acquire() as conn:
            try:
                async with conn.transaction():
                    yield conn
            except UNAVAILABLE_ERRORS as exc:
                raise errors.unavailable(m.DB_UNREACHABLE) from exc

    async def _commit(self, conn: asyncpg.Connection, tx: _Transaction) -> None:
        """Send the deferred statements and COMMIT; settle a lost acknowledgement.

        If the connection fails after the COMMIT was sent, the transaction may
        have committed or not. For a read that is harmless (the caller gets
        503, nothing changed; at most the log shows a read whose answer was
        lost). For a write, answering 503 for a change that did commit would
        have the caller retry into a 412 or a duplicate, so a write asks for
        its transaction id first and, after a failure, asks a new connection
        how that transaction ended (``pg_xact_status``): committed is success.
        """
        if tx.begin is not None:
            # A read-only unit of work that never began a transaction (nothing
            # sent, or only town read functions, each its own): nothing to end.
            if not tx.deferred:
                return
            await tx.begin()
            tx.begin = None
        marker = tx.marker
        try:
            if tx.writes and marker is None:
                row = await conn.fetchrow(_XID_MARKER_SQL)
                marker = None if row is None else (row["xid"], row["checkpoint"])
            await conn.execute(commit_sql(tx.deferred))
        except UNAVAILABLE_ERRORS as exc:
            if marker is not None and await self._committed(*marker):
                log.warning("db.commit_ack_lost", outcome="committed")
                return
            raise errors.unavailable(m.DB_GONE_DURING_COMMIT) from exc
        except BaseException:
            # A deferred statement failed (the COMMIT was never reached): the
            # transaction is aborted; end it before the connection goes back.
            await _rollback_quietly(conn)
            raise

    async def _committed(self, xid: str, checkpoint: str) -> bool:
        """Whether transaction ``xid`` committed, asked on a new connection.

        ``checkpoint`` is the server's latest checkpoint when ``xid`` was
        read. After a crash, an id whose WAL never reached the disk can be
        handed out again, and "committed" would then describe another
        transaction (seen in tests/faults/test_restart.py). Crash recovery
        always ends with a checkpoint before anyone can connect, so the
        answer is trusted only if the latest checkpoint is still the same; a
        routine checkpoint in between only makes it unknown.

        Retries while the database is unreachable (a restart, crash
        recovery), for at most the pool's acquire timeout; unknown counts as
        not committed (the caller gets 503, as before this check existed).
        """
        deadline = asyncio.get_running_loop().time() + self.settings.pool_acquire_timeout
        while True:
            try:
                conn = await asyncpg.connect(self.url, timeout=self.settings.pool_acquire_timeout)
                try:
                    row = await conn.fetchrow(
                        "SELECT pg_xact_status($1::text::xid8) AS status, "
                        "(SELECT checkpoint_lsn::text FROM pg_control_checkpoint()) AS checkpoint",
                        xid,
                    )
                finally:
                    await conn.close(timeout=self.settings.pool_acquire_timeout)
            except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError) as exc:
                if asyncio.get_running_loop().time() >= deadline:
                    log.warning("db.commit_ack_lost", outcome="unknown", error=type(exc).__name__)
                    return False
                await asyncio.sleep(0.2)
                continue
            if row["checkpoint"] != checkpoint:
                log.warning("db.commit_ack_lost", outcome="unknown", detail="checkpoint since")
                return False
            # "in progress" cannot last: the session that ran it is gone.
            return bool(row["status"] == "committed")


# The write's transaction id and the latest checkpoint (see Database._committed).
_XID_MARKER_SQL = (
    "SELECT pg_current_xact_id()::text AS xid, "
    "(SELECT checkpoint_lsn::text FROM pg_control_checkpoint()) AS checkpoint"
)


async def _bind(conn: asyncpg.Connection, binding: str) -> None:
    """Send ``binding`` (BEGIN and the town's binding); its failures as domain errors."""
    try:
        await conn.execute(binding)
    except asyncpg.InvalidParameterValueError as exc:
        # The role is gone: the tenant was offboarded since we cached it.
        await _rollback_quietly(conn)
        raise errors.not_found() from exc
    except UNAVAILABLE_ERRORS as exc:
        raise errors.unavailable(m.DB_UNREACHABLE) from exc


async def _rollback_quietly(conn: asyncpg.Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError):
        # The connection is broken; the pool's release terminates it.
        pass
