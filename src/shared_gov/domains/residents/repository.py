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

Blind-index key rotation: each index has two columns (``bidx_<name>`` for
odd key versions, ``bidx_<name>_alt`` for even ones). Writes store a value
under every live version of the town's index key and NULL in the other
column; searches and the uniqueness check look for any live version's value.
Outside a rotation that is one column; during one, both (see
:mod:`shared_gov.keys.index_rotation`).

All statements run through a :class:`~shared_gov.db.TenantUnitOfWork`, i.e.
inside a transaction already bound to one town's schema and role; names are
unqualified on purpose (``search_path`` resolves them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from functools import lru_cache
from typing import Any

import asyncpg
import msgspec

from shared_gov import errors
from shared_gov.checkdigits import make_serial
from shared_gov.crypto.blind import BlindIndex, compound, normalize_digits, normalize_kana
from shared_gov.crypto.envelope import DecryptError
from shared_gov.crypto.keyring import TownKeys, index_column, keys_of
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.registry import IndexFill
from shared_gov.domains.residents import messages as m
from shared_gov.domains.residents.models import Resident
from shared_gov.domains.residents.spec import RESIDENT_COLUMNS, SPEC

RESIDENT_INDEXES: tuple[str, ...] = tuple(i.name for i in SPEC.blind_indexes)
"""The blind indexes stored beside residents' rows (declared in ``spec.py``)."""

_ALL = tuple(f.name for f in fields(Resident))
ENCRYPTED = tuple(c for c in _ALL if c in RESIDENT_COLUMNS)
PLAIN = tuple(c for c in _ALL if c not in RESIDENT_COLUMNS)
# Both columns of every index (odd and even key versions), always written.
BLIND = tuple(index_column(name, v) for name in RESIDENT_INDEXES for v in (1, 2))
_DATES = frozenset({"birth_date", "resident_since", "address_since", "notified_on", "removed_on"})
INDEX_SOURCES: dict[str, tuple[str, ...]] = {i.name: i.sources for i in SPEC.blind_indexes}
"""The personal fields each blind index is computed from."""

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


def index_input(name: str, get: Callable[[str], str | None]) -> str | None:
    """The normalised input of blind index ``name``; ``get(field)`` gives a field as text.

    None when the field is empty (nothing is indexed). The rotation job
    derives inputs from decrypted fields here; :func:`_index_texts` does the
    same from a record (tests hold the two to the same results).
    """
    if name == "kana_birth":
        kana, birth = get("family_name_kana"), get("birth_date")
        return None if kana is None or not birth else compound(normalize_kana(kana), birth)
    value = get(name)
    return normalize_digits(value) if value else None


if RESIDENT_INDEXES != ("individual_number", "kana_birth", "phone", "juminhyo_code"):
    raise RuntimeError("_index_texts must follow RESIDENT_INDEXES")  # pragma: no cover


def _index_texts(r: Resident) -> tuple[str | None, str | None, str | None, str | None]:
    """The inputs of the four resident indexes, in ``RESIDENT_INDEXES`` order."""
    number, phone, code = r.individual_number, r.phone, r.juminhyo_code
    return (
        normalize_digits(number) if number else None,
        compound(normalize_kana(r.family_name_kana), r.birth_date.isoformat()),
        normalize_digits(phone) if phone else None,
        normalize_digits(code) if code else None,
    )


def _blind(keys: TownKeys, r: Resident) -> dict[str, int | None]:
    """Blind-index values of a record, per column (None where nothing is stored)."""
    values: dict[str, int | None] = dict.fromkeys(BLIND)
    for name, text in zip(RESIDENT_INDEXES, _index_texts(r), strict=True):
        if text is not None:
            for version, index in keys.index_versions[name]:
                values[index_column(name, version)] = index.value(text)
    return values


def _row(keys: TownKeys, r: Resident) -> dict[str, Any]:
    """Column values to store: plain ones as they are, personal ones encrypted."""
    values: dict[str, Any] = {name: getattr(r, name) for name in PLAIN}
    for name in ENCRYPTED:
        value = getattr(r, name)
        text = value.isoformat() if isinstance(value, date) else value
        values[name] = keys.encrypt("residents", name, r.id, text)
    values.update(_blind(keys, r))
    return values


@lru_cache(maxsize=256)
def _matching(name: str, versions: tuple[int, ...], start: int = 1, many: bool = False) -> str:
    """``(bidx_x = $1 OR bidx_x_alt = $2)``: a value under any live version of the key."""
    test = "= ANY(${}::bigint[])" if many else "= ${}"
    return (
        "("
        + " OR ".join(
            f"{index_column(name, v)} {test.format(i)}" for i, v in enumerate(versions, start)
        )
        + ")"
    )


async def _candidates(
    uow: TenantUnitOfWork,
    name: str,
    values: Sequence[tuple[int, int]],
    *,
    active_only: bool = False,
) -> list[Resident]:
    """Rows holding any of ``values`` ((key version, index value) pairs) in index ``name``."""
    keys = _keys(uow)
    where = " WHERE " + _matching(name, tuple(v for v, _ in values))
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


LINKAGE_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"


async def lock_linkage(uow: TenantUnitOfWork) -> None:
    """Serialise, per town, the writes that can change rule 1's components.

    Taken FIRST (before any row lock) by every write that recomputes
    ``protection_linked`` or locks more than one record: two writes that
    join components (a registration into a household while a member is put
    under 支援措置) then run one after the other, and the second computes
    over what the first committed; and a recomputation, which updates the
    flags of a whole component, never waits for a row whose holder waits
    for this lock (no deadlock). Re-entrant within a transaction.
    """
    await uow.execute(LINKAGE_LOCK, f"{uow.code}:linkage")


# Rule 1's components (docs/support-measures.md, tenant revision t0011): the
# graph "person —(ever filed under)— household". A person's edges: the
# household the record names now, the households it names in
# household_memberships (filed there before), the households it heads.
_PEOPLE_OF = (
    "SELECT r.id AS rid FROM residents AS r WHERE r.household_no = reach.hno "
    "UNION ALL SELECT m.resident_id FROM household_memberships AS m "
    "WHERE m.household_no = reach.hno "
    "UNION ALL SELECT h.head_id FROM households AS h "
    "WHERE h.household_no = reach.hno AND h.head_id IS NOT NULL"
)
_HOUSEHOLDS_OF = (
    "SELECT r.household_no AS hno FROM residents AS r WHERE r.id = person.rid "
    "UNION ALL SELECT m.household_no FROM household_memberships AS m "
    "WHERE m.resident_id = person.rid "
    "UNION ALL SELECT h.household_no FROM households AS h WHERE h.head_id = person.rid"
)
_SEED = "(support_measure OR protection_carried OR households_unknown)"
"""A record that links its component: protected (in any state: someone who
moved out still tells where the family lives), carried from another town's
component (one-stop move), or with past households not yet read (t0011)."""


def _reach(start: str) -> str:
    """``reach(hno)``: every household connected to the households ``start`` selects;
    ``people(rid)``: every person filed under (or heading) one of them.

    Breadth first, each household visited once (``UNION``); every step has an
    index to probe (residents_household, residents_pkey, the memberships'
    primary key and household index, households_pkey, households_head), so
    the cost grows with the component, not with the town.
    """
    return (
        f"WITH RECURSIVE reach(hno) AS ({start} "  # noqa: S608 - fixed texts
        f"UNION SELECT nxt.hno FROM reach CROSS JOIN LATERAL ({_PEOPLE_OF}) AS person "
        f"CROSS JOIN LATERAL ({_HOUSEHOLDS_OF}) AS nxt), "
        "people AS (SELECT DISTINCT person.rid FROM reach "
        f"CROSS JOIN LATERAL ({_PEOPLE_OF}) AS person)"
    )


_RECOMPUTE = "".join(  # fixed texts only
    (
        _reach("SELECT household_no FROM residents WHERE id = $1"),
        ", seeded AS (SELECT COALESCE(bool_or(",
        _SEED,
        "), false) AS v FROM residents WHERE id IN (SELECT rid FROM people)), ",
        "changed AS (UPDATE residents AS r SET protection_linked = s.v FROM seeded AS s ",
        "WHERE r.id IN (SELECT rid FROM people) AND r.protection_linked <> s.v RETURNING r.id) ",
        "SELECT (SELECT v FROM seeded) AS linked, (SELECT count(*) FROM changed) AS changed",
    )
)
_RECOMPUTE_TOWN = (
    _reach(f"SELECT household_no FROM residents WHERE {_SEED}")  # noqa: S608
    + ", changed AS (UPDATE residents SET protection_linked = (id IN (SELECT rid FROM people)) "
    "WHERE protection_linked IS DISTINCT FROM (id IN (SELECT rid FROM people)) RETURNING id) "
    "SELECT count(*) FROM changed"
)


async def relink_component(uow: TenantUnitOfWork, resident_id: str) -> bool:
    """Recompute ``protection_linked`` for the component of ``resident_id``; is it linked?

    One statement. The caller holds :func:`lock_linkage` (taken before any
    row lock) and calls this after its own writes, in their transaction.
    Only records whose flag changes are written.
    """
    row = await uow.fetchrow(_RECOMPUTE, resident_id)
    return bool(row is not None and row["linked"])


async def relink_town(uow: TenantUnitOfWork) -> int:
    """Recompute ``protection_linked`` for the whole town, from the seeds; returns
    how many flags changed. The caller holds :func:`lock_linkage`."""
    changed: int = await uow.fetchval(_RECOMPUTE_TOWN)
    return changed


async def carry_protection(uow: TenantUnitOfWork, resident_id: str) -> None:
    """Mark a record linked by a component in another town (one-stop move-in, F3)."""
    await uow.execute("UPDATE residents SET protection_carried = true WHERE id = $1", resident_id)


async def lift_carried(uow: TenantUnitOfWork, resident_id: str) -> None:
    """Forget a carried link (市民課 lifting 支援措置 on the record)."""
    await uow.execute(
        "UPDATE residents SET protection_carried = false WHERE id = $1 AND protection_carried",
        resident_id,
    )


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


async def past_households(
    uow: TenantUnitOfWork, resident_ids: Sequence[str]
) -> dict[str, set[str]]:
    """Every household each of these residents was ever filed under (from their history).

    Snapshots are sealed as a whole, so each is decrypted: only the relink
    step (:func:`relink`) asks, for records whose past is not yet known.
    """
    wanted = sorted(set(resident_ids))
    if not wanted:
        return {}
    rows = await uow.fetch(
        "SELECT resident_id::text AS rid, history_no, snapshot FROM resident_history "
        "WHERE resident_id = ANY($1::uuid[])",
        wanted,
    )
    keys = _keys(uow)
    out: dict[str, set[str]] = {rid: set() for rid in wanted}
    for r in rows:
        place = f"{r['rid']}/{r['history_no']}"
        text = keys.decrypt("resident_history", "snapshot", place, r["snapshot"]) or "{}"
        number = json.loads(text).get("household_no")
        if number:
            out[r["rid"]].add(str(number))
    return out


@dataclass(frozen=True, slots=True)
class Relinked:
    """What :func:`relink` did (counts only: no personal value)."""

    residents_read: int
    memberships_added: int
    flags_changed: int


RELINK_BATCH = 500


async def relink(uow: TenantUnitOfWork, *, every: bool = False) -> Relinked:
    """Read the past households of records whose past is unknown, then recompute the town.

    The application-side half of t0011's backfill (and the step after loading
    a history from another system): decrypts the history snapshots of every
    record marked ``households_unknown`` (``every``: of every record whose
    household ever changed), records each household they name in
    ``household_memberships``, clears the mark, and recomputes every flag.
    Under the town's linkage lock, in the caller's transaction.
    """
    await lock_linkage(uow)
    column = "households_changed OR households_unknown" if every else "households_unknown"
    ids = [
        str(r["id"])
        for r in await uow.fetch(f"SELECT id FROM residents WHERE {column} ORDER BY id")  # noqa: S608
    ]
    added = 0
    for start in range(0, len(ids), RELINK_BATCH):
        batch = ids[start : start + RELINK_BATCH]
        past = await past_households(uow, batch)
        pairs = [(rid, no) for rid, numbers in past.items() for no in sorted(numbers)]
        if pairs:
            status = await uow.execute(
                "INSERT INTO household_memberships (resident_id, household_no) "
                "SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING",
                [p[0] for p in pairs],
                [p[1] for p in pairs],
            )
            added += int(status.rsplit(" ", 1)[-1])
        await uow.execute(
            "UPDATE residents SET households_unknown = false WHERE id = ANY($1::uuid[])", batch
        )
    changed = await relink_town(uow)
    return Relinked(len(ids), added, changed)


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


async def history(uow: TenantUnitOfWork, resident_id: str) -> list[dict[str, Any]]:
    rows = await uow.fetch(
        "SELECT history_no, reason, move_date, notified_on, processed_on, recorded_at, snapshot "
        "FROM resident_history WHERE resident_id = $1 ORDER BY history_no",
        resident_id,
        town_plan=True,
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


IndexValues = dict[str, dict[int, list[int]]]
"""Blind-index values per index name and key version."""


def unique_index_values(
    indexes: Mapping[str, Sequence[tuple[int, BlindIndex]]],
    individual_numbers: list[str],
    juminhyo_codes: list[str],
) -> IndexValues:
    """The index values of these numbers under every live version of the keys.

    ``indexes`` as in :attr:`TownKeys.index_versions` or
    the import's sealing keys (so worker processes can compute them).
    """
    out: IndexValues = {}
    for name, wanted in (
        ("individual_number", individual_numbers),
        ("juminhyo_code", juminhyo_codes),
    ):
        inputs = [normalize_digits(n) for n in wanted]
        out[name] = {
            version: [v for v in index.values(inputs) if v is not None]
            for version, index in indexes[name]
        }
    return out


async def existing_unique_values(
    uow: TenantUnitOfWork,
    individual_numbers: list[str],
    juminhyo_codes: list[str],
    values: IndexValues | None = None,
) -> tuple[set[str], set[str]]:
    """Which of these numbers active residents of the town already have (bulk import).

    ``values``: their index values if already computed (by
    :func:`unique_index_values`, e.g. in a worker process).
    """
    keys = _keys(uow)
    # Registrations hold this lock shared: while the import holds it, none can
    # commit a duplicate behind the check below.
    await uow.execute(_REGISTRATION_LOCK, f"{uow.code}:registration")
    if not await uow.fetchval("SELECT EXISTS (SELECT FROM residents WHERE state = 'active')"):
        return set(), set()  # a town joining the platform: nothing to clash with
    if values is None:
        values = unique_index_values(keys.index_versions, individual_numbers, juminhyo_codes)
    where: list[str] = []
    args: list[list[int]] = []
    for name in ("individual_number", "juminhyo_code"):
        # Values under every live version of the key (two during a rotation).
        per_version = values[name]
        versions = tuple(sorted(per_version))
        where.append(_matching(name, versions, start=len(args) + 1, many=True))
        args.extend(sorted(set(per_version[v])) for v in versions)
    rows = await uow.fetch(
        "SELECT id, individual_number, juminhyo_code FROM residents WHERE state = 'active' "  # noqa: S608
        "AND (" + " OR ".join(where) + ")",
        *args,
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


# --- bulk import --------------------------------------------------------------------


async def copy_households(uow: TenantUnitOfWork, households: dict[str, str | None]) -> None:
    """Bulk-load households (number -> head's id) with COPY, before their members."""
    await uow.copy_records("households", ("household_no", "head_id"), list(households.items()))


async def set_household_heads(uow: TenantUnitOfWork, heads: dict[str, str | None]) -> None:
    """Set the head of households loaded before their head's row was (bulk import)."""
    if heads:
        await uow.execute(
            "UPDATE households AS h SET head_id = v.head "
            "FROM unnest($1::text[], $2::uuid[]) AS v(no, head) WHERE h.household_no = v.no",
            list(heads),
            list(heads.values()),
        )


async def advance_sequences(uow: TenantUnitOfWork) -> None:
    """After a bulk load: new 宛名番号 and 世帯番号 continue after the highest loaded."""
    await uow.execute(
        "SELECT setval('atena_seq', GREATEST((SELECT max(left(atena_no, 7)::bigint) "
        "FROM residents), 1)), setval('household_seq', GREATEST((SELECT "
        "max(left(household_no, 7)::bigint) FROM households), 1))"
    )


async def existing_atena_numbers(uow: TenantUnitOfWork, atena_numbers: list[str]) -> set[str]:
    """Which of these 宛名番号 the town already holds (a plain column: nothing to decrypt)."""
    rows = await uow.fetch(
        "SELECT atena_no FROM residents WHERE atena_no = ANY($1::text[])", atena_numbers
    )
    return {r["atena_no"] for r in rows}


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


# --- blind-index key rotation (shared_gov.keys.index_rotation) -------------------


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
    keys = _keys(uow)
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
