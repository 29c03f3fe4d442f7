"""Reading a town's feed of residents' events, as ``GET …/events`` serves it.

The position is ``(xid, seq)`` and a read serves only events below the
snapshot's xmin, so nothing can appear behind a position already handed out
(the package's docstring); rule 1 is applied as the feed reads
(:func:`withhold_whereabouts`).
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from shared_gov import errors
from shared_gov.clock import day_of
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import messages as m
from shared_gov.domains.residents import repository
from shared_gov.domains.residents.events.kinds import KINDS, RECORD_TYPE

MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100
_MAX_SEQ: Final = 2**63 - 1


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
        bad = errors.invalid_field("/query/after", m.EVENT_FEED_CURSOR)
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
        raise errors.invalid_field(
            "/query/type", m.NOT_AN_EVENT_TYPE(types=", ".join(sorted(KINDS)))
        )
    return frozenset(values)
