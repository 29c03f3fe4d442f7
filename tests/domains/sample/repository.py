"""Every SQL statement on the ``dogs`` and ``dog_history`` tables: the only
module that reads or writes the microchip column and the history's entries.

The microchip number is stored as an envelope bound to (town, table, column,
row id, key version) and found through the ``dog_microchip`` blind index: a
keyed hash of the normalised digits under every live key version (two while
the index key is rotated, see ``keys.index_rotation``). Statements run in
a unit of work bound to one town; names are unqualified on purpose.

The index hooks at the end are what the platform's blind-index rotation
calls (declared in ``spec.py``); the export is what offboarding writes.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared_gov.crypto.blind import normalize_digits
from shared_gov.crypto.envelope import DecryptError
from shared_gov.crypto.keyring import TownKeys, index_column
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.registry import IndexFill
from tests.domains.sample.models import Dog
from tests.domains.sample.spec import DOGS, HISTORY

INDEX = "dog_microchip"
_BLIND = (index_column(INDEX, 1), index_column(INDEX, 2))
_SELECT = "SELECT id, breed, microchip FROM dogs"


def _keys(uow: TenantUnitOfWork) -> TownKeys:
    if uow.keys is None:  # pragma: no cover - Database always provides keys
        raise RuntimeError("this unit of work has no keys")
    return uow.keys


def _dog(keys: TownKeys, row: asyncpg.Record) -> Dog:
    rid = str(row["id"])
    microchip = keys.decrypt(DOGS, "microchip", rid, row["microchip"])
    return Dog(id=rid, breed=row["breed"], microchip=microchip or "")


def _blind(keys: TownKeys, microchip: str) -> dict[str, int | None]:
    values: dict[str, int | None] = dict.fromkeys(_BLIND)
    for version, index in keys.index_versions[INDEX]:
        values[index_column(INDEX, version)] = index.value(normalize_digits(microchip))
    return values


def _entry_text(dog: Dog) -> str:
    return json.dumps({"breed": dog.breed, "microchip": dog.microchip}, ensure_ascii=False)


async def insert(uow: TenantUnitOfWork, dog: Dog) -> None:
    """The dog and the first entry of its history (登録), in the caller's transaction."""
    keys = _keys(uow)
    blind = _blind(keys, dog.microchip)
    await uow.execute(
        f"INSERT INTO dogs (id, breed, microchip, {', '.join(_BLIND)}) VALUES ($1, $2, $3, $4, $5)",
        dog.id,
        dog.breed,
        keys.encrypt(DOGS, "microchip", dog.id, dog.microchip),
        *blind.values(),
    )
    await uow.execute(
        "INSERT INTO dog_history (dog_id, entry_no, entry) VALUES ($1, 1, $2)",
        dog.id,
        keys.encrypt(HISTORY, "entry", f"{dog.id}/1", _entry_text(dog)),
    )


async def get(uow: TenantUnitOfWork, dog_id: str) -> Dog | None:
    row = await uow.fetchrow(_SELECT + " WHERE id = $1", dog_id)
    return None if row is None else _dog(_keys(uow), row)


async def find_by_microchip(uow: TenantUnitOfWork, microchip: str) -> list[Dog]:
    """Candidates by blind index under any live key version, then compared in plain."""
    keys = _keys(uow)
    values = keys.index_values(INDEX, normalize_digits(microchip))
    where = " OR ".join(
        f"{index_column(INDEX, version)} = ${i}" for i, (version, _) in enumerate(values, 1)
    )
    rows = await uow.fetch(
        f"{_SELECT} WHERE {where} ORDER BY id",
        *(value for _, value in values),
    )
    # A truncated hash may collide: only the real matches are returned.
    return [d for d in (_dog(keys, r) for r in rows) if d.microchip == microchip]


async def history(uow: TenantUnitOfWork, dog_id: str) -> list[dict[str, Any]]:
    """A dog's history entries, decrypted, in order."""
    keys = _keys(uow)
    rows = await uow.fetch(
        "SELECT entry_no, entry FROM dog_history WHERE dog_id = $1 ORDER BY entry_no", dog_id
    )
    entries: list[dict[str, Any]] = []
    for r in rows:
        text = keys.decrypt(HISTORY, "entry", f"{dog_id}/{r['entry_no']}", r["entry"])
        entries.append({"entry_no": r["entry_no"], **json.loads(text or "{}")})
    return entries


async def export_all(uow: TenantUnitOfWork) -> dict[str, list[dict[str, Any]]]:
    """Offboarding: every dog of the town and every history entry, decrypted."""
    keys = _keys(uow)
    rows = await uow.fetch(_SELECT + " ORDER BY id")
    dogs = [_dog(keys, r) for r in rows]
    return {
        "dogs": [{"id": d.id, "breed": d.breed, "microchip": d.microchip} for d in dogs],
        "dog_history": [
            {"dog_id": d.id, **entry} for d in dogs for entry in await history(uow, d.id)
        ],
    }


# --- blind-index key rotation (shared_gov.keys.index_rotation) -------------------

_FIRST_ID = "00000000-0000-0000-0000-000000000000"


def missing_index_sql(name: str, version: int) -> str:
    """Rows that should hold a value of ``name`` under ``version`` but do not."""
    return f"{index_column(name, version)} IS NULL"


async def index_backlog(uow: TenantUnitOfWork, name: str, version: int, skip: list[str]) -> int:
    result: int = await uow.fetchval(
        f"SELECT count(*) FROM dogs WHERE {missing_index_sql(name, version)} "
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
    """One batch: give up to ``limit`` rows after ``after`` their value under ``version``."""
    keys = _keys(uow)
    index = dict(keys.index_versions[name]).get(version)
    if index is None:
        raise LookupError(f"the town's keys lack version {version} of index {name}")
    rows = await uow.fetch(
        "SELECT id, microchip FROM dogs WHERE id > $1::uuid "
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
            text = keys.decrypt(DOGS, "microchip", rid, r["microchip"])
        except DecryptError:
            result.unreadable.append(rid)
            continue
        if not text:
            result.empty.append(rid)
            continue
        result.filled.append(rid)
        values.append(index.value(normalize_digits(text)))
    if values:
        await uow.execute(
            f"UPDATE dogs AS d SET {index_column(name, version)} = v.value "
            "FROM unnest($1::uuid[], $2::bigint[]) AS v(id, value) WHERE d.id = v.id",
            result.filled,
            values,
        )
    if len(rows) == limit:
        result.last = str(rows[-1]["id"])
    return result


async def clear_index(uow: TenantUnitOfWork, name: str, version: int, limit: int) -> int:
    column = index_column(name, version)
    status = await uow.execute(
        f"UPDATE dogs SET {column} = NULL WHERE id IN (SELECT id FROM dogs "
        f"WHERE {column} IS NOT NULL LIMIT $1 FOR UPDATE SKIP LOCKED)",
        limit,
    )
    return int(status.rsplit(" ", 1)[-1])


async def index_values_stored(uow: TenantUnitOfWork, name: str, version: int) -> int:
    result: int = await uow.fetchval(
        f"SELECT count(*) FROM dogs WHERE {index_column(name, version)} IS NOT NULL"
    )
    return result
