"""Audit log benchmark (issue #5): sealer throughput and ``audit verify`` speed.

Run from the repository root::

    python bench/audit_verify.py [--events N] [--batch B]

In a throw-away database (``SHARED_GOV_DATABASE_URL``'s server, or an
embedded PostgreSQL), one town gets N (default 100,000) realistic audit events,
inserted directly as the superuser in transactions of 10,000 (so they carry
N / 10,000 different xids; the service writes them one request at a time
through ``audit.record``, which this benchmark does not measure). Then:

- the sealer seals the whole backlog (``Sealer.seal_once``, B events per
  transaction): events/s, and the latency of a steady-state pass of 100 events;
- ``verify_tenant`` re-verifies everything (recompute every leaf, rebuild
  the tree, compare every stored node, check every signature and root), in
  this process and with 1, 2 and 4 worker processes (``--workers``):
  events/s, with where the time goes — streaming the rows from PostgreSQL
  alone, and encoding + hashing alone on rows already in memory.

Target: verify >= 50,000 events/s (1,000,000 events in <= 20 s). Timings are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

import _bench_common as c
import _harness as h
from shared_gov.audit import merkle
from shared_gov.audit.recorder import seal
from shared_gov.audit.sealer import Sealer
from shared_gov.audit.tlog import values_leaf_hash
from shared_gov.audit.verify import VerifyReport, live_mac_key, verify_tenant
from shared_gov.audit.verify.leaves import _CHECK_SQL, _LAST
from shared_gov.db import Database
from shared_gov.tenancy.names import tenant_names

CODE = "172065"
PER_TRANSACTION = 10_000
TARGET = 50_000

_INSERT = """
INSERT INTO audit.events (
    event_id, tenant, occurred_at, request_id, actor, actor_tenant, department, roles,
    auth_strength, client_addr, user_agent, action, resource_type, subjects, fields,
    rows_returned, individual_number, purpose, agreement_id, outcome, reason, policy_ids)
SELECT gen_random_uuid(), $1::text, clock_timestamp(), md5(i::text), 'k-' || (i % 500), $1::text,
    'shimin', '{staff}', 'mfa', '10.0.' || (i % 250) || '.' || (i % 200),
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)',
    'resident.read', 'resident', ARRAY[(random() * 9e18)::bigint],
    '{family_name,given_name,family_name_kana,given_name_kana,birth_date,sex,address,'
    'postal_code,individual_number,household_no}',
    1, true, 'juki.registration', NULL,
    CASE WHEN i % 50 = 0 THEN 'denied' ELSE 'allowed' END,
    CASE WHEN i % 50 = 0 THEN '二要素認証が必要です' END, '{}'
FROM generate_series(1, $2) AS i
"""


async def insert_events(db: Database, count: int, *, macs: bool = True) -> float:
    """Insert ``count`` events of town CODE; with ``macs`` as the service's audit
    writer does (MACed with the town's audit key, chained, ``audit.record_many``)."""
    started = time.perf_counter()
    left = count
    if macs:
        keys = await db.town_keys(CODE)
        chain = _Chain(str(uuid.uuid4()))
        role = tenant_names(CODE, db.settings.role_prefix).role
    while left > 0:
        n = min(PER_TRANSACTION, left)
        async with db.catalog() as conn:
            if macs:
                events = [chain.next(keys.audit_mac, i) for i in range(n)]
                await conn.execute("SELECT set_config('role', $1, true)", role)
                await conn.execute("SELECT audit.record_many($1::jsonb)", events)
            else:
                await conn.execute(_INSERT, CODE, n)
        left -= n
    return time.perf_counter() - started


class _Chain:
    """One writer's chain of synthetic reads (shaped like _INSERT's rows)."""

    def __init__(self, writer: str) -> None:
        self.writer, self.wseq, self.prev = writer, 0, None

    def next(self, key: bytes | None, i: int) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "request_id": f"{i:032x}",
            "client_request_id": None,
            "actor": f"k-{i % 500}",
            "actor_tenant": CODE,
            "department": "shimin",
            "roles": ["staff"],
            "auth_strength": "mfa",
            "client_addr": f"10.0.{i % 250}.{i % 200}",
            "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
            "action": "resident.read",
            "resource_type": "resident",
            "subjects": [str(random.getrandbits(62))],
            "fields": sorted(registry_fields()),
            "rows": 1,
            "individual_number": True,
            "purpose": "juki.registration",
            "agreement_id": None,
            "outcome": "denied" if i % 50 == 0 else "allowed",
            "reason": "二要素認証が必要です" if i % 50 == 0 else None,
            "policy_ids": [],
        }
        mac = seal(payload, CODE, key, self.writer, self.wseq, self.prev)
        self.wseq, self.prev = self.wseq + 1, mac
        return payload


