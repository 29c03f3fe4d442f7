"""Connection pool and the tenant unit of work.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared_gov import errors
from shared_gov.crypto.keyring import (
    AUDIT_MAC_KIND,
    FETCH_KEYS_SQL,
    Keyring,
    TownKeys,
    provider_from_settings,
)
from shared_gov.crypto.providers import KeyNotFound, KeyProviderError, WrapError
from shared_gov.db.bulk import empty_tables_load
from shared_gov.db.urls import plain_url, sqlalchemy_url
from shared_gov.logs import get_logger
from shared_gov.settings import Settings
from shared_gov.tenancy.names import TenantNames

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


@dataclass(slots=True)
class _Transaction:
    """What the COMMIT of a unit of work needs to know (shared by a pair's sides)."""

    deferred: list[str] = field(default_factory=list)
    """Statements sent with the COMMIT (see :meth:`TenantUnitOfWork.at_commit`)."""
    writes: bool = False
    """Whether the unit of work changed data besides its audit event."""


class TenantUnitOfWork:
    """One transaction bound to one tenant's schema and role.

    Services receive it; repositories run their SQL through it. It exposes
    the asyncpg connection's query methods and nothing to change the binding.
    """

    __slots__ = ("_conn", "_tx", "keys", "names")

    def __init__(
        self,
        conn: asyncpg.Connection,
        names: TenantNames,
        keys: TownKeys | None = None,
        tx: _Transaction | None = None,
    ) -> None:
        self._conn = conn
        self._tx = tx if tx is not None else _Transaction()
        self.names = names
        self.keys = keys
        """The town's unwrapped keys (repositories encrypt and decrypt with them)."""

    @property
    def code(self) -> str:
        return self.names.code

    def town_statement(self, query: str) -> str:
        """``query`` as this town's own prepared statement (see ``town_plan``).

        PostgreSQL keeps one plan per prepared statement and discards it
        whenever ``search_path`` differs from the one it was planned under,
        which, with one statement shared by all towns, is every time
        consecutive transactions on a connection belong to different towns:
        the statement is then parsed and planned again (about 60-120 µs of
        backend CPU for a resident read with 200 towns, most of a many-town
        request's extra latency; bench/README.md). A comment naming the schema
        makes the text, hence the statement, the town's own: it is only ever
        executed under that town's binding, so its plan stays valid. The
        schema name is a checked identifier (``t_[0-9]{6}``), safe in a
        comment.
        """
        return "/* " + self.names.schema + " */ " + query

    async def fetch(self, query: str, *args: Any, town_plan: bool = False) -> list[asyncpg.Record]:
        """Rows of ``query``. ``town_plan``: keep the plan per town (hot reads)."""
        if town_plan:
            query = self.town_statement(query)
        result: list[asyncpg.Record] = await self._conn.fetch(query, *args)
        return result

    async def fetchrow(
        self, query: str, *args: Any, town_plan: bool = False
    ) -> asyncpg.Record | None:
        if town_plan:
            query = self.town_statement(query)
        result: asyncpg.Record | None = await self._conn.fetchrow(query, *args)
        return result

    async def fetchval(self, query: str, *args: Any, town_plan: bool = False) -> Any:
        if town_plan:
            query = self.town_statement(query)
        return await self._conn.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        # Statements that change data go through execute, executemany or
        # copy_records (reads use fetch*): a unit of work that used one is a
        # write whose lost COMMIT acknowledgement is worth resolving.
        self._tx.writes = True
        result: str = await self._conn.execute(query, *args)
        return result

    async def executemany(self, query: str, args: list[tuple[Any, ...]]) -> None:
        self._tx.writes = True
        await self._conn.executemany(query, args)

    async def copy_records(
        self, table: str, columns: Sequence[str], records: Iterable[Sequence[Any]]
    ) -> None:
        """Bulk load with COPY (binary), inside this unit of work's transaction."""
        self._tx.writes = True
        await self._conn.copy_records_to_table(table, records=records, columns=list(columns))

    async def copy_bytes(self, table: str, columns: Sequence[str], data: bytes) -> None:
        """``COPY table (columns) FROM STDIN (FORMAT binary)`` of ready-made COPY data.

        For bulk loads whose rows were encoded elsewhere (the import's worker
        processes): the bytes are sent as they are, in this unit of work's
        transaction, to the table its binding resolves.
        """
        self._tx.writes = True
        # A memoryview: asyncpg would take bytes for a file name.
        await self._conn.copy_to_table(
            table, columns=list(columns), source=memoryview(data), format="binary"
        )

    def cursor(self, query: str, *args: Any) -> Any:
        """A server-side cursor (async iterator of records) within the transaction."""
        return self._conn.cursor(query, *args)

    def load_into_empty(self, tables: Sequence[str]) -> AbstractAsyncContextManager[bool]:
        """A bulk load into these empty tables, their secondary indexes and foreign keys
        set aside and restored (checking every row) at the end: see :mod:`.bulk`.

        Yields whether they were set aside; if not, load as usual.
        """
        self._tx.writes = True
        return empty_tables_load(self._conn, self.names, tables)

    def at_commit(self, statement: str) -> None:
        """Send ``statement`` with this unit of work's COMMIT, in the same round trip.

        For the audit event of the access (its write must commit with the
        access or fail it): the statement and the COMMIT travel as one simple
        query, executed in order; if the statement fails, the COMMIT is never
        reached and the transaction rolls back. ``statement`` takes no
        parameters: its values must be inlined safely by the caller (see
        :func:`dollar_quoted`).
        """
        self._tx.deferred.append(statement)


class PairedUnitOfWork(TenantUnitOfWork):
    """One town's side of a transaction shared by two towns (cross-town work).

    Both sides use the same connection and transaction; before each statement
    the connection is re-bound to this side's schema and role if the other
    side used it last, so each side's SQL still runs as its own town's role
    and can reach nothing else. Used for reads under an agreement (both towns'
    audit events commit with the read, or neither does) and for one-stop moves
    (the new town's record and the old town's removal commit together).
    """

    __slots__ = ("_pair",)

    def __init__(
        self,
        conn: asyncpg.Connection,
        names: TenantNames,
        keys: TownKeys,
        pair: _Binding,
        tx: _Transaction,
    ) -> None:
        super().__init__(conn, names, keys, tx)
        self._pair = pair

    async def _bind(self) -> None:
        if self._pair.current != self.names:
            await self._conn.execute(rebinding_sql(self.names))
            self._pair.current = self.names

    async def fetch(self, query: str, *args: Any, town_plan: bool = False) -> list[asyncpg.Record]:
        await self._bind()
        return await super().fetch(query, *args, town_plan=town_plan)

    async def fetchrow(
        self, query: str, *args: Any, town_plan: bool = False
    ) -> asyncpg.Record | None:
        await self._bind()
        return await super().fetchrow(query, *args, town_plan=town_plan)

    async def fetchval(self, query: str, *args: Any, town_plan: bool = False) -> Any:
        await self._bind()
        return await super().fetchval(query, *args, town_plan=town_plan)

    async def execute(self, query: str, *args: Any) -> str:
        await self._bind()
        return await super().execute(query, *args)

    async def executemany(self, query: str, args: list[tuple[Any, ...]]) -> None:
        await self._bind()
        await super().executemany(query, args)

    async def copy_records(
        self, table: str, columns: Sequence[str], records: Iterable[Sequence[Any]]
    ) -> None:
        await self._bind()
        await super().copy_records(table, columns, records)

    async def copy_bytes(self, table: str, columns: Sequence[str], data: bytes) -> None:
        await self._bind()
        await super().copy_bytes(table, columns, data)

    def cursor(self, query: str, *args: Any) -> Any:
        # A cursor is consumed lazily, after the other side may have re-bound.
        raise NotImplementedError("cursors are not available in a two-town transaction")

    def load_into_empty(self, tables: Sequence[str]) -> AbstractAsyncContextManager[bool]:
        # Its body would run while the other side may re-bind the connection.
        raise NotImplementedError("bulk loads are not available in a two-town transaction")

    def at_commit(self, statement: str) -> None:
        # Deferred statements run after everything else, in order: each is
        # preceded by its own town's binding, whichever town spoke last.
        super().at_commit(rebinding_sql(self.names) + "; " + statement)


@dataclass(slots=True)
class _Binding:
    current: TenantNames


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


def dollar_quoted(text: str) -> str:
    """``text`` as a dollar-quoted SQL literal whose tag does not occur in it."""
    while True:
        tag = "$sg" + secrets.token_hex(4) + "$"
        if tag not in text:
            return tag + text + tag


def commit_sql(statements: Sequence[str]) -> str:
    """The deferred statements and COMMIT, as one simple query."""
    return "".join(statement + "; " for statement in statements) + "COMMIT"


def rebinding_sql(names: TenantNames) -> str:
    """Switch the open transaction to another town (same literals as binding_sql)."""
    return binding_sql(names).removeprefix("BEGIN; ")


class BindingCheckFailed(Exception):
    """A check folded into the binding statement failed (SQLSTATE SGA01)."""


CHECK_FAILED = "SGA01"


def binding_sql(
    names: TenantNames, extra_locks: Sequence[str] = (), extra_calls: Sequence[str] = ()
) -> str:
    """BEGIN plus the tenant binding, as one simple-protocol round trip.

    The identifiers come from :func:`shared_gov.tenancy.names.tenant_names`,
    which only produces ``t_[0-9]{6}`` and ``<prefix>_t_[0-9]{6}``, so inlining
    them as literals is safe (and required: simple-protocol queries take no
    parameters).
    """
    # The shared advisory lock marks this transaction as a possible writer with
    # the town's current data keys; retiring a key waits for all of them.
    # ``extra_locks`` are further shared locks (e.g. the agreement a cross-town
    # read relies on, so that a revocation waits for reads in flight); their
    # names must be made of safe characters only (checked).
    locks = "".join(
        ", pg_advisory_xact_lock_shared(hashtextextended('" + _lock_name(lock) + "', 0))"
        for lock in extra_locks
    )
    # ``extra_calls`` are function calls evaluated after the locks (target
    # list order), e.g. checking that a cached agreement is still current; the
    # caller builds them from validated values only.
    calls = "".join(", " + call for call in extra_calls)
    return (
        "BEGIN; SELECT set_config('search_path', '"
        + names.schema
        + "', true), set_config('role', '"
        + names.role
        + "', true), pg_advisory_xact_lock_shared(hashtextextended('shared_gov.dek."
        + names.code
        + "', 0))"
        + locks
        + calls
    )


_LOCK_NAME = re.compile(r"^[a-z0-9_.\-]{1,100}$")


def _lock_name(name: str) -> str:
    if not _LOCK_NAME.match(name):
        raise ValueError("unsafe advisory lock name")
    return name


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

    def __init__(self, url: str, settings: Settings, keyring: Keyring | None = None) -> None:
        self.url = plain_url(url)
        self.settings = settings
        self._pool: asyncpg.Pool | None = None
        self._engine: AsyncEngine | None = None
        self.keyring = keyring or Keyring(provider_from_settings(settings))

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
            raise errors.unavailable("the database is busy or unreachable; retry") from exc
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

    async def _fetch_keys(self, tenant: str) -> list[asyncpg.Record]:
        async with self.catalog() as conn:
            rows: list[asyncpg.Record] = await conn.fetch(FETCH_KEYS_SQL, tenant)
        if rows and not any(r["kind"] == AUDIT_MAC_KIND for r in rows):
            rows = await self._add_audit_key(tenant)
        return rows

    async def _add_audit_key(self, tenant: str) -> list[asyncpg.Record]:
        """Give a town onboarded before audit MACs existed its audit key (catalog c0015).

        Once, by whichever worker loads the town's keys first: serialised with
        key operations on the town (the same advisory lock as provisioning
        and rotation), and a key another worker added meanwhile is kept.
        """
        provider = self.keyring.provider
        kek_version = await asyncio.to_thread(provider.current_kek_version, tenant)
        row = await asyncio.to_thread(self.keyring.new_audit_key_row, tenant, kek_version)
        async with self.catalog() as conn:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.keyops.' || $1, 0))",
                tenant,
            )
            await conn.execute(
                "INSERT INTO catalog.data_keys (tenant_code, kind, name, version, wrapped, "
                "kek_version, bits, state) SELECT $1, $2, $3, $4, $5, $6, NULL, 'active' "
                "WHERE EXISTS (SELECT 1 FROM catalog.data_keys WHERE tenant_code = $1) "
                "AND NOT EXISTS (SELECT 1 FROM catalog.data_keys WHERE tenant_code = $1 "
                "AND kind = $2)",
                tenant,
                row["k"],
                row["n"],
                row["v"],
                row["w"],
                row["kv"],
            )
            log.info("audit.mac_key_created", tenant=tenant)
            rows: list[asyncpg.Record] = await conn.fetch(FETCH_KEYS_SQL, tenant)
        return rows

    async def town_keys(self, tenant: str) -> TownKeys:
        """The town's unwrapped keys (cached; loaded from the catalog on first use).

        Raises :class:`LookupError` when the catalog holds no (complete) keys
        for the town: offboarded, or never set up. A key provider that cannot
        be reached, or that lacks a key the catalog says the town has (a lost
        or wrongly restored HSM partition, the wrong token configured), is
        the platform's fault, not the caller's: 503, and an error in the log.
        """
        try:
            return await self.keyring.town(self._fetch_keys, tenant)
        except KeyNotFound as exc:
            log.error("key_provider.key_missing", tenant=tenant)
            raise errors.unavailable("the key provider is unavailable; retry") from exc
        except WrapError:
            raise  # damaged or tampered wrapped key: a real error (500), not a retry
        except KeyProviderError as exc:
            log.warning("key_provider.unavailable", error=type(exc).__name__)
            raise errors.unavailable("the key provider is unavailable; retry") from exc

    @asynccontextmanager
    async def tenant(self, names: TenantNames) -> AsyncIterator[TenantUnitOfWork]:
        """Open a transaction bound to ``names``; commit on success, roll back on error."""
        # Keys first, on their own connection (cached after the first request):
        # never hold two pooled connections at once.
        try:
            keys = await self.town_keys(names.code)
        except LookupError as exc:
            # No keys: the town was offboarded (keys shredded) or never set up.
            raise errors.not_found() from exc
        async with self._acquire(names.code) as conn:
            try:
                await conn.execute(binding_sql(names))
            except asyncpg.InvalidParameterValueError as exc:
                # The role is gone: the tenant was offboarded since we cached it.
                await _rollback_quietly(conn)
                raise errors.not_found() from exc
            except UNAVAILABLE_ERRORS as exc:
                raise errors.unavailable("the database is unreachable; retry") from exc
            tx = _Transaction()
            try:
                yield TenantUnitOfWork(conn, names, keys, tx)
            except BaseException:
                await _rollback_quietly(conn)
                raise
            await self._commit(conn, tx)

    @asynccontextmanager
    async def pair(
        self,
        first: TenantNames,
        second: TenantNames,
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
                raise errors.unavailable("the database is unreachable; retry") from exc
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
                raise errors.unavailable("the database is unreachable; retry") from exc

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
        marker: asyncpg.Record | None = None
        try:
            if tx.writes:
                marker = await conn.fetchrow(_XID_MARKER_SQL)
            await conn.execute(commit_sql(tx.deferred))
        except UNAVAILABLE_ERRORS as exc:
            if marker is not None and await self._committed(marker["xid"], marker["checkpoint"]):
                log.warning("db.commit_ack_lost", outcome="committed")
                return
            raise errors.unavailable("the database went away during commit") from exc
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


async def _rollback_quietly(conn: asyncpg.Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except (*UNAVAILABLE_ERRORS, asyncpg.PostgresError):
        # The connection is broken; the pool's release terminates it.
        pass
