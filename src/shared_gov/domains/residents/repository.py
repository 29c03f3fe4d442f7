"""Every SQL statement that reads or writes residents' personal columns.

Keeping them in this one module is deliberate: this is where personal values
are encrypted on the way in and decrypted on the way out (issue #4), and
where equality searches go through blind indexes; services and controllers
only ever see plaintext :class:`Resident` objects.

Storage: each personal column holds an AES-256-GCM envelope bound to (town,
table, column, row id, key version) — a ciphertext copied to another row,
column or town does not decrypt. Searches compute a truncated HMAC of the
normalised value, fetch the few candidate rows sharing it, decrypt and
compare. Uniqueness of the individual number and 住民票コード among active
residents is enforced under a transaction-level advisory lock on the index
value, since a unique index cannot see through encryption.

All statements run through a :class:`~shared_gov.db.TenantUnitOfWork`, i.e.
inside a transaction already bound to one town's schema and role; names are
unqualified on purpose (``search_path`` resolves them).
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import date
from typing import Any

import asyncpg

from shared_gov import errors
from shared_gov.checkdigits import make_serial
from shared_gov.crypto.blind import compound, normalize_digits, normalize_kana
from shared_gov.crypto.keyring import RESIDENT_COLUMNS, TownKeys
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents.models import Resident

_ALL = tuple(f.name for f in fields(Resident))
ENCRYPTED = tuple(c for c in _ALL if c in RESIDENT_COLUMNS)
PLAIN = tuple(c for c in _ALL if c not in RESIDENT_COLUMNS)
BLIND = ("bidx_individual_number", "bidx_kana_birth", "bidx_phone", "bidx_juminhyo_code")
_DATES = frozenset({"birth_date", "resident_since", "address_since", "notified_on", "removed_on"})

# Statement texts are assembled once, at import, from the fixed column lists
# above; no runtime value ever reaches them.
_SELECT = "SELECT " + ", ".join(PLAIN + ENCRYPTED) + " FROM residents"  # noqa: S608
_WRITTEN = PLAIN + ENCRYPTED + BLIND
_INSERT = (
    "INSERT INTO residents ("  # noqa: S608
    + ", ".join(_WRITTEN)
    + ") VALUES ("
    + ", ".join(f"${i}" for i in range(1, len(_WRITTEN) + 1))
    + ")"
)
# Columns a change event may rewrite (everything but identity).
_MUTABLE = tuple(c for c in _WRITTEN if c not in ("id", "atena_no"))
_UPDATE = (
    "UPDATE residents SET "  # noqa: S608
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(_MUTABLE, start=2))
    + ", updated_at = now() WHERE id = $1"
)


_REGISTRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
_REGISTRATION_LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))"


def _keys(uow: TenantUnitOfWork) -> TownKeys:
    if uow.keys is None:  # pragma: no cover - Database always provides keys
        raise RuntimeError("this unit of work has no keys")
    return uow.keys


def _resident(keys: TownKeys, row: asyncpg.Record) -> Resident:
    rid = str(row["id"])
    values: dict[str, Any] = {name: row[name] for name in PLAIN}
    values["id"] = rid
    for name in ENCRYPTED:
        plain = keys.decrypt("residents", name, rid, row[name])
        values[name] = date.fromisoformat(plain) if name in _DATES and plain else plain
    return Resident(**values)


def _blind(keys: TownKeys, r: Resident) -> dict[str, int | None]:
    """Blind-index values of a record (None where the field is empty)."""
    return {
        "bidx_individual_number": keys.index(
            "individual_number", normalize_digits(r.individual_number)
        )
        if r.individual_number
        else None,
        "bidx_kana_birth": keys.index(
            "kana_birth", compound(normalize_kana(r.family_name_kana), r.birth_date.isoformat())
        ),
        "bidx_phone": keys.index("phone", normalize_digits(r.phone)) if r.phone else None,
        "bidx_juminhyo_code": keys.index("juminhyo_code", normalize_digits(r.juminhyo_code))
        if r.juminhyo_code
        else None,
    }


def _row(keys: TownKeys, r: Resident) -> dict[str, Any]:
    """Column values to store: plain ones as they are, personal ones encrypted."""
    values: dict[str, Any] = {name: getattr(r, name) for name in PLAIN}
    for name in ENCRYPTED:
        value = getattr(r, name)
        text = value.isoformat() if isinstance(value, date) else value
        values[name] = keys.encrypt("residents", name, r.id, text)
    values.update(_blind(keys, r))
    return values


async def _candidates(
    uow: TenantUnitOfWork, column: str, value: int, *, active_only: bool = False
) -> list[Resident]:
    keys = _keys(uow)
    where = f" WHERE {column} = $1" + (" AND state = 'active'" if active_only else "")
    rows = await uow.fetch(_SELECT + where + " ORDER BY atena_no", value)
    return [_resident(keys, r) for r in rows]


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


async def _ensure_unique(uow: TenantUnitOfWork, resident: Resident) -> None:
    """Individual number and 住民票コード are unique among active residents.

    The advisory lock on (town, index, value) serialises two registrations of
    the same number; candidates sharing the index value are decrypted and
    compared, since the truncated index has deliberate collisions.
    """
    keys = _keys(uow)
    blind = _blind(keys, resident)
    # Shared with other registrations, exclusive for a bulk import (one lock
    # for the whole file instead of one per number, which would exhaust
    # PostgreSQL's lock table on a real register).
    await uow.execute(_REGISTRATION_LOCK_SHARED, f"{uow.code}:registration")
    for field_name, column, message in (
        ("individual_number", "bidx_individual_number", "this individual number"),
        ("juminhyo_code", "bidx_juminhyo_code", "this 住民票コード"),
    ):
        value = blind[column]
        if value is None:
            continue
        await uow.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"{uow.code}:{column}:{value}",
        )
        for other in await _candidates(uow, column, value, active_only=True):
            if other.id != resident.id and getattr(other, field_name) == getattr(
                resident, field_name
            ):
                raise errors.conflict(f"another resident of this town has {message}")


async def insert(uow: TenantUnitOfWork, resident: Resident) -> None:
    await _ensure_unique(uow, resident)
    values = _row(_keys(uow), resident)
    await uow.execute(_INSERT, *(values[c] for c in _WRITTEN))


async def update(uow: TenantUnitOfWork, resident: Resident) -> None:
    values = _row(_keys(uow), resident)
    await uow.execute(_UPDATE, resident.id, *(values[c] for c in _MUTABLE))


async def get(uow: TenantUnitOfWork, resident_id: str, *, lock: bool = False) -> Resident | None:
    row = await uow.fetchrow(
        _SELECT + " WHERE id = $1" + (" FOR UPDATE" if lock else ""), resident_id
    )
    return None if row is None else _resident(_keys(uow), row)


async def find_by_atena_no(uow: TenantUnitOfWork, atena_no: str) -> list[Resident]:
    rows = await uow.fetch(_SELECT + " WHERE atena_no = $1", atena_no)
    keys = _keys(uow)
    return [_resident(keys, r) for r in rows]


async def find_by_individual_number(uow: TenantUnitOfWork, number: str) -> list[Resident]:
    wanted = normalize_digits(number)
    value = _keys(uow).index("individual_number", wanted)
    found = await _candidates(uow, "bidx_individual_number", value)
    return [
        r for r in found if r.individual_number and normalize_digits(r.individual_number) == wanted
    ]


async def find_by_juminhyo_code(uow: TenantUnitOfWork, code: str) -> list[Resident]:
    wanted = normalize_digits(code)
    found = await _candidates(uow, "bidx_juminhyo_code", _keys(uow).index("juminhyo_code", wanted))
    return [r for r in found if r.juminhyo_code and normalize_digits(r.juminhyo_code) == wanted]


async def find_by_phone(uow: TenantUnitOfWork, phone: str) -> list[Resident]:
    wanted = normalize_digits(phone)
    found = await _candidates(uow, "bidx_phone", _keys(uow).index("phone", wanted))
    return [r for r in found if r.phone and normalize_digits(r.phone) == wanted]


async def find_by_kana_and_birth(
    uow: TenantUnitOfWork, family_name_kana: str, birth_date: date, limit: int
) -> list[Resident]:
    kana = normalize_kana(family_name_kana)
    value = _keys(uow).index("kana_birth", compound(kana, birth_date.isoformat()))
    found = await _candidates(uow, "bidx_kana_birth", value)
    matches = [
        r
        for r in found
        if normalize_kana(r.family_name_kana) == kana and r.birth_date == birth_date
    ]
    return matches[:limit]


async def household_members(uow: TenantUnitOfWork, household_no: str) -> list[Resident]:
    rows = await uow.fetch(
        _SELECT + " WHERE household_no = $1 AND state = 'active' ORDER BY atena_no",
        household_no,
    )
    keys = _keys(uow)
    return [_resident(keys, r) for r in rows]


def _history_row(
    keys: TownKeys,
    resident: Resident,
    reason: str,
    move_date: date,
    notified_on: date,
    processed_on: date,
) -> tuple[Any, ...]:
    """One history entry as stored: 事由, 異動日, 届出日 and the snapshot encrypted."""
    place = f"{resident.id}/{resident.history_no}"

    def seal(column: str, value: str) -> bytes | None:
        return keys.encrypt("resident_history", column, place, value)

    return (
        resident.id,
        resident.history_no,
        seal("reason", reason),
        seal("move_date", move_date.isoformat()),
        seal("notified_on", notified_on.isoformat()),
        processed_on,
        seal("snapshot", json.dumps(resident.snapshot(), ensure_ascii=False)),
    )


_HISTORY_COLUMNS = (
    "resident_id",
    "history_no",
    "reason",
    "move_date",
    "notified_on",
    "processed_on",
    "snapshot",
)


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
        *_history_row(_keys(uow), resident, reason, move_date, notified_on, processed_on),
    )


async def history(uow: TenantUnitOfWork, resident_id: str) -> list[dict[str, Any]]:
    rows = await uow.fetch(
        "SELECT history_no, reason, move_date, notified_on, processed_on, recorded_at, snapshot "
        "FROM resident_history WHERE resident_id = $1 ORDER BY history_no",
        resident_id,
    )
    keys = _keys(uow)
    entries = []
    for r in rows:
        place = f"{resident_id}/{r['history_no']}"

        def unseal(column: str, row: Any = r, where: str = place) -> str:
            return keys.decrypt("resident_history", column, where, row[column]) or ""

        entries.append(
            {
                "history_no": r["history_no"],
                "reason": unseal("reason"),
                "move_date": date.fromisoformat(unseal("move_date")),
                "notified_on": date.fromisoformat(unseal("notified_on")),
                "processed_on": r["processed_on"],
                "recorded_at": r["recorded_at"],
                "snapshot": json.loads(unseal("snapshot") or "{}"),
            }
        )
    return entries


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


async def export_all(uow: TenantUnitOfWork) -> dict[str, list[dict[str, Any]]]:
    """Every household, resident and history entry of the town, decrypted, as JSON."""
    keys = _keys(uow)
    households = await uow.fetch(
        "SELECT household_no, head_id::text AS head_id FROM households ORDER BY household_no"
    )
    residents = [_resident(keys, r) for r in await uow.fetch(_SELECT + " ORDER BY atena_no")]
    entries: list[dict[str, Any]] = []
    for resident in residents:
        for entry in await history(uow, resident.id):
            entries.append({"resident_id": resident.id, **entry})
    return {
        "households": [dict(h) for h in households],
        "residents": [r.snapshot() for r in residents],
        "resident_history": json.loads(json.dumps(entries, default=str)),
    }


async def existing_unique_values(
    uow: TenantUnitOfWork, individual_numbers: list[str], juminhyo_codes: list[str]
) -> tuple[set[str], set[str]]:
    """Which of these numbers active residents of the town already have (bulk import)."""
    keys = _keys(uow)
    in_values = {keys.index("individual_number", normalize_digits(n)) for n in individual_numbers}
    jc_values = {keys.index("juminhyo_code", normalize_digits(c)) for c in juminhyo_codes}
    # Registrations hold this lock shared: while the import holds it, none can
    # commit a duplicate behind the check below.
    await uow.execute(_REGISTRATION_LOCK, f"{uow.code}:registration")
    rows = await uow.fetch(
        "SELECT id, individual_number, juminhyo_code FROM residents WHERE state = 'active' "
        "AND (bidx_individual_number = ANY($1::bigint[]) "
        "OR bidx_juminhyo_code = ANY($2::bigint[]))",
        sorted(in_values),
        sorted(jc_values),
    )
    # Only the two numbers are decrypted: candidates grow with the town (the
    # indexes collide on purpose), whole records would cost ten times more.
    numbers: set[str] = set()
    codes: set[str] = set()
    for r in rows:
        rid = str(r["id"])
        number = keys.decrypt("residents", "individual_number", rid, r["individual_number"])
        code = keys.decrypt("residents", "juminhyo_code", rid, r["juminhyo_code"])
        if number:
            numbers.add(number)
        if code:
            codes.add(code)
    return numbers & set(individual_numbers), codes & set(juminhyo_codes)


async def copy_in(
    uow: TenantUnitOfWork,
    residents: list[Resident],
    households: dict[str, str | None],
    processed_on: date,
    on_progress: Any = None,
) -> None:
    """Bulk-load records with COPY: households, residents, one history entry each."""
    keys = _keys(uow)
    await uow.copy_records("households", ("household_no", "head_id"), list(households.items()))
    chunk = 2000
    for start in range(0, len(residents), chunk):
        batch = residents[start : start + chunk]
        rows = []
        history_rows = []
        for r in batch:
            values = _row(keys, r)
            rows.append(tuple(values[c] for c in _WRITTEN))
            history_rows.append(
                _history_row(keys, r, "import", r.address_since, r.notified_on, processed_on)
            )
        await uow.copy_records("residents", _WRITTEN, rows)
        await uow.copy_records("resident_history", _HISTORY_COLUMNS, history_rows)
        if on_progress:
            on_progress(len(batch))
    await uow.execute(
        "SELECT setval('atena_seq', GREATEST((SELECT max(left(atena_no, 7)::bigint) "
        "FROM residents), 1)), setval('household_seq', GREATEST((SELECT "
        "max(left(household_no, 7)::bigint) FROM households), 1))"
    )


async def iter_all(uow: TenantUnitOfWork) -> Any:
    """Every record of the town, decrypted, in 宛名番号 order (streamed)."""
    keys = _keys(uow)
    async for row in uow.cursor(_SELECT + " ORDER BY atena_no"):
        yield _resident(keys, row)


async def find_atena_numbers(uow: TenantUnitOfWork, atena_numbers: list[str]) -> list[Resident]:
    """Residents holding any of these 宛名番号."""
    rows = await uow.fetch(_SELECT + " WHERE atena_no = ANY($1::text[])", atena_numbers)
    keys = _keys(uow)
    return [_resident(keys, r) for r in rows]


async def existing_households(uow: TenantUnitOfWork, household_numbers: list[str]) -> set[str]:
    rows = await uow.fetch(
        "SELECT household_no FROM households WHERE household_no = ANY($1::text[])",
        household_numbers,
    )
    return {r["household_no"] for r in rows}
