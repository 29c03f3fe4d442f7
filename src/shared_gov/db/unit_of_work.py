"""The tenant unit of work: one transaction bound to one town (or a pair).

:meth:`Database.tenant <shared_gov.db.engine.Database.tenant>` and
:meth:`Database.pair <shared_gov.db.engine.Database.pair>` open them; services
receive them and repositories run their SQL through them. A unit of work
exposes the connection's query methods and nothing that would change its
binding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared_gov.db.binding import TownBinding, rebinding_sql
from shared_gov.db.bulk import empty_tables_load


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
        names: TownBinding,
        keys: object = None,
        tx: _Transaction | None = None,
    ) -> None:
        self._conn = conn
        self._tx = tx if tx is not None else _Transaction()
        self.names = names
        self.keys = keys
        """The town's unwrapped keys, from the database's key source (opaque here:
        ``shared_gov.crypto.keyring.keys_of`` gives them their type)."""

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
