"""Re-verify a town's whole audit log from the events up (``shared-gov audit verify``).

Nothing stored is taken on trust except the town's public key (from the key
provider) and, optionally, a checkpoint the auditor saved earlier:

1. sequence numbers run 0, 1, 2, … without a gap, and every leaf is
   recomputed from its event (canonical encoding, :mod:`.tlog`) and compared
   with the stored leaf hash;
2. the tree is rebuilt from the leaves; every stored subtree node must equal
   the rebuilt one (they serve the proofs);
3. every checkpoint's Ed25519 signature must verify under the town's key, and
   its root must equal the rebuilt tree's root at its size;
4. a saved checkpoint must be signed by the same key and the log must extend
   it (its complete subtrees, or at least its root, match the rebuilt tree);
5. no event older than the sealer's position may be left unsealed (one
   inserted behind the sealer's back).

Each incarnation of a town code is a log of its own (migration c0012):
:func:`verify_tenant` checks one, :func:`verify_town` every one of the town's
incarnations (or the one asked for), each against its own key: the provider's
for the town as it is now, the key recorded at offboarding
(``audit.incarnation_keys``) for one that ended.

Problems carry the first leaf position they implicate. Per-event problems
are exact; a root that stops matching a signed head is located between the
last head that still matched and that head (heads are about a second apart);
a rewritten log that matches nothing signed by the town is located by the
saved checkpoint's complete subtrees.

Everything is read in one REPEATABLE READ snapshot, so a sealer appending
meanwhile never produces false alarms. Step 1 (decoding and hashing every
event) is most of the work and parallel by nature: with ``workers`` it runs
in that many processes, each on a range of sequence numbers in the same
exported snapshot, while this process rebuilds the tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import asyncpg

from shared_gov.audit import merkle
from shared_gov.audit.mac import mac_of_values
from shared_gov.audit.tlog import (
    EVENT_COLUMNS,
    EVENT_SELECT,
    SELECT_COLUMNS,
    Checkpoint,
    b64,
    values_leaf_hash,
)
from shared_gov.crypto.keyring import town_keys

__all__ = [
    "Problem",
    "VerifyReport",
    "check_chains",
    "check_links",
    "incarnation_keys",
    "live_mac_key",
    "verify_tenant",
    "verify_town",
]

MAX_LISTED: Final = 50
"""Problems listed per kind; the rest are counted."""
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
_LEAVES_SQL: Final = (
    "SELECT seq, leaf_hash FROM audit.leaves WHERE tenant = $1 AND incarnation = $2 ORDER BY seq"
)
# Nodes in the order a growing tree completes them: by the leaf that completes
# them, then bottom-up.
_NODES_SQL: Final = (
    "SELECT level, idx, hash FROM audit.nodes WHERE tenant = $1 AND incarnation = $2 "
    "ORDER BY (idx + 1) << level, level"
)
_UNSEALED_SQL: Final = (
    "WITH position AS ("
    "  SELECT xid, occurred_at, event_id FROM audit.leaves "
    "  ORDER BY xid DESC, occurred_at DESC, event_id DESC LIMIT 1) "
    "SELECT e.event_id FROM audit.events AS e, position AS p "
    "WHERE e.tenant = $1 AND e.incarnation = $3 "
    "AND (e.xid, e.occurred_at, e.event_id) < (p.xid, p.occurred_at, p.event_id) "
    "AND NOT EXISTS (SELECT 1 FROM audit.leaves AS l WHERE l.tenant = e.tenant "
    "                AND l.event_id = e.event_id AND l.occurred_at = e.occurred_at "
    "                AND l.incarnation = e.incarnation) "
    "ORDER BY e.occurred_at LIMIT $2"
)
_SNAPSHOT_ID: Final = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")
_LAST: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that does not verify.

    With ``end`` None, ``position`` is exactly a bad leaf; with ``end``, at
    least one leaf in ``position .. end - 1`` is not what was signed.
    """

    kind: str
    """``gap``, ``event_missing``, ``event_changed`` (exact); ``node_mismatch``,
    ``root_mismatch``, ``trusted_mismatch``, ``checkpoint_beyond_tree``,
    ``trusted_beyond_tree`` (ranges); ``bad_signature``, ``unknown_key``,
    ``trusted_*``, ``unsealed_event`` (no position)."""
    detail: str
    position: int | None = None
    """The first leaf (sequence number) implicated, when the problem is about leaves."""
    end: int | None = None
    """For a range: the first leaf after it."""


