"""Steps 2 to 4: the tree rebuilt from the leaves and compared as it grows.

Every stored subtree node must equal the rebuilt one (:class:`_NodeStream`),
every signed head's root the rebuilt root at its size, and a saved checkpoint's
complete subtrees (:class:`_Saved`) the rebuilt ones; :class:`_Rebuild` keeps
the largest prefix vouched for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from shared_gov.audit import merkle
from shared_gov.audit.tlog import Checkpoint, b64
from shared_gov.audit.verify.report import Problem, VerifyReport

_LEAVES_SQL: Final = (
    "SELECT seq, leaf_hash FROM audit.leaves WHERE tenant = $1 AND incarnation = $2 ORDER BY seq"
)
# Nodes in the order a growing tree completes them: by the leaf that completes
# them, then bottom-up.
_NODES_SQL: Final = (
    "SELECT level, idx, hash FROM audit.nodes WHERE tenant = $1 AND incarnation = $2 "
    "ORDER BY (idx + 1) << level, level"
)


@dataclass(slots=True)
class _Head:
    checkpoint: Checkpoint
    trusted: bool
    """Signed by the town's key (signature and key both check out)."""


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
