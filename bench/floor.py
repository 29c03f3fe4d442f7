"""The floor under issue #16's targets: how near the service's GET is to its design's best.

Five servers, each served the same way (granian, 2 workers), measured in
the same rounds (each round runs every side once, in a rotated order):

1. ``bare``: bare Litestar, one row of a plain table (``bare_app``) — the
   baseline every ratio divides by, as in ``bench/tenancy.py``;
2. ``floor, unaudited``: the resident GET's essential work with the
   service's own code and nothing else (``floor_app``: the town's read
   function in one round trip, decryption, JSON);
3. ``floor, audited``: the same + the event through the group-commit writer;
4. ``service, SHARED_GOV_AUDIT=0``: the service's resident GET, auditing off;
5. ``service``: the service's resident GET as deployed.

(3) ÷ (1) is the best "service ÷ bare" the design allows on this machine,
(3) ÷ (2) the best "audited ÷ unaudited"; the service's own ratios beside
them say how much the framework and the guarantees around the read cost.
Beside req/s, each slice's server CPU per request (granian's processes,
from /proc) and PostgreSQL's (all backends of the run's database).

    SHARED_GOV_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/floor.py [--towns 5] [--residents 20] [--rounds 6] [--duration 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

import _bench_common as c
import _harness as h
import bare_app
from audit import _prepare, http_towns
from shared_gov.auth.issuer import builtin_issuer
from shared_gov.logs import configure_logging

FLOOR = "floor_app:create_floor_app"
BARE = "bare_app:create_bare_app"


@dataclass(slots=True)
class SideResult:
    label: str
    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)
    pg_cpu_us: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)


def _postgres_pids(url: str) -> list[int]:
    async def pids() -> list[int]:
        conn = await asyncpg.connect(url, timeout=30)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )
            return [int(r["pid"]) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(pids())


def _spy(folder: str, pids: Sequence[int], seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy on each worker (not granian's main process) for one slice."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    workers = sorted(pids)[1:]  # the main process is started first
    return [
        subprocess.Popen(
            [
                h.tool("py-spy"),
                "record",
                "--gil",
                "--format",
                "raw",
                "--rate",
                "250",
                "-d",
                str(int(seconds)),
                "-p",
                str(pid),
                "-o",
                f"{folder}/floor-{pid}.txt",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in workers
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--towns", type=int, default=5)
    parser.add_argument("--residents", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="for every server"
    )
    parser.add_argument(
        "--spy",
        metavar="DIR",
        help="py-spy (raw, --gil) the floor's workers in its last audited slice",
    )
    parser.add_argument(
        "--drop-audit-indexes",
        action="store_true",
        help="experiment only: drop audit.events' secondary indexes (subjects, tenant+event_id)"
        " to see what they cost each event",
    )
    args = parser.parse_args(argv)
    configure_logging("warning")
    if h.wrk_path() is None:
        print(h.WRK_MISSING, flush=True)
    print(
        f"floor benchmark: code {h.revision()}, load average {os.getloadavg()[0]:.2f}", flush=True
    )
    with h.bench_database() as bdb:
        port = h.free_port()
        issuer_url = f"http://{h.LOOPBACK}:{port}"
        settings = c.run_settings(bdb, issuer_url)
        towns = http_towns(args.towns)
        ids = asyncio.run(_prepare(settings, towns, args.residents))

        async def plain_table() -> list[str]:
            conn = await asyncpg.connect(bdb.url)
            try:
                return await bare_app.create_plain_table(conn, args.towns * args.residents)
            finally:
                await conn.close()

        bare_ids = asyncio.run(plain_table())
        if args.drop_audit_indexes:
            asyncio.run(
                h._admin(
                    bdb.url,
                    "DROP INDEX audit.events_subjects; DROP INDEX audit.events_tenant_event",
                )
            )
            print("experiment: audit.events_subjects and events_tenant_event dropped", flush=True)
        issuer = builtin_issuer(bdb.data_dir, issuer_url, settings.audience)
        per_town = [c.resident_targets(t, ids[t], c.staff_headers(issuer, t)) for t in towns]
        service_targets = [t for group in zip(*per_town, strict=False) for t in group]
        pairs = [
            (t, rid)
            for group in zip(*[[(t, r) for r in ids[t]] for t in towns], strict=False)
            for (t, rid) in group
        ]
        floor_plain = [h.Target(f"/floor/plain/{t}/residents/{r}") for t, r in pairs]
        floor_audited = [h.Target(f"/floor/audited/{t}/residents/{r}") for t, r in pairs]
        bare_targets = [h.Target(f"/rows/{rid}") for rid in bare_ids]
        env = bdb.env(
            SHARED_GOV_ISSUER=issuer_url, SHARED_GOV_ACCESS_LOG=None, SHARED_GOV_LOG_LEVEL=None
        )
        env.update(dict(kv.split("=", 1) for kv in args.env))
        with contextlib.ExitStack() as stack:

            def serve(target: str, name: str, extra: dict[str, str], **kw: object) -> str:
                return stack.enter_context(
                    h.serve(target, {**env, **extra}, log_path=bdb.workdir / f"{name}.log", **kw)  # type: ignore[arg-type]
                )

            service_url = serve(
                c.SERVICE, "service", {"SHARED_GOV_AUDIT": "1"}, port=port, working_dir=h.ROOT
            )
            unaudited_url = serve(
                c.SERVICE, "unaudited", {"SHARED_GOV_AUDIT": "0"}, working_dir=h.ROOT
            )
            floor_url = serve(FLOOR, "floor", {}, working_dir=h.BENCH_DIR)
            bare_url = serve(BARE, "bare", {}, working_dir=h.BENCH_DIR)
            sides = [
                ("bare", bare_url, bare_targets),
                ("floor, unaudited", floor_url, floor_plain),
                ("floor, audited", floor_url, floor_audited),
                ("service, SHARED_GOV_AUDIT=0", unaudited_url, service_targets),
                ("service", service_url, service_targets),
            ]
            for label, url, targets in sides:
                c.check_targets(url, targets)
                c.warm_up(
                    label,
                    url,
                    targets,
                    connections=args.connections,
                    min_seconds=args.warmup,
                    max_seconds=60.0,
                    workdir=bdb.workdir,
                )
            results = {label: SideResult(label) for label, _, _ in sides}
            server_pids = {url: c.server_pids(url) for _, url, _ in sides}
            for r in range(args.rounds):
                order = sides[r % len(sides) :] + sides[: r % len(sides)]
                if r % 2:
                    order = order[::-1]
                for label, url, targets in order:
                    spy = None
                    if args.spy and label == "floor, audited" and r == args.rounds - 1:
                        spy = _spy(args.spy, server_pids[url], args.duration)
                    pg = _postgres_pids(bdb.url)
                    before, pg_before = c.cpu_seconds(server_pids[url]), c.cpu_seconds(pg)
                    load = h.run_load(
                        url,
                        targets,
                        duration=args.duration,
                        connections=args.connections,
                        workdir=bdb.workdir,
                    )
                    used = c.cpu_seconds(server_pids[url]) - before
                    for proc in spy or ():
                        proc.wait(timeout=60)
                    pg_used = c.cpu_seconds(pg) - pg_before
                    res = results[label]
                    n = max(load.requests, 1)
                    res.rps.append(load.rps)
                    res.cpu_us.append(used / n * 1e6)
                    res.pg_cpu_us.append(pg_used / n * 1e6)
                    res.p99_ms.append(load.p99_ms)
                    print(
                        f"  round {r + 1}/{args.rounds} {label:<28} {load.brief()}"
                        f"  server {used / n * 1e6:5.0f} µs/req"
                        f"  PostgreSQL {pg_used / n * 1e6:5.0f} µs/req",
                        flush=True,
                    )
    bare = results["bare"]
    print(
        f"\n== floor benchmark: {args.towns} towns x {args.residents} residents,"
        f" c={args.connections} =="
    )
    print(
        f"{'side':<30}{'req/s':>8}{'÷ bare':>9}{'per-round ÷ bare':>40}"
        f"{'server µs':>11}{'PG µs':>8}{'p99 ms':>8}"
    )
    for label, res in results.items():
        ratios = [m / b for m, b in zip(res.rps, bare.rps, strict=True) if b]
        print(
            f"{label:<30}{h.median(res.rps):8.0f}{h.median(ratios):9.2f}"
            f"{' '.join(f'{x:.2f}' for x in ratios):>40}"
            f"{h.median(res.cpu_us):11.0f}{h.median(res.pg_cpu_us):8.0f}{h.median(res.p99_ms):8.1f}"
        )

    def per_round(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(results[a].rps, results[b].rps, strict=True) if y]

    for a, b in (
        ("floor, audited", "floor, unaudited"),
        ("service", "service, SHARED_GOV_AUDIT=0"),
        ("service", "floor, audited"),
    ):
        rs = per_round(a, b)
        print(f"{a} ÷ {b}: {h.median(rs):.2f} (per round {' '.join(f'{x:.2f}' for x in rs)})")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    print("Timings are context, not tests: this script exits 0 whatever the verdicts.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