@dataclass(slots=True)
class VerifyReport:
    """The outcome of :func:`verify_tenant`."""

    tenant: str
    incarnation: int = 1
    leaves: int = 0
    checkpoints: int = 0
    nodes: int = 0
    verified_size: int = 0
    """The largest prefix vouched for: its root matches a head signed by the
    town's key, or the saved checkpoint's subtrees cover it."""
    problems: list[Problem] = field(default_factory=list)
    """Up to :data:`MAX_LISTED` of each kind, in the order found."""
    counts: Counter[str] = field(default_factory=Counter)
    _exact: Problem | None = None
    _range: Problem | None = None

    @property
    def ok(self) -> bool:
        return not self.counts

    @property
    def first_bad(self) -> Problem | None:
        """Where the log first departs from what was signed.

        The lowest exact position, unless a range lies wholly before it (that
        range then holds an earlier bad leaf); else the range that ends first.
        """
        exact, span = self._exact, self._range
        if span is None or span.end is None:
            return exact
        if exact is not None and exact.position is not None and exact.position < span.end:
            return exact
        return span

    def add(self, problem: Problem) -> None:
        self.counts[problem.kind] += 1
        if self.counts[problem.kind] <= MAX_LISTED:
            self.problems.append(problem)
        if problem.position is None:
            return
        if problem.end is None:
            if self._exact is None or problem.position < (self._exact.position or 0):
                self._exact = problem
        elif (
            self._range is None
            or self._range.end is None
            or problem.end < self._range.end
            or (problem.end == self._range.end and problem.position > (self._range.position or 0))
        ):
            # The range that ends first bounds the first bad leaf most tightly.
            self._range = problem


@dataclass(slots=True)
class _Head:
    checkpoint: Checkpoint
    trusted: bool
    """Signed by the town's key (signature and key both check out)."""


@contextlib.asynccontextmanager
async def _snapshot(conn: asyncpg.Connection) -> AsyncIterator[None]:
    if conn.is_in_transaction():
        # The caller's transaction (tests verify inside their tampering).
        yield
        return
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        yield


async def verify_tenant(
    conn: asyncpg.Connection,
    tenant: str,
    *,
    public_key: bytes | None,
    trusted: Checkpoint | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
    url: str | None = None,
    incarnation: int = 1,
    mac_key: bytes | None = None,
) -> VerifyReport:
    """Verify the sealed log of town ``tenant``'s ``incarnation``; ``public_key``
    is that incarnation's (None: unknown).

    Without ``public_key`` every signature is checked against the key stored
    with its checkpoint only, and that is reported as ``unknown_key``.
    ``workers`` > 0 hashes the events in that many processes, which connect
    to ``url``; ignored inside a transaction the caller opened (other
    sessions could not see its uncommitted changes).

    ``mac_key``: the town's audit key (the key provider's, for the town's
    live incarnation; an ended incarnation's key is shredded). With it,
    every event's MAC, every writer's chain, and the links from the town's
    history rows and outbox events to their events are checked too
    (:func:`check_chains`, :func:`check_links`).
    """
    report = VerifyReport(tenant, incarnation)
    parallel = (
        (workers, url) if workers > 0 and url is not None and not conn.is_in_transaction() else None
    )
    async with _snapshot(conn):
        await _verify(conn, report, public_key, trusted, progress, parallel, mac_key)
    return report


def _check_heads(
    report: VerifyReport, rows: list[asyncpg.Record], public_key: bytes | None
) -> list[_Head]:
    heads: list[_Head] = []
    for row in rows:
        checkpoint = Checkpoint(
            row["tenant"],
            row["tree_size"],
            bytes(row["root_hash"]),
            row["signed_at"],
            bytes(row["signature"]),
            bytes(row["public_key"]),
            incarnation=row["incarnation"],
        )
        size = checkpoint.tree_size
        if not checkpoint.signature_valid():
            report.add(Problem("bad_signature", f"checkpoint at size {size}: bad signature"))
            heads.append(_Head(checkpoint, False))
        elif public_key is None or checkpoint.public_key != public_key:
            report.add(
                Problem(
                    "unknown_key",
                    f"checkpoint at size {size} is signed by a key that is not the town's "
                    f"({b64(checkpoint.public_key)})",
                )
            )
            heads.append(_Head(checkpoint, False))
        else:
            heads.append(_Head(checkpoint, True))
    return heads


