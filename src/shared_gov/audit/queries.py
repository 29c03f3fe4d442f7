"""Reading a town's audit log: filters, keyset pages and streamed exports.

Auditors search ``audit.events`` by actor, department, subject (a resident,
matched by the town's keyed hash of the resident id), purpose, action,
outcome, individual-number use and time range. Tenant roles cannot read the
log, so every query here runs on a platform-role connection and names the
town explicitly (``tenant = $1``); no function takes SQL text from a caller.

Pages are keyset-paginated on ``(occurred_at, event_id)``, the tail of the
table's primary key (a row masked for rule 1 pages, sorts and filters on its
JST day instead, see :func:`mask_other_town`), so page 1000 costs what page 1 costs and an event
written while an auditor pages through never shifts or repeats a row.

Exports (CSV, JSON Lines) stream from a server-side cursor on a connection of
their own, outside the pool: a long export must not hold one of the hot
path's pooled connections for minutes. The export counts its rows first in
the same REPEATABLE READ snapshot it then streams, so the audit event for the
export (written before the first byte leaves) states the exact row count.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlencode

import asyncpg
import msgspec

from shared_gov import errors
from shared_gov.audit.tlog import CURRENT_INCARNATION
from shared_gov.clock import JST, day_of
from shared_gov.crypto.keyring import town_keys
from shared_gov.db import Database
from shared_gov.db.engine import UNAVAILABLE_ERRORS
from shared_gov.messages import audit as m
from shared_gov.messages import http as mh
from shared_gov.validation import instant_in_range

OUTCOMES = ("allowed", "denied", "not_found", "error")
DEFAULT_PAGE = 100
MAX_PAGE = 1000
EXPORT_BATCH = 500
"""Rows fetched per round trip of an export's server-side cursor."""

# Every column of audit.events an auditor sees (xid is the sealer's business).
COLUMNS: tuple[str, ...] = (
    "event_id",
    "occurred_at",
    "request_id",
    "client_request_id",
    "actor",
    "actor_tenant",
    "department",
    "roles",
    "auth_strength",
    "client_addr",
    "user_agent",
    "action",
    "resource_type",
    "subjects",
    "fields",
    "rows_returned",
    "individual_number",
    "purpose",
    "agreement_id",
    "outcome",
    "reason",
    "policy_ids",
)
_SELECT = ", ".join(COLUMNS)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What an auditor narrows the log to; None means "any"."""

    actor: str | None = None
    actor_tenant: str | None = None
    department: str | None = None
    subject: int | None = None
    """The keyed hash of a resident id (see :func:`subject_hash`), never the id."""
    purpose: str | None = None
    action: str | None = None
    """Exact action, or a prefix ending in ``.*`` (``resident.*``)."""
    outcome: str | None = None
    individual_number: bool | None = None
    since: datetime | None = None
    """Inclusive lower bound of ``occurred_at``."""
    until: datetime | None = None
    """Exclusive upper bound of ``occurred_at``."""
    resource_type: str | None = None
    guarded: tuple[int, ...] = ()
    """Subject hashes of the town's protected or linked residents (rule 1,
    :func:`mask_other_town`): the filters on who acted skip other towns'
    events about them, or the filter would say what the mask withholds."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in the log: the last ``(occurred_at, event_id)`` of a page."""

    occurred_at: datetime
    event_id: uuid.UUID

    def encode(self) -> str:
        # Opaque to clients, but only a time and an event id: nothing personal.
        raw = f"{self.occurred_at.astimezone(UTC).isoformat()}|{self.event_id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            padded = token + "=" * (-len(token) % 4)
            raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
            stamp, _, ident = raw.partition("|")
            moment = datetime.fromisoformat(stamp)
            if moment.tzinfo is None or not instant_in_range(moment):
                raise ValueError("naive or out of range")
            return cls(moment, uuid.UUID(ident))
        except (ValueError, UnicodeError, binascii.Error):
            raise errors.invalid_field("/query/after", m.NOT_A_CURSOR) from None


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next: Cursor | None


# --- parsing query parameters ------------------------------------------------

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A "+" in a query string decodes to a space: "…T10:00:00 09:00" meant "+09:00".
_SPACE_OFFSET = re.compile(r"^(.+T[0-9:.]+) (\d{2}(?::?\d{2})?)$")


