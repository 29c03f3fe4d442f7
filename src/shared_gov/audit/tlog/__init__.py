"""The sealed audit log as a transparency log: formats and reads from storage.

Shared by the sealer (writes), the HTTP proofs (reads) and ``audit verify``
(re-checks everything); ``docs/audit.md`` documents the same formats for
auditors who verify with their own code.

- :mod:`.canonical`: :func:`canonical_event`, the deterministic bytes of one
  event, whose :func:`~shared_gov.audit.merkle.leaf_hash` is the event's
  leaf; the spellings of hashes and times (:func:`b64`, :func:`format_time`).
- :mod:`.checkpoints`: :class:`Checkpoint`, a signed tree head
  (:meth:`Checkpoint.body` is the exact text the town's Ed25519 key signs),
  and its readers.
- :mod:`.subtrees`: the hash of any range the proofs need is the fold of
  O(log n) stored complete subtrees (``audit.leaves`` / ``audit.nodes``), so
  a proof costs one query whatever the size of the tree.
- :mod:`.proofs`: inclusion and consistency proofs.

All readers take an asyncpg connection of the platform role (never a
tenant's: towns cannot read the log) and filter on the town explicitly.
This package's names are the public ones; import them from here.
"""

from shared_gov.audit.tlog.canonical import (
    EVENT_COLUMNS,
    EVENT_SELECT,
    OPTIONAL_COLUMNS,
    PLACEHOLDER_TIME,
    SELECT_COLUMNS,
    b64,
    canonical_event,
    canonical_values,
    event_leaf_hash,
    format_time,
    values_leaf_hash,
)
from shared_gov.audit.tlog.checkpoints import (
    CURRENT_INCARNATION,
    Checkpoint,
    checkpoint_at,
    latest_checkpoint,
    tree_size,
)
from shared_gov.audit.tlog.proofs import (
    ConsistencyProof,
    InclusionProof,
    consistency,
    inclusion,
)
from shared_gov.audit.tlog.subtrees import TreeDamaged, range_hashes

__all__ = [
    "CURRENT_INCARNATION",
    "EVENT_COLUMNS",
    "EVENT_SELECT",
    "OPTIONAL_COLUMNS",
    "PLACEHOLDER_TIME",
    "SELECT_COLUMNS",
    "Checkpoint",
    "ConsistencyProof",
    "InclusionProof",
    "TreeDamaged",
    "b64",
    "canonical_event",
    "canonical_values",
    "checkpoint_at",
    "consistency",
    "event_leaf_hash",
    "format_time",
    "inclusion",
    "latest_checkpoint",
    "range_hashes",
    "tree_size",
    "values_leaf_hash",
]
