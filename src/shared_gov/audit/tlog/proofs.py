"""Inclusion and consistency proofs of a town's log, from its stored tree.

RFC 6962/9162 proofs (:mod:`shared_gov.audit.merkle` says which ranges each
needs) against the town's latest checkpoint; served by the HTTP proofs and
re-checked by auditors with their own code (docs/audit.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared_gov.audit import merkle
from shared_gov.audit.tlog.canonical import b64
from shared_gov.audit.tlog.checkpoints import Checkpoint, checkpoint_at, latest_checkpoint
from shared_gov.audit.tlog.subtrees import range_hashes


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Event ``event_id`` is leaf ``seq`` of the tree in ``checkpoint``."""

    event_id: uuid.UUID
    seq: int
    leaf_hash: bytes
    path: list[bytes]
    checkpoint: Checkpoint

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id),
            "seq": self.seq,
            "tree_size": self.checkpoint.tree_size,
            "leaf_hash": b64(self.leaf_hash),
            "path": [b64(p) for p in self.path],
            "checkpoint": self.checkpoint.to_json(),
        }


async def inclusion(
    conn: asyncpg.Connection, tenant: str, event_id: uuid.UUID, incarnation: int | None = None
) -> InclusionProof | None:
    """Proof that the event is in the latest checkpoint of the town's (current)
    incarnation; None if not sealed in it yet (or an event of another incarnation)."""
    checkpoint = await latest_checkpoint(conn, tenant, incarnation=incarnation)
    if checkpoint is None:
        return None
    inc = checkpoint.incarnation
    row = await conn.fetchrow(
        "SELECT seq, leaf_hash FROM audit.leaves "
        "WHERE tenant = $1 AND event_id = $2 AND incarnation = $3",
        tenant,
        event_id,
        inc,
    )
    if row is None or row["seq"] >= checkpoint.tree_size:
        return None
    seq = int(row["seq"])
    path = await range_hashes(conn, tenant, inc, merkle.inclusion_ranges(seq, checkpoint.tree_size))
    return InclusionProof(event_id, seq, bytes(row["leaf_hash"]), path, checkpoint)


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The town's tree of ``second`` leaves extends its tree of ``first`` leaves."""

    first: int
    second: int
    proof: list[bytes]
    first_checkpoint: Checkpoint | None
    second_checkpoint: Checkpoint | None

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "second": self.second,
            "proof": [b64(p) for p in self.proof],
            # The signed heads at those sizes, when there are: what a verifier
            # compares the proof against (its own saved copies are better).
            "first_checkpoint": self.first_checkpoint.to_json() if self.first_checkpoint else None,
            "second_checkpoint": (
                self.second_checkpoint.to_json() if self.second_checkpoint else None
            ),
        }


async def consistency(
    conn: asyncpg.Connection, tenant: str, first: int, second: int, incarnation: int | None = None
) -> ConsistencyProof | None:
    """PROOF(first, second) from the stored tree; None if ``second`` exceeds the latest checkpoint.

    ``ValueError`` unless ``1 <= first <= second``.
    """
    if not 1 <= first <= second:
        raise ValueError("first and second must satisfy 1 <= first <= second")
    latest = await latest_checkpoint(conn, tenant, incarnation=incarnation)
    if latest is None or second > latest.tree_size:
        return None
    inc = latest.incarnation
    proof = await range_hashes(conn, tenant, inc, merkle.consistency_ranges(first, second))
    return ConsistencyProof(
        first,
        second,
        proof,
        await checkpoint_at(conn, tenant, first, inc),
        latest if second == latest.tree_size else await checkpoint_at(conn, tenant, second, inc),
    )