def parse_instant(value: str | None, name: str) -> datetime | None:
    """An ISO 8601 date or date-time from a query parameter.

    A bare date is midnight in Japan; a time without an offset is Japan
    time (auditors here think in JST). 422 names the parameter, never the
    value.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            # Checked for range below like any other instant: midnight JST of
            # 0001-01-01 lies in year 0 in UTC (a 500 from the database before).
            moment = datetime.combine(date.fromisoformat(text), time(0), JST)
        else:
            match = _SPACE_OFFSET.match(text)
            if match:
                text = f"{match.group(1)}+{match.group(2)}"
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise errors.invalid_field(f"/query/{name}", m.NOT_A_DATE) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=JST)
    if not instant_in_range(moment):
        raise errors.invalid_field(f"/query/{name}", m.OUT_OF_RANGE)
    return moment


def parse_resident_id(value: str, pointer: str) -> str:
    """The canonical form of a resident id, as the recorder hashed it."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise errors.invalid_field(pointer, m.NOT_A_RESIDENT_ID) from None


async def subject_hash(db: Database, tenant: str, resident_id: str) -> int:
    """The keyed hash under which the town's log names ``resident_id``."""
    keys = await town_keys(db, tenant)
    return keys.index("audit_subject", resident_id)


def check_outcome(value: str | None) -> str | None:
    if value is not None and value not in OUTCOMES:
        raise errors.invalid_field("/query/outcome", m.ONE_OF(values=", ".join(OUTCOMES)))
    return value


# --- SQL ---------------------------------------------------------------------


_MASKED = "(subjects && {guarded}::bigint[] AND actor_tenant IS NOT NULL AND actor_tenant <> $1)"
"""An event :func:`mask_other_town` masks (``$1`` is the town)."""
_DAY_CUT = "(date_trunc('day', occurred_at AT TIME ZONE 'Asia/Tokyo') AT TIME ZONE 'Asia/Tokyo')"
"""``occurred_at`` cut to 00:00 JST, as :func:`shared_gov.clock.day_of`."""


def _where(tenant: str, flt: EventFilter) -> tuple[list[str], list[Any], str]:
    """Conditions and their arguments; values only ever travel as parameters."""
    # The town's current incarnation only: an earlier town of the same code
    # (offboarded, then onboarded again) is another town's log.
    conditions = ["tenant = $1", f"incarnation = {CURRENT_INCARNATION.format(town='$1')}"]
    args: list[Any] = [tenant]

    def add(template: str, value: Any) -> None:
        args.append(value)
        conditions.append(template.format(f"${len(args)}"))

    for column in ("actor", "actor_tenant", "department", "purpose", "outcome", "resource_type"):
        value = getattr(flt, column)
        if value is not None:
            add(f"{column} = {{}}", value)
    if flt.action is not None:
        if flt.action.endswith(".*"):
            prefix = flt.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            add("action LIKE {}", prefix + "%")
        else:
            add("action = {}", flt.action)
    if flt.subject is not None:
        # @> uses the GIN index on subjects.
        add("subjects @> ARRAY[{}::bigint]", flt.subject)
    if flt.individual_number is not None:
        add("individual_number = {}", flt.individual_number)
    sort_at = "occurred_at"
    if flt.guarded:
        args.append(list(flt.guarded))
        masked = _MASKED.format(guarded=f"${len(args)}")
        # The time a masked row shows, filters and pages on (rule 1): its
        # JST day. Filtering, ordering or paging on the exact time would let
        # a narrowing window or a cursor recover what the mask cuts.
        sort_at = f"(CASE WHEN {masked} THEN {_DAY_CUT} ELSE occurred_at END)"
        if flt.actor or flt.actor_tenant or flt.department:
            conditions.append(f"NOT {masked}")
    if flt.since is not None:
        add(f"{sort_at} >= {{}}", flt.since)
        if sort_at != "occurred_at":
            # Sargable bound for the index: the day cut is never later than the time.
            conditions.append(f"occurred_at >= ${len(args)}")
    if flt.until is not None:
        add(f"{sort_at} < {{}}", flt.until)
        if sort_at != "occurred_at":
            # ... and never a whole day earlier.
            conditions.append(f"occurred_at < ${len(args)} + interval '1 day'")
    return conditions, args, sort_at


