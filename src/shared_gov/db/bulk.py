"""Loading empty tables with their secondary indexes and foreign keys set aside.

PostgreSQL's own advice for populating a table ("Populating a Database" in
its manual: remove indexes, remove foreign key constraints) applied to one
transaction of one town: before a bulk load into EMPTY tables, their
secondary indexes and the foreign keys they hold are dropped; after it the
indexes are built again (one sort per index instead of a random b-tree
insert per row) and the foreign keys added again, which checks every row
with one join instead of a trigger, a lookup and a row lock per row.
Measured on the resident import (100,000 records, bench/README.md): the
checks and index inserts were about half of PostgreSQL's CPU, and
PostgreSQL's single backend is what the import waits for.

Nothing is weakened: the definitions come from the catalog
(``pg_get_indexdef``, ``pg_get_constraintdef``, read with every name
schema-qualified) and are run again in the same transaction, so a row that
breaks a foreign key or a unique index fails the load at the end instead
of at its insert. Only validated foreign keys between the loaded tables
are set aside (a NOT VALID key would come back unchecked; dropping a key to
another table would lock that table too). What a definition does not carry
(an index's comment, tablespace or statistics target) is not restored; the
project sets none. Everything runs under a savepoint: if the load fails,
the savepoint is rolled back and the tables are as they were (indexes and
constraints included) even for a caller that goes on and commits.
Transactional DDL makes this safe.

The price is ``ACCESS EXCLUSIVE`` locks on the tables until the
transaction ends, so this is only for tables that are empty (a town being
onboarded, whose staff are not using it yet) and only if the locks come
within :data:`LOCK_WAIT` (half a second); otherwise, or if the service's
login role does not own the town's tables (it does in every documented
set-up: it runs the migrations), the load runs with the indexes and checks
in place, as before. Only the DDL runs as the login role, the owner of the town's
schema; the load itself runs under the town's role like any other work.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import asyncpg

from shared_gov.db.binding import TownBinding
from shared_gov.logs import get_logger

log = get_logger(__name__)

LOCK_WAIT = "500ms"
"""How long to wait for the tables' exclusive locks before loading the usual way.

Below PostgreSQL's ``deadlock_timeout`` (1 s by default; keep it at least
that) on purpose: a registration in the same town may hold a lock on
``households`` while it waits for the registration lock the import holds.
Giving up first makes the import the one that yields (it loads with the
checks in place) instead of PostgreSQL's deadlock detector failing the
registration (measured both ways). The price: PostgreSQL cancels an
autovacuum that blocks a lock only when the deadlock check runs, so an
autovacuum of the tables (after a failed import, say) also means the
slower load; the log says ``reason=LockNotAvailableError``."""
_SAVEPOINT = "shared_gov_bulk_load"
_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Statements to drop and to restore, built by the server from the catalog
# (format's %I quotes identifiers), for the given tables of one schema.
_CONSTRAINTS_SQL = """
SELECT format('ALTER TABLE %I.%I DROP CONSTRAINT %I', n.nspname, t.relname, c.conname),
       format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', n.nspname, t.relname, c.conname,
              pg_get_constraintdef(c.oid))
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class r ON r.oid = c.confrelid
WHERE c.contype = 'f' AND n.nspname = $1 AND t.relname = ANY($2::text[])
  -- Only keys between the loaded tables: dropping one also locks the table
  -- it references, which must not be anything else of the town's.
  AND r.relnamespace = t.relnamespace AND r.relname = ANY($2::text[])
  -- A NOT VALID key would come back NOT VALID and leave the loaded rows
  -- unchecked: such a key keeps its per-row checks.
  AND c.convalidated
ORDER BY t.relname, c.conname
"""
_INDEXES_SQL = """
SELECT format('DROP INDEX %I.%I', n.nspname, x.relname),
       pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_class x ON x.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = $1 AND t.relname = ANY($2::text[])
  AND i.indisvalid AND i.indisready
  -- Indexes behind a constraint (primary keys, UNIQUE) stay: foreign keys
  -- need the referenced side's, and they are few.
  AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY x.relname
