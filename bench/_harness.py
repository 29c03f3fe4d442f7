"""Shared plumbing for the benchmarks under ``bench/``.

- :func:`bench_database`: a throw-away database for one run. With
  ``SHARED_GOV_DATABASE_URL`` set, a fresh ``sgbench_<hex>`` database on that
  server; otherwise an embedded PostgreSQL (pgserver) in a temporary
  directory. Either way a unique role prefix ``sgb<hex>`` (tenant roles are
  cluster-wide), and everything is dropped at the end.
- :func:`serve`: start an ASGI app exactly the way every benchmark serves
  one (``granian --interface asgi --factory --workers 2``) on a loopback
  port, wait until it answers, stop it cleanly.
- :func:`run_load`: HTTP load with ``wrk`` and a generated Lua script that
  rotates through a list of paths, each with its own headers
  (``Authorization``, ``X-Purpose``); falls back to a bounded asyncio +
  httpx generator when ``wrk`` is not installed (its own CPU use caps the
  numbers, so it says so).
- Small statistics and reporting helpers.

Every wait is bounded in time and every address is loopback. Timings are
printed, never asserted: machines are noisy, so benchmarks report ratios
against a baseline measured in the same run (DESIGN.md, "Performance
posture").
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from shared_gov.db.urls import with_database

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "bench"
LOOPBACK = "127.0.0.1"
WORKERS = 2

WRK_MISSING = (
    "wrk is not installed: install it with `apt-get install wrk` (`make bench` installs it).\n"
    "Falling back to a Python load generator (asyncio + httpx). It shares the CPU with the\n"
    "servers and saturates long before they do, so throughput figures and ratios from this\n"
    "run are indicative only."
)

# Paths and header values go into a generated Lua script: only these characters.
_LUA_SAFE = re.compile(r"^[A-Za-z0-9_./:=+\- ]*$")


# --------------------------------------------------------------------------- database


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """Where one benchmark run keeps its data."""

    admin_url: str
    url: str
    """The run's own database; what ``SHARED_GOV_DATABASE_URL`` is set to."""
    name: str
    role_prefix: str
    embedded: bool
    workdir: Path
    """Temporary directory of the run (server logs, Lua scripts, pgdata if embedded)."""
    data_dir: Path
    """``SHARED_GOV_DATA_DIR`` of every process of the run (issuer key, ...)."""

    def env(self, **overrides: str | None) -> dict[str, str]:
        """Environment for child processes: ours plus the run's settings.

        An override of ``None`` removes the variable, so a child sees the
        service's default for it.
        """
        env = dict(os.environ)
        env.update(
            {
                "SHARED_GOV_ENV": "dev",
                "SHARED_GOV_DATABASE_URL": self.url,
                "SHARED_GOV_ROLE_PREFIX": self.role_prefix,
                "SHARED_GOV_DATA_DIR": str(self.data_dir),
            }
        )
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env


@contextmanager
def bench_database() -> Iterator[BenchDatabase]:
    """A fresh database and role prefix for one run; everything dropped afterwards."""
    run_id = secrets.token_hex(4)
    workdir = Path(tempfile.mkdtemp(prefix=f"sgb{run_id}-"))
    data_dir = workdir / "data"
    data_dir.mkdir()
    server: object | None = None
    admin_url = os.environ.get("SHARED_GOV_DATABASE_URL")
    name = f"sgbench_{run_id}"
    role_prefix = f"sgb{run_id}"
    created = False
    try:
        if not admin_url:
            import pgserver

            pgdata = workdir / "pg"
            print(f"database: embedded PostgreSQL (pgserver) in {pgdata}", flush=True)
            server = pgserver.get_server(str(pgdata))  # type: ignore[attr-defined]
            admin_url = f"postgresql://postgres@/postgres?host={pgdata}"
        else:
            print(f"database: {name} on the server of SHARED_GOV_DATABASE_URL", flush=True)
        asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
        created = True
        yield BenchDatabase(
            admin_url=admin_url,
            url=with_database(admin_url, name),
            name=name,
            role_prefix=role_prefix,
            embedded=server is not None,
            workdir=workdir,
            data_dir=data_dir,
        )
    finally:
        try:
            if created and admin_url:
                asyncio.run(_drop_everything(admin_url, name, role_prefix))
        finally:
            cleanup = getattr(server, "cleanup", None)
            if cleanup is not None:
                cleanup()
            shutil.rmtree(workdir, ignore_errors=True)


