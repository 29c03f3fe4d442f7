"""The sealed audit log as a transparency log: formats and reads from storage.

Shared by the sealer (writes), the HTTP proofs (reads) and ``audit verify``
(re-checks everything); ``docs/audit.md`` documents the same formats for
auditors who verify with their own code.

- :func:`canonical_event`: the deterministic bytes of one event, whose
  :func:`~shared_gov.audit.merkle.leaf_hash` is the event's leaf.
- :class:`Checkpoint`: a signed tree head; :meth:`Checkpoint.body` is the
  exact text the town's Ed25519 key signs.
- Readers of ``audit.leaves`` / ``audit.nodes`` / ``audit.checkpoints``: the
  hash of any range the proofs need is the fold of O(log n) stored complete
  subtrees, so a proof costs one query whatever the size of the tree.

All readers take an asyncpg connection of the platform role (never a
tenant's: towns cannot read the log) and filter on the town explicitly.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring as _encode_string  # C-accelerated when available
from typing import Any, Final

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared_gov.audit import merkle

__all__ = [
    "CURRENT_INCARNATION",
    "EVENT_COLUMNS",
    "EVENT_SELECT",
    "OPTIONAL_COLUMNS",
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

# Version 1 of the canonical form covers exactly these columns of
# audit.events, in this (sorted) order. A column added to the table later is
# NOT part of version 1: old leaves must keep their hashes, so a new column
# needs a new version of the encoding.
EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "action",
    "actor",
    "actor_tenant",
    "agreement_id",
    "auth_strength",
    "client_addr",
    "department",
    "event_id",
    "fields",
    "individual_number",
    "occurred_at",
    "outcome",
    "policy_ids",
    "purpose",
    "reason",
    "request_id",
    "resource_type",
    "roles",
    "rows_returned",
    "subjects",
    "tenant",
    "user_agent",
    "xid",
)
if list(EVENT_COLUMNS) != sorted(EVENT_COLUMNS):  # pragma: no cover - a guard for edits
    raise RuntimeError("EVENT_COLUMNS must stay sorted: the canonical form relies on it")

OPTIONAL_COLUMNS: Final[tuple[str, ...]] = ("client_request_id",)
"""Columns added later that the canonical form covers only when they are not
null: the key is then inserted at its sorted place. An event that leaves them
null has exactly its version 1 bytes, so every older leaf keeps its hash."""

SELECT_COLUMNS: Final[tuple[str, ...]] = EVENT_COLUMNS + OPTIONAL_COLUMNS
"""What :func:`canonical_values` takes, in this order (:data:`EVENT_SELECT`)."""

EVENT_SELECT: Final = ", ".join(f"e.{c}" for c in SELECT_COLUMNS)
"""The columns of the canonical form, for ``SELECT ... FROM audit.events AS e``."""

_ORIGIN: Final = "shared-gov/audit/"


class TreeDamaged(RuntimeError):
    """A stored node or leaf the tree needs is missing (the storage was tampered with)."""


def b64(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 §4), as every hash and key is shown."""
    return base64.b64encode(data).decode("ascii")


def format_time(value: datetime) -> str:
    """UTC, always six fractional digits and a ``Z``: one spelling per instant."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("audit times are timezone-aware")
    if offset:
        value = value.astimezone(UTC)
    # isoformat always writes a four-digit year and, with this timespec, six
    # fractional digits (strftime's %Y does not pad before year 1000).
    return value.isoformat(timespec="microseconds")[:26] + "Z"


def _text(value: str | None) -> str:
    # json's own string encoder (what json.dumps(ensure_ascii=False) uses);
    # it refuses anything but a str, so a type surprise fails loudly.
    return "null" if value is None else _encode_string(value)


def _texts(values: Sequence[str | None]) -> str:
    try:
        # Arrays hold no NULL elements in practice: the fast path.
        return "[" + ",".join(map(_encode_string, values)) + "]"  # type: ignore[arg-type]
    except TypeError:
        return "[" + ",".join(["null" if v is None else _encode_string(v) for v in values]) + "]"


def _int64s(values: Sequence[int | None]) -> str:
    # 64-bit integers as decimal strings: JSON numbers beyond 2^53 lose
    # precision in many verifiers' parsers (JavaScript's, for one).
    return "[" + ",".join(["null" if v is None else f'"{_int(v)}"' for v in values]) + "]"


def _int(value: int) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return value


def _bool(value: bool) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise TypeError(f"expected a bool, got {type(value).__name__}")


PLACEHOLDER_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""The ``occurred_at`` a MAC covers (the database sets the real one: audit/mac.py)."""
_PLACEHOLDER_TIME_JSON: Final = '"' + format_time(PLACEHOLDER_TIME) + '"'


