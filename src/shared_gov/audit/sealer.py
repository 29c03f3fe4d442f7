"""The sealer: turns committed audit events into per-town Merkle trees with signed heads.

About every second, in batches, it takes the events that are safe to seal,
gives each the next sequence number of its town, appends its leaf to the
town's RFC 6962 tree (:mod:`.merkle`), and has the town's Ed25519 key (held
by the key provider, never by us) sign a checkpoint of the new tree. Leaves,
completed subtree nodes and the checkpoint are written in ONE transaction
through the SECURITY DEFINER functions of migration c0005, so the stored tree
and its signed head never disagree.

Never skipping a late commit
    Events are written in their access's transaction, which may commit long
    after later events. Each event carries its writer's transaction id
    (``xid``). A pass only takes events with ``xid`` below the oldest
    transaction still running (``pg_snapshot_xmin(pg_current_snapshot())``):
    those writers have all ended, so every such event that will ever exist is
    visible now. Events are taken in ``(xid, occurred_at, event_id)`` order
    and the next pass resumes after the last one sealed; nothing can appear
    behind that position later. The price: one long-running writing
    transaction anywhere in the cluster holds sealing back until it ends.

One sealer at a time
    In the service, every worker runs :meth:`Sealer.run_forever`; the one
    holding a session-level advisory lock on a dedicated connection is the
    leader and seals, the others retry the lock every interval and take over
    when the leader's connection goes away. Independently, each pass holds a
    transaction-level advisory lock, so a one-off ``shared-gov audit seal``
    and the leader never interleave.

A town whose signing key is gone (offboarded, crypto-shredded) still gets its
events sealed into its tree; no checkpoint is signed for it, and a warning is
logged.

Incarnations
    Each incarnation of a town code (onboarding an offboarded code again starts
    a new one, migration c0012) is a log of its own: its own sequence numbers,
    tree and checkpoints. Events are grouped by ``(town, incarnation)``; only
    the town's current incarnation is signed (with the current key), so a late
    event of an ended incarnation is sealed into that incarnation's tree and
    left unsigned, like any event of a town whose key was destroyed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared_gov import metrics
from shared_gov.audit import merkle
from shared_gov.audit.tlog import EVENT_SELECT, SELECT_COLUMNS, Checkpoint, values_leaf_hash
from shared_gov.crypto.keyring import keyring_of
from shared_gov.crypto.providers import KeyNotFound, KeyProvider
from shared_gov.db import Database
from shared_gov.logs import get_logger

__all__ = ["LEADER_LOCK", "SEAL_LOCK", "PassResult", "Sealer", "seal_pass"]

log = get_logger(__name__)

LEADER_LOCK: Final = "shared_gov.audit.sealer"
"""Session-level advisory lock: held by the leading sealer for as long as it leads."""
SEAL_LOCK: Final = "shared_gov.audit.seal"
"""Transaction-level advisory lock: held by every pass, whoever runs it."""

DEFAULT_BATCH: Final = 5000
DEFAULT_INTERVAL: Final = 1.0
MAX_RETRY_PAUSE: Final = 10.0
"""Longest pause between attempts while the database (or key provider) keeps failing."""

_POSITION_SQL: Final = (
    "SELECT xid, occurred_at, event_id FROM audit.leaves "
    "ORDER BY xid DESC, occurred_at DESC, event_id DESC LIMIT 1"
)
_WATERMARK_SQL: Final = "SELECT pg_snapshot_xmin(pg_current_snapshot())"
_EVENTS_SQL: Final = (
    f"SELECT {EVENT_SELECT}, e.incarnation FROM audit.events AS e "  # noqa: S608 - constant column list
    "WHERE e.xid < $1 AND (e.xid, e.occurred_at, e.event_id) > ($2, $3, $4) "
    "ORDER BY e.xid, e.occurred_at, e.event_id LIMIT $5"
)
_FIRST_EVENTS_SQL: Final = (
    f"SELECT {EVENT_SELECT}, e.incarnation FROM audit.events AS e "  # noqa: S608 - constant column list
    "WHERE e.xid < $1 ORDER BY e.xid, e.occurred_at, e.event_id LIMIT $2"
)
_SIZES_SQL: Final = (
    "SELECT t.town, t.inc, (SELECT l.seq + 1 FROM audit.leaves AS l "
    "WHERE l.tenant = t.town::char(6) AND l.incarnation = t.inc "
    "ORDER BY l.seq DESC LIMIT 1) AS size, "
    "(SELECT c.incarnation FROM catalog.tenants AS c WHERE c.code = t.town::char(6)) AS current "
    "FROM unnest($1::text[], $2::int[]) AS t(town, inc)"
)
_FRONTIER_SQL: Final = (
    "SELECT u.town, u.inc, u.level, u.idx, COALESCE(n.hash, l.leaf_hash) AS hash "
    "FROM unnest($1::text[], $2::int[], $3::smallint[], $4::bigint[]) AS u(town, inc, level, idx) "
    "LEFT JOIN audit.nodes AS n "
    "  ON u.level > 0 AND n.tenant = u.town::char(6) AND n.incarnation = u.inc "
    "  AND n.level = u.level AND n.idx = u.idx "
    "LEFT JOIN audit.leaves AS l "
    "  ON u.level = 0 AND l.tenant = u.town::char(6) AND l.incarnation = u.inc AND l.seq = u.idx"
)
_N: Final = len(SELECT_COLUMNS)
"""Event rows carry the canonical columns first, then the incarnation."""


@dataclass(slots=True)
class PassResult:
    """What one pass (or a run of passes) sealed."""

    events: int = 0
    sizes: dict[str, int] = field(default_factory=dict)
    """New tree size of each town that grew (of its newest incarnation in the pass)."""
    checkpoints: int = 0
    unsigned: list[str] = field(default_factory=list)
    """Towns that grew but have no signing key (no checkpoint)."""
    full: bool = False
    """The batch limit was reached: more events may be waiting."""

    def merge(self, other: PassResult) -> None:
        self.events += other.events
        self.sizes.update(other.sizes)
        self.checkpoints += other.checkpoints
        self.unsigned.extend(t for t in other.unsigned if t not in self.unsigned)
        self.full = other.full


@dataclass(slots=True)
class _Town:
    """One log's (a town's incarnation's) share of a pass."""

    tree: merkle.CompactRange
    current: bool = True
    """The town's current incarnation (the only one ever signed)."""
    seqs: list[int] = field(default_factory=list)
    event_ids: list[Any] = field(default_factory=list)
    occurred: list[datetime] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