def _check_trusted(
    report: VerifyReport, trusted: Checkpoint | None, public_key: bytes | None, tenant: str
) -> Checkpoint | None:
    """The saved checkpoint, if it can be relied on (problems reported otherwise)."""
    if trusted is None:
        return None
    if trusted.tenant != tenant or trusted.incarnation != report.incarnation:
        report.add(
            Problem(
                "trusted_other_town",
                f"the saved checkpoint is town {trusted.tenant}'s "
                f"(incarnation {trusted.incarnation})",
            )
        )
        return None
    if not trusted.signature_valid():
        report.add(Problem("trusted_bad_signature", "the saved checkpoint's signature is bad"))
        return None
    if public_key is not None and trusted.public_key != public_key:
        report.add(
            Problem("trusted_key", "the saved checkpoint was signed by another key than the town's")
        )
    subtrees = [h for _, _, h in trusted.subtrees]
    layout = [(s, n) for s, n, _ in trusted.subtrees]
    expected = [(i << lv, 1 << lv) for lv, i in merkle.perfect_subtrees(0, trusted.tree_size)]
    if trusted.subtrees and (layout != expected or merkle.fold(subtrees) != trusted.root_hash):
        # The subtrees are only a locating aid; unusable ones are dropped.
        trusted = Checkpoint(
            trusted.tenant,
            trusted.tree_size,
            trusted.root_hash,
            trusted.signed_at,
            trusted.signature,
            trusted.public_key,
            incarnation=trusted.incarnation,
        )
    return trusted


