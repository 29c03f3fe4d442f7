"""Every SQL statement that reads or writes residents' personal columns.

Keeping them in this one module is deliberate: field-level encryption
(issue #4) changes how personal values are stored and searched, and that
change must stay here, invisible to the service and the controllers.

All statements run through a :class:`~shared_gov.db.TenantUnitOfWork`, i.e.
inside a transaction already bound to one town's schema and role; names are
unqualified on purpose (``search_path`` resolves them).
"""

from __future__ import annotations

from dataclasses import astuple, fields
from datetime import date
from typing import Any

import asyncpg

from shared_gov.checkdigits import make_serial
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents.models import Resident

# Statement texts are assembled once, at import, from the fixed column list
# above; no runtime value ever reaches them.
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Resident))
_SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM residents"  # noqa: S608
_INSERT = (
    "INSERT INTO residents ("  # noqa: S608
    + ", ".join(COLUMNS)
    + ") VALUES ("
    + ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))
    + ")"
)
# Columns a change event may rewrite (everything but identity).
_MUTABLE = tuple(c for c in COLUMNS if c not in ("id", "atena_no"))
_UPDATE = (
    "UPDATE residents SET "  # noqa: S608
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(_MUTABLE, start=2))
    + ", updated_at = now() WHERE id = $1"
)


def _resident(row: asyncpg.Record) -> Resident:
    values = dict(row)
    values["id"] = str(values["id"])
    return Resident(**values)


async def next_atena_no(uow: TenantUnitOfWork) -> str:
    """A fresh 宛名番号: serial plus modulus-11 check digit."""
    return make_serial(await uow.fetchval("SELECT nextval('atena_seq')"))


async def create_household(uow: TenantUnitOfWork, head_id: str) -> str:
    """A new 世帯 headed by ``head_id``; returns its 世帯番号."""
    household_no = make_serial(await uow.fetchval("SELECT nextval('household_seq')"))
    await uow.execute(
        "INSERT INTO households (household_no, head_id) VALUES ($1, $2)", household_no, head_id
    )
    return household_no


async def household_head(uow: TenantUnitOfWork, household_no: str) -> tuple[bool, str | None]:
    """(exists, head id) of a household, locking it for the rest of the transaction."""
    row = await uow.fetchrow(
        "SELECT head_id FROM households WHERE household_no = $1 FOR UPDATE", household_no
    )
    if row is None:
        return False, None
    return True, None if row["head_id"] is None else str(row["head_id"])


async def set_household_head(uow: TenantUnitOfWork, household_no: str, head_id: str) -> None:
    await uow.execute(
        "UPDATE households SET head_id = $2 WHERE household_no = $1", household_no, head_id
    )


async def insert(uow: TenantUnitOfWork, resident: Resident) -> None:
    await uow.execute(_INSERT, *astuple(resident))


async def update(uow: TenantUnitOfWork, resident: Resident) -> None:
    values = [getattr(resident, c) for c in _MUTABLE]
    await uow.execute(_UPDATE, resident.id, *values)


async def get(uow: TenantUnitOfWork, resident_id: str, *, lock: bool = False) -> Resident | None:
    row = await uow.fetchrow(
        _SELECT + " WHERE id = $1" + (" FOR UPDATE" if lock else ""), resident_id
    )
    return None if row is None else _resident(row)


async def find_by_atena_no(uow: TenantUnitOfWork, atena_no: str) -> list[Resident]:
    rows = await uow.fetch(_SELECT + " WHERE atena_no = $1", atena_no)
    return [_resident(r) for r in rows]


async def find_by_individual_number(uow: TenantUnitOfWork, number: str) -> list[Resident]:
    rows = await uow.fetch(_SELECT + " WHERE individual_number = $1", number)
    return [_resident(r) for r in rows]


async def find_by_kana_and_birth(
    uow: TenantUnitOfWork, family_name_kana: str, birth_date: date, limit: int
) -> list[Resident]:
    rows = await uow.fetch(
        _SELECT + " WHERE family_name_kana = $1 AND birth_date = $2 ORDER BY atena_no LIMIT $3",
        family_name_kana,
        birth_date,
        limit,
    )
    return [_resident(r) for r in rows]


async def household_members(uow: TenantUnitOfWork, household_no: str) -> list[Resident]:
    rows = await uow.fetch(
        _SELECT + " WHERE household_no = $1 AND state = 'active' ORDER BY atena_no",
        household_no,
    )
    return [_resident(r) for r in rows]


async def append_history(
    uow: TenantUnitOfWork,
    resident: Resident,
    *,
    reason: str,
    move_date: date,
    notified_on: date,
    processed_on: date,
) -> None:
    await uow.execute(
        "INSERT INTO resident_history (resident_id, history_no, reason, move_date, notified_on, "
        "processed_on, snapshot) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        resident.id,
        resident.history_no,
        reason,
        move_date,
        notified_on,
        processed_on,
        resident.snapshot(),
    )


async def history(uow: TenantUnitOfWork, resident_id: str) -> list[dict[str, Any]]:
    rows = await uow.fetch(
        "SELECT history_no, reason, move_date, notified_on, processed_on, recorded_at, snapshot "
        "FROM resident_history WHERE resident_id = $1 ORDER BY history_no",
        resident_id,
    )
    return [dict(r) for r in rows]


async def count(uow: TenantUnitOfWork) -> int:
    """How many records the town holds (any state)."""
    result: int = await uow.fetchval("SELECT count(*) FROM residents")
    return result


async def sample_ids(uow: TenantUnitOfWork, limit: int) -> list[str]:
    """Ids of a few active residents, for demos and benchmarks."""
    rows = await uow.fetch(
        "SELECT id FROM residents WHERE state = 'active' ORDER BY atena_no LIMIT $1", limit
    )
    return [str(r["id"]) for r in rows]


_EXPORT_TABLES = (
    ("households", "household_no"),
    ("residents", "atena_no"),
    ("resident_history", "resident_id, history_no"),
)


async def export_all(uow: TenantUnitOfWork) -> dict[str, list[dict[str, Any]]]:
    """Every household, resident and history row of the town, as JSON objects."""
    document: dict[str, list[dict[str, Any]]] = {}
    for table, order in _EXPORT_TABLES:
        rows = await uow.fetch(
            f"SELECT to_jsonb(x) AS j FROM {table} x ORDER BY {order}"  # noqa: S608 - constants
        )
        document[table] = [r["j"] for r in rows]
    return document