Log = tuple[str, int]
"""A log: (town, incarnation)."""


async def _frontiers(conn: asyncpg.Connection, logs: list[Log]) -> dict[Log, _Town]:
    """Each log's tree as it is stored: its size and right-edge subtrees (O(log n) rows)."""
    sizes: dict[Log, int] = {}
    current: dict[Log, bool] = {}
    for r in await conn.fetch(_SIZES_SQL, [t for t, _ in logs], [i for _, i in logs]):
        sizes[r["town"], r["inc"]] = int(r["size"] or 0)
        current[r["town"], r["inc"]] = r["current"] is None or r["current"] == r["inc"]
    wanted: list[tuple[str, int, int, int]] = []
    for log_ in logs:
        wanted.extend(
            (*log_, level, index) for level, index in merkle.perfect_subtrees(0, sizes[log_])
        )
    found: dict[tuple[str, int, int, int], bytes] = {}
    if wanted:
        rows = await conn.fetch(
            _FRONTIER_SQL,
            [w[0] for w in wanted],
            [w[1] for w in wanted],
            [w[2] for w in wanted],
            [w[3] for w in wanted],
        )
        found = {
            (r["town"], r["inc"], r["level"], r["idx"]): bytes(r["hash"]) for r in rows if r["hash"]
        }
    trees: dict[Log, _Town] = {}
    for log_ in logs:
        keys = [(*log_, level, index) for level, index in merkle.perfect_subtrees(0, sizes[log_])]
        missing = [k for k in keys if k not in found]
        if missing:
            # Never extend a tree whose edge we cannot read: the new root
            # would be wrong. `audit verify` tells where the damage is.
            raise RuntimeError(f"town {log_[0]}'s stored audit tree is damaged; run audit verify")
        tree = merkle.CompactRange(sizes[log_], [found[k] for k in keys])
        trees[log_] = _Town(tree, current[log_])
    return trees