class _Saved:
    """The saved checkpoint's complete subtrees, checked as the tree grows."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self.pending: dict[tuple[int, int], bytes] = {}
        for start, size, h in checkpoint.subtrees:
            level = size.bit_length() - 1
            self.pending[level, start >> level] = h
        self.intact = True
        """Every subtree so far matched: the prefix they cover is vouched for."""

    def check(
        self, report: VerifyReport, level: int, index: int, rebuilt: bytes, vouched: int
    ) -> int:
        expected = self.pending.pop((level, index), None)
        if expected is None:
            return vouched
        start, end = index << level, (index + 1) << level
        if expected == rebuilt:
            return max(vouched, end) if self.intact else vouched
        self.intact = False
        report.add(
            Problem(
                "trusted_mismatch",
                f"the log is not an extension of the saved checkpoint "
                f"(size {self.checkpoint.tree_size}): leaves {start}..{end - 1} differ",
                max(start, vouched) if vouched < end else start,
                end,
            )
        )
        return vouched


async def _verify(
    conn: asyncpg.Connection,
    report: VerifyReport,
    public_key: bytes | None,
    trusted: Checkpoint | None,
    progress: Callable[[int], None] | None,
    parallel: tuple[int, str] | None,
    mac_key: bytes | None = None,
) -> None:
    tenant, incarnation = report.tenant, report.incarnation
    macs = _Unmaced()
    rows = await conn.fetch(
        "SELECT tenant, tree_size, root_hash, signed_at, signature, public_key, incarnation "
        "FROM audit.checkpoints WHERE tenant = $1 AND incarnation = $2 ORDER BY tree_size",
        tenant,
        incarnation,
    )
    report.checkpoints = len(rows)
    heads = {h.checkpoint.tree_size: h for h in _check_heads(report, rows, public_key)}
    saved_checkpoint = _check_trusted(report, trusted, public_key, tenant)
    builder = _Rebuild(
        report,
        heads,
        _Saved(saved_checkpoint) if saved_checkpoint else None,
        _NodeStream(conn.cursor(_NODES_SQL, tenant, incarnation, prefetch=PREFETCH), report),
    )

    if parallel is None:
        # One stream: each leaf with its event, checked and appended in turn.
        async for row in conn.cursor(_CHECK_SQL, tenant, 0, _LAST, incarnation, prefetch=PREFETCH):
            seq, stored = row[_N], row[_N + 1]
            if not row[_N + 2]:
                report.add(Problem("event_missing", f"leaf {seq}: its event is gone", seq))
            else:
                flags = _examine(row, mac_key)
                if flags & _CHANGED:
                    report.add(_changed(seq))
                if flags & _BAD_MAC:
                    report.add(_bad_mac(row[_ID], seq))
                if flags & _NO_MAC:
                    macs.unmaced(row[_ID], seq)
                else:
                    macs.maced(seq)
            await builder.leaf(seq, stored, progress)
    else:
        # Workers hash the events range by range; this process rebuilds the tree.
        workers, url = parallel
        snapshot = str(await conn.fetchval("SELECT pg_export_snapshot()"))
        last = await conn.fetchval(
            "SELECT seq FROM audit.leaves WHERE tenant = $1 AND incarnation = $2 "
            "ORDER BY seq DESC LIMIT 1",
            tenant,
            incarnation,
        )
        ranges = (
            [(a, a + CHUNK) for a in range(0, (last or 0) + 1, CHUNK)] if last is not None else []
        )

        async def rebuild() -> None:
            async for row in conn.cursor(_LEAVES_SQL, tenant, incarnation, prefetch=PREFETCH):
                await builder.leaf(row[0], row[1], progress)

        loop = asyncio.get_running_loop()
        # "spawn": a forked child would inherit this process's event loop and
        # open connections.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            checks = [
                loop.run_in_executor(
                    pool, _check_range, url, snapshot, tenant, incarnation, start, end, mac_key
                )
                for start, end in ranges
            ]
            rebuilding = asyncio.create_task(rebuild())
            try:
                results = await asyncio.gather(*checks)
            finally:
                await rebuilding
        for missing, changed, bad_macs, no_macs, first_maced in results:
            for seq in missing:
                report.add(Problem("event_missing", f"leaf {seq}: its event is gone", seq))
            for seq in changed:
                report.add(_changed(seq))
            for event_id, seq in bad_macs:
                report.add(_bad_mac(event_id, seq))
            for event_id, seq in no_macs:
                macs.unmaced(event_id, seq)
            if first_maced is not None:
                macs.maced(first_maced)

    if progress is not None:
        progress(report.leaves)
    await builder.finish()
    for unsealed in await conn.fetch(_UNSEALED_SQL, tenant, MAX_LISTED, incarnation):
        report.add(
            Problem(
                "unsealed_event",
                f"event {unsealed['event_id']} is older than the sealer's position "
                "but was never sealed (inserted afterwards?)",
            )
        )
    if mac_key is not None:
        await check_unsealed_macs(conn, report, mac_key, macs)
        macs.report(report)
        await check_chains(conn, report)
        await check_links(conn, report)


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


class _Rebuild:
    """Grows the tree leaf by leaf, comparing stored nodes, heads and the saved checkpoint."""

    def __init__(
        self,
        report: VerifyReport,
        heads: dict[int, _Head],
        saved: _Saved | None,
        nodes: _NodeStream,
    ) -> None:
        self.report = report
        self.heads = heads
        self.saved = saved
        self.nodes = nodes
        self.tree = merkle.CompactRange()
        self.completed: list[tuple[int, int, bytes]] = []
        self.expected = 0
        self.vouched = 0
        self.broken = False
        """After a gap the tree cannot be rebuilt."""
        saved_size = [saved.checkpoint.tree_size] if saved else []
        self.stops = sorted({*heads, *saved_size})
        self.stop_index = 0

    async def leaf(self, seq: int, stored: bytes, progress: Callable[[int], None] | None) -> None:
        report = self.report
        if seq != self.expected:
            report.add(
                Problem(
                    "gap", f"sequence numbers {self.expected}..{seq - 1} are missing", self.expected
                )
            )
            self.broken = True
            self.expected = seq
        self.expected += 1
        report.leaves += 1
        if progress is not None and not report.leaves % 10_000:
            progress(report.leaves)
        if self.broken:
            return
        tree, saved = self.tree, self.saved
        tree.append_recording(stored, self.completed)
        if saved is not None:
            self.vouched = saved.check(report, 0, seq, stored, self.vouched)
        if self.completed:
            for level, index, h in self.completed:
                await self.nodes.expect(level, index, h)
                if saved is not None:
                    self.vouched = saved.check(report, level, index, h, self.vouched)
            self.completed.clear()
        stops = self.stops
        if self.stop_index < len(stops) and tree.size == stops[self.stop_index]:
            self.vouched = _compare_at_stop(
                report, tree, self.heads.get(tree.size), saved, self.vouched
            )
            self.stop_index += 1

    async def finish(self) -> None:
        report = self.report
        await self.nodes.leftovers()
        # Heads (or the saved checkpoint) for more leaves than there are: the
        # tail was cut off, or the log rewritten shorter.
        saved = self.saved.checkpoint if self.saved else None
        for size in self.stops[self.stop_index :]:
            if size in self.heads:
                report.add(
                    Problem(
                        "checkpoint_beyond_tree",
                        f"a checkpoint covers {size} leaves but only {self.expected} are stored",
                        self.vouched,
                        size,
                    )
                )
            if saved is not None and size == saved.tree_size:
                report.add(
                    Problem(
                        "trusted_beyond_tree",
                        f"the saved checkpoint covers {size} leaves but only {self.expected} "
                        "are stored",
                        self.vouched,
                        size,
                    )
                )
        report.verified_size = self.vouched


class _NodeStream:
    """The stored nodes, read alongside the rebuild in completion order."""

    def __init__(self, cursor: Any, report: VerifyReport) -> None:
        self._rows = cursor.__aiter__()
        self._report = report
        self._pending: asyncpg.Record | None = None
        self._done = False

    async def _peek(self) -> asyncpg.Record | None:
        if self._pending is None and not self._done:
            try:
                self._pending = await self._rows.__anext__()
                self._report.nodes += 1
            except StopAsyncIteration:
                self._done = True
        return self._pending

    async def expect(self, level: int, index: int, rebuilt: bytes) -> None:
        row = await self._peek()
        if row is not None and (row["level"], row["idx"]) == (level, index):
            self._pending = None
            if bytes(row["hash"]) != rebuilt:
                self._report.add(_node_problem(level, index, "differs from the rebuilt tree"))
        else:
            self._report.add(_node_problem(level, index, "is missing"))

    async def leftovers(self) -> None:
        while (row := await self._peek()) is not None:
            self._pending = None
            self._report.add(_node_problem(row["level"], row["idx"], "is not in the tree"))


def _node_problem(level: int, index: int, what: str) -> Problem:
    start, end = index << level, (index + 1) << level
    return Problem(
        "node_mismatch", f"stored subtree of leaves {start}..{end - 1} {what}", start, end
    )


def _compare_at_stop(
    report: VerifyReport,
    tree: merkle.CompactRange,
    head: _Head | None,
    saved: _Saved | None,
    vouched: int,
) -> int:
    """Compare the rebuilt root with the heads at this size; the new vouched-for size."""
    size = tree.size
    root = tree.root()
    before = vouched
    if saved is not None and saved.checkpoint.tree_size == size:
        if saved.checkpoint.root_hash == root:
            vouched = max(vouched, size)
        elif not saved.checkpoint.subtrees:
            # Without subtrees only the root says anything: somewhere after
            # what the town's own heads vouched for so far.
            report.add(
                Problem(
                    "trusted_mismatch",
                    f"the log is not an extension of the saved checkpoint (size {size})",
                    before,
                    size,
                )
            )
    if head is not None:
        if head.checkpoint.root_hash != root:
            report.add(
                Problem(
                    "root_mismatch",
                    f"the checkpoint at size {size} does not match the rebuilt tree: "
                    f"a leaf in {before}..{size - 1} differs from what was signed",
                    before,
                    size,
                )
            )
        elif head.trusted:
            vouched = max(vouched, size)
    return vouched


_INCARNATIONS_SQL: Final = (
    "SELECT GREATEST("
    "  (SELECT incarnation FROM catalog.tenants WHERE code = $1::char(6)),"
    "  (SELECT max(incarnation) FROM audit.checkpoints WHERE tenant = $1::char(6)),"
    "  (SELECT max(incarnation) FROM audit.leaves WHERE tenant = $1::char(6)),"
    "  (SELECT max(incarnation) FROM audit.incarnation_keys WHERE tenant = $1::char(6)),"
    "  1) AS last, "
    "(SELECT incarnation FROM catalog.tenants WHERE code = $1::char(6) "
    " AND status <> 'offboarded') AS live"
)


async def incarnation_keys(
    conn: asyncpg.Connection, tenant: str, current_key: Callable[[], bytes | None]
) -> dict[int, bytes | None]:
    """Every incarnation of the town (1 … the latest) with the public key to trust for it.

    An incarnation that ended has the key offboarding recorded (None if it
    ended before keys were recorded); the town's live incarnation has
    ``current_key()``, the key provider's (None if it has none).
    """
    row = await conn.fetchrow(_INCARNATIONS_SQL, tenant)
    recorded = {
        r["incarnation"]: bytes(r["public_key"])
        for r in await conn.fetch(
            "SELECT incarnation, public_key FROM audit.incarnation_keys WHERE tenant = $1",
            tenant,
        )
    }
    keys: dict[int, bytes | None] = {}
    for incarnation in range(1, int(row["last"]) + 1):
        key = recorded.get(incarnation)
        if key is None and incarnation == row["live"]:
            key = current_key()
        keys[incarnation] = key
    return keys


async def live_mac_key(db: Any, conn: asyncpg.Connection, tenant: str) -> dict[int, bytes]:
    """The town's audit key, for its live incarnation (``{incarnation: key}``; empty
    for a town offboarded, whose key is shredded, or one without a key)."""
    live = await conn.fetchval(
        "SELECT incarnation FROM catalog.tenants WHERE code = $1::char(6) "
        "AND status <> 'offboarded'",
        tenant,
    )
    if live is None:
        return {}
    try:
        keys = await town_keys(db, tenant)
    except LookupError:
        return {}
    return {int(live): keys.audit_mac} if keys.audit_mac is not None else {}


async def verify_town(
    conn: asyncpg.Connection,
    tenant: str,
    keys: dict[int, bytes | None],
    *,
    incarnation: int | None = None,
    trusted: Checkpoint | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 0,
    url: str | None = None,
    mac_keys: dict[int, bytes] | None = None,
) -> list[VerifyReport]:
    """:func:`verify_tenant` for each incarnation in ``keys`` (from :func:`incarnation_keys`),
    or only ``incarnation``; the saved checkpoint goes to the incarnation it names.
    ``mac_keys``: the audit key per incarnation (:func:`live_mac_key`)."""
    chosen = sorted(keys) if incarnation is None else [incarnation]
    reports = []
    for number in chosen:
        reports.append(
            await verify_tenant(
                conn,
                tenant,
                public_key=keys.get(number),
                trusted=trusted if trusted is not None and trusted.incarnation == number else None,
                progress=progress,
                workers=workers,
                url=url,
                incarnation=number,
                mac_key=(mac_keys or {}).get(number),
            )
        )
    if trusted is not None and trusted.incarnation not in chosen and reports:
        reports[-1].add(
            Problem(
                "trusted_other_town",
                f"the saved checkpoint is of incarnation {trusted.incarnation}, not verified here",
            )
        )
    return reports


# --------------------------------------------------------------------------------------
# MACs, chains and links (audit pipeline v2, catalog c0015)
# --------------------------------------------------------------------------------------

_ID: Final = EVENT_COLUMNS.index("event_id")
_CHANGED: Final = 1
_BAD_MAC: Final = 2
_NO_MAC: Final = 4


def _examine(row: Any, mac_key: bytes | None) -> int:
    """Flags for one sealed leaf's event: its leaf hash, and (with a key) its MAC."""
    values = row[:_N]
    flags = 0 if values_leaf_hash(values) == row[_N + 1] else _CHANGED
    if mac_key is None:
        return flags
    mac = row[_N + 3]
    if mac is None:
        return flags | _NO_MAC
    if mac_of_values(mac_key, values, row[_N + 4], row[_N + 5], row[_N + 6]) != bytes(mac):
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


