"""Domain events of resident records: the town's outbox (issue #6).

Every change to the register writes one event into the town's ``events``
table (tenant migration t0005) in the change's own transaction, so an event
exists exactly when its change committed. Departments' systems read them from
``GET /api/v1/tenants/{code}/events`` (:mod:`.events_controllers`) and react
— care-insurance qualification after a move, for instance — instead of
re-keying the change.

What an event may carry is narrow on purpose: its type, the resident's id,
the NAMES of the fields that changed, and a few ids. Never a value: a
consumer that needs the new address reads the record through the normal
API, where Cedar decides per field and purpose and the read is audited.
:func:`emit` enforces it — a known type, field names from the resident
record, ids that are UUIDs, serial numbers or town codes under known keys —
and the table's CHECK constraints repeat the shape.

Which change writes which type (one event per 異動 and person, so an event
matches one history entry, named by ``history_no``):

============================  ==============================================
``resident.registered``       出生, 職権記載, and every record of a bulk import
                              (those carry ``import_id``: a data migration,
                              not news)
``resident.moved_in``         国内転入, 国外転入
``resident.moved_within_town``  転居
``resident.moved_out``        国内転出, 国外転出, 職権消除 (left the register
                              other than by death; the history's 異動事由
                              tells them apart)
``resident.died``             死亡
``resident.changed``          氏名変更, 世帯主変更 (both people), 世帯分離,
                              支援措置 set or lifted (no history entry)
============================  ==============================================

The household number is deliberately not an id here: under 支援措置 it is
withheld with the address (it leads to the head of household), and leaving
it out only for protected people would itself tell who is protected.

Rule 1 (docs/support-measures.md) on the read side: the town a person moved
to or from (``to_town``, ``from_town``, any ``*_town`` id) tells where they
live now. :func:`withhold_whereabouts` removes those ids from every event of
a person under 支援措置 or sharing a household with one, as the feed reads
them: whoever wrote the event, and also for events written before the
protection was set.

Reading: the feed's position is ``(xid, seq)`` — the writing transaction's
id, then the order within it — and a read serves only events whose ``xid``
is below ``pg_snapshot_xmin(pg_current_snapshot())``: every transaction that
old has ended, and any transaction still to write gets a larger xid, so
nothing can ever appear behind a position already handed out. The audit
sealer (:mod:`shared_gov.audit.sealer`) relies on the same rule. Cursors are
opaque to clients (:class:`Cursor`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Final

from shared_gov import errors
from shared_gov.checkdigits import is_valid_lgcode, is_valid_serial
from shared_gov.clock import day_of
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import repository
from shared_gov.domains.residents.models import ChangeEvent, EntryEvent, Resident
from shared_gov.domains.residents.spec import RESIDENT

__all__ = [
    "CHANGED",
    "CHANGE_KINDS",
    "DEFAULT_LIMIT",
    "DIED",
    "ENTRY_KINDS",
    "KINDS",
    "MAX_LIMIT",
    "MOVED_IN",
    "MOVED_OUT",
    "MOVED_WITHIN_TOWN",
    "REGISTERED",
    "RESIDENT_FIELDS",
    "START",
    "Batch",
    "Cursor",
    "Page",
    "batch",
    "changed_fields",
    "emit",
    "emit_batch",
    "emit_many",
    "id_check",
    "parse_kinds",
    "read",
    "withhold_whereabouts",
]

RECORD_TYPE: Final = RESIDENT.name
"""The outbox's ``record_type`` of residents' events (t0009); an identifier, inlined."""
REGISTERED: Final = "resident.registered"
MOVED_IN: Final = "resident.moved_in"
MOVED_WITHIN_TOWN: Final = "resident.moved_within_town"
MOVED_OUT: Final = "resident.moved_out"
DIED: Final = "resident.died"
CHANGED: Final = "resident.changed"
KINDS: Final = frozenset({REGISTERED, MOVED_IN, MOVED_WITHIN_TOWN, MOVED_OUT, DIED, CHANGED})

ENTRY_KINDS: Final[Mapping[EntryEvent, str]] = {
    EntryEvent.BIRTH: REGISTERED,
    EntryEvent.EX_OFFICIO_ENTRY: REGISTERED,
    EntryEvent.MOVE_IN_DOMESTIC: MOVED_IN,
    EntryEvent.MOVE_IN_FROM_ABROAD: MOVED_IN,
}
CHANGE_KINDS: Final[Mapping[ChangeEvent, str]] = {
    ChangeEvent.MOVE_WITHIN_TOWN: MOVED_WITHIN_TOWN,
    ChangeEvent.HEAD_OF_HOUSEHOLD_CHANGE: CHANGED,
    ChangeEvent.NAME_CHANGE: CHANGED,
    ChangeEvent.HOUSEHOLD_SPLIT: CHANGED,
    ChangeEvent.MOVE_OUT_DOMESTIC: MOVED_OUT,
    ChangeEvent.MOVE_OUT_ABROAD: MOVED_OUT,
    ChangeEvent.EX_OFFICIO_REMOVAL: MOVED_OUT,
    ChangeEvent.DEATH: DIED,
}

RESIDENT_FIELDS: Final = frozenset(f.name for f in fields(Resident))
"""The names an event's ``fields`` may hold: the resident record's fields."""
_BOOKKEEPING: Final = frozenset({"id", "version", "history_no"})
"""Change with every write (or never): not news for a consumer."""

_KEY = re.compile(r"\A[a-z][a-z0-9_]{0,39}\Z")
# The canonical text form str(uuid.UUID(...)) produces: checked without parsing.
_CANONICAL_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_COUNT = re.compile(r"\A[1-9][0-9]{0,8}\Z")
_MAX_IDS: Final = 8

MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100
_BULK_CHUNK: Final = 10_000
_MAX_SEQ: Final = 2**63 - 1


def _count(value: str) -> str | None:
    return value if _COUNT.match(value) else None


def _serial(value: str) -> str | None:
    # The register's 宛名番号 are 8 digits (7 + check digit). Any other length
    # is refused: a 12-digit 個人番号 passes the modulus-11 check one time in
    # eleven.
    return value if len(value) == 8 and is_valid_serial(value) else None


def _uuid(value: str) -> str | None:
    if _CANONICAL_UUID.match(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _town(value: str) -> str | None:
    return value if is_valid_lgcode(value) else None


@functools.lru_cache(maxsize=256)
def _checker(key: str) -> Callable[[str], str | None]:
    """How values of id ``key`` are checked (and normalised), or ValueError.

    Only shapes that cannot carry a personal value are accepted: UUIDs
    (``*_id``), 8-digit serial numbers with their check digit (``atena_no``), a
    history number (``history_no``) and local government codes (``*_town``).
    A personal field's name is refused as a key whatever its value.
    """
    if not _KEY.match(key):
        # Not echoed: a caller's mistake may have put a value here.
        raise ValueError("an event id key is not an identifier")
    if key == "household_no":
        raise ValueError(
            "household_no is withheld with the address under 支援措置; "
            "consumers read it through the record API"
        )
    if key == "history_no":
        return _count
    if key == "atena_no":
        return _serial
    if key in RESIDENT_FIELDS:
        raise ValueError(f"{key} is a field of the record, not an event id")
    if key.endswith("_id"):
        return _uuid
    if key.endswith("_town"):
        return _town
    raise ValueError(f"event id {key} is not a known kind of id (*_id, *_town, ...)")


def _id_value(key: str, value: object, check: Callable[[str], str | None] | None = None) -> str:
    """The value of id ``key`` in its stored form, or ValueError."""
    check = check or _checker(key)
    checked = check(value) if isinstance(value, str) else None
    if checked is None:
        raise ValueError(f"event id {key} does not have the shape of that id")
    return checked


def _resident_id(value: object) -> str:
    checked = _uuid(value) if isinstance(value, str) else None
    if checked is None:
        raise ValueError("resident_id must be a UUID")
    return checked


def _field_names(kind: str, field_names: Iterable[str]) -> list[str]:
    if kind not in KINDS:
        raise ValueError(f"unknown event type {kind!r}")
    names = sorted(set(field_names))
    unknown = [n for n in names if n not in RESIDENT_FIELDS]
    if unknown:
        # Name the offenders only if they look like names: a value passed by
        # mistake must not end up in a log or a traceback.
        shown = ", ".join(n for n in unknown if _KEY.match(n)) or "(not names)"
        raise ValueError(f"not fields of a resident record: {shown}")
    return names


def _ids(ids: Mapping[str, object], known: dict[tuple[str, str], str]) -> dict[str, str]:
    """Checked ids; ``known`` remembers pairs already checked (bulk: shared ids)."""
    if len(ids) > _MAX_IDS:
        raise ValueError(f"an event carries at most {_MAX_IDS} ids")
    out: dict[str, str] = {}
    for key, value in ids.items():
        if not isinstance(value, str):
            _checker(key)  # an unknown key is the first thing to report
            raise ValueError(f"event id {key} does not have the shape of that id")
        pair = (key, value)
        checked = known.get(pair)
        if checked is None:
            checked = _id_value(key, value)
            if len(known) < 1000:
                known[pair] = checked
        out[key] = checked
    return out


async def emit(
    uow: TenantUnitOfWork,
    kind: str,
    resident_id: str,
    fields: Iterable[str] = (),
    **ids: str,
) -> None:
    """Write one event in ``uow``'s transaction: it commits or rolls back with the change.

    ``fields`` are the NAMES of the record fields the change set; ``ids`` are
    other identifiers a consumer may need (``history_no``, ``atena_no``,
    ``transfer_id``, ``from_town`` …). A value that is not an id of a known
    shape, an unknown type or a name that is not a resident field raises
    ValueError — a bug in the caller, never a client's input.
    """
    names = _field_names(kind, fields)
    rid = _resident_id(resident_id)
    checked = _ids(ids, {})
    await uow.execute(
        "INSERT INTO events (type, record_type, record_id, fields, ids) "  # noqa: S608 - a constant
        f"VALUES ($1, '{RECORD_TYPE}', $2, $3, $4)",
        kind,
        rid,
        names,
        checked,
    )


@dataclass(frozen=True, slots=True)
class Batch:
    """Events of one type for many residents, checked: made by :func:`batch` only.

    Picklable, so an import's worker processes check and build them while
    the loading process only writes them (:func:`emit_batch`).
    """

    kind: str
    fields: list[str]
    shared: dict[str, str]
    """Ids every event carries (``import_id``)."""
    resident_ids: list[str]
    each: dict[str, list[str]]
    """Id key -> one checked value per resident, keys sorted."""


def id_check(key: str) -> Callable[[str], str | None]:
    """How values of id ``key`` are checked: the value in its stored form, or None.

    For a caller that checks ids as it reads them (an import, its 宛名番号)
    and then passes them in :func:`batch`'s ``checked_each``. ValueError for
    a key that is not a known kind of id.
    """
    return _checker(key)


def batch(
    kind: str,
    resident_ids: Sequence[str],
    fields: Iterable[str] = (),
    *,
    each: Mapping[str, Sequence[str]] | None = None,
    checked_each: Mapping[str, Sequence[str]] | None = None,
    **ids: str,
) -> Batch:
    """Check one ``kind`` event per resident (see :func:`emit_many`), without writing.

    ``checked_each`` is ``each`` for values that already are what
    :func:`id_check` returned for them: taken as they are. A bulk import
    checks every 宛名番号 once, when it reads the file (check digits cost
    about 3 µs each: a third of a second for 100,000 records).
    """
    names = _field_names(kind, fields)
    shared = _ids(ids, {})
    columns = dict(each or {})
    trusted = dict(checked_each or {})
    keys = [*columns, *trusted]
    if len(set(keys)) != len(keys) or set(keys) & set(shared) or len(keys) + len(shared) > _MAX_IDS:
        raise ValueError(f"ids overlap or more than {_MAX_IDS} per event")
    checked: dict[str, list[str]] = {}
    for key, values in (*columns.items(), *trusted.items()):
        if len(values) != len(resident_ids):
            raise ValueError(f"{key} needs one value per resident")
        check = _checker(key)  # an unknown key is refused either way
        checked[key] = (
            list(values) if key in trusted else [_id_value(key, v, check) for v in values]
        )
    if set(map(type, resident_ids)) <= {str} and all(map(_CANONICAL_UUID.match, resident_ids)):
        # Every id already in its stored form (a bulk import's): what
        # _resident_id returns for each, found in one pass in C.
        rids = list(resident_ids)
    else:
        rids = [_resident_id(r) for r in resident_ids]
    return Batch(kind, names, shared, rids, {k: checked[k] for k in sorted(checked)})


async def emit_batch(uow: TenantUnitOfWork, checked: Batch) -> int:
    """Write a checked :class:`Batch` in ``uow``'s transaction; returns how many were written.

    The server builds each event's ids, one INSERT … SELECT FROM unnest per
    10,000 events, so a load pays a few microseconds per record. Each list
    of ids travels as one comma-separated text that the server splits:
    checked ids (UUIDs, digits) hold no comma, and asyncpg's array encoding
    costs about a microsecond per element here (measured).
    """
    keys = list(checked.each)
    # Keys passed _id_value: [a-z][a-z0-9_]*, safe as SQL string literals.
    pairs = ", ".join(f"'{k}', u.c{i}" for i, k in enumerate(keys))
    build = f"jsonb_build_object({pairs}) || $3::jsonb" if keys else "$3::jsonb"
    arrays = ", ".join(
        [
            "string_to_array($4::text, ',')::uuid[]",
            *(f"string_to_array(${5 + i}::text, ',')" for i in range(len(keys))),
        ]
    )
    aliases = ", ".join(["r", *(f"c{i}" for i in range(len(keys)))])
    # WITH ORDINALITY + ORDER BY: seq follows the caller's order (the file's).
    sql = (
        "INSERT INTO events (type, record_type, record_id, fields, ids) "  # noqa: S608 - see above
        f"SELECT $1, '{RECORD_TYPE}', u.r, $2::text[], {build} "
        f"FROM unnest({arrays}) WITH ORDINALITY AS u({aliases}, n) ORDER BY u.n"
    )
    rids = checked.resident_ids
    for start in range(0, len(rids), _BULK_CHUNK):
        stop = start + _BULK_CHUNK
        lists = [rids[start:stop], *(checked.each[k][start:stop] for k in keys)]
        texts = [",".join(values) for values in lists]
        # One comma fewer than values, or a value held one: never misalign ids.
        if any(t.count(",") != len(v) - 1 for t, v in zip(texts, lists, strict=True) if v):
            raise ValueError("an event id holds a comma")
        await uow.execute(sql, checked.kind, checked.fields, checked.shared, *texts)
    return len(rids)


async def emit_many(
    uow: TenantUnitOfWork,
    kind: str,
    resident_ids: Sequence[str],
    fields: Iterable[str] = (),
    *,
    each: Mapping[str, Sequence[str]] | None = None,
    **ids: str,
) -> int:
    """Write one ``kind`` event per resident, in bulk (imports).

    ``ids`` are shared by every event (``import_id``); ``each`` maps an id's
    key to one value per resident, in ``resident_ids`` order (``atena_no``).
    Same checks as :func:`emit` (:func:`batch`), then :func:`emit_batch`.
    Returns how many were written.
    """
    checked = batch(kind, resident_ids, fields, each=each, checked_each=None, **ids)
    return await emit_batch(uow, checked)


def changed_fields(before: Resident, after: Resident) -> list[str]:
    """Names of the record fields that differ (bookkeeping left out)."""
    return [
        f for f in sorted(RESIDENT_FIELDS - _BOOKKEEPING) if getattr(before, f) != getattr(after, f)
    ]


# --- reading -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A position in one town's feed: every event at or before it has been served.

    Encoded as URL-safe base64 of a version byte, the town code, the xid and
    the sequence number. Opaque to clients (nothing in it is personal); the
    town is inside so a cursor given to another town's feed is refused rather
    than silently misread.
    """

    xid: int
    seq: int

    _FORMAT = struct.Struct(">B6sQq")
    _VERSION = 1

    def encode(self, town: str) -> str:
        raw = self._FORMAT.pack(self._VERSION, town.encode("ascii"), self.xid, self.seq)
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, token: str, town: str) -> Cursor:
        bad = errors.invalid_field("/query/after", "not a cursor of this town's event feed")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            version, owner, xid, seq = cls._FORMAT.unpack(raw)
        except (ValueError, binascii.Error, struct.error):
            raise bad from None
        if version != cls._VERSION or owner != town.encode("ascii") or seq < 0:
            raise bad
        return cls(xid, seq)