def _sign(
    provider: KeyProvider, public_keys: dict[str, bytes], town: str, checkpoint: Checkpoint
) -> Checkpoint | None:
    """Have the provider sign ``checkpoint``; None if the town has no signing key."""
    check = provider.signatures_need_checking
    body = checkpoint.body()
    # Cached per incarnation: a re-onboarded town has a new key.
    cache_key = f"{town}/{checkpoint.incarnation}"
    try:
        if check:
            cached = public_keys.get(cache_key)
            key = cached if cached is not None else provider.signing_public_key(town)
            public_keys[cache_key] = key
        else:
            # Signed in this process, the public key from the same key object
            # (see KeyProvider.signatures_need_checking): nothing to
            # cross-check, and no cache here that could go stale.
            key = provider.signing_public_key(town)
        signature = provider.sign(town, body)
    except KeyNotFound:
        public_keys.pop(cache_key, None)
        return None
    if check:
        try:
            # A signature that does not verify must never be stored: a key
            # provider fault (or a stale cached public key) would otherwise
            # produce checkpoints that look forged.
            Ed25519PublicKey.from_public_bytes(key).verify(signature, body)
        except InvalidSignature:
            public_keys.pop(cache_key, None)
            raise RuntimeError(f"town {town}'s checkpoint signature does not verify") from None
    return Checkpoint(
        town,
        checkpoint.tree_size,
        checkpoint.root_hash,
        checkpoint.signed_at,
        signature,
        key,
        incarnation=checkpoint.incarnation,
    )