class _Unmaced:
    """Events without a MAC: allowed only before the town's first MACed event.

    Events written before catalog c0015, or before the town's audit key
    existed (the first request after the upgrade creates it), have none;
    after the first sealed event with a MAC, every event must have one.
    """

    def __init__(self) -> None:
        self.first_maced: int | None = None
        self.unsealed_maced = False
        self.without: list[tuple[str, int | None]] = []

    def maced(self, seq: int) -> None:
        if self.first_maced is None or seq < self.first_maced:
            self.first_maced = seq

    def unmaced(self, event_id: Any, seq: int | None) -> None:
        self.without.append((str(event_id), seq))

    def report(self, report: VerifyReport) -> None:
        if self.first_maced is None and not self.unsealed_maced:
            return  # no event with a MAC yet: the town's key is new, or unused
        for event_id, seq in self.without:
            # Unsealed: written after events with a MAC (the sealer would
            # place it after them). Sealed: after the first one with a MAC.
            if seq is None or self.first_maced is None or seq > self.first_maced:
                where = f"leaf {seq}: " if seq is not None else "unsealed: "
                report.add(
                    Problem(
                        "mac_missing",
                        f"{where}event {event_id} has no MAC although the town's events "
                        "carry one (inserted behind the service?)",
                        seq,
                    )
                )