"""
# Errors that mean "not this way here": the load then runs with checks in place.
_NOT_HERE: tuple[type[BaseException], ...] = (
    asyncpg.LockNotAvailableError,
    asyncpg.DeadlockDetectedError,
    asyncpg.InsufficientPrivilegeError,
)


@dataclass(frozen=True, slots=True)
class SetAside:
    """What was dropped, as the statements that put it back."""

    indexes: tuple[str, ...]
    constraints: tuple[str, ...]


async def _as_owner(
    conn: asyncpg.Connection, names: TownBinding, statements: Sequence[str]
) -> None:
    """Run DDL as the session's login role (the schema's owner), then rebind the town's role."""
    await conn.execute("SELECT set_config('role', 'none', true)")
    for statement in statements:
        await conn.execute(statement)
    await conn.execute("SELECT set_config('role', $1, true)", names.role)


async def _set_aside(
    conn: asyncpg.Connection, names: TownBinding, tables: Sequence[str]
) -> SetAside | None:
    """Drop the empty tables' secondary indexes and foreign keys; None if not done."""
    schema = names.schema
    qualified = ", ".join(f"{schema}.{table}" for table in tables)
    # As the owner from here: the town's role may not lock a table it can
    # only append to (resident_history), and may not change any.
    await conn.execute("SELECT set_config('role', 'none', true)")
    waited = await conn.fetchval("SELECT current_setting('lock_timeout')")
    await conn.execute("SELECT set_config('lock_timeout', $1, true)", LOCK_WAIT)
    await conn.execute(f"LOCK TABLE {qualified} IN ACCESS EXCLUSIVE MODE")
    await conn.execute("SELECT set_config('lock_timeout', $1, true)", waited)
    empty = " AND ".join(f"NOT EXISTS (SELECT FROM {schema}.{table})" for table in tables)
    # Identifiers only: the schema is a checked t_NNNNNN, the tables matched _TABLE.
    if not await conn.fetchval(f"SELECT {empty}"):
        return None
    # Definitions read with an empty search_path name every table with its
    # schema: they mean the same whatever the path when they are run again.
    await conn.execute("SELECT set_config('search_path', '', true)")
    constraints = await conn.fetch(_CONSTRAINTS_SQL, schema, list(tables))
    indexes = await conn.fetch(_INDEXES_SQL, schema, list(tables))
    await conn.execute("SELECT set_config('search_path', $1, true)", schema)
    await _as_owner(conn, names, [r[0] for r in constraints] + [r[0] for r in indexes])
    return SetAside(tuple(r[1] for r in indexes), tuple(r[1] for r in constraints))


@asynccontextmanager
async def empty_tables_load(
    conn: asyncpg.Connection, names: TownBinding, tables: Sequence[str]
) -> AsyncIterator[bool]:
    """Load into ``tables`` (of the bound town) with indexes and foreign keys set aside.

    Yields whether they were set aside (False: the tables are not all
    empty, their locks did not come in time, or the login role may not
    change them; load as usual then). On success the indexes are built and
    the foreign keys added again, which checks every row; a violation raises
    here (asyncpg's IntegrityConstraintViolationError) with the load rolled
    back. Any error rolls back to the savepoint taken first.
    """
    for table in tables:
        if not _TABLE.match(table):
            raise ValueError("unsafe table name")
    await conn.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        aside = await _set_aside(conn, names, tables)
        reason = "not empty"
    except _NOT_HERE as exc:
        aside, reason = None, type(exc).__name__
    except BaseException:
        with suppress(Exception):  # the connection may be gone
            await conn.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise
    if aside is None:
        # Also releases the locks taken (a subtransaction's locks go with it).
        await conn.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        log.info("bulk_load.checks_in_place", tenant=names.code, reason=reason)
    # From here the tables may lack their indexes and keys: whatever fails
    # (the log line included) rolls back to the savepoint.
    try:
        if aside is not None:
            log.info(
                "bulk_load.set_aside",
                tenant=names.code,
                indexes=len(aside.indexes),
                foreign_keys=len(aside.constraints),
            )
        yield aside is not None
        if aside is not None:
            # Indexes first: the foreign keys' checks may use them.
            await _as_owner(conn, names, [*aside.indexes, *aside.constraints])
    except BaseException:
        with suppress(Exception):
            await conn.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        raise
    await conn.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
