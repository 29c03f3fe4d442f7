"""Audit log benchmark (issue #5): what auditing costs a read, sealer lag, verify speed.

Run from the repository root::

    python bench/audit.py [--towns T] [--residents R] [--duration S] [--rounds K]
                          [--events N] [--verify-runs V] [--skip-http] [--skip-verify]

In one run, each figure beside the baseline or target it is compared with:

- **audited read throughput**: resident GETs of the service as shipped (one
  event per read written through ``audit.record`` in the read's own
  transaction) versus the same service started with ``SHARED_GOV_AUDIT=0``
  (nothing recorded), side by side on the same towns, residents and tokens,
  served by granian with 2 workers and loaded by wrk in alternating slices
  (ABBA). Requests rotate over T towns (default 5). Target: ratio >= 0.85.
- **sealer lag** at that load: for every event written during the audited
  slices, the time from the event (``occurred_at``, stamped by
  ``audit.record`` a moment before the access commits) to the ``signed_at``
  of the first signed checkpoint whose tree contains it. That is when an
  auditor can first get a signed inclusion proof for the access, i.e. when it
  becomes tamper-evident; sequence assignment happens in the same sealer
  transaction, so it is never later. The sealer is the service's own (the
  audited server's elected leader, checked before and after the load).
  Median, p99 and max over all those events. Target: p99 <= 2 s.
- **``audit verify`` speed** over N (default 1,000,000) events of one town,
  inserted and sealed with ``bench/audit_verify.py``'s helpers, verified
  with ``verify_tenant`` as ``shared-gov audit verify`` runs it (its default
  worker processes) and in one process; median of V runs (default 2).
  Target: >= 50,000 events/s.

Timings are reported, never asserted: the script exits 0 even when a target
is missed (it says MISSED).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

import _bench_common as c
import _harness as h
import audit_verify as av
from shared_gov.audit.sealer import LEADER_LOCK, Sealer
from shared_gov.auth.issuer import builtin_issuer
from shared_gov.cli.audit import DEFAULT_WORKERS
from shared_gov.logs import configure_logging
from shared_gov.settings import Settings

TARGET_HTTP_RATIO = 0.85
TARGET_LAG_P99_S = 2.0
TARGET_VERIFY_RATE = av.TARGET
SEAL_WAIT_S = 60.0
"""How long to wait after the load for the sealer to cover every event."""
LEADER_WAIT_S = 30.0

_LEADER_SQL = """
SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)
"""
# An event's lag: from occurred_at to the signed_at of the first checkpoint
# of its town whose tree contains it (tree_size > seq). NULL: not covered yet.
_LAG_SQL = """
SELECT
    count(*) AS events,
    count(lag) AS covered,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,
    percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99,
    max(lag) AS worst
FROM (
    SELECT extract(epoch FROM (
        SELECT k.signed_at FROM audit.checkpoints AS k
        WHERE k.tenant = l.tenant AND k.tree_size > l.seq
        ORDER BY k.tree_size LIMIT 1) - e.occurred_at)::float8 AS lag
    FROM audit.events AS e
    LEFT JOIN audit.leaves AS l
      ON l.tenant = e.tenant AND l.event_id = e.event_id AND l.occurred_at = e.occurred_at
    WHERE e.tenant = ANY($1::char(6)[]) AND e.occurred_at BETWEEN $2 AND $3
) AS s
"""
_UNSEALED_SQL = """
SELECT count(*) FROM audit.events AS e
WHERE e.tenant = ANY($1::char(6)[]) AND e.occurred_at <= $2
  AND NOT EXISTS (SELECT 1 FROM audit.leaves AS l
                  WHERE l.tenant = e.tenant AND l.event_id = e.event_id
                    AND l.occurred_at = e.occurred_at)