_UNSEALED_EVENTS_SQL: Final = (
    f"SELECT {EVENT_SELECT}, e.mac, e.writer, e.wseq, e.prev_mac "  # noqa: S608 - constants
    "FROM audit.events AS e WHERE e.tenant = $1 AND e.incarnation = $2 "
    # After the sealer's position (it seals in this order: everything after
    # it is unsealed; an unsealed event before it is an `unsealed_event`).
    "AND (e.xid, e.occurred_at, e.event_id) > COALESCE(("
    "  SELECT ROW(l.xid, l.occurred_at, l.event_id) FROM audit.leaves AS l "
    "  ORDER BY l.xid DESC, l.occurred_at DESC, l.event_id DESC LIMIT 1), "
    "  ROW('0'::xid8, '-infinity'::timestamptz, '00000000-0000-0000-0000-000000000000'::uuid))"
)


async def check_unsealed_macs(
    conn: asyncpg.Connection, report: VerifyReport, mac_key: bytes, macs: _Unmaced
) -> None:
    """The MACs of the events the sealer has not reached yet (the last second or so)."""
    async for row in conn.cursor(_UNSEALED_EVENTS_SQL, report.tenant, report.incarnation):
        mac = row[_N]
        if mac is None:
            macs.unmaced(row[_ID], None)
            continue
        macs.unsealed_maced = True
        if mac_of_values(mac_key, row[:_N], row[_N + 1], row[_N + 2], row[_N + 3]) != bytes(mac):
            report.add(_bad_mac(row[_ID], None))


