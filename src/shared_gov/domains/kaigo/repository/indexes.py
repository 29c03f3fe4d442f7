"""What a blind-index key rotation calls (``shared_gov.keys.index_rotation``, through
the hooks ``spec.py`` declares) for the domain's two indexes:

- ``kaigo_insured_number`` over ``kaigo_insured.insured_number`` (digits);
- ``kaigo_turns_65`` over ``kaigo_watch.turns_65_on`` (an ISO date).

Each batch reads rows lacking a value under the new key, decrypts the source
and writes the value; a row whose envelope does not decrypt is reported and
left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared_gov.crypto.blind import normalize_digits
from shared_gov.crypto.envelope import DecryptError
from shared_gov.crypto.keyring import index_column
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo.repository.common import affected, keys
from shared_gov.domains.kaigo.spec import INSURED, INSURED_NUMBER_INDEX, TURNS_65_INDEX, WATCH
from shared_gov.domains.registry import IndexFill


@dataclass(frozen=True, slots=True)
class _Source:
    table: str
    key: str
    """The row id column (bound into the envelope's AAD as text)."""
    column: str


_SOURCES = {
    INSURED_NUMBER_INDEX: _Source(INSURED, "id", "insured_number"),
    TURNS_65_INDEX: _Source(WATCH, "resident_id", "turns_65_on"),
}
_FIRST_ID = "00000000-0000-0000-0000-000000000000"


def _normalise(name: str, text: str) -> str:
    return normalize_digits(text) if name == INSURED_NUMBER_INDEX else text


def missing_index_sql(name: str, version: int) -> str:
    """Rows that should hold a value of ``name`` under ``version`` but do not."""
    src = _SOURCES[name]
    return f"{index_column(name, version)} IS NULL AND {src.column} IS NOT NULL"


async def index_backlog(uow: TenantUnitOfWork, name: str, version: int, skip: list[str]) -> int:
    src = _SOURCES[name]
    result: int = await uow.fetchval(
        f"SELECT count(*) FROM {src.table} WHERE {missing_index_sql(name, version)} "  # noqa: S608
        f"AND NOT ({src.key} = ANY($1::uuid[]))",
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
    """One batch: give up to ``limit`` rows after ``after`` their value under ``version``."""
    src = _SOURCES[name]
    k = keys(uow)
    index = dict(k.index_versions[name]).get(version)
    if index is None:
        raise LookupError(f"the town's keys lack version {version} of index {name}")
    rows = await uow.fetch(
        f"SELECT {src.key} AS rid, {src.column} AS source FROM {src.table} "  # noqa: S608
        f"WHERE {src.key} > $1::uuid AND {missing_index_sql(name, version)} "
        f"AND NOT ({src.key} = ANY($2::uuid[])) ORDER BY {src.key} LIMIT $3 "
        "FOR UPDATE SKIP LOCKED",
        after or _FIRST_ID,
        skip,
        limit,
    )
    result = IndexFill([], None, [], [])
    values: list[int] = []
    for r in rows:
        rid = str(r["rid"])
        try:
            text = k.decrypt(src.table, src.column, rid, r["source"])
        except DecryptError:
            result.unreadable.append(rid)
            continue
        if not text:
            result.empty.append(rid)
            continue
        result.filled.append(rid)
        values.append(index.value(_normalise(name, text)))
    if values:
        await uow.execute(
            f"UPDATE {src.table} AS t SET {index_column(name, version)} = v.value "  # noqa: S608
            f"FROM unnest($1::uuid[], $2::bigint[]) AS v(id, value) WHERE t.{src.key} = v.id",
            result.filled,
            values,
        )
    if len(rows) == limit:
        result.last = str(rows[-1]["rid"])
    return result


async def clear_index(uow: TenantUnitOfWork, name: str, version: int, limit: int) -> int:
    src = _SOURCES[name]
    column = index_column(name, version)
    status = await uow.execute(
        f"UPDATE {src.table} SET {column} = NULL WHERE {src.key} IN (SELECT {src.key} "  # noqa: S608
        f"FROM {src.table} WHERE {column} IS NOT NULL LIMIT $1 FOR UPDATE SKIP LOCKED)",
        limit,
    )
    return affected(status)


async def index_values_stored(uow: TenantUnitOfWork, name: str, version: int) -> int:
    src = _SOURCES[name]
    result: int = await uow.fetchval(
        f"SELECT count(*) FROM {src.table} WHERE {index_column(name, version)} IS NOT NULL"  # noqa: S608
    )
    return result
