"""Policy benchmark (issue #3): Cedar decisions, their cache, and what they cost a GET.

Run from the repository root::

    python bench/policy.py [--residents R] [--duration S] [--rounds N]

In one run, each figure beside the baseline it is compared with:

- median µs of one uncached decision (:meth:`PolicyEngine.invalidate`
  before each) and of one cached decision, through
  :meth:`shared_gov.policy.PolicyEngine.decide`;
- ms to authorise 100 residents × all ``POLICY_FIELDS`` with
  ``decide_many`` (cold cache and warm cache) and the engine calls it made
  (``engine.engine_calls``), against the naive way: one uncached engine call
  per field per resident;
- the policy work of one resident GET (a fresh :class:`Access`, two
  ``readable`` calls), Cedar versus the interim rule, in µs;
- resident GET throughput over HTTP with Cedar versus the interim rule
  (staff of the town see every field, no Cedar; emulated by
  ``bench/_interim_app.py``), both served by granian with 2 workers, same
  data, same token (市民課 staff with 2FA, ``X-Purpose: juki.registration``),
  loaded by wrk in alternating slices. Target: ratio >= 0.9.

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
from collections.abc import Sequence
from typing import Any

import _bench_common as c
import _harness as h
import _interim_app
from shared_gov.auth.issuer import builtin_issuer
from shared_gov.auth.principal import Principal
from shared_gov.logs import configure_logging
from shared_gov.policy import Access, Actor, PolicyEngine, Query, Resource
from shared_gov.policy.access import FieldView
from shared_gov.policy.purposes import POLICY_FIELDS, default_policies_dir, purposes

TOWN = "172065"
LISTED_RESIDENTS = 100
SUPPORT_MEASURE_EVERY = 10
"""One listed resident in ten is under 支援措置 (another class of field decisions)."""
TARGET_HTTP_RATIO = 0.9
INTERIM = "_interim_app:create_app"


# --------------------------------------------------------------------------- in process


def _actor() -> Actor:
    return Actor(
        TOWN,
        c.STAFF_DEPARTMENT,
        frozenset({"staff"}),
        True,
        frozenset({"juki.certificate", "juki.registration"}),
        staff_id="bench-staff",
    )


def _listing_queries() -> list[Query]:
    purpose = purposes()[c.PURPOSE]
    return [
        Query("read", Resource("Field", TOWN, name, i % SUPPORT_MEASURE_EVERY == 0), purpose)
        for i in range(LISTED_RESIDENTS)
        for name in POLICY_FIELDS
    ]


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def measure_engine(samples: int) -> dict[str, Any]:
    """Decisions in this process (no database)."""
    engine = PolicyEngine(default_policies_dir())
    actor = _actor()
    purpose = purposes()[c.PURPOSE]
    one = Query("read", Resource("Field", TOWN, "address", False), purpose)
    clock = time.perf_counter
    engine.decide(actor, one)  # builds the platform policy set once, like a first request

    def uncached() -> None:
        engine.invalidate()
        engine.decide(actor, one)

    # The invalidate() is inside the timed call; time it alone to subtract it.
    invalidate_only = c.time_samples(engine.invalidate, samples, clock=clock)
    uncached_s = c.time_samples(uncached, samples, clock=clock)
    engine.decide(actor, one)
    cached_s = c.time_samples(lambda: engine.decide(actor, one), samples * 10, clock=clock)
    assert engine.decide(actor, one).allowed

    queries = _listing_queries()
    distinct = len({(q.resource, q.action) for q in queries})
    batch_samples = max(5, samples // 20)
    cold_s: list[float] = []
    cold_calls: list[int] = []
    for _ in range(batch_samples):
        engine.invalidate()
        before = engine.engine_calls
        t0 = clock()
        decisions = engine.decide_many(actor, queries)
        cold_s.append(clock() - t0)
        cold_calls.append(engine.engine_calls - before)
    assert len(decisions) == len(queries)
    before = engine.engine_calls
    warm_s = c.time_samples(
        lambda: engine.decide_many(actor, queries), batch_samples * 4, clock=clock
    )
    warm_calls = engine.engine_calls - before

    # Baseline of the listing: no batching, no cache (one engine call per question).
    naive_s: list[float] = []
    naive_calls = 0
    for _ in range(3):
        before = engine.engine_calls
        t0 = clock()
        for q in queries:
            engine.invalidate()
            engine.decide(actor, q)
        naive_s.append(clock() - t0)
        naive_calls = engine.engine_calls - before

    # Per-request policy work of a resident GET: a fresh Access (one per
    # request), readable() before reading the row and once more for its class.
    principal = Principal(
        "bench-staff", TOWN, c.STAFF_DEPARTMENT, frozenset({"staff"}), frozenset({"pwd", "mfa"})
    )

    def get_policy_work() -> FieldView:
        access = Access(principal, actor, purpose, engine, TOWN)
        access.readable(support_measure=False)
        return access.readable(support_measure=False)

    view = get_policy_work()  # warm the engine cache, as a served process is
    assert not view.withheld, view.reasons
    cedar_get_s = c.time_samples(get_policy_work, samples * 10, clock=clock)
    originals = Access.require, Access.field_view, Access.readable
    _interim_app.install()
    try:
        interim_view = get_policy_work()
        assert interim_view.allowed == view.allowed
        interim_get_s = c.time_samples(get_policy_work, samples * 10, clock=clock)
    finally:
        Access.require, Access.field_view, Access.readable = originals  # type: ignore[method-assign]

    return {
        "invalidate": h.median(invalidate_only),
        "uncached": h.median(uncached_s) - h.median(invalidate_only),
        "uncached_raw": uncached_s,
        "cached": h.median(cached_s),
        "cached_raw": cached_s,
        "queries": len(queries),
        "distinct": distinct,
        "cold": h.median(cold_s),
        "cold_calls": max(cold_calls),
        "warm": h.median(warm_s),
        "warm_calls": warm_calls,
        "naive": h.median(naive_s),
        "naive_calls": naive_calls,
        "cedar_get": h.median(cedar_get_s),
        "interim_get": h.median(interim_get_s),
    }


def report_engine(m: dict[str, Any]) -> None:
    print()
    print("== policy engine, in process ==")
    c.row("what", "measured", "target", "")
    c.row("one decision, uncached (µs, median)", _us(m["uncached"]))
    c.row("  (invalidate() alone, subtracted) (µs)", _us(m["invalidate"]))
    c.row("one decision, cached (µs, median)", _us(m["cached"]))
    c.row("  uncached / cached", f"{m['uncached'] / m['cached']:.0f}x")
    c.row(
        f"{LISTED_RESIDENTS} residents x {len(POLICY_FIELDS)} fields, decide_many, cold (ms)",
        _ms(m["cold"]),
    )
    c.row(
        f"  engine calls (questions {m['queries']}, distinct {m['distinct']})",
        str(m["cold_calls"]),
    )
    c.row(
        f"{LISTED_RESIDENTS} x {len(POLICY_FIELDS)}, decide_many, warm cache (ms)", _ms(m["warm"])
    )
    c.row("  engine calls", str(m["warm_calls"]))
    c.row(
        f"baseline: {m['queries']} uncached decide() one by one (ms)",
        _ms(m["naive"]),
    )
    c.row("  engine calls", str(m["naive_calls"]))
    c.row("  decide_many cold / one-by-one (time)", f"{m['cold'] / m['naive']:.3f}")
    c.row("  decide_many warm / one-by-one (time)", f"{m['warm'] / m['naive']:.4f}")
    c.row("policy work of one resident GET, Cedar, warm (µs)", _us(m["cedar_get"]))
    c.row("baseline: same with the interim rule (µs)", _us(m["interim_get"]))
    c.row("  Cedar - interim, per request (µs)", _us(m["cedar_get"] - m["interim_get"]))
    print(
        "samples: uncached "
        + c.spread([x * 1e6 for x in m["uncached_raw"]])
        + " µs; cached "
        + c.spread([x * 1e6 for x in m["cached_raw"]])
        + " µs"
    )


# --------------------------------------------------------------------------- HTTP


async def prepare(settings: Any, residents: int) -> list[str]:
    db = await c.open_database(settings)
    try:
        await c.onboard(db, c.town_manifest(TOWN))
        return await c.seed(db, TOWN, residents, seed_value=int(TOWN))
    finally:
        await db.close()


def measure_http(args: argparse.Namespace) -> tuple[c.Comparison, dict[str, int]]:
    with h.bench_database() as bdb:
        port = h.free_port()
        issuer_url = f"http://{h.LOOPBACK}:{port}"
        settings = c.run_settings(bdb, issuer_url)
        print(f"set-up: onboarding {TOWN}, seeding {args.residents} residents ...", flush=True)
        started = time.perf_counter()
        ids = asyncio.run(prepare(settings, args.residents))
        print(f"  {len(ids)} residents in {time.perf_counter() - started:.1f} s", flush=True)
        issuer = builtin_issuer(bdb.data_dir, issuer_url, settings.audience)
        targets = c.resident_targets(TOWN, ids, c.staff_headers(issuer, TOWN))
        env = bdb.env(
            SHARED_GOV_ISSUER=issuer_url, SHARED_GOV_ACCESS_LOG=None, SHARED_GOV_LOG_LEVEL=None
        )
        with contextlib.ExitStack() as stack:
            cedar_url = stack.enter_context(
                h.serve(
                    c.SERVICE,
                    env,
                    log_path=bdb.workdir / "cedar.log",
                    port=port,
                    working_dir=h.ROOT,
                )
            )
            interim_url = stack.enter_context(
                h.serve(INTERIM, env, log_path=bdb.workdir / "interim.log", working_dir=h.BENCH_DIR)
            )
            cedar_body = c.check_targets(cedar_url, targets)
            interim_body = c.check_targets(interim_url, targets)
            if cedar_body != interim_body:
                raise RuntimeError("the two servers answer differently; the ratio would be unfair")
            sizes = {"fields": len(cedar_body), "withheld": len(cedar_body.get("withheld", []))}
            cedar = c.Side("Cedar (service)", cedar_url, targets)
            interim = c.Side("interim rule (baseline)", interim_url, targets)
            for side in (cedar, interim):
                c.warm_up(
                    side.label,
                    side.base_url,
                    side.targets,
                    connections=args.connections,
                    min_seconds=args.warmup,
                    max_seconds=60.0,
                    workdir=bdb.workdir,
                )
            comparison = c.compare_throughput(
                cedar,
                interim,
                rounds=args.rounds,
                duration=args.duration,
                connections=args.connections,
                workdir=bdb.workdir,
            )
            if not comparison.ok:
                for name in ("cedar.log", "interim.log"):
                    print(f"--- {name}, not 200 ---\n{c.log_problems(bdb.workdir / name)}")
    return comparison, sizes


def report_http(args: argparse.Namespace, comp: c.Comparison, sizes: dict[str, int]) -> None:
    print()
    print(f"== resident GET over HTTP, c={args.connections}, {args.rounds} round(s) ==")
    c.row("what", "measured", "target", "")
    c.row("Cedar (req/s, median)", f"{h.median([r.rps for r in comp.measured]):.0f}")
    c.row(
        "baseline: interim rule (req/s, median)", f"{h.median([r.rps for r in comp.baseline]):.0f}"
    )
    c.ratio_row(
        "  throughput ratio Cedar / interim", comp.ratio, TARGET_HTTP_RATIO, higher_is_better=True
    )
    c.row(
        "  p50 latency Cedar / interim (ms)",
        f"{h.median([r.p50_ms for r in comp.measured]):.2f}/"
        f"{h.median([r.p50_ms for r in comp.baseline]):.2f}",
    )
    c.row(
        "server CPU per request, Cedar / interim (µs)",
        f"{h.median(comp.measured_cpu_us):.0f}/{h.median(comp.baseline_cpu_us):.0f}",
    )
    c.row("  CPU per request ratio Cedar / interim (context)", f"{comp.cpu_ratio:.2f}")
    print("per-round throughput ratios: " + ", ".join(f"{x:.3f}" for x in comp.ratios))
    print(
        f"response: {sizes['fields']} top-level keys, {sizes['withheld']} withheld "
        "(identical bodies from both servers)"
    )
    if not comp.ok:
        print("WARNING: errors or non-2xx responses during the load runs")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--residents", type=int, default=200, help="residents seeded (GET targets)")
    parser.add_argument("--samples", type=int, default=2000, help="timed decisions per figure")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per load slice")
    parser.add_argument("--warmup", type=float, default=3.0, help="minimum warm-up seconds")
    parser.add_argument("--rounds", type=int, default=8, help="alternating load rounds (ABBA)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--skip-http", action="store_true", help="in-process figures only")
    args = parser.parse_args(argv)
    if min(args.residents, args.samples, args.rounds, args.connections) < 1 or args.duration <= 0:
        parser.error("counts and durations must be positive")
    configure_logging("warning")
    wrk = h.wrk_path()
    if wrk is None and not args.skip_http:
        print(h.WRK_MISSING, flush=True)
    print(
        f"policy benchmark: code {h.revision()}, load tool {'wrk' if wrk else 'python fallback'}, "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    engine_figures = measure_engine(args.samples)
    report_engine(engine_figures)
    if not args.skip_http:
        comparison, sizes = measure_http(args)
        report_engine(engine_figures)
        report_http(args, comparison, sizes)
        if wrk is None:
            print("NOTE: measured with the Python fallback load generator; install wrk")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    print("Timings are context, not tests: this script exits 0 whatever the verdicts.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