_CHAIN_SQL: Final = (
    # No join: problems name event ids (a leaf position would cost a look-up
    # per event).
    "SELECT e.writer, e.wseq, e.event_id, e.mac, e.prev_mac, e.xid::text::numeric AS xid, "
    "e.occurred_at, NULL::bigint AS seq FROM audit.events AS e "
    "WHERE e.tenant = $1 AND e.incarnation = $2 AND e.writer IS NOT NULL "
    "ORDER BY e.writer, e.wseq, e.xid, e.occurred_at"
)


async def check_chains(conn: asyncpg.Connection, report: VerifyReport) -> None:
    """Every audit writer's chain in the town's log runs 0, 1, 2, … with each link intact.

    A gap is an event deleted (located between the two events around it);
    a link whose ``prev_mac`` is not its predecessor's MAC, a sequence number
    used twice, or a chain going back in time (transaction id, then time)
    are events reordered, copied or moved. The MACs themselves were checked
    with the leaves: a stored ``prev_mac`` or ``wseq`` that was changed
    fails its event's MAC.
    """
    previous: Any = None
    async for row in conn.cursor(_CHAIN_SQL, report.tenant, report.incarnation, prefetch=PREFETCH):
        writer, wseq = row["writer"], row["wseq"]
        if previous is None or previous["writer"] != writer:
            if wseq != 0:
                report.add(
                    Problem(
                        "chain_gap",
                        f"writer {writer}: its first {wseq} event(s) are missing "
                        f"(before event {row['event_id']})",
                        row["seq"],
                    )
                )
            elif row["prev_mac"] is not None:
                report.add(_link(row, "starts with a link to an event that is not there"))
            previous = row
            continue
        expected = previous["wseq"] + 1
        if wseq == previous["wseq"]:
            report.add(_link(row, f"sequence number {wseq} is used twice"))
        elif wseq != expected:
            report.add(
                Problem(
                    "chain_gap",
                    f"writer {writer}: event(s) {expected}..{wseq - 1} are missing, between "
                    f"event {previous['event_id']} and event {row['event_id']}",
                    row["seq"],
                )
            )
        elif row["prev_mac"] is None or bytes(row["prev_mac"]) != bytes(previous["mac"] or b""):
            report.add(_link(row, f"does not follow event {previous['event_id']}"))
        if (row["xid"], row["occurred_at"]) < (previous["xid"], previous["occurred_at"]):
            report.add(
                Problem(
                    "chain_order",
                    f"writer {writer}: event {row['event_id']} (#{wseq}) is dated before "
                    f"event {previous['event_id']} (#{previous['wseq']}) that it follows "
                    "(reordered?)",
                    row["seq"],
                )
            )
        previous = row