"""


def http_towns(count: int) -> list[str]:
    """Codes of the shipped demo towns (valid check digits), except the verify town."""
    codes = []
    for path in sorted((h.ROOT / "tenants").glob("*.toml")):
        with path.open("rb") as fh:
            code = str(tomllib.load(fh)["code"])
        if code != av.CODE:
            codes.append(code)
    if count > len(codes):
        raise SystemExit(f"--towns: at most {len(codes)} (the shipped towns but {av.CODE})")
    return codes[:count]


# --------------------------------------------------------------------------- HTTP + lag


@dataclass(slots=True)
class Lag:
    events: int
    covered: int
    p50: float
    p99: float
    worst: float
    unsealed_after_wait: int
    leader_kept: bool
    seal_wait_s: float


@dataclass(slots=True)
class HttpResult:
    comparison: c.Comparison
    lag: Lag
    towns: list[str]
    residents: int


async def _prepare(
    settings: Settings, towns: Sequence[str], residents: int
) -> dict[str, list[str]]:
    db = await c.open_database(settings)
    try:
        ids = {}
        for i, code in enumerate(towns):
            await c.onboard(db, c.town_manifest(code))
            ids[code] = await c.seed(db, code, residents, 1000 + i)
    finally:
        await db.close()
    return ids


async def _fetchval(url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(url, timeout=30)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


def _leader_pid(url: str) -> int | None:
    pid = asyncio.run(_fetchval(url, _LEADER_SQL, LEADER_LOCK))
    return int(pid) if isinstance(pid, int) else None


def _wait_for_leader(url: str) -> int:
    """The backend pid of the sealer leader's session, once a worker holds the lock."""
    deadline = time.monotonic() + LEADER_WAIT_S
    while time.monotonic() < deadline:
        pid = _leader_pid(url)
        if pid is not None:
            return pid
        time.sleep(0.2)
    raise RuntimeError(f"no sealer took the leader lock within {LEADER_WAIT_S:.0f} s")


def _db_now(url: str) -> datetime:
    value = asyncio.run(_fetchval(url, "SELECT clock_timestamp()"))
    assert isinstance(value, datetime)
    return value


async def _measure_lag(
    url: str, towns: Sequence[str], start: datetime, end: datetime
) -> tuple[asyncpg.Record, int, float]:
    """Wait (bounded) until the sealer has sealed every event up to ``end``, then the lags."""
    conn = await asyncpg.connect(url, timeout=30)
    try:
        waited = time.perf_counter()
        unsealed = -1
        while time.perf_counter() - waited < SEAL_WAIT_S:
            unsealed = int(await conn.fetchval(_UNSEALED_SQL, list(towns), end))
            if unsealed == 0:
                break
            await asyncio.sleep(0.5)
        # A little more for the checkpoint of the last pass to be signed and visible.
        await asyncio.sleep(1.5)
        row = await conn.fetchrow(_LAG_SQL, list(towns), start, end)
        assert row is not None
        return row, unsealed, time.perf_counter() - waited
    finally:
        await conn.close()


def measure_http(args: argparse.Namespace, bdb: h.BenchDatabase, port: int) -> HttpResult:
    issuer_url = f"http://{h.LOOPBACK}:{port}"
    settings = c.run_settings(bdb, issuer_url)
    towns = http_towns(args.towns)
    print(
        f"set-up: {len(towns)} towns ({', '.join(towns)}), {args.residents} residents each ...",
        flush=True,
    )
    started = time.perf_counter()
    ids = asyncio.run(_prepare(settings, towns, args.residents))
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
    issuer = builtin_issuer(bdb.data_dir, issuer_url, settings.audience)
    per_town = [c.resident_targets(t, ids[t], c.staff_headers(issuer, t)) for t in towns]
    # Interleaved, so consecutive requests go to different towns (as in a
    # shared deployment) and every town's log grows during every slice.
    targets = [t for group in zip(*per_town, strict=False) for t in group]
    env = bdb.env(
        SHARED_GOV_ISSUER=issuer_url, SHARED_GOV_ACCESS_LOG=None, SHARED_GOV_LOG_LEVEL=None
    )
    with contextlib.ExitStack() as stack:
        audited_url = stack.enter_context(
            h.serve(
                c.SERVICE,
                {**env, "SHARED_GOV_AUDIT": "1"},
                log_path=bdb.workdir / "audited.log",
                port=port,
                working_dir=h.ROOT,
            )
        )
        # Both servers' workers run a sealer and compete for one lock: the
        # audited server starts first and must lead, so that sealing costs
        # its CPU (it is part of what auditing costs), not the baseline's.
        leader = _wait_for_leader(bdb.url)
        baseline_url = stack.enter_context(
            h.serve(
                c.SERVICE,
                {**env, "SHARED_GOV_AUDIT": "0"},
                log_path=bdb.workdir / "unaudited.log",
                working_dir=h.ROOT,
            )
        )
        for url in (audited_url, baseline_url):
            c.check_targets(url, targets)
        audited = c.Side("audited (service)", audited_url, targets)
        baseline = c.Side("SHARED_GOV_AUDIT=0 (baseline)", baseline_url, targets)
        for side in (audited, baseline):
            c.warm_up(
                side.label,
                side.base_url,
                side.targets,
                connections=args.connections,
                min_seconds=args.warmup,
                max_seconds=60.0,
                workdir=bdb.workdir,
            )
        start = _db_now(bdb.url)
        comparison = c.compare_throughput(
            audited,
            baseline,
            rounds=args.rounds,
            duration=args.duration,
            connections=args.connections,
            workdir=bdb.workdir,
        )
        end = _db_now(bdb.url)
        print("waiting for the sealer to cover the measured events ...", flush=True)
        row, unsealed, waited = asyncio.run(_measure_lag(bdb.url, towns, start, end))
        leader_kept = _leader_pid(bdb.url) == leader
        if not comparison.ok:
            for name in ("audited.log", "unaudited.log"):
                print(f"--- {name}, not 200 ---\n{c.log_problems(bdb.workdir / name)}")
    lag = Lag(
        events=int(row["events"]),
        covered=int(row["covered"]),
        p50=float(row["p50"]) if row["p50"] is not None else float("nan"),
        p99=float(row["p99"]) if row["p99"] is not None else float("nan"),
        worst=float(row["worst"]) if row["worst"] is not None else float("nan"),
        unsealed_after_wait=unsealed,
        leader_kept=leader_kept,
        seal_wait_s=waited,
    )
    return HttpResult(comparison, lag, towns, args.residents)


