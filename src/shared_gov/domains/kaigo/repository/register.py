"""What this domain reads of the resident register: the town's outbox and the
history entry each event names. Read-only, in the consumer's unit of work.

This is the one place the 介護保険 domain depends on the residents domain's
storage, and it does so without importing it: the outbox (``events``,
platform revisions t0005/t0009) and the history's envelopes, whose table and
columns the residents domain declares to the registry
(``resident_history``: ``reason``, ``move_date``, ``snapshot``, row id
``<resident id>/<history no>``), and ``move_outs.to_town`` (t0007). The
contract is docs/events.md: every event of a change names its history entry
(``ids.history_no``), whose 異動事由 tells a domestic 転出 from one abroad.
``tests/domains/kaigo/test_register_contract.py`` fails if the registry stops
declaring what is read here.

Why the history entry and not the current record: it is the record *as the
event left it*, so a replay of the same events decides the same way even if
the person has moved or died since.

Positions are (xid, seq) and a read serves only events below
``pg_snapshot_xmin(pg_current_snapshot())``, as the residents' feed does
(docs/events.md, "Why a cursor can be trusted"): a late commit is read late,
never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo.repository.common import keys

RECORD_TYPE: Final = "Resident"
HISTORY: Final = "resident_history"
RESIDENTS: Final = "residents"
HISTORY_COLUMNS: Final = ("reason", "move_date", "snapshot")
_MAX_SEQ: Final = 2**63 - 1


@dataclass(frozen=True, slots=True, order=True)
class Position:
    xid: int
    seq: int


START: Final = Position(0, 0)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    position: Position
    event_id: str
    occurred_at: datetime
    type: str
    resident_id: str
    fields: tuple[str, ...]
    ids: dict[str, str]


@dataclass(frozen=True, slots=True)
class Entry:
    """One history entry of the register: 異動事由, 異動日, the record then."""

    reason: str
    move_date: date
    snapshot: dict[str, Any]


_PAGE: Final = (
    "WITH w AS MATERIALIZED "  # noqa: S608 - a constant record type
    "(SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) "
    "SELECT w.xmin AS watermark, e.xid, e.seq, e.event_id, e.occurred_at, e.type, "
    "e.record_id, e.fields, e.ids "
    "FROM w LEFT JOIN LATERAL ("
    "  SELECT * FROM events AS ev "
    "  WHERE ev.xid < w.xmin AND (ev.xid, ev.seq) > ($1::xid8, $2::bigint) "
    f"    AND ev.record_type = '{RECORD_TYPE}' "
    "  ORDER BY ev.xid, ev.seq LIMIT $3"
    ") AS e ON true ORDER BY e.xid, e.seq"
)


async def page(
    uow: TenantUnitOfWork, after: Position, limit: int
) -> tuple[list[OutboxEvent], Position]:
    """Residents' events after ``after`` (oldest first) and where the next read starts.

    When the page is not full, the next position moves up to the watermark,
    so events of other record types are not scanned again.
    """
    rows = await uow.fetch(_PAGE, after.xid, after.seq, limit)
    watermark = int(rows[0]["watermark"])
    out: list[OutboxEvent] = []
    position = after
    for row in rows:
        if row["xid"] is None:
            continue
        position = Position(int(row["xid"]), int(row["seq"]))
        ids = row["ids"]
        out.append(
            OutboxEvent(
                position=position,
                event_id=str(row["event_id"]),
                occurred_at=row["occurred_at"],
                type=row["type"],
                resident_id=str(row["record_id"]),
                fields=tuple(row["fields"]),
                ids=dict(ids if isinstance(ids, dict) else json.loads(ids)),
            )
        )
    if len(out) < limit:
        position = max(position, Position(watermark - 1, _MAX_SEQ))
    return out, position


async def oldest_pending(uow: TenantUnitOfWork, after: Position) -> datetime | None:
    """When the oldest residents' event not yet read was written (the lag's start)."""
    value: datetime | None = await uow.fetchval(
        "SELECT occurred_at FROM events WHERE (xid, seq) > ($1::xid8, $2::bigint) "  # noqa: S608
        f"AND record_type = '{RECORD_TYPE}' ORDER BY xid, seq LIMIT 1",
        after.xid,
        after.seq,
    )
    return value


async def entries(
    uow: TenantUnitOfWork, wanted: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], Entry]:
    """The history entries ``(resident id, history no)``, decrypted."""
    pairs = sorted(set(wanted))
    if not pairs:
        return {}
    rows = await uow.fetch(
        "SELECT h.resident_id, h.history_no, h.reason, h.move_date, h.snapshot "
        "FROM resident_history AS h "
        "JOIN unnest($1::uuid[], $2::int[]) AS w(r, n) "
        "ON h.resident_id = w.r AND h.history_no = w.n",
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )
    k = keys(uow)
    out: dict[tuple[str, int], Entry] = {}
    for r in rows:
        rid, no = str(r["resident_id"]), int(r["history_no"])
        place = f"{rid}/{no}"
        reason = k.decrypt(HISTORY, "reason", place, r["reason"]) or ""
        moved = k.decrypt(HISTORY, "move_date", place, r["move_date"]) or ""
        snapshot = json.loads(k.decrypt(HISTORY, "snapshot", place, r["snapshot"]) or "{}")
        out[(rid, no)] = Entry(reason, date.fromisoformat(moved), snapshot)
    return out


async def latest_entries(uow: TenantUnitOfWork, resident_ids: Sequence[str]) -> dict[str, Entry]:
    """Each resident's latest history entry (the record as it stands)."""
    if not resident_ids:
        return {}
    rows = await uow.fetch(
        "SELECT DISTINCT ON (resident_id) resident_id, history_no FROM resident_history "
        "WHERE resident_id = ANY($1::uuid[]) ORDER BY resident_id, history_no DESC",
        list(resident_ids),
    )
    found = await entries(uow, [(str(r["resident_id"]), int(r["history_no"])) for r in rows])
    return {rid: entry for (rid, _), entry in found.items()}


