"""Every statement on ``kaigo_insured`` (被保険者): the only code that reads or
writes its envelopes.

The insured number is an envelope found through the ``kaigo_insured_number``
blind index under every live key version (two while the index key rotates);
candidates are decrypted and compared in plain, since a truncated hash may
collide. Periods, 住所地特例, the card and the notes are one JSON envelope each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from shared_gov.crypto.blind import normalize_digits
from shared_gov.crypto.keyring import TownKeys, index_column
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo.models import (
    Card,
    InsuredPerson,
    Tokurei,
    period_from_json,
    period_to_json,
)
from shared_gov.domains.kaigo.repository.common import affected, keys, seal, unseal
from shared_gov.domains.kaigo.rules import Category
from shared_gov.domains.kaigo.spec import INSURED, INSURED_NUMBER_INDEX
from shared_gov.domains.kaigo.vocabulary import make_insured_number

_BLIND = (index_column(INSURED_NUMBER_INDEX, 1), index_column(INSURED_NUMBER_INDEX, 2))
_COLUMNS = (
    "id, resident_id, status, category, insurer_town, insured_number, periods, tokurei, "
    "card, notes, version"
)
_SELECT = f"SELECT {_COLUMNS} FROM kaigo_insured"  # noqa: S608 - constants


def _person(k: TownKeys, row: asyncpg.Record) -> InsuredPerson:
    rid = str(row["id"])
    tokurei = unseal(k, INSURED, "tokurei", rid, row["tokurei"])
    card = unseal(k, INSURED, "card", rid, row["card"])
    notes = unseal(k, INSURED, "notes", rid, row["notes"])
    return InsuredPerson(
        id=rid,
        resident_id=str(row["resident_id"]),
        status=row["status"],
        category=Category(row["category"]),
        insurer_town=row["insurer_town"],
        insured_number=k.decrypt(INSURED, "insured_number", rid, row["insured_number"]),
        periods=[
            period_from_json(p) for p in unseal(k, INSURED, "periods", rid, row["periods"]) or []
        ],
        tokurei=Tokurei.from_json(tokurei) if tokurei else None,
        card=Card.from_json(card) if card else Card(),
        notes=notes,
        version=row["version"],
    )


def _blind(k: TownKeys, number: str | None) -> list[int | None]:
    values: dict[str, int | None] = dict.fromkeys(_BLIND)
    if number is not None:
        for version, index in k.index_versions[INSURED_NUMBER_INDEX]:
            values[index_column(INSURED_NUMBER_INDEX, version)] = index.value(
                normalize_digits(number)
            )
    return list(values.values())


def _sealed(k: TownKeys, p: InsuredPerson) -> list[Any]:
    return [
        k.encrypt(INSURED, "insured_number", p.id, p.insured_number),
        seal(k, INSURED, "periods", p.id, [period_to_json(x) for x in p.periods]),
        seal(k, INSURED, "tokurei", p.id, p.tokurei.to_json() if p.tokurei else None),
        seal(k, INSURED, "card", p.id, p.card.to_json()),
        seal(k, INSURED, "notes", p.id, p.notes),
    ]


async def next_number(uow: TenantUnitOfWork) -> str:
    """A new insured number of the town (serial and check digit)."""
    serial: int = await uow.fetchval("SELECT nextval('kaigo_insured_seq')")
    return make_insured_number(serial)


async def insert(uow: TenantUnitOfWork, p: InsuredPerson) -> None:
    k = keys(uow)
    await uow.execute(
        f"INSERT INTO kaigo_insured (id, resident_id, status, category, insurer_town, "  # noqa: S608
        f"insured_number, periods, tokurei, card, notes, {', '.join(_BLIND)}, version) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        p.id,
        p.resident_id,
        p.status,
        p.category.value,
        p.insurer_town,
        *_sealed(k, p),
        *_blind(k, p.insured_number),
        p.version,
    )


async def update(uow: TenantUnitOfWork, p: InsuredPerson) -> None:
    """Write ``p`` over its row and bump its version (the caller holds the row lock)."""
    k = keys(uow)
    status = await uow.execute(
        "UPDATE kaigo_insured SET status = $2, category = $3, insurer_town = $4, "  # noqa: S608
        "insured_number = $5, periods = $6, tokurei = $7, card = $8, notes = $9, "
        f"{_BLIND[0]} = $10, {_BLIND[1]} = $11, version = version + 1, updated_at = now() "
        "WHERE id = $1",
        p.id,
        p.status,
        p.category.value,
        p.insurer_town,
        *_sealed(k, p),
        *_blind(k, p.insured_number),
    )
    if affected(status) != 1:  # pragma: no cover - the row is locked by the caller
        raise RuntimeError("insured person vanished under its lock")
    p.version += 1


async def get(uow: TenantUnitOfWork, insured_id: str) -> InsuredPerson | None:
    row = await uow.fetchrow(_SELECT + " WHERE id = $1", insured_id)
    return None if row is None else _person(keys(uow), row)


async def by_resident(
    uow: TenantUnitOfWork, resident_id: str, *, lock: bool = False
) -> InsuredPerson | None:
    row = await uow.fetchrow(
        _SELECT + " WHERE resident_id = $1" + (" FOR UPDATE" if lock else ""), resident_id
    )
    return None if row is None else _person(keys(uow), row)


async def by_residents(
    uow: TenantUnitOfWork, resident_ids: Sequence[str]
) -> dict[str, InsuredPerson]:
    if not resident_ids:
        return {}
    rows = await uow.fetch(_SELECT + " WHERE resident_id = ANY($1::uuid[])", list(resident_ids))
    k = keys(uow)
    return {str(r["resident_id"]): _person(k, r) for r in rows}


async def find_by_number(uow: TenantUnitOfWork, number: str) -> list[InsuredPerson]:
    """By insured number: blind-index candidates under every live key, then compared."""
    k = keys(uow)
    values = k.index_values(INSURED_NUMBER_INDEX, normalize_digits(number))
    where = " OR ".join(
        f"{index_column(INSURED_NUMBER_INDEX, version)} = ${i}"
        for i, (version, _) in enumerate(values, 1)
    )
    rows = await uow.fetch(f"{_SELECT} WHERE {where} ORDER BY id", *(v for _, v in values))
    return [p for p in (_person(k, r) for r in rows) if p.insured_number == number]


async def every(
    uow: TenantUnitOfWork, *, status: Sequence[str] | None = None
) -> list[InsuredPerson]:
    """Every insured person of the town (reports, export), decrypted."""
    if status is None:
        rows = await uow.fetch(_SELECT + " ORDER BY id")
    else:
        rows = await uow.fetch(_SELECT + " WHERE status = ANY($1) ORDER BY id", list(status))
    k = keys(uow)
    return [_person(k, r) for r in rows]


async def count(uow: TenantUnitOfWork) -> int:
    result: int = await uow.fetchval("SELECT count(*) FROM kaigo_insured")
    return result
