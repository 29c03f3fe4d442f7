"""The tenant unit of work: one transaction bound to one town (or a pair).

:meth:`Database.tenant <shared_gov.db.engine.Database.tenant>` and
:meth:`Database.pair <shared_gov.db.engine.Database.pair>` open them; services
receive them and repositories run their SQL through them. A unit of work
exposes the connection's query methods and nothing that would change its
binding.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import asyncpg

from shared_gov import errors
from shared_gov.db.binding import TownBinding, rebinding_sql
from shared_gov.db.bulk import empty_tables_load


@dataclass(slots=True)
class _Transaction:
    """What the COMMIT of a unit of work needs to know (shared by a pair's sides)."""

    deferred: list[str] = field(default_factory=list)
    """Statements sent with the COMMIT (see :meth:`TenantUnitOfWork.at_commit`)."""
    writes: bool = False
    """Whether the unit of work changed data besides its audit event."""
    begin: Callable[[], Awaitable[None]] | None = None
    """A read-only unit of work's ``BEGIN READ ONLY`` and binding, not sent yet:
    sent before its first statement (:meth:`TenantUnitOfWork.call_read` needs
    neither). None once sent, and for every other unit of work."""
    marker: tuple[str, str] | None = None
    """The write's transaction id and the latest checkpoint, when one of its own
    statements read them (:meth:`TenantUnitOfWork.written`): the COMMIT then
    need not ask for them in a round trip of its own."""


_FUNCTION = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@lru_cache(maxsize=4096)
def _call_text(schema: str, function: str, columns: str, arity: int) -> str:
    """``SELECT columns FROM schema.function($1, …)``: one text per town (cached)."""
    if not _FUNCTION.fullmatch(function):
        raise ValueError("a town read function's name is a plain identifier")
    params = ", ".join(f"${i}" for i in range(1, arity + 1))
    # The schema is a checked identifier (binding.py), the function name is
    # checked above, the columns are the caller's constant text.
    return "SELECT " + columns + " FROM " + schema + "." + function + "(" + params + ")"  # noqa: S608


class TenantUnitOfWork:
    """One transaction bound to one tenant's schema and role.

    Services receive it; repositories run their SQL through it. It exposes
    the asyncpg connection's query methods and nothing to change the binding.

    A **read-only** one (``Database.tenant(names, read_only=True)``, the reads
    of the guarded entry) sends its ``BEGIN READ ONLY`` and binding with its
    first statement, not before: a read that is a single call of the town's
    read function (:meth:`call_read`) needs no binding and no COMMIT at all,
    one round trip instead of three. Any other statement is bound first, so
    nothing ever runs on the connection unbound.
    """

    __slots__ = ("_conn", "_tx", "keys", "names", "read_only")

    def __init__(
        self,
        conn: asyncpg.Connection,
        names: TownBinding,
        keys: object = None,
        tx: _Transaction | None = None,
        read_only: bool = False,
    ) -> None:
        self._conn = conn
        self._tx = tx if tx is not None else _Transaction()
        self.names = names
        self.keys = keys
        """The town's unwrapped keys, from the database's key source (opaque here:
        ``shared_gov.crypto.keyring.keys_of`` gives them their type)."""
        self.read_only = read_only
        """Its transaction is ``READ ONLY`` (PostgreSQL refuses every change)."""

    async def _start(self) -> None:
        """Send the pending ``BEGIN READ ONLY`` and binding (read-only units of work)."""
        begin = self._tx.begin
        if begin is not None:
            self._tx.begin = None
            await begin()

    @property
    def bound(self) -> bool:
        """Whether its transaction has begun (a read-only one begins lazily)."""
        return self._tx.begin is None

    async def call_read(self, function: str, columns: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of the town's read function ``function`` (``columns`` of them).

        A town read function lives in the town's schema, is owned by the
        town's role and runs with its rights (``SECURITY DEFINER``,
        ``search_path`` pinned: migration ``t0013``), so it reads this town
        only, as a bound transaction would, and it makes its transaction
        read-only. Before anything else was sent, the call goes out alone, as
        its own implicit transaction: one round trip, no binding, no COMMIT.
        Inside a begun transaction it runs there. The statement text names
        the town's schema, so it is the town's own prepared statement (see
        :meth:`town_statement`), and the function keeps its own plan.
        """
        if not self.read_only:
            raise RuntimeError("a town read function is called in read-only units of work")
        query = _call_text(self.names.schema, function, columns, len(args))
        try:
            result: list[asyncpg.Record] = await self._conn.fetch(query, *args)
        except asyncpg.InvalidSchemaNameError as exc:
            # The town was offboarded since its keys were cached here.
            raise errors.not_found() from exc
        return result

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
        if self._tx.begin is not None:
            await self._start()
        if town_plan:
            query = self.town_statement(query)
        result: list[asyncpg.Record] = await self._conn.fetch(query, *args)
        return result

    async def fetchrow(
        self, query: str, *args: Any, town_plan: bool = False
    ) -> asyncpg.Record | None:
        if self._tx.begin is not None:
            await self._start()
        if town_plan:
            query = self.town_statement(query)
        result: asyncpg.Record | None = await self._conn.fetchrow(query, *args)
        return result

    async def fetchval(self, query: str, *args: Any, town_plan: bool = False) -> Any:
        if self._tx.begin is not None:
            await self._start()
        if town_plan:
            query = self.town_statement(query)
        return await self._conn.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        # Statements that change data go through execute, executemany or
        # copy_records (reads use fetch*): a unit of work that used one is a
        # write whose lost COMMIT acknowledgement is worth resolving.
        self._tx.writes = True
        await self._start()
        result: str = await self._conn.execute(query, *args)
        return result

    async def executemany(self, query: str, args: list[tuple[Any, ...]]) -> None:
        self._tx.writes = True
        await self._start()
        await self._conn.executemany(query, args)

    async def copy_records(
        self, table: str, columns: Sequence[str], records: Iterable[Sequence[Any]]
    ) -> None:
        """Bulk load with COPY (binary), inside this unit of work's transaction."""
        self._tx.writes = True
        await self._start()
        await self._conn.copy_records_to_table(table, records=records, columns=list(columns))

    async def copy_bytes(self, table: str, columns: Sequence[str], data: bytes) -> None:
        """``COPY table (columns) FROM STDIN (FORMAT binary)`` of ready-made COPY data.

        For bulk loads whose rows were encoded elsewhere (the import's worker
        processes): the bytes are sent as they are, in this unit of work's
        transaction, to the table its binding resolves.
        """
        self._tx.writes = True
        await self._start()
        # A memoryview: asyncpg would take bytes for a file name.
        await self._conn.copy_to_table(
            table, columns=list(columns), source=memoryview(data), format="binary"
        )

    def cursor(self, query: str, *args: Any) -> Any:
        """A server-side cursor (async iterator of records) within the transaction."""
        if self._tx.begin is not None:
            return self._cursor_after_start(query, args)
        return self._conn.cursor(query, *args)

    async def _cursor_after_start(self, query: str, args: tuple[Any, ...]) -> AsyncIterator[Any]:
        await self._start()
        async for record in self._conn.cursor(query, *args):
            yield record

    def load_into_empty(self, tables: Sequence[str]) -> AbstractAsyncContextManager[bool]:
        """A bulk load into these empty tables, their secondary indexes and foreign keys
        set aside and restored (checking every row) at the end: see :mod:`.bulk`.

        Yields whether they were set aside; if not, load as usual.
        """
        if self._tx.begin is not None:
            raise RuntimeError("a read-only unit of work loads nothing")
        self._tx.writes = True
        return empty_tables_load(self._conn, self.names, tables)

    def written(self, xid: str, checkpoint: str) -> None:
        """This unit of work writes, and one of its statements read its transaction
        id (``pg_current_xact_id()::text``) and the latest checkpoint
        (``checkpoint_lsn::text`` of ``pg_control_checkpoint()``), what the COMMIT
        needs to settle a lost acknowledgement (``Database._commit``): the COMMIT
        then does not ask for them itself (one round trip fewer)."""
        self._tx.writes = True
        self._tx.marker = (xid, checkpoint)

    def at_commit(self, statement: str) -> None:
        """Send ``statement`` with this unit of work's COMMIT, in the same round trip.

        For the audit event of the access (its write must commit with the
        access or fail it): the statement and the COMMIT travel as one simple
        query, executed in order; if the statement fails, the COMMIT is never
        reached and the transaction rolls back. ``statement`` takes no
        parameters: its values must be inlined safely by the caller (see
        :func:`~shared_gov.db.binding.dollar_quoted`).
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
        names: TownBinding,
        keys: object,
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
    current: TownBinding