def _query(
    tenant: str,
    flt: EventFilter,
    after: Cursor | None,
    descending: bool,
    limit: int | None,
) -> tuple[str, list[Any]]:
    conditions, args, sort_at = _where(tenant, flt)
    if after is not None:
        args += [after.occurred_at, after.event_id]
        op = "<" if descending else ">"
        conditions.append(f"({sort_at}, event_id) {op} (${len(args) - 1}, ${len(args)})")
    direction = "DESC" if descending else "ASC"
    # Ordered (and paged) on the time each row shows: a masked row sits at
    # its day's start, so neither its place in the order nor the cursor
    # after it carries its exact time.
    sql = (
        f"SELECT {_SELECT}, {sort_at} AS sort_at FROM audit.events "  # noqa: S608 - fixed column names; values are parameters
        f"WHERE {' AND '.join(conditions)} "
        f"ORDER BY {sort_at} {direction}, event_id {direction}"
    )
    if limit is not None:
        args.append(limit)
        sql += f" LIMIT ${len(args)}"
    return sql, args


WITHHELD_FOR_RULE1: tuple[str, ...] = (
    "actor",
    "actor_tenant",
    "department",
    "roles",
    "client_addr",
    "user_agent",
    "request_id",
    "client_request_id",
    "agreement_id",
)
"""What an auditor is not shown of another town's event about a protected person."""


def mask_other_town(row: dict[str, Any], tenant: str, guarded: frozenset[str]) -> dict[str, Any]:
    """``row`` as the town's auditors see it (rule 1, docs/support-measures.md).

    When another town acted on a resident of this town who is protected or
    linked (支援措置), which town acted, its staff, the request and agreement
    ids and the exact time would tell where the person lives now: a
    one-stop move's confirmation carries the new town and the same request
    id as that town's move-in. Those are withheld and the time cut to the
    day (JST), as in the resident's access report
    (:mod:`shared_gov.domains.residents.access_log`). The stored event is
    untouched: its leaf hash and proofs still verify. The town's own staff's
    accesses stay whole: auditors must see who in their town read the record.
    """
    other = row.get("actor_tenant")
    if not guarded or other is None or other == tenant:
        return row
    if guarded.isdisjoint(row["subjects"]):
        return row
    masked = dict(row)
    for name in WITHHELD_FOR_RULE1:
        masked[name] = [] if name == "roles" else None
    masked["occurred_at"] = day_of(datetime.fromisoformat(row["occurred_at"])).isoformat()
    return masked


def _row(record: asyncpg.Record) -> dict[str, Any]:
    """A JSON-ready event. Subject hashes are strings: they exceed 2^53."""
    row = dict(record)
    row.pop("sort_at", None)
    row["event_id"] = str(row["event_id"])
    row["occurred_at"] = row["occurred_at"].isoformat()
    row["subjects"] = [str(s) for s in row["subjects"]]
    for name in ("roles", "fields", "policy_ids"):
        row[name] = list(row[name])
    return row


async def fetch_page(
    db: Database,
    tenant: str,
    flt: EventFilter,
    *,
    after: Cursor | None = None,
    limit: int = DEFAULT_PAGE,
    descending: bool = False,
) -> Page:
    """One page of events and the cursor of the next (None on the last page)."""
    sql, args = _query(tenant, flt, after, descending, limit + 1)
    async with db.catalog() as conn:
        records = await conn.fetch(sql, *args)
    more = len(records) > limit
    records = records[:limit]
    cursor = Cursor(records[-1]["sort_at"], records[-1]["event_id"]) if more else None
    return Page([_row(r) for r in records], cursor)


async def fetch_event(db: Database, tenant: str, event_id: uuid.UUID) -> dict[str, Any] | None:
    """One event of the town's current log by its id (None: not this town's)."""
    conditions, args, _sort_at = _where(tenant, EventFilter())
    args.append(event_id)
    sql = (
        f"SELECT {_SELECT} FROM audit.events "  # noqa: S608 - fixed column names; values are parameters
        f"WHERE {' AND '.join(conditions)} AND event_id = ${len(args)}"
    )
    async with db.catalog() as conn:
        record = await conn.fetchrow(sql, *args)
    return None if record is None else _row(record)


