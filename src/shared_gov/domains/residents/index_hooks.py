"""The residents' hooks for blind-index key rotation (:mod:`shared_gov.keys.index_rotation`).

Declared in ``spec.py`` (``IndexHooks``): the platform's rotation job calls
them in the town's unit of work to count, fill and clear one index's column
under one key version. Only the fields an index is made of are decrypted.
"""

from __future__ import annotations

from shared_gov.crypto.envelope import DecryptError
from shared_gov.crypto.keyring import index_column, keys_of
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.registry import IndexFill
from shared_gov.domains.residents.indexing import INDEX_SOURCES, index_input


def missing_index_sql(name: str, version: int) -> str:
    """WHERE clause: rows that should hold a value of index ``name`` under ``version`` but do not.

    A row needs one when the index's first source field is set (every index
    has a required or a single source field). Column names are unqualified.
    """
    return f"{index_column(name, version)} IS NULL AND {INDEX_SOURCES[name][0]} IS NOT NULL"


_FIRST_ID = "00000000-0000-0000-0000-000000000000"


async def index_backlog(uow: TenantUnitOfWork, name: str, version: int, skip: list[str]) -> int:
    """How many rows still lack a value of index ``name`` under ``version`` (minus ``skip``)."""
    result: int = await uow.fetchval(
        f"SELECT count(*) FROM residents WHERE {missing_index_sql(name, version)} "  # noqa: S608
        "AND NOT (id = ANY($1::uuid[]))",
        skip,
    )
    return result


async def fill_index(
    uow: TenantUnitOfWork,
    name: str,
    version: int,
    *,
    after: str | None,
    limit: int,
    skip: list[str],
) -> IndexFill:
    """Give up to ``limit`` rows after id ``after`` their value of ``name`` under ``version``.

    Walks the table in id order (the primary key), so a pass over the whole
    town costs one index scan, not one table scan per batch. Rows a writer
    holds are skipped (``SKIP LOCKED``) and picked up by the next pass; so
    are rows a worker that had not heard of the rotation wrote meanwhile
    (it stored NULL in the new column).
    """
    keys = keys_of(uow)
    index = dict(keys.index_versions[name]).get(version)
    if index is None:
        raise LookupError(f"the town's keys lack version {version} of index {name}")
    sources = INDEX_SOURCES[name]
    column = index_column(name, version)
    rows = await uow.fetch(
        f"SELECT id, {', '.join(sources)} FROM residents WHERE id > $1::uuid "  # noqa: S608
        f"AND {missing_index_sql(name, version)} AND NOT (id = ANY($2::uuid[])) "
        "ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED",
        after or _FIRST_ID,
        skip,
        limit,
    )
    result = IndexFill([], None, [], [])
    values: list[int] = []
    for r in rows:
        rid = str(r["id"])
        try:
            texts = {f: keys.decrypt("residents", f, rid, r[f]) for f in sources}
        except DecryptError:
            result.unreadable.append(rid)
            continue
        text = index_input(name, texts.get)
        if text is None:
            result.empty.append(rid)
            continue
        result.filled.append(rid)
        values.append(index.value(text))
    if values:
        await uow.execute(
            f"UPDATE residents AS r SET {column} = v.value "  # noqa: S608
            "FROM unnest($1::uuid[], $2::bigint[]) AS v(id, value) WHERE r.id = v.id",
            result.filled,
            values,
        )
    if len(rows) == limit:
        result.last = str(rows[-1]["id"])
    return result


async def clear_index(uow: TenantUnitOfWork, name: str, version: int, limit: int) -> int:
    """Erase up to ``limit`` values of index ``name`` under a retired ``version``.

    Returns how many were erased.
    """
    column = index_column(name, version)
    status = await uow.execute(
        f"UPDATE residents SET {column} = NULL WHERE id IN (SELECT id FROM residents "  # noqa: S608
        f"WHERE {column} IS NOT NULL LIMIT $1 FOR UPDATE SKIP LOCKED)",
        limit,
    )
    return int(status.rsplit(" ", 1)[-1])


async def index_values_stored(uow: TenantUnitOfWork, name: str, version: int) -> int:
    """How many rows hold a value in the column of ``name`` under ``version``."""
    result: int = await uow.fetchval(
        f"SELECT count(*) FROM residents WHERE {index_column(name, version)} IS NOT NULL"  # noqa: S608
    )
    return result
