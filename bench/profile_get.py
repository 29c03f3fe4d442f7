"""Where a resident GET spends its CPU: a diagnostic, not a benchmark.

Serves the service and the bare app side by side (the harness's way), loads
each with wrk, and prints for each side: req/s, CPU per request of the server
processes and of the PostgreSQL backends serving them (from ``/proc``), and,
with ``--py-spy``, the functions with the most samples in one service worker
(``py-spy record --format raw``, folded stacks, while the service is loaded).

``--in-process`` instead calls the service's ASGI app directly in this
process, one request after another (no server, no HTTP client), and prints
the Python CPU time per request: the steadiest measure of the service's own
Python cost on a noisy machine (``--profile`` adds a cProfile listing with a
CPU-time clock).

    SHARED_GOV_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/profile_get.py [--towns 6] [--residents 50] [--py-spy]

Used to pick and check the changes recorded in ``bench/README.md``
("Where the time goes"). Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

import _bench_common as bc
import _harness as h
import _stages
import bare_app
from shared_gov.auth.issuer import builtin_issuer
from shared_gov.tenancy.manifest import load_manifest

BARE = "bare_app:create_bare_app"


async def _prepare(
    bdb: h.BenchDatabase, issuer_url: str, manifests: Sequence[Path], residents: int
) -> tuple[list[h.Target], list[str]]:
    settings = bc.run_settings(bdb, issuer_url)
    db = await bc.open_database(settings)
    per_town: dict[str, list[str]] = {}
    issuer = builtin_issuer(settings.data_dir, settings.issuer, settings.audience)
    try:
        for path in manifests:
            manifest = load_manifest(path)
            await bc.onboard(db, manifest)
            per_town[manifest.code] = await bc.seed(db, manifest.code, residents, 1)
    finally:
        await db.close()
    # Interleave towns: consecutive requests go to different towns.
    targets: list[h.Target] = []
    headers = {code: bc.staff_headers(issuer, code) for code in per_town}
    for i in range(residents):
        for code, ids in per_town.items():
            if i < len(ids):
                targets.extend(bc.resident_targets(code, [ids[i]], headers[code]))
    conn = await asyncpg.connect(bdb.url)
    try:
        bare_ids = await bare_app.create_plain_table(conn, len(targets), bdb.role_prefix)
    finally:
        await conn.close()
    return targets, bare_ids


async def _backends(url: str) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


def _py_spy(
    pid: int, seconds: float, out: Path, rate: int = 250, gil: bool = False
) -> subprocess.Popen[bytes]:
    # ``gil``: only the thread holding the GIL is sampled, i.e. Python at
    # work; without it py-spy also counts threads it cannot tell are idle
    # (granian's runtime threads, waiting ones), several times the CPU used.
    return subprocess.Popen(
        [
            h.tool("py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            *(["--gil"] if gil else []),
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _top(folded: Path, limit: int) -> None:
    """Inclusive samples per function (each function once per stack)."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        seen = set()
        for frame in stack.split(";"):
            name = (
                frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1]
            )
            if name not in seen:
                seen.add(name)
                inclusive[name] += count
    print(f"  py-spy: {total} samples in one worker")
    for name, count in inclusive.most_common(limit):
        print(f"  {100 * count / total:5.1f} %  {name}")


async def _call(app: Any, target: h.Target) -> int:
    """One GET through the ASGI app; returns the status."""
    path = target.path
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in target.headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


