"""Every SQL statement on residents' records: reads, writes, history, counts, export.

The repository is this module and four siblings, the only modules that read
or write the residents' tables: personal values are encrypted on the way in
and decrypted on the way out (issue #4), and equality searches go through
blind indexes; services and controllers only ever see plaintext
:class:`Resident` objects. Here: the record's statements, reading one record
(:func:`get`, the GET path) and searching, writing, uniqueness, history and
the rule-1 flags as reads find them. Beside it: :mod:`.indexing` (what the
blind indexes hold), :mod:`.linkage` (rule 1's components kept up to date),
:mod:`.bulk` (the CSV import's and export's statements) and
:mod:`.index_hooks` (blind-index key rotation).

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
from collections.abc import Sequence
from dataclasses import fields
from datetime import date
from typing import Any

import asyncpg
import msgspec

from shared_gov import errors, metrics
from shared_gov.checkdigits import make_serial
from shared_gov.crypto.blind import compound, normalize_digits, normalize_kana
from shared_gov.crypto.envelope import DecryptError
from shared_gov.crypto.keyring import TownKeys, index_column, keys_of
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import messages as m
from shared_gov.domains.residents.indexing import BLIND, index_values_of, matching_sql
from shared_gov.domains.residents.models import Resident
from shared_gov.domains.residents.spec import RESIDENT_COLUMNS
from shared_gov.logs import get_logger

log = get_logger(__name__)

_ALL = tuple(f.name for f in fields(Resident))
ENCRYPTED = tuple(c for c in _ALL if c in RESIDENT_COLUMNS)
PLAIN = tuple(c for c in _ALL if c not in RESIDENT_COLUMNS)
_DATES = frozenset({"birth_date", "resident_since", "address_since", "notified_on", "removed_on"})

# Statement texts are assembled once, at import, from the fixed column lists
# above; no runtime value ever reaches them.
_SELECT = "SELECT " + ", ".join(PLAIN + ENCRYPTED) + " FROM residents"  # noqa: S608
# Rule 1 (docs/support-measures.md): the reads that return records to callers
# also return the stored answer to "is this record linked to a protected
# person" (tenant revision t0011, kept up to date by every write that can
# change it): no further statement, no decryption.
_SELECT_READ = (
    "SELECT "  # noqa: S608
    + ", ".join(PLAIN + ENCRYPTED)
    + ", protection_linked FROM residents"
)
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
    return keys_of(uow)


class _Read(Resident):
    """A record as a caller-facing read returned it, with its stored rule-1
    flag (``protection_linked``, see :func:`linked_residents`).

    Not a field: snapshots, comparisons of fields and responses do not see
    it. ``dataclasses.replace`` of a read record gives one without it (a
    changed record must be asked about again).
    """

    __slots__ = ("protection_linked",)
    protection_linked: bool
    """The record's component holds a person under 支援措置 (t0011)."""


def _resident(keys: TownKeys, row: asyncpg.Record) -> Resident:
    rid = str(row["id"])
    values: dict[str, Any] = {name: row[name] for name in PLAIN}
    values["id"] = rid
    for name in ENCRYPTED:
        plain = keys.decrypt("residents", name, rid, row[name])
        values[name] = date.fromisoformat(plain) if name in _DATES and plain else plain
    if len(row) == len(PLAIN) + len(ENCRYPTED):
        return Resident(**values)
    read = _Read(**values)
    read.protection_linked = row["protection_linked"]
    return read


def _row(keys: TownKeys, r: Resident) -> dict[str, Any]:
    """Column values to store: plain ones as they are, personal ones encrypted."""
    values: dict[str, Any] = {name: getattr(r, name) for name in PLAIN}
    for name in ENCRYPTED:
        value = getattr(r, name)
        text = value.isoformat() if isinstance(value, date) else value
        values[name] = keys.encrypt("residents", name, r.id, text)
    values.update(index_values_of(keys, r))
    return values


async def _candidates(
    uow: TenantUnitOfWork,
    name: str,
    values: Sequence[tuple[int, int]],
    *,
    active_only: bool = False,
) -> list[Resident]:
    """Rows holding any of ``values`` ((key version, index value) pairs) in index ``name``."""
    keys = _keys(uow)
    where = " WHERE " + matching_sql(name, tuple(v for v, _ in values))
    where += " AND state = 'active'" if active_only else ""
    rows = await uow.fetch(
        _SELECT_READ + where + " ORDER BY atena_no", *(x for _, x in values), town_plan=True
    )
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