def _time_json(value: datetime) -> str:
    # Every event's MAC formats the placeholder: its text is a constant.
    if value is PLACEHOLDER_TIME:
        return _PLACEHOLDER_TIME_JSON
    return '"' + format_time(value) + '"'


# The JSON object of EVENT_COLUMNS, keys in order, one placeholder per value.
_CANONICAL = "{" + ",".join(f'"{c}":%s' for c in EVENT_COLUMNS) + "}"
# The same with a client's request id (sorted between client_addr and department).
_WITH_CLIENT_ID = "{" + ",".join(f'"{c}":%s' for c in sorted(SELECT_COLUMNS)) + "}"
_CLIENT_ID_AT: Final = sorted(SELECT_COLUMNS).index("client_request_id")


def canonical_values(values: Sequence[Any]) -> bytes:
    """:func:`canonical_event` of the values in :data:`SELECT_COLUMNS` order
    (or the 23 of :data:`EVENT_COLUMNS` alone).

    Written out by hand rather than with ``json.dumps`` (2x faster, which
    ``audit verify`` needs over millions of events); the tests check it
    byte for byte against ``json.dumps(..., sort_keys=True)``.
    """
    client_request_id = None
    if len(values) == len(SELECT_COLUMNS):
        client_request_id = values[len(EVENT_COLUMNS)]
        values = values[: len(EVENT_COLUMNS)]
    (
        action,
        actor,
        actor_tenant,
        agreement_id,
        auth_strength,
        client_addr,
        department,
        event_id,
        fields,
        individual_number,
        occurred_at,
        outcome,
        policy_ids,
        purpose,
        reason,
        request_id,
        resource_type,
        roles,
        rows_returned,
        subjects,
        tenant,
        user_agent,
        xid,
    ) = values
    parts = (
        _text(action),
        _text(actor),
        _text(actor_tenant),
        _text(agreement_id),
        _text(auth_strength),
        _text(client_addr),
        _text(department),
        _encode_string(str(event_id)),
        _texts(fields),
        _bool(individual_number),
        _time_json(occurred_at),
        _text(outcome),
        _texts(policy_ids),
        _text(purpose),
        _text(reason),
        _text(request_id),
        _text(resource_type),
        _texts(roles),
        str(_int(rows_returned)),
        _int64s(subjects),
        _text(tenant),
        _text(user_agent),
        f'"{_int(xid)}"',
    )
    if client_request_id is None:
        return (_CANONICAL % parts).encode("utf-8")
    extended = (*parts[:_CLIENT_ID_AT], _text(client_request_id), *parts[_CLIENT_ID_AT:])
    return (_WITH_CLIENT_ID % extended).encode("utf-8")


def canonical_event(event: Mapping[str, Any]) -> bytes:
    """Version 1 canonical bytes of an audit event (a row with :data:`EVENT_COLUMNS`).

    A JSON object with exactly the columns of :data:`EVENT_COLUMNS` as keys,
    sorted, no whitespace, UTF-8 without escaping non-ASCII — what
    ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
    writes, and RFC 8785 (JCS) output for these value types:

    - ``event_id``: lowercase hyphenated UUID; ``occurred_at``:
      ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC); ``xid`` and each of ``subjects``
      (64-bit integers): decimal strings;
    - ``rows_returned``: a JSON number; ``individual_number``: a boolean;
    - text arrays (``roles``, ``fields``, ``policy_ids``) in stored order;
    - SQL NULL: ``null``;
    - plus ``client_request_id`` (:data:`OPTIONAL_COLUMNS`) when the event has
      one that is not null.
    """
    values = [event[c] for c in EVENT_COLUMNS]
    values += [event.get(c) for c in OPTIONAL_COLUMNS]
    return canonical_values(values)


def event_leaf_hash(event: Mapping[str, Any]) -> bytes:
    """The event's leaf: ``SHA-256(0x00 || canonical_event(event))``."""
    return merkle.leaf_hash(canonical_event(event))


def values_leaf_hash(values: Sequence[Any]) -> bytes:
    """:func:`event_leaf_hash` of the values in :data:`EVENT_COLUMNS` order."""
    return merkle.leaf_hash(canonical_values(values))


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------


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
    hashes = await _node_hashes(conn, checkpoint.tenant, checkpoint.incarnation, ranges)
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


# --------------------------------------------------------------------------------------
# Stored subtrees and proofs
# --------------------------------------------------------------------------------------


async def _node_hashes(
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
    hashes = await _node_hashes(
        conn, tenant, incarnation, [node for nodes in parts for node in nodes]
    )
    return [merkle.fold([hashes[node] for node in nodes]) for nodes in parts]


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