def _link(row: Any, what: str) -> Problem:
    return Problem(
        "chain_broken",
        f"writer {row['writer']}: event {row['event_id']} (#{row['wseq']}) {what}",
        row["seq"],
    )


_SCHEMA_SQL: Final = (
    "SELECT t.schema_name FROM catalog.tenants AS t WHERE t.code = $1::char(6) "
    "AND t.incarnation = $2 AND EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = t.schema_name)"
)
_SAFE_SCHEMA: Final = re.compile(r"^t_[0-9]{6}$")


async def check_links(conn: asyncpg.Connection, report: VerifyReport) -> None:
    """Every history row and outbox event of the town has its audit event.

    A write's event is written in the write's own transaction, so it carries
    that transaction's id (``xid``). An outbox event stores the same id
    (``events.xid``); a history row's ``xmin`` is its low 32 bits (the
    inserting, or last re-encrypting, transaction: both record an event).
    Deleting a write's event therefore leaves a history row or outbox event
    whose transaction has no event. (Not after a logical dump and restore,
    which gives every row the restoring transaction's ``xmin``: verify
    before, and compare outbox links only, after one.)
    """
    schema = await conn.fetchval(_SCHEMA_SQL, report.tenant, report.incarnation)
    if schema is None or not _SAFE_SCHEMA.fullmatch(str(schema)):
        return  # offboarded (or not this incarnation's): no town tables left
    has_event = (
        "EXISTS (SELECT 1 FROM audit.events AS e WHERE e.xid = {x} "
        "AND e.tenant = $1 AND e.incarnation = $2)"
    )
    outbox: list[asyncpg.Record] = []
    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.events"):
        outbox = await conn.fetch(
            f"SELECT o.xid::text AS xid, o.seq, o.event_id FROM {schema}.events AS o "  # noqa: S608
            f"WHERE NOT {has_event.format(x='o.xid')} ORDER BY o.xid, o.seq LIMIT {MAX_LISTED}",
            report.tenant,
            report.incarnation,
        )
    for row in outbox:
        report.add(
            Problem(
                "outbox_without_event",
                f"outbox event {row['event_id']} (transaction {row['xid']}) has no audit "
                "event of its write (deleted?)",
            )
        )
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.resident_history"):
        return
    # xmin is 32 bits; the event's xid is the same transaction in this epoch
    # or the one before (read from the snapshot: this transaction has no xid).
    full = (
        "(((div(pg_snapshot_xmax(pg_current_snapshot())::text::numeric, 4294967296)::bigint "
        "- {back}) << 32) + h.xmin::text::bigint)::text::xid8"
    )
    history = await conn.fetch(
        f"SELECT h.resident_id, h.history_no, h.xmin::text AS xid "  # noqa: S608
        f"FROM {schema}.resident_history AS h "
        f"WHERE NOT {has_event.format(x=full.format(back=0))} "
        f"AND NOT {has_event.format(x=full.format(back=1))} "
        f"ORDER BY h.resident_id, h.history_no LIMIT {MAX_LISTED}",
        report.tenant,
        report.incarnation,
    )
    for row in history:
        report.add(
            Problem(
                "history_without_event",
                f"history row {row['history_no']} of resident {row['resident_id']} "
                f"(transaction {row['xid']}) has no audit event of its write (deleted?)",
            )
        )