async def household_protected(
    uow: TenantUnitOfWork, household_no: str
) -> tuple[bool, str | None, bool]:
    """(exists, head id, in a linked component) of a household, for reading it.

    A household's people are all in one component, so it is linked when any
    of them is: one statement, plain columns.
    """
    row = await uow.fetchrow(
        "SELECT h.head_id, (EXISTS (SELECT FROM residents AS r "
        "WHERE r.household_no = h.household_no AND r.protection_linked) "
        "OR EXISTS (SELECT FROM household_memberships AS m JOIN residents AS r "
        "ON r.id = m.resident_id WHERE m.household_no = h.household_no AND r.protection_linked) "
        "OR EXISTS (SELECT FROM residents AS r WHERE r.id = h.head_id AND r.protection_linked)) "
        "AS linked FROM households AS h WHERE h.household_no = $1",
        household_no,
    )
    if row is None:
        return False, None, False
    head = None if row["head_id"] is None else str(row["head_id"])
    return True, head, bool(row["linked"])


def _read_flag(record: Resident) -> bool | None:
    """The stored ``protection_linked`` as the read of ``record`` found it."""
    if not isinstance(record, _Read):
        return None
    try:
        return record.protection_linked
    except AttributeError:  # a read record changed by dataclasses.replace
        return None


async def linked_residents(uow: TenantUnitOfWork, records: Sequence[Resident]) -> set[str]:
    """Ids of the unprotected ``records`` whose component holds a protected person.

    Rule 1's ``linked_to_protected`` (docs/support-measures.md). The reads that
    return records to callers (:func:`get`, searches, household members)
    already carry the stored flag: for them this costs no round trip. Records
    from elsewhere (just written, say) are asked about in one query.
    """
    linked: set[str] = set()
    unknown: list[str] = []
    for record in records:
        if record.support_measure:
            continue
        flag = _read_flag(record)
        if flag is None:
            unknown.append(record.id)
        elif flag:
            linked.add(record.id)
    if unknown:
        rows = await uow.fetch(
            "SELECT id::text AS id FROM residents WHERE id = ANY($1::uuid[]) "
            "AND protection_linked AND NOT support_measure",
            sorted(set(unknown)),
        )
        linked |= {r["id"] for r in rows}
    return linked


async def protected_residents(uow: TenantUnitOfWork, resident_ids: Sequence[str]) -> set[str]:
    """Which of these residents are protected or linked (rule 1, one query).

    The same notion as the service's ``linked_to_protected``
    (docs/support-measures.md), for the events feed, the access report and
    the one-stop move.
    """
    wanted = sorted(set(resident_ids))
    if not wanted:
        return set()
    rows = await uow.fetch(
        "SELECT id::text AS id FROM residents WHERE id = ANY($1::uuid[]) "
        "AND (support_measure OR protection_linked)",
        wanted,
    )
    return {r["id"] for r in rows}


async def set_household_head(uow: TenantUnitOfWork, household_no: str, head_id: str) -> None:
    await uow.execute(
        "UPDATE households SET head_id = $2 WHERE household_no = $1", household_no, head_id
    )


async def _ensure_unique(uow: TenantUnitOfWork, resident: Resident) -> None:
    """Individual number and 住民票コード are unique among active residents.

    The advisory lock on (town, index column, value) serialises two
    registrations of the same number; candidates sharing the index value are
    decrypted and compared, since the truncated index has deliberate
    collisions. During an index key rotation a writer locks the value under
    every key version it knows, oldest first: two writers that know different
    sets of versions (one has not heard of the rotation yet, or of its end)
    always share one version, so they still exclude each other, and the
    common order rules out deadlocks.
    """
    keys = _keys(uow)
    # Shared with other registrations, exclusive for a bulk import (one lock
    # for the whole file instead of one per number, which would exhaust
    # PostgreSQL's lock table on a real register).
    await uow.execute(_REGISTRATION_LOCK_SHARED, f"{uow.code}:registration")
    for name, message in (
        ("individual_number", m.DUPLICATE_INDIVIDUAL_NUMBER),
        ("juminhyo_code", m.DUPLICATE_JUMINHYO_CODE),
    ):
        mine = getattr(resident, name)
        if not mine:
            continue
        values = keys.index_values(name, normalize_digits(mine))
        for version, value in values:
            await uow.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                f"{uow.code}:{index_column(name, version)}:{value}",
            )
        for other in await _candidates(uow, name, values, active_only=True):
            if other.id != resident.id and getattr(other, name) == mine:
                raise errors.conflict(message)


async def insert(uow: TenantUnitOfWork, resident: Resident) -> None:
    await _ensure_unique(uow, resident)
    values = _row(_keys(uow), resident)
    await uow.execute(_INSERT, *(values[c] for c in _WRITTEN))


async def update(uow: TenantUnitOfWork, resident: Resident) -> None:
    values = _row(_keys(uow), resident)
    await uow.execute(_UPDATE, resident.id, *(values[c] for c in _MUTABLE))


