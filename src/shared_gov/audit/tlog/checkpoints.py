"""Signed tree heads (checkpoints) and reading them from ``audit.checkpoints``.

:class:`Checkpoint` is a town's signed tree head; :meth:`Checkpoint.body` is
the exact text the town's Ed25519 key signs (the C2SP tlog-checkpoint
layout). The readers take a platform-role connection and filter on the town
and its incarnation explicitly.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared_gov.audit import merkle
from shared_gov.audit.tlog.canonical import b64, format_time
from shared_gov.audit.tlog.subtrees import node_hashes

_ORIGIN: Final = "shared-gov/audit/"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed tree head: the town's tree had ``tree_size`` leaves and this root."""

    tenant: str
    tree_size: int
    root_hash: bytes
    signed_at: datetime
    signature: bytes = b""
    public_key: bytes = b""
    subtrees: tuple[tuple[int, int, bytes], ...] = field(default=(), compare=False)
    """Optional ``(start, size, hash)`` complete subtrees whose fold is the root:
    with a saved checkpoint they narrow down where a rewritten log first differs."""
    incarnation: int = 1
    """Which town of this code: onboarding an offboarded code again starts a new log."""

    @property
    def origin(self) -> str:
        """``shared-gov/audit/<town>``, and ``/<incarnation>`` after the first one
        (so every checkpoint signed before incarnations existed stays valid)."""
        suffix = f"/{self.incarnation}" if self.incarnation > 1 else ""
        return f"{_ORIGIN}{self.tenant}{suffix}"

    def body(self) -> bytes:
        """The signed text (C2SP tlog-checkpoint layout: origin, size, root, one extension).

        ``<origin>\\n<size>\\n<base64 root>\\ntime <signed_at>\\n``
        """
        return (
            f"{self.origin}\n{self.tree_size}\n{b64(self.root_hash)}\n"
            f"time {format_time(self.signed_at)}\n"
        ).encode()

    def signature_valid(self, public_key: bytes | None = None) -> bool:
        """Whether :attr:`signature` signs :meth:`body` under ``public_key``
        (default: the key stored with the checkpoint, which proves nothing alone)."""
        key = self.public_key if public_key is None else public_key
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(self.signature, self.body())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        """The checkpoint as the API returns it and ``audit checkpoint`` prints it."""
        return {
            "tenant": self.tenant,
            "incarnation": self.incarnation,
            "tree_size": self.tree_size,
            "root_hash": b64(self.root_hash),
            "signed_at": format_time(self.signed_at),
            "algorithm": "Ed25519",
            "public_key": b64(self.public_key),
            "signature": b64(self.signature),
            "body": self.body().decode(),
            "subtrees": [
                {"start": start, "size": size, "hash": b64(h)} for start, size, h in self.subtrees
            ],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Checkpoint:
        """Parse :meth:`to_json`'s output (``ValueError`` if it is malformed)."""
        try:
            signed_at = datetime.fromisoformat(str(document["signed_at"]).replace("Z", "+00:00"))
            checkpoint = cls(
                tenant=str(document["tenant"]),
                tree_size=int(document["tree_size"]),
                root_hash=base64.b64decode(document["root_hash"], validate=True),
                signed_at=signed_at,
                signature=base64.b64decode(document["signature"], validate=True),
                public_key=base64.b64decode(document["public_key"], validate=True),
                subtrees=tuple(
                    (
                        int(s["start"]),
                        int(s["size"]),
                        base64.b64decode(s["hash"], validate=True),
                    )
                    for s in document.get("subtrees", [])
                ),
                incarnation=int(document.get("incarnation", 1)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from None
        if len(checkpoint.root_hash) != merkle.HASH_SIZE or checkpoint.tree_size < 1:
            raise ValueError("not a checkpoint: bad root hash or tree size")
        if checkpoint.incarnation < 1:
            raise ValueError("not a checkpoint: bad incarnation")
        return checkpoint


_CHECKPOINT_COLUMNS: Final = (
    "tenant, tree_size, root_hash, signed_at, signature, public_key, incarnation"
)

CURRENT_INCARNATION: Final = (
    "(SELECT t.incarnation FROM catalog.tenants AS t WHERE t.code = {town}::char(6))"
)
"""SQL for a town's current incarnation; ``{town}`` is the parameter naming it.

Readers take ``incarnation=None`` for the current one: it is looked up in the
same statement (no extra round trip), so an answer never mixes two towns."""


def _incarnation(town: str, param: str) -> str:
    """``incarnation = <param>``, or the town's current one when ``param`` is NULL."""
    return f"incarnation = COALESCE({param}::int, {CURRENT_INCARNATION.format(town=town)})"


def _checkpoint(row: asyncpg.Record) -> Checkpoint:
    return Checkpoint(
        tenant=row["tenant"],
        tree_size=row["tree_size"],
        root_hash=bytes(row["root_hash"]),
        signed_at=row["signed_at"],
        signature=bytes(row["signature"]),
        public_key=bytes(row["public_key"]),
        incarnation=row["incarnation"],
    )


async def latest_checkpoint(
    conn: asyncpg.Connection,
    tenant: str,
    *,
    with_subtrees: bool = False,
    incarnation: int | None = None,
) -> Checkpoint | None:
    """The town's most recent checkpoint (the largest tree), or None before the first seal.

    Of its current incarnation unless ``incarnation`` says which.
    """
    row = await conn.fetchrow(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM audit.checkpoints "  # noqa: S608 - constant SQL
        f"WHERE tenant = $1 AND {_incarnation('$1', '$2')} ORDER BY tree_size DESC LIMIT 1",
        tenant,
        incarnation,
    )
    if row is None:
        return None
    checkpoint = _checkpoint(row)
    if with_subtrees:
        checkpoint = await _with_subtrees(conn, checkpoint)
    return checkpoint


async def checkpoint_at(
    conn: asyncpg.Connection, tenant: str, size: int, incarnation: int
) -> Checkpoint | None:
    """The checkpoint of the town's ``incarnation`` for exactly ``size`` leaves, if signed."""
    row = await conn.fetchrow(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM audit.checkpoints "  # noqa: S608 - constant columns
        "WHERE tenant = $1 AND tree_size = $2 AND incarnation = $3",
        tenant,
        size,
        incarnation,
    )
    return None if row is None else _checkpoint(row)


async def _with_subtrees(conn: asyncpg.Connection, checkpoint: Checkpoint) -> Checkpoint:
    ranges = merkle.perfect_subtrees(0, checkpoint.tree_size)
    hashes = await node_hashes(conn, checkpoint.tenant, checkpoint.incarnation, ranges)
    subtrees = []
    for level, index in ranges:
        subtrees.append((index << level, 1 << level, hashes[level, index]))
    return Checkpoint(
        checkpoint.tenant,
        checkpoint.tree_size,
        checkpoint.root_hash,
        checkpoint.signed_at,
        checkpoint.signature,
        checkpoint.public_key,
        tuple(subtrees),
        checkpoint.incarnation,
    )


async def tree_size(conn: asyncpg.Connection, tenant: str, incarnation: int | None = None) -> int:
    """How many of the town's events are sealed (the next sequence number)."""
    value = await conn.fetchval(
        "SELECT seq + 1 FROM audit.leaves "  # noqa: S608 - constant SQL
        f"WHERE tenant = $1 AND {_incarnation('$1', '$2')} ORDER BY seq DESC LIMIT 1",
        tenant,
        incarnation,
    )
    return int(value or 0)