# --------------------------------------------------------------------------- verify


@dataclass(slots=True)
class VerifyResult:
    events: int
    insert_s: float
    seal_s: float
    default_workers: int
    rates: dict[int, list[float]]
    """events/s per worker count, one entry per run."""


async def measure_verify(args: argparse.Namespace, settings: Settings) -> VerifyResult:
    db = await c.open_database(settings)
    try:
        await c.onboard(db, c.town_manifest(av.CODE))
        print(f"verify: inserting {args.events:,} events into town {av.CODE} ...", flush=True)
        insert_s = await av.insert_events(db, args.events)
        print(f"  inserted in {insert_s:.1f} s; sealing ...", flush=True)
        seal_s = await av.seal_backlog(Sealer(db), args.events)
        print(f"  sealed in {seal_s:.1f} s", flush=True)
        key = db.keyring.provider.signing_public_key(av.CODE)
        counts = sorted({DEFAULT_WORKERS, 0}, reverse=True)
        rates: dict[int, list[float]] = {w: [] for w in counts}
        for run in range(1, args.verify_runs + 1):
            for workers in counts:
                report, seconds = await av.timed_verify(db, key, workers)
                rate = report.leaves / seconds
                rates[workers].append(rate)
                print(
                    f"  run {run}/{args.verify_runs}, {workers} worker(s): "
                    f"{report.leaves:,} events in {seconds:.1f} s = {rate:,.0f}/s",
                    flush=True,
                )
    finally:
        await db.close()
    return VerifyResult(args.events, insert_s, seal_s, DEFAULT_WORKERS, rates)


# --------------------------------------------------------------------------- report


