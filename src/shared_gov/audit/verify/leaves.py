"""Step 1, per event: each sealed leaf recomputed from its event, and its MAC.

The rows of :data:`_CHECK_SQL` carry a leaf with its event's columns;
:func:`_examine` flags a changed event, a bad MAC or a missing one. In one
process the caller walks the rows itself; with workers,
:func:`_check_range` runs in a worker process over a range of sequence numbers
in the caller's exported snapshot.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final

import asyncpg

from shared_gov.audit import merkle
from shared_gov.audit.mac import content_mac
from shared_gov.audit.tlog import (
    EVENT_COLUMNS,
    EVENT_SELECT,
    SELECT_COLUMNS,
    values_leaf_hash,
)
from shared_gov.audit.tlog.canonical import canonical_pair
from shared_gov.audit.verify.report import MAX_LISTED, Problem

CHUNK: Final = 50_000
"""Sequence numbers per worker task."""
PREFETCH: Final = 2_000

_N: Final = len(SELECT_COLUMNS)
# Leaves in order, each with its event's columns first (so row[:_N] are the
# canonical values) or NULLs if the event is gone. The LATERAL look-up by the
# events' primary key streams in sequence order, without a sort and without
# hashing the town's whole log for a range.
_CHECK_SQL: Final = (
    f"SELECT {EVENT_SELECT}, l.seq, l.leaf_hash, e.event_id IS NOT NULL, "  # noqa: S608 - constants
    "e.mac, e.writer, e.wseq, e.prev_mac "
    "FROM audit.leaves AS l LEFT JOIN LATERAL ("
    "  SELECT * FROM audit.events AS e WHERE e.tenant = l.tenant "
    "  AND e.occurred_at = l.occurred_at AND e.event_id = l.event_id "
    "  AND e.incarnation = l.incarnation LIMIT 1"
    ") AS e ON true "
    "WHERE l.tenant = $1 AND l.incarnation = $4 AND l.seq >= $2 AND l.seq < $3 ORDER BY l.seq"
)


_SNAPSHOT_ID: Final = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")
_LAST: Final = 2**63 - 1


def _changed(seq: int) -> Problem:
    return Problem("event_changed", f"leaf {seq}: the event no longer hashes to it", seq)


_RangeResult = tuple[list[int], list[int], list[tuple[str, int]], list[tuple[str, int]], int | None]


def _check_range(
    url: str,
    snapshot: str,
    tenant: str,
    incarnation: int,
    start: int,
    end: int,
    mac_key: bytes | None = None,
) -> _RangeResult:
    """In a worker process: the leaves in ``[start, end)`` whose event is missing or
    changed, whose MAC is bad or missing, and the first one with a MAC."""
    return asyncio.run(_check_range_async(url, snapshot, tenant, incarnation, start, end, mac_key))


async def _check_range_async(
    url: str,
    snapshot: str,
    tenant: str,
    incarnation: int,
    start: int,
    end: int,
    mac_key: bytes | None,
) -> _RangeResult:
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError("not a snapshot id")
    missing: list[int] = []
    changed: list[int] = []
    bad_macs: list[tuple[str, int]] = []
    no_macs: list[tuple[str, int]] = []
    first_maced: int | None = None
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # The exporting transaction's snapshot: exactly what it sees.
            await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            async for row in conn.cursor(
                _CHECK_SQL, tenant, start, end, incarnation, prefetch=PREFETCH
            ):
                seq = row[_N]
                if not row[_N + 2]:
                    missing.append(seq)
                    continue
                flags = _examine(row, mac_key)
                if flags & _CHANGED:
                    changed.append(seq)
                if flags & _BAD_MAC:
                    bad_macs.append((str(row[_ID]), seq))
                if flags & _NO_MAC:
                    if len(no_macs) < MAX_LISTED:
                        no_macs.append((str(row[_ID]), seq))
                elif first_maced is None:
                    first_maced = seq
    finally:
        await conn.close()
    return missing, changed, bad_macs, no_macs, first_maced


_ID: Final = EVENT_COLUMNS.index("event_id")
_CHANGED: Final = 1
_BAD_MAC: Final = 2
_NO_MAC: Final = 4


def _examine(row: Any, mac_key: bytes | None) -> int:
    """Flags for one sealed leaf's event: its leaf hash, and (with a key) its MAC."""
    values = row[:_N]
    if mac_key is None:
        return 0 if values_leaf_hash(values) == row[_N + 1] else _CHANGED
    # Both encodings at once: the leaf's and the MAC's share 21 of 23 values.
    content, mac_content = canonical_pair(values)
    flags = 0 if merkle.leaf_hash(content) == row[_N + 1] else _CHANGED
    mac = row[_N + 3]
    if mac is None:
        return flags | _NO_MAC
    writer, prev = row[_N + 4], row[_N + 6]
    expected = content_mac(
        mac_key,
        mac_content,
        None if writer is None else str(writer),
        row[_N + 5],
        None if prev is None else bytes(prev),
    )
    if expected != bytes(mac):
        flags |= _BAD_MAC
    return flags


def _bad_mac(event_id: Any, seq: int | None) -> Problem:
    where = f"leaf {seq}: " if seq is not None else ""
    return Problem(
        "mac_invalid",
        f"{where}event {event_id} does not carry the town's MAC of its content "
        "(forged, or changed since it was written)",
        seq,
    )