START: Final = Cursor(0, 0)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the feed and where the next read starts."""

    events: list[dict[str, Any]]
    """Each with ``cursor`` (its own position), event_id, type, resident_id,
    fields, ids and occurred_at."""
    next: Cursor
    more: bool
    """The page is full: read again at once; otherwise wait before polling."""


# One statement, one snapshot: the watermark and the rows below it are read
# together. The LEFT JOIN keeps the watermark when no event qualifies.
_READ_SQL: Final = (
    "WITH w AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) "  # noqa: S608
    "SELECT w.xmin AS watermark, e.xid, e.seq, e.event_id, e.occurred_at, e.type, "
    "e.record_id AS resident_id, e.fields, e.ids "
    "FROM w LEFT JOIN LATERAL ("
    "  SELECT * FROM events AS ev "
    "  WHERE ev.xid < w.xmin AND (ev.xid, ev.seq) > ($1::xid8, $2::bigint) "
    f"    AND ev.record_type = '{RECORD_TYPE}' "
    "    AND ($3::text[] IS NULL OR ev.type = ANY($3::text[])) "
    "  ORDER BY ev.xid, ev.seq LIMIT $4"
    ") AS e ON true "
    "ORDER BY e.xid, e.seq"
)


async def read(
    uow: TenantUnitOfWork,
    after: Cursor | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    kinds: Iterable[str] | None = None,
) -> Page:
    """Events after ``after`` (from the beginning when None), oldest first.

    Only events every earlier writer of which has ended are served (see the
    module docstring), so a page never skips an event that commits later.
    When a page is not full, ``next`` moves up to the watermark: events that
    did not match ``kinds`` are not scanned again on the next poll.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    wanted = None if kinds is None else sorted(set(kinds))
    if wanted is not None and not set(wanted) <= KINDS:
        raise ValueError("unknown event type")
    position = after or START
    rows = await uow.fetch(_READ_SQL, position.xid, position.seq, wanted, limit)
    watermark = int(rows[0]["watermark"])
    town = uow.code
    out: list[dict[str, Any]] = []
    for row in rows:
        if row["xid"] is None:
            continue
        here = Cursor(int(row["xid"]), int(row["seq"]))
        occurred: datetime = row["occurred_at"]
        out.append(
            {
                "cursor": here.encode(town),
                "event_id": str(row["event_id"]),
                "type": row["type"],
                "resident_id": str(row["resident_id"]),
                "fields": list(row["fields"]),
                "ids": dict(row["ids"]),
                "occurred_at": occurred,
            }
        )
        position = here
    more = len(out) == limit
    if not more:
        # Everything below the watermark that matched has been served.
        position = max(position, Cursor(watermark - 1, _MAX_SEQ))
    return Page(out, position, more)