async def get(uow: TenantUnitOfWork, resident_id: str, *, lock: bool = False) -> Resident | None:
    # The hot reads keep their plans per town (TenantUnitOfWork.town_statement).
    row = await uow.fetchrow(
        _SELECT_READ + " WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        resident_id,
        town_plan=True,
    )
    return None if row is None else _resident(_keys(uow), row)


async def find_by_atena_no(uow: TenantUnitOfWork, atena_no: str) -> list[Resident]:
    rows = await uow.fetch(_SELECT_READ + " WHERE atena_no = $1", atena_no, town_plan=True)
    keys = _keys(uow)
    return [_resident(keys, r) for r in rows]


async def _find(uow: TenantUnitOfWork, name: str, wanted: str, field: str) -> list[Resident]:
    found = await _candidates(uow, name, _keys(uow).index_values(name, wanted))
    return [r for r in found if (v := getattr(r, field)) and normalize_digits(v) == wanted]


async def find_by_individual_number(uow: TenantUnitOfWork, number: str) -> list[Resident]:
    wanted = normalize_digits(number)
    return await _find(uow, "individual_number", wanted, "individual_number")


async def find_by_juminhyo_code(uow: TenantUnitOfWork, code: str) -> list[Resident]:
    return await _find(uow, "juminhyo_code", normalize_digits(code), "juminhyo_code")


async def find_by_phone(uow: TenantUnitOfWork, phone: str) -> list[Resident]:
    return await _find(uow, "phone", normalize_digits(phone), "phone")


async def find_by_kana_and_birth(
    uow: TenantUnitOfWork, family_name_kana: str, birth_date: date, limit: int
) -> list[Resident]:
    kana = normalize_kana(family_name_kana)
    values = _keys(uow).index_values("kana_birth", compound(kana, birth_date.isoformat()))
    found = await _candidates(uow, "kana_birth", values)
    matches = [
        r
        for r in found
        if normalize_kana(r.family_name_kana) == kana and r.birth_date == birth_date
    ]
    return matches[:limit]


async def household_members(uow: TenantUnitOfWork, household_no: str) -> list[Resident]:
    rows = await uow.fetch(
        _SELECT_READ + " WHERE household_no = $1 AND state = 'active' ORDER BY atena_no",
        household_no,
        town_plan=True,
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
        seal("snapshot", _snapshot(resident).decode()),
    )


def _snapshot(resident: Resident) -> bytes:
    """``resident.snapshot()`` as JSON (UTF-8): msgspec encodes the dataclass
    itself, field by field, dates in ISO form, about 20 times faster than
    json.dumps of the dict (tests check both give the same document)."""
    return msgspec.json.encode(resident)


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


UNREADABLE = "integrity_error"
"""What an entry whose stored content does not decrypt says instead of it."""

_HISTORY_SEALED = ("reason", "move_date", "notified_on", "snapshot")


async def history(uow: TenantUnitOfWork, resident_id: str) -> list[dict[str, Any]]:
    """Every entry of one record's 履歴, in order, decrypted.

    An entry whose envelope does not decrypt (tampered with or damaged: a
    copy from another row, bytes planted through the town's role) is an
    integrity error, not a reason to withhold the rest: it is returned with
    its number and plain dates only and ``unreadable`` set (never a guess at
    its content), logged as an error naming the row and counted in
    ``shared_gov_integrity_errors`` for the operators' alert.
    """
    rows = await uow.fetch(
        "SELECT history_no, reason, move_date, notified_on, processed_on, recorded_at, snapshot "
        "FROM resident_history WHERE resident_id = $1 ORDER BY history_no",
        resident_id,
        town_plan=True,
    )
    keys = _keys(uow)
    entries: list[dict[str, Any]] = []
    for r in rows:
        place = f"{resident_id}/{r['history_no']}"
        opened: dict[str, str] = {}
        for column in _HISTORY_SEALED:
            try:
                opened[column] = keys.decrypt("resident_history", column, place, r[column]) or ""
            except DecryptError:
                metrics.INTEGRITY_ERRORS.labels(f"resident_history.{column}").inc()
                log.error(
                    "crypto.integrity_error",
                    tenant=uow.code,
                    column=f"resident_history.{column}",
                    row=place,
                )
                break
        if len(opened) < len(_HISTORY_SEALED):
            entries.append(
                {
                    "history_no": r["history_no"],
                    "processed_on": r["processed_on"],
                    "recorded_at": r["recorded_at"],
                    "unreadable": UNREADABLE,
                }
            )
            continue
        entries.append(
            {
                "history_no": r["history_no"],
                "reason": opened["reason"],
                "move_date": date.fromisoformat(opened["move_date"]),
                "notified_on": date.fromisoformat(opened["notified_on"]),
                "processed_on": r["processed_on"],
                "recorded_at": r["recorded_at"],
                "snapshot": json.loads(opened["snapshot"] or "{}"),
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