def report_http(args: argparse.Namespace, r: HttpResult) -> None:
    comp = r.comparison
    print()
    print(
        f"== resident GET over HTTP, {len(r.towns)} towns x {r.residents} residents, "
        f"c={args.connections}, {args.rounds} round(s) of {args.duration:g} s =="
    )
    c.row("what", "measured", "target", "")
    c.row("audited (req/s, median)", f"{h.median([x.rps for x in comp.measured]):.0f}")
    c.row(
        "baseline: SHARED_GOV_AUDIT=0 (req/s, median)",
        f"{h.median([x.rps for x in comp.baseline]):.0f}",
    )
    c.ratio_row(
        "  throughput ratio audited / unaudited",
        comp.ratio,
        TARGET_HTTP_RATIO,
        higher_is_better=True,
    )
    c.row(
        "  p50 latency audited / unaudited (ms)",
        f"{h.median([x.p50_ms for x in comp.measured]):.2f}/"
        f"{h.median([x.p50_ms for x in comp.baseline]):.2f}",
    )
    c.row(
        "server CPU per request, audited / unaudited (µs)",
        f"{h.median(comp.measured_cpu_us):.0f}/{h.median(comp.baseline_cpu_us):.0f}",
    )
    print("per-round throughput ratios: " + ", ".join(f"{x:.3f}" for x in comp.ratios))
    if not comp.ok:
        print("WARNING: errors or non-2xx responses during the load runs")
    lag = r.lag
    print()
    print("== sealer lag: event written -> first signed checkpoint containing it ==")
    c.row("events written during the audited slices", f"{lag.events:,}")
    c.row("  of which in a signed checkpoint", f"{lag.covered:,}")
    c.row("  lag median (s)", f"{lag.p50:.3f}")
    c.row(
        "  lag p99 (s)",
        f"{lag.p99:.3f}",
        f"<= {TARGET_LAG_P99_S:g}",
        h.verdict(lag.p99, TARGET_LAG_P99_S, higher_is_better=False)
        if lag.covered == lag.events
        else "MISSED",
    )
    c.row("  lag max (s)", f"{lag.worst:.3f}")
    c.row("  waited after the load for the sealer (s)", f"{lag.seal_wait_s:.1f}")
    if lag.unsealed_after_wait:
        print(f"WARNING: {lag.unsealed_after_wait} events still unsealed after {SEAL_WAIT_S:g} s")
    if not lag.leader_kept:
        print("WARNING: the sealer leader changed during the run (lag may include a failover)")


def report_verify(r: VerifyResult) -> None:
    print()
    print(f"== audit verify, {r.events:,} events of one town ==")
    c.row("what", "measured", "target", "")
    c.row("setup: insert / seal backlog (s)", f"{r.insert_s:.1f} / {r.seal_s:.1f}")
    c.row("sealer draining the backlog (events/s)", f"{r.events / r.seal_s:,.0f}")
    for workers, rates in r.rates.items():
        rate = h.median(rates)
        label = (
            f"audit verify, {workers} worker processes (CLI default)"
            if workers == r.default_workers and workers
            else "audit verify, in one process"
            if workers == 0
            else f"audit verify, {workers} workers"
        )
        headline = workers == r.default_workers
        c.row(
            f"{label} (events/s, median)",
            f"{rate:,.0f}",
            f">= {TARGET_VERIFY_RATE:,}" if headline else "",
            h.verdict(rate, TARGET_VERIFY_RATE, higher_is_better=True) if headline else "",
        )
        c.row("  runs", " ".join(f"{x:,.0f}" for x in rates))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--towns", type=int, default=5, help="towns the GETs rotate over")
    parser.add_argument("--residents", type=int, default=40, help="residents per town")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per load slice")
    parser.add_argument("--warmup", type=float, default=3.0, help="minimum warm-up seconds")
    parser.add_argument("--rounds", type=int, default=8, help="alternating load rounds (ABBA)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--events", type=int, default=1_000_000, help="events verified")
    parser.add_argument("--verify-runs", type=int, default=2, help="verify runs (median)")
    parser.add_argument("--skip-http", action="store_true", help="no HTTP comparison nor lag")
    parser.add_argument("--skip-verify", action="store_true", help="no verify measurement")
    args = parser.parse_args(argv)
    if (
        min(args.towns, args.residents, args.rounds, args.connections, args.events) < 1
        or args.verify_runs < 1
        or args.duration <= 0
    ):
        parser.error("counts and durations must be positive")
    configure_logging("warning")
    wrk = h.wrk_path()
    if wrk is None and not args.skip_http:
        print(h.WRK_MISSING, flush=True)
    print(
        f"audit benchmark: code {h.revision()}, load tool {'wrk' if wrk else 'python fallback'}, "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    http: HttpResult | None = None
    verified: VerifyResult | None = None
    with h.bench_database() as bdb:
        port = h.free_port()
        if not args.skip_http:
            http = measure_http(args, bdb, port)
        if not args.skip_verify:
            settings = c.run_settings(bdb, f"http://{h.LOOPBACK}:{port}")
            verified = asyncio.run(measure_verify(args, settings))
    if http is not None:
        report_http(args, http)
        if wrk is None:
            print("NOTE: measured with the Python fallback load generator; install wrk")
    if verified is not None:
        report_verify(verified)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    print("Timings are context, not tests: this script exits 0 whatever the verdicts.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