# --- exports -----------------------------------------------------------------


class Export:
    """An export held open in one snapshot: count first, then stream.

    Use :meth:`open`, then iterate :meth:`rows` once; the connection closes
    when the iteration ends, fails or is cancelled (client gone), or on
    :meth:`close`.
    """

    def __init__(self, conn: asyncpg.Connection, sql: str, args: list[Any], count: int) -> None:
        self._conn = conn
        self._sql = sql
        self._args = args
        self.count = count

    @classmethod
    async def open(
        cls,
        db: Database,
        tenant: str,
        flt: EventFilter,
        *,
        after: Cursor | None = None,
        limit: int | None = None,
        descending: bool = False,
    ) -> Export:
        sql, args = _query(tenant, flt, after, descending, limit)
        try:
            conn = await asyncpg.connect(db.url, timeout=db.settings.pool_acquire_timeout)
        except UNAVAILABLE_ERRORS as exc:
            raise errors.unavailable(mh.DB_BUSY) from exc
        try:
            await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # The count takes the snapshot the stream then reads.
            count = await conn.fetchval(f"SELECT count(*) FROM ({sql}) AS q", *args)  # noqa: S608 - built by _query
        except BaseException:
            await conn.close()
            raise
        return cls(conn, sql, args, int(count))

    async def rows(self) -> AsyncIterator[dict[str, Any]]:
        try:
            async for record in self._conn.cursor(self._sql, *self._args, prefetch=EXPORT_BATCH):
                yield _row(record)
        finally:
            await self.close()

    @property
    def closed(self) -> bool:
        return bool(self._conn.is_closed())

    async def close(self) -> None:
        if not self._conn.is_closed():
            # Read-only: closing ends the transaction; nothing to commit.
            await self._conn.close()


def _csv_cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = ";".join(str(v) for v in value) if isinstance(value, list) else str(value)
    if name in _CSV_TEXT and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # CSV injection: spreadsheets run cells starting with these as formulas,
        # and user_agent (for one) is whatever the client sent.
        text = "'" + text
    return text


_CSV_TEXT = frozenset(COLUMNS) - {
    "event_id",
    "occurred_at",
    "subjects",
    "rows_returned",
    "individual_number",
}


async def csv_chunks(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """RFC 4180 CSV (UTF-8, header row); list columns joined with ``;``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    async for row in rows:
        writer.writerow([_csv_cell(c, row[c]) for c in COLUMNS])
        count += 1
        if count % EXPORT_BATCH == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def jsonl_chunks(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """JSON Lines: one event object per line."""
    batch: list[bytes] = []
    async for row in rows:
        batch.append(msgspec.json.encode(row))
        if len(batch) >= EXPORT_BATCH:
            yield b"\n".join(batch) + b"\n"
            batch = []
    # Always one last chunk, even empty: the response primes the first one.
    yield b"\n".join(batch) + b"\n" if batch else b""


async def primed(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Start ``chunks`` now (so its first failure is still a proper error
    response, and asyncio will close it even if the stream is never sent),
    then hand the rest to the response."""
    first = await anext(chunks, b"")

    async def rest() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return rest()


# --- links -------------------------------------------------------------------


def events_url(tenant: str, params: Iterable[tuple[str, Any]]) -> str:
    """A ready ``/audit/events`` URL with these filters (values percent-encoded)."""
    query = []
    for key, value in params:
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, bool):
            value = "true" if value else "false"
        query.append((key, str(value)))
    base = f"/api/v1/tenants/{tenant}/audit/events"
    return f"{base}?{urlencode(query)}" if query else base


def filter_params(flt: EventFilter, resident_id: str | None) -> list[tuple[str, Any]]:
    """The query parameters that reproduce ``flt`` (``subject`` as the resident id)."""
    names = {f.name for f in fields(flt)}
    out: list[tuple[str, Any]] = []
    for name in sorted(names - {"subject", "since", "until", "guarded"}):
        value = getattr(flt, name)
        if value is not None:
            out.append((name, value))
    if resident_id is not None:
        out.append(("subject", resident_id))
    out.append(("from", flt.since))
    out.append(("to", flt.until))
    return out