def registry_fields() -> list[str]:
    return [
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "birth_date",
        "sex",
        "address",
        "postal_code",
        "individual_number",
        "household_no",
    ]


async def seal_backlog(sealer: Sealer, events: int) -> float:
    """Seconds for ``sealer`` to seal ``events`` waiting events (``seal_once`` until done)."""
    started = time.perf_counter()
    sealed = 0
    while sealed < events:
        # The last inserts may wait for a transaction elsewhere on the
        # server to end (the watermark is cluster-wide).
        sealed += (await sealer.seal_once()).events
    return time.perf_counter() - started


async def timed_verify(
    db: Database, public_key: bytes, workers: int, code: str = CODE
) -> tuple[VerifyReport, float]:
    """``verify_tenant`` of town ``code`` as ``audit verify`` runs it; (report, seconds).

    Raises if anything fails to verify: a benchmark of a failing check means nothing.
    """
    started = time.perf_counter()
    async with db.pool.acquire() as conn:
        # As `audit verify` runs it: MACs, chains and links with the town's audit key.
        mac_key = (await live_mac_key(db, conn, code)).get(1)
        report = await verify_tenant(
            conn, code, public_key=public_key, workers=workers, url=db.url, mac_key=mac_key
        )
    seconds = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"audit verify found problems: {report.problems[:3]}")
    return report, seconds


async def stream_only(db: Database) -> tuple[int, float]:
    """The verifier's main query, rows decoded and dropped."""
    started = time.perf_counter()
    n = 0
    async with db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        async for _row in conn.cursor(_CHECK_SQL, CODE, 0, _LAST, 1, prefetch=2_000):
            n += 1
    return n, time.perf_counter() - started


async def hash_only(db: Database, limit: int) -> tuple[int, float]:
    """Encoding + leaf hash + tree append on rows already in memory."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(_CHECK_SQL, CODE, 0, limit, 1)
    started = time.perf_counter()
    tree = merkle.CompactRange()
    nodes: list[tuple[int, int, bytes]] = []
    for row in rows:
        tree.append_recording(values_leaf_hash(row[:23]), nodes)
    return len(rows), time.perf_counter() - started


async def run(bdb: h.BenchDatabase, events: int, batch: int, worker_counts: list[int]) -> None:
    settings = c.run_settings(bdb, "http://127.0.0.1:9")
    db = await c.open_database(settings)
    try:
        await c.onboard(db, c.town_manifest(CODE))
        seconds = await insert_events(db, events)
        c.row("insert (setup)", f"{events:,} events in {seconds:.1f} s")

        sealer = Sealer(db, batch=batch)
        seconds = await seal_backlog(sealer, events)
        c.row(
            f"seal backlog (batch {batch})",
            f"{events / seconds:,.0f} events/s",
            f"{events:,} in {seconds:.1f} s",
        )
        await insert_events(db, 100)
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        small = await sealer.seal_once()
        c.row(
            "seal pass of 100 new events",
            f"{(time.perf_counter() - started) * 1000:.1f} ms",
            f"{small.checkpoints} checkpoint",
        )

        key = db.keyring.provider.signing_public_key(CODE)
        for workers in worker_counts:
            report, seconds = await timed_verify(db, key, workers)
            rate = report.leaves / seconds
            label = "in this process" if workers == 0 else f"{workers} worker processes"
            c.row(
                f"audit verify ({label})",
                f"{rate:,.0f} events/s",
                f">= {TARGET:,}/s",
                "ok" if rate >= TARGET else "MISSED",
            )
            c.row(
                "  leaves, nodes, checkpoints; time; 1,000,000 events at this rate",
                f"{report.leaves:,}, {report.nodes:,}, {report.checkpoints:,}; {seconds:.2f} s; "
                f"{1_000_000 / rate:.1f} s",
            )
        n, seconds = await stream_only(db)
        c.row("  of which: stream rows from PostgreSQL", f"{n / seconds:,.0f} rows/s")
        n, seconds = await hash_only(db, min(events, 100_000))
        c.row("  of which: encode + hash + tree (memory)", f"{n / seconds:,.0f} events/s")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument(
        "--workers",
        default="0,1,2,4",
        help="comma-separated worker process counts to time verify with (0: in-process)",
    )
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    with h.bench_database() as bdb:
        asyncio.run(run(bdb, args.events, args.batch, counts))


if __name__ == "__main__":
    main()