def _whereabouts_id(key: str) -> bool:
    """An id that names a place the person moved to or from (a town code), or
    joins this town's event to the other town's (``transfer_id``: the new town's
    市民課 got it as ``X-Transfer-ID``; final review, L1)."""
    return key.endswith("_town") or key == "transfer_id"


async def withhold_whereabouts(uow: TenantUnitOfWork, page: Page) -> Page:
    """``page`` under rule 1 for protected (or linked) people's events.

    - no town of a move (``*_town``): it tells where the person lives now;
    - no ``transfer_id``: it is the exact join key to the other town's records;
    - ``occurred_at`` to the day only (00:00 JST): a one-stop move writes the
      old town's and the new town's events at the same instant, and a reader
      of both feeds could match them to the microsecond (round-3 review N4);
      a linked household's events would likewise line up with a protected
      person's arrival in it (N3).

    The feed's readers (integrations, admins) are never the town's 市民課
    registering residents, so no reader is exempt. Read side on purpose: the
    flows that write events need not know the rule, and an event written
    before 支援措置 was set is covered too.
    """
    if not page.events:
        return page
    protected = await repository.protected_residents(
        uow, sorted({e["resident_id"] for e in page.events})
    )
    for event in page.events:
        if event["resident_id"] in protected:
            event["ids"] = {k: v for k, v in event["ids"].items() if not _whereabouts_id(k)}
            event["occurred_at"] = day_of(event["occurred_at"])
    return page


def parse_kinds(values: Sequence[str] | None) -> frozenset[str] | None:
    """The ``type`` query parameters, checked (422 for an unknown type)."""
    if not values:
        return None
    unknown = [v for v in values if v not in KINDS]
    if unknown:
        raise errors.invalid_field("/query/type", "not an event type: " + ", ".join(sorted(KINDS)))
    return frozenset(values)
