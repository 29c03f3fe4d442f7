"""Verifying a town's log: one incarnation (:func:`verify_tenant`) or all of them.

One REPEATABLE READ snapshot; the events are checked in this process or in
worker processes (:mod:`.leaves`) while this process rebuilds the tree
(:mod:`.tree`), then the unsealed events, copied and future events
(:mod:`.events`), and with the audit key the MACs,
chains and links (:mod:`.chains`). Also the keys to trust per incarnation.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Final

import asyncpg

from shared_gov.audit.tlog import Checkpoint
from shared_gov.audit.verify.chains import _Unmaced, check_chains, check_links, check_unsealed_macs
from shared_gov.audit.verify.events import check_duplicates, check_future
from shared_gov.audit.verify.leaves import (
    _BAD_MAC,
    _CHANGED,
    _CHECK_SQL,
    _ID,
    _LAST,
    _N,
    _NO_MAC,
    CHUNK,
    PREFETCH,
    _bad_mac,
    _changed,
    _check_range,
    _examine,
)
from shared_gov.audit.verify.report import MAX_LISTED, Problem, VerifyReport
from shared_gov.audit.verify.tree import (
    _LEAVES_SQL,
    _NODES_SQL,
    _check_heads,
    _check_trusted,
    _NodeStream,
    _Rebuild,
    _Saved,
)
from shared_gov.crypto.keyring import town_keys

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
    await check_duplicates(conn, report)
    await check_future(conn, report)
    if mac_key is not None:
        await check_unsealed_macs(conn, report, mac_key, macs)
        macs.report(report)
        await check_chains(conn, report)
        await check_links(conn, report)


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