def in_process(
    targets: Sequence[h.Target],
    requests: int,
    profile: bool,
    url: str | None = None,
    concurrency: int = 1,
    audit_ab: int = 0,
) -> None:
    """Python CPU per resident GET with the app called directly (env already set).

    With ``url`` (the run's database), also the CPU of the PostgreSQL
    backends serving this database meanwhile (from /proc, local servers only).
    ``audit_ab``: that many blocks of ``requests``, auditing on and off in
    turn (ABBA) in this one process, and the medians of each side: the
    audit's own CPU per GET, paired against the same machine's noise.
    """
    import dataclasses
    import statistics

    import uvloop

    from shared_gov.app import create_app
    from shared_gov.audit import writer as audit_writer

    async def run() -> None:
        app = create_app()
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        lifespan = asyncio.create_task(app(scope, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        await outbox.get()
        services = app.state.services
        audited_settings = services.settings
        try:
            for i in range(max(600, 3 * len(targets))):  # warm every town's caches
                await _call(app, targets[i % len(targets)])
            backends = await _backends(url) if url else []
            writer = audit_writer.running(services.db)

            async def block(label: str, profiler: cProfile.Profile | None) -> tuple[float, float]:
                pg = bc.cpu_seconds(backends)
                batches = writer.batches if writer else 0
                cpu, wall = time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                counter = iter(range(requests))

                async def client() -> None:
                    for i in counter:
                        status = await _call(app, targets[i % len(targets)])
                        if status != 200:
                            raise RuntimeError(f"GET answered {status}")

                await asyncio.gather(*(client() for _ in range(concurrency)))
                if profiler:
                    profiler.disable()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                pg = bc.cpu_seconds(backends) - pg
                batches = (writer.batches - batches) if writer else 0
                print(
                    f"in process{label}, {requests} GETs, {concurrency} at a time: "
                    f"Python CPU {cpu / requests * 1e6:.0f} µs/req, "
                    + (f"PostgreSQL CPU {pg / requests * 1e6:.0f} µs/req, " if url else "")
                    + f"wall {wall / requests * 1e6:.0f} µs/req"
                    + (f", {requests / batches:.1f} events per audit batch" if batches else "")
                    + (" (under cProfile)" if profiler else ""),
                    flush=True,
                )
                return cpu / requests * 1e6, pg / requests * 1e6

            if not audit_ab:
                profiler = cProfile.Profile(time.process_time) if profile else None
                await block("", profiler)
                if profiler:
                    pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
                return
            sides: dict[str, list[tuple[float, float]]] = {"audited": [], "unaudited": []}
            for b in range(audit_ab):
                audited = b % 4 in (0, 3)  # ABBA
                services.settings = (
                    audited_settings
                    if audited
                    else dataclasses.replace(audited_settings, audit=False)
                )
                label = "audited" if audited else "unaudited"
                sides[label].append(await block(f" ({label})", None))
            med = {
                k: (statistics.median(p for p, _ in v), statistics.median(g for _, g in v))
                for k, v in sides.items()
            }
            for k, (py, pg) in med.items():
                print(
                    f"median {k:10} Python {py:5.0f} + PostgreSQL {pg:4.0f} = {py + pg:5.0f} µs/req"
                )
            total = {k: py + pg for k, (py, pg) in med.items()}
            print(
                f"CPU ratio unaudited / audited {total['unaudited'] / total['audited']:.2f} "
                f"(Python alone {med['unaudited'][0] / med['audited'][0]:.2f})"
            )
        finally:
            services.settings = audited_settings
            await inbox.put({"type": "lifespan.shutdown"})
            await outbox.get()
            await lifespan

    uvloop.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--towns", type=int, default=6)
    parser.add_argument("--residents", type=int, default=50)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--py-spy", action="store_true")
    parser.add_argument(
        "--stages",
        action="store_true",
        help="py-spy on every service worker in the last round: CPU per request by stage",
    )
    parser.add_argument("--spy-rate", type=int, default=250)
    parser.add_argument("--keep-stacks", type=Path, help="with --stages: copy the stacks here")
    parser.add_argument("--service-only", action="store_true", help="skip the bare sides")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the service")
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--requests", type=int, default=4000, help="with --in-process")
    parser.add_argument("--profile", action="store_true", help="with --in-process: cProfile")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="with --in-process: requests at a time"
    )
    parser.add_argument(
        "--audit-ab",
        type=int,
        default=0,
        metavar="BLOCKS",
        help="with --in-process: BLOCKS blocks, auditing on and off in turn (ABBA)",
    )
    args = parser.parse_args(argv)

    with h.bench_database() as bdb:
        port = h.free_port()
        issuer_url = f"http://127.0.0.1:{port}"
        manifests = sorted((h.ROOT / "tenants").glob("*.toml"))[: args.towns]
        targets, bare_ids = asyncio.run(_prepare(bdb, issuer_url, manifests, args.residents))
        bare_targets = [h.Target(f"/rows/{rid}") for rid in bare_ids]
        audited_targets = [h.Target(f"/rows/{rid}/bound-audited") for rid in bare_ids]
        extra = dict(kv.split("=", 1) for kv in args.env)
        service_env = bdb.env(SHARED_GOV_ISSUER=issuer_url, **extra)
        if args.in_process:
            os.environ.update(service_env)
            os.environ.setdefault("SHARED_GOV_LOG_LEVEL", "warning")
            in_process(
                targets, args.requests, args.profile, bdb.url, args.concurrency, args.audit_ab
            )
            return 0
        with contextlib.ExitStack() as stack:
            bare_url = stack.enter_context(
                h.serve(BARE, bdb.env(), log_path=bdb.workdir / "bare.log", working_dir=h.BENCH_DIR)
            )
            service_url = stack.enter_context(
                h.serve(
                    bc.SERVICE,
                    service_env,
                    log_path=bdb.workdir / "service.log",
                    port=port,
                    working_dir=h.ROOT,
                )
            )
            sides: tuple[tuple[str, str, list[h.Target]], ...] = (
                ("bare", bare_url, bare_targets),
                ("bare+bind+audit", bare_url, audited_targets),
                ("service", service_url, targets),
            )
            if args.service_only:
                sides = sides[2:]
            rates: dict[str, list[float]] = {label: [] for label, _, _ in sides}
            for label, url, tg in sides:
                bc.warm_up(
                    label,
                    url,
                    tg,
                    connections=args.connections,
                    min_seconds=3,
                    max_seconds=30,
                    workdir=bdb.workdir,
                )
            for r in range(args.rounds):
                for label, url, tg in sides:
                    pids = bc.server_pids(url)
                    backends = asyncio.run(_backends(bdb.url))
                    spy = None
                    spies: list[subprocess.Popen[bytes]] = []
                    last_service = label == "service" and r == args.rounds - 1
                    workers = [p for p in pids if p != min(pids)]
                    if args.py_spy and last_service:
                        spy = _py_spy(workers[0], args.duration, bdb.workdir / "spy.txt")
                    if args.stages and last_service:
                        spies = [
                            _py_spy(
                                w,
                                args.duration,
                                bdb.workdir / f"stages-{w}.txt",
                                rate=args.spy_rate,
                                gil=True,
                            )
                            for w in workers
                        ]
                    before, before_pg = bc.cpu_seconds(pids), bc.cpu_seconds(backends)
                    before_main = _stages.main_thread_cpu(workers)
                    result = h.run_load(
                        url,
                        tg,
                        duration=args.duration,
                        connections=args.connections,
                        workdir=bdb.workdir,
                    )
                    used = bc.cpu_seconds(pids) - before
                    used_main = _stages.main_thread_cpu(workers) - before_main
                    used_pg = bc.cpu_seconds(backends) - before_pg
                    n = max(1, result.requests)
                    rates[label].append(result.rps)
                    print(
                        f"{label:16} {result.rps:8.0f} req/s  p50 {result.p50_ms:5.2f} ms  "
                        f"server {used / n * 1e6:5.0f} µs/req  "
                        f"postgres {used_pg / n * 1e6:5.0f} µs/req"
                        f"{'' if result.ok else '  NOT OK'}",
                        flush=True,
                    )
                    if spy is not None:
                        spy.wait(timeout=args.duration + 30)
                        _top(bdb.workdir / "spy.txt", args.top)
                    if spies:
                        for s in spies:
                            s.wait(timeout=args.duration + 30)
                        if args.keep_stacks:
                            args.keep_stacks.mkdir(parents=True, exist_ok=True)
                            for w in workers:
                                stacks = bdb.workdir / f"stages-{w}.txt"
                                if stacks.exists():
                                    (args.keep_stacks / stacks.name).write_bytes(
                                        stacks.read_bytes()
                                    )
                        print(f"CPU per request by stage ({len(workers)} workers, py-spy):")
                        _stages.report(
                            _stages.read_folded(bdb.workdir / f"stages-{w}.txt" for w in workers),
                            rate=args.spy_rate,
                            requests=result.requests,
                            main_cpu=used_main,
                            server_cpu=used,
                        )
            bare = h.median(rates["bare"]) if "bare" in rates else float("nan")
            for label, values in rates.items():
                rate = h.median(values)
                print(f"median {label:16} {rate:8.0f} req/s  ÷ bare {rate / bare:.2f}")
            problems = bc.log_problems(bdb.workdir / "service.log")
            if problems:
                print(problems)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
