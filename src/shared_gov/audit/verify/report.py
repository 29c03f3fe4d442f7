"""What verification found: :class:`Problem` and :class:`VerifyReport`.

A report lists up to :data:`MAX_LISTED` problems of each kind (the rest are
counted) and keeps the problem that locates the first bad leaf most tightly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Final

MAX_LISTED: Final = 50
"""Problems listed per kind; the rest are counted."""


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
    ``trusted_*``, ``unsealed_event``, ``event_duplicated``, ``event_in_future`` (no
    position); with the audit key ``mac_invalid``, ``mac_missing``, ``chain_gap``,
    ``chain_broken``, ``chain_order``, ``outbox_without_event``,
    ``history_without_event``."""
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
