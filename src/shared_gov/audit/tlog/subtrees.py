"""The town's stored tree: hashes of leaf ranges folded from stored complete subtrees.

The sealer stores every complete subtree (``audit.nodes``) beside the leaves
(``audit.leaves``), so the hash of any range a proof or a checkpoint's
subtrees need is the fold of O(log n) stored nodes: one query, whatever the
size of the tree.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared_gov.audit import merkle


class TreeDamaged(RuntimeError):
    """A stored node or leaf the tree needs is missing (the storage was tampered with)."""


async def node_hashes(
    conn: asyncpg.Connection, tenant: str, incarnation: int, nodes: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """Hashes of complete subtrees ``(level, index)``; level 0 reads ``audit.leaves``."""
    wanted = set(nodes)
    leaves = [i for level, i in wanted if level == 0]
    inner = [(level, i) for level, i in wanted if level > 0]
    rows = await conn.fetch(
        "SELECT 0::smallint AS level, seq AS idx, leaf_hash AS hash FROM audit.leaves "
        "WHERE tenant = $1 AND incarnation = $5 AND seq = ANY($2::bigint[]) "
        "UNION ALL "
        "SELECT n.level, n.idx, n.hash FROM audit.nodes AS n "
        "JOIN unnest($3::smallint[], $4::bigint[]) AS u(level, idx) "
        "  ON n.level = u.level AND n.idx = u.idx "
        "WHERE n.tenant = $1 AND n.incarnation = $5",
        tenant,
        leaves,
        [level for level, _ in inner],
        [i for _, i in inner],
        incarnation,
    )
    found = {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}
    missing = wanted - found.keys()
    if missing:
        level, index = min(missing)
        raise TreeDamaged(
            f"town {tenant}'s stored tree lacks the subtree at level {level}, index {index}"
        )
    return found


async def range_hashes(
    conn: asyncpg.Connection, tenant: str, incarnation: int, ranges: Sequence[tuple[int, int]]
) -> list[bytes]:
    """MTH of each leaf range (as the proofs need them), from stored subtrees."""
    parts = [merkle.perfect_subtrees(start, end) for start, end in ranges]
    hashes = await node_hashes(
        conn, tenant, incarnation, [node for nodes in parts for node in nodes]
    )
    return [merkle.fold([hashes[node] for node in nodes]) for nodes in parts]