async def _admin(admin_url: str, statement: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _drop_everything(admin_url: str, name: str, role_prefix: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        roles = await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", role_prefix + "\\_%"
        )
        for r in roles:
            await conn.execute(f'DROP ROLE IF EXISTS "{r["rolname"]}"')
    finally:
        await conn.close()


@dataclass(frozen=True, slots=True)
class BackendMemory:
    backends: int
    total_mb: float
    max_mb: float


def backend_memory(url: str) -> BackendMemory | None:
    """Private (anonymous) memory of the PostgreSQL backends connected to ``url``'s database.

    Catalog and plan caches live there (DESIGN.md: ~140 KB per tenant schema a
    backend has touched). Only possible when the server runs on this machine
    and /proc is readable; None otherwise.
    """
    try:
        pids = asyncio.run(_backend_pids(url))
    except (OSError, asyncpg.PostgresError) as exc:
        # E.g. "too many clients" on a server other jobs share: the run's
        # measurements stand, only this context line is missing.
        print(f"  (backend memory not read: {type(exc).__name__})", flush=True)
        return None
    sizes = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                return None
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Anonymous:"):
                    sizes.append(int(line.split()[1]) / 1024)
        except OSError:
            return None
    if not sizes:
        return None
    return BackendMemory(len(sizes), sum(sizes), max(sizes))


async def _backend_pids(url: str) -> list[int]:
    conn = await asyncpg.connect(url, timeout=30)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


# --------------------------------------------------------------------------- servers


def tool(name: str) -> str:
    """A console script of this virtualenv, else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found in the virtualenv or on PATH")
    return found


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def server_command(target: str, port: int, working_dir: Path | None = None) -> list[str]:
    """The one way benchmarks serve an app (both sides of a ratio alike)."""
    cmd = [
        tool("granian"),
        "--interface",
        "asgi",
        "--factory",
        "--workers",
        str(WORKERS),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
    ]
    if working_dir is not None:
        cmd += ["--working-dir", str(working_dir)]
    return [*cmd, target]


@contextmanager
def serve(
    target: str,
    env: Mapping[str, str],
    *,
    log_path: Path,
    port: int | None = None,
    working_dir: Path | None = None,
    ready_path: str = "/health",
    startup_timeout: float = 60.0,
) -> Iterator[str]:
    """Serve ``target`` (a factory) with granian; yields its base URL.

    The server's stdout and stderr (including the service's JSON access log)
    go to ``log_path``, as they would to a log shipper in production.
    """
    port = port or free_port()
    base_url = f"http://{LOOPBACK}:{port}"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            server_command(target, port, working_dir),
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_ready(proc, base_url + ready_path, startup_timeout, log_path)
        yield base_url
    finally:
        _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail(log_path)}")
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{tail(log_path)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (granian's graceful stop), then SIGKILL of its process group if it hangs."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def revision() -> str:
    """``git describe --always --dirty`` of the checkout, to tie numbers to code."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() or "unknown"


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def timed_command(
    cmd: Sequence[str], env: Mapping[str, str], timeout: float = 600.0
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``cmd`` to completion; (wall seconds, result). Includes interpreter start-up."""
    started = time.perf_counter()
    result = subprocess.run(
        list(cmd),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    return time.perf_counter() - started, result


# --------------------------------------------------------------------------- load


@dataclass(frozen=True, slots=True)
class Target:
    """One request of the rotation: a path and its extra headers (e.g. Authorization)."""

    path: str
    headers: tuple[tuple[str, str], ...] = ()

    def header_dict(self) -> dict[str, str]:
        return dict(self.headers)


@dataclass(frozen=True, slots=True)
class LoadResult:
    tool: str
    requests: int
    seconds: float
    errors: int
    """Socket errors and timeouts."""
    non_2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    bytes: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.requests > 0 and self.errors == 0 and self.non_2xx == 0

    def brief(self) -> str:
        flags = "" if self.ok else f"  [errors {self.errors}, non-2xx {self.non_2xx}]"
        return (
            f"{self.rps:8.0f} req/s  p50 {self.p50_ms:6.2f} ms  p90 {self.p90_ms:6.2f} ms  "
            f"p99 {self.p99_ms:6.2f} ms  ({self.requests} req){flags}"
        )


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_load(
    base_url: str,
    targets: Sequence[Target],
    *,
    duration: float,
    connections: int,
    workdir: Path,
    threads: int = 1,
    warmup: float = 0.0,
) -> LoadResult:
    """Load ``base_url`` rotating through ``targets``; optional discarded warm-up first."""
    if not targets:
        raise ValueError("no targets")
    if not base_url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError("benchmarks only load loopback servers")
    wrk = wrk_path()
    if warmup > 0:
        _one_load(wrk, base_url, targets, warmup, connections, threads, workdir)
    return _one_load(wrk, base_url, targets, duration, connections, threads, workdir)


def _one_load(
    wrk: str | None,
    base_url: str,
    targets: Sequence[Target],
    duration: float,
    connections: int,
    threads: int,
    workdir: Path,
) -> LoadResult:
    if wrk is None:
        return asyncio.run(_python_load(base_url, targets, duration, connections))
    return _wrk_load(wrk, base_url, targets, duration, connections, threads, workdir)


def _lua_string(value: str) -> str:
    if not _LUA_SAFE.match(value):
        raise ValueError("refusing to put unexpected characters into a Lua script")
    return '"' + value + '"'


def wrk_script(targets: Sequence[Target]) -> str:
    """A wrk Lua script: rotate through the targets; print a JSON summary at the end."""
    header_sets: list[tuple[tuple[str, str], ...]] = []
    index: dict[tuple[tuple[str, str], ...], int] = {}
    rows = []
    for t in targets:
        if t.headers not in index:
            header_sets.append(t.headers)
            index[t.headers] = len(header_sets)
        rows.append(f"{{{_lua_string(t.path)}, {index[t.headers]}}}")
    sets = [
        "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in hs) + "}"
        for hs in header_sets
    ]
    return (
        "-- generated by bench/_harness.py\n"
        "local targets = {\n  " + ",\n  ".join(rows) + "\n}\n"
        "local header_sets = {\n  " + ",\n  ".join(sets) + "\n}\n"
        """
local reqs = {}
local i = 0
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  for k, t in ipairs(targets) do
    reqs[k] = wrk.format("GET", t[1], header_sets[t[2]])
  end
  -- each run (and each thread) starts at another place of the rotation
  i = ((tonumber(args[1]) or 0) + 7919 * wrk.thread:get("id")) % #reqs
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "p50": %.3f, "p90": %.3f, "p99": %.3f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99)))
end
"""
    )


def _wrk_load(
    wrk: str,
    base_url: str,
    targets: Sequence[Target],
    duration: float,
    connections: int,
    threads: int,
    workdir: Path,
) -> LoadResult:
    script = workdir / f"wrk-{secrets.token_hex(4)}.lua"
    script.write_text(wrk_script(targets), encoding="utf-8")
    seconds = max(1, math.ceil(duration))
    threads = max(1, min(threads, connections))
    try:
        result = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                base_url,
                "--",
                str(secrets.randbelow(len(targets))),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    finally:
        script.unlink(missing_ok=True)
    for line in result.stdout.splitlines():
        if line.startswith("WRKJSON "):
            data = json.loads(line.removeprefix("WRKJSON "))
            return LoadResult(
                tool="wrk",
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                errors=int(data["connect"] + data["read"] + data["write"] + data["timeout"]),
                non_2xx=int(data["status"]),
                p50_ms=data["p50"] / 1000,
                p90_ms=data["p90"] / 1000,
                p99_ms=data["p99"] / 1000,
                bytes=int(data["bytes"]),
            )
    raise RuntimeError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")


async def _python_load(
    base_url: str, targets: Sequence[Target], duration: float, connections: int
) -> LoadResult:
    """Fallback: ``connections`` tasks on one keep-alive client, bounded by time."""
    latencies: list[float] = []
    counts = {"errors": 0, "non_2xx": 0, "bytes": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    prepared = [(t.path, t.header_dict()) for t in targets]
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10.0) as client:
        started = time.perf_counter()
        deadline = started + duration

        async def worker(offset: int) -> None:
            k = offset
            while time.perf_counter() < deadline:
                path, headers = prepared[k % len(prepared)]
                k += 1
                t0 = time.perf_counter()
                try:
                    response = await client.get(path, headers=headers)
                except httpx.HTTPError:
                    counts["errors"] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                counts["bytes"] += len(response.content)
                if not 200 <= response.status_code < 300:
                    counts["non_2xx"] += 1

        await asyncio.gather(*(worker(i * 7) for i in range(connections)))
        elapsed = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    return LoadResult(
        tool="python",
        requests=len(latencies),
        seconds=elapsed,
        errors=counts["errors"],
        non_2xx=counts["non_2xx"],
        p50_ms=percentile(ms, 50),
        p90_ms=percentile(ms, 90),
        p99_ms=percentile(ms, 99),
        bytes=counts["bytes"],
    )


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` (0-100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def verdict(value: float, target: float, *, higher_is_better: bool) -> str:
    """``met`` or ``MISSED`` (never an exit status: timings are not tests)."""
    if math.isnan(value):
        return "n/a"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "MISSED"