async def seal_pass(
    conn: asyncpg.Connection,
    provider: KeyProvider,
    *,
    batch: int = DEFAULT_BATCH,
    public_keys: dict[str, bytes] | None = None,
    now: Callable[[], datetime] = _now,
) -> PassResult:
    """Seal up to ``batch`` events. Must run inside a transaction on ``conn``.

    ``public_keys`` caches the towns' public keys between passes.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    keys = {} if public_keys is None else public_keys
    # Passes never interleave, whoever runs them. Taken before the watermark
    # is read, so an earlier pass's transaction has ended by then.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", SEAL_LOCK)
    position = await conn.fetchrow(_POSITION_SQL)
    watermark = await conn.fetchval(_WATERMARK_SQL)
    if position is None:
        rows = await conn.fetch(_FIRST_EVENTS_SQL, watermark, batch)
    else:
        rows = await conn.fetch(
            _EVENTS_SQL,
            watermark,
            position["xid"],
            position["occurred_at"],
            position["event_id"],
            batch,
        )
    result = PassResult(full=len(rows) == batch)
    if not rows:
        return result
    towns_order: list[Log] = []
    for row in rows:
        log_ = (row["tenant"], row["incarnation"])
        if log_ not in towns_order:
            towns_order.append(log_)
    towns = await _frontiers(conn, towns_order)
    for row in rows:
        town = towns[row["tenant"], row["incarnation"]]
        leaf = values_leaf_hash(row[:_N])
        town.seqs.append(town.tree.size)
        town.event_ids.append(row["event_id"])
        town.occurred.append(row["occurred_at"])
        town.hashes.append(leaf)
        town.tree.append_recording(leaf, town.nodes)

    await conn.fetchval(
        "SELECT audit.append_leaves($1::text[], $2::bigint[], $3::uuid[], "
        "$4::timestamptz[], $5::bytea[], $6::integer[])",
        [t[0] for t in towns_order for _ in towns[t].seqs],
        [s for t in towns_order for s in towns[t].seqs],
        [e for t in towns_order for e in towns[t].event_ids],
        [o for t in towns_order for o in towns[t].occurred],
        [h for t in towns_order for h in towns[t].hashes],
        [t[1] for t in towns_order for _ in towns[t].seqs],
    )
    nodes = [(t, n) for t in towns_order for n in towns[t].nodes]
    if nodes:
        await conn.fetchval(
            "SELECT audit.append_nodes($1::text[], $2::smallint[], $3::bigint[], $4::bytea[], "
            "$5::integer[])",
            [t[0] for t, _ in nodes],
            [n[0] for _, n in nodes],
            [n[1] for _, n in nodes],
            [n[2] for _, n in nodes],
            [t[1] for t, _ in nodes],
        )

    signed_at = now()
    heads = [
        Checkpoint(t, towns[t, i].tree.size, towns[t, i].tree.root(), signed_at, incarnation=i)
        for t, i in towns_order
    ]

    def sign(c: Checkpoint) -> Checkpoint | None:
        # An ended incarnation is never signed: its key is destroyed, and the
        # town's current key must not vouch for another town's log.
        if not towns[c.tenant, c.incarnation].current:
            return None
        return _sign(provider, keys, c.tenant, c)

    # The provider may be an HSM behind a blocking library: off the event loop.
    signed = await asyncio.to_thread(lambda: [sign(c) for c in heads])
    checkpoints = [c for c in signed if c is not None]
    if checkpoints:
        await conn.fetchval(
            "SELECT audit.add_checkpoints($1::text[], $2::bigint[], $3::bytea[], "
            "$4::timestamptz[], $5::bytea[], $6::bytea[], $7::integer[])",
            [c.tenant for c in checkpoints],
            [c.tree_size for c in checkpoints],
            [c.root_hash for c in checkpoints],
            [c.signed_at for c in checkpoints],
            [c.signature for c in checkpoints],
            [c.public_key for c in checkpoints],
            [c.incarnation for c in checkpoints],
        )
    result.events = len(rows)
    result.sizes = {t: towns[t, i].tree.size for t, i in sorted(towns_order, key=lambda x: x[1])}
    result.checkpoints = len(checkpoints)
    result.unsigned = list(
        dict.fromkeys(h.tenant for h, c in zip(heads, signed, strict=True) if c is None)
    )
    for code in result.unsigned:
        log.warning("audit.seal.unsigned", tenant=code, detail="the town has no signing key")
    return result


class Sealer:
    """Seals the audit log of every town: one pass on demand, or as the elected leader."""

    def __init__(
        self,
        db: Database,
        *,
        provider: KeyProvider | None = None,
        interval: float = DEFAULT_INTERVAL,
        batch: int = DEFAULT_BATCH,
        leader_lock: str = LEADER_LOCK,
    ) -> None:
        self.db = db
        self.leader_lock = leader_lock
        self.provider = provider or keyring_of(db).provider
        self.interval = interval
        self.batch = batch
        self.is_leader = False
        self._public_keys: dict[str, bytes] = {}
        self._stopping = asyncio.Event()
        self._retry_pause = interval

    async def _drain(self, run: Callable[[], Awaitable[PassResult]]) -> PassResult:
        total = PassResult()
        while True:
            result = await run()
            total.merge(result)
            if not result.full or self._stopping.is_set():
                return total

    async def seal_once(self) -> PassResult:
        """Seal everything sealable now, in transactions of at most ``batch`` events.

        Safe while a leader runs: passes take turns on the pass lock.
        """

        async def one() -> PassResult:
            async with self.db.catalog() as conn:
                return await seal_pass(
                    conn, self.provider, batch=self.batch, public_keys=self._public_keys
                )

        return await self._drain(one)

    async def _lead(self, conn: asyncpg.Connection) -> None:
        async def one() -> PassResult:
            async with conn.transaction():
                return await seal_pass(
                    conn, self.provider, batch=self.batch, public_keys=self._public_keys
                )

        while not self._stopping.is_set():
            if not self.is_leader:
                self.is_leader = bool(
                    await conn.fetchval(
                        "SELECT pg_try_advisory_lock(hashtextextended($1, 0))", self.leader_lock
                    )
                )
                if self.is_leader:
                    log.info("audit.sealer.leader")
            if self.is_leader:
                result = await self._drain(one)
                metrics.AUDIT_SEALER_LAST_PASS.set_to_current_time()
                if result.events:
                    log.debug("audit.sealed", events=result.events, towns=len(result.sizes))
            # A round that worked: the next failure is retried after one interval.
            self._retry_pause = self.interval
            await self._sleep(self.interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def run_forever(self) -> None:
        """Compete for leadership and, while leading, seal every ``interval`` seconds.

        Returns after :meth:`stop`. Database outages are logged and retried;
        losing the connection loses the lock, and another worker takes over.
        """
        while not self._stopping.is_set():
            conn: asyncpg.Connection | None = None
            try:
                # A connection of its own, outside the pool: the session lock
                # lives exactly as long as this connection.
                conn = await asyncpg.connect(self.db.url)
                await self._lead(conn)
            except Exception as exc:
                # A background task must not die of an outage or a key
                # provider hiccup: log (type and a bounded message; the audit
                # tables hold no personal values) and retry.
                log.warning("audit.sealer.failed", error=type(exc).__name__, detail=str(exc)[:200])
                # A blip (a restart, a session cut mid-batch) is retried after
                # one interval, so sealing lags by seconds, not ten; a failure
                # that persists backs off to MAX_RETRY_PAUSE (fewer warnings,
                # fewer connection attempts and HSM calls).
                await self._sleep(self._retry_pause)
                self._retry_pause = min(2 * self._retry_pause, MAX_RETRY_PAUSE)
            finally:
                self.is_leader = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    def stop(self) -> None:
        """Ask :meth:`run_forever` (and a draining :meth:`seal_once`) to finish."""
        self._stopping.set()