async def linked(uow: TenantUnitOfWork, resident_ids: Sequence[str]) -> set[str]:
    """Residents under 支援措置 or linked to one now (rule 1: nothing crosses for them)."""
    if not resident_ids:
        return set()
    rows = await uow.fetch(
        "SELECT id FROM residents WHERE id = ANY($1::uuid[]) "
        "AND (support_measure OR protection_linked)",
        list(resident_ids),
    )
    return {str(r["id"]) for r in rows}


async def destinations(uow: TenantUnitOfWork, resident_ids: Sequence[str]) -> dict[str, str]:
    """Resident → the town named by their latest registered move-out (when one was)."""
    if not resident_ids:
        return {}
    rows = await uow.fetch(
        "SELECT DISTINCT ON (resident_id) resident_id, to_town FROM move_outs "
        "WHERE resident_id = ANY($1::uuid[]) AND to_town IS NOT NULL "
        "ORDER BY resident_id, created_at DESC",
        list(resident_ids),
    )
    return {str(r["resident_id"]): r["to_town"].strip() for r in rows}


async def active(uow: TenantUnitOfWork, resident_ids: Sequence[str]) -> set[str]:
    """Which of ``resident_ids`` live in the town now (state ``active``)."""
    if not resident_ids:
        return set()
    rows = await uow.fetch(
        "SELECT id FROM residents WHERE id = ANY($1::uuid[]) AND state = 'active'",
        list(resident_ids),
    )
    return {str(r["id"]) for r in rows}


async def birth_dates(
    uow: TenantUnitOfWork, after: str | None, limit: int
) -> list[tuple[str, date, str]]:
    """A batch of (resident id, birth date, state) by id, for filling the 65 watch."""
    rows = await uow.fetch(
        "SELECT id, birth_date, state FROM residents WHERE id > $1::uuid ORDER BY id LIMIT $2",
        after or "00000000-0000-0000-0000-000000000000",
        limit,
    )
    k = keys(uow)
    out = []
    for r in rows:
        rid = str(r["id"])
        born = k.decrypt(RESIDENTS, "birth_date", rid, r["birth_date"]) or ""
        out.append((rid, date.fromisoformat(born), r["state"]))
    return out
