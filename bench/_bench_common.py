"""Helpers shared by ``bench/policy.py`` and ``bench/crypto.py``.

Towns, seeding, tokens and "service versus baseline" HTTP comparisons on top
of :mod:`_harness` (which owns the database, the servers and the load
generator). Like the harness, nothing here asserts a timing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

import _harness as h
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.crypto.keyring import keyring_from_settings
from shared_gov.db import Database
from shared_gov.demo.loader import seed_town
from shared_gov.domains.residents import repository
from shared_gov.settings import Settings, load_settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import Manifest, parse_manifest
from shared_gov.tenancy.names import tenant_names

SERVICE = "shared_gov.app:create_app"
TOWN_TEMPLATE = h.ROOT / "tenants" / "kaga.toml"
FALLBACK_TOWN: dict[str, Any] = {
    "name": "加賀市",
    "name_kana": "かがし",
    "prefecture": "石川県",
    "population": 63000,
    "departments": [
        {"code": "shimin", "name": "市民課", "purposes": ["juki.certificate", "juki.registration"]}
    ],
}
STAFF_DEPARTMENT = "shimin"
PURPOSE = "juki.registration"
"""市民課 staff doing 住民基本台帳事務: covers all 18 personal fields."""
WARM_PASSES = 3


# --------------------------------------------------------------------------- towns


def town_manifest(code: str, *, population: int | None = None) -> Manifest:
    """A town configured like the demo town 加賀市 (departments and their purposes).

    Several benchmark towns may share the template's name: only the code is
    unique in the catalog, and identical names keep the seeded data alike.
    """
    if TOWN_TEMPLATE.exists():
        with TOWN_TEMPLATE.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
    else:
        data = dict(FALLBACK_TOWN)
    data["code"] = code
    if population is not None:
        data["population"] = population
    return parse_manifest(data)


def run_settings(bdb: h.BenchDatabase, issuer_url: str) -> Settings:
    """This process's settings for the run (what the servers get through ``bdb.env``)."""
    return dataclasses.replace(
        load_settings(),
        env="dev",
        database_url=bdb.url,
        role_prefix=bdb.role_prefix,
        data_dir=bdb.data_dir,
        issuer=issuer_url,
        log_level="warning",
    )


async def open_database(settings: Settings) -> Database:
    assert settings.database_url
    db = Database(settings.database_url, settings, keyring_from_settings(settings))
    await db.open()
    await tenancy.migrate_catalog(db)
    return db


async def onboard(db: Database, manifest: Manifest) -> None:
    result = await tenancy.onboard(db, manifest)
    if result.outcome != "created":
        raise RuntimeError(f"onboarding {manifest.code}: {result.outcome}")


async def seed(db: Database, code: str, residents: int, seed_value: int) -> list[str]:
    """Register ``residents`` synthetic people through the service; return their ids."""
    await seed_town(db, code, residents, seed=seed_value, progress_console=Console(quiet=True))
    async with db.tenant(tenant_names(code, db.settings.role_prefix)) as uow:
        ids = await repository.sample_ids(uow, residents)
    if not ids:
        raise RuntimeError(f"seeding {code} produced no residents")
    return ids


def staff_headers(issuer: BuiltinIssuer, code: str) -> tuple[tuple[str, str], ...]:
    """A 市民課 staff token with two-factor authentication, stating juki.registration."""
    token = issuer.mint(
        subject=f"bench-{code}",
        tenant=code,
        department=STAFF_DEPARTMENT,
        roles=["staff"],
        mfa=True,
    )
    return (("Authorization", "Bearer " + token), ("X-Purpose", PURPOSE))


def resident_targets(
    code: str, ids: Sequence[str], headers: tuple[tuple[str, str], ...]
) -> list[h.Target]:
    return [h.Target(f"/api/v1/tenants/{code}/residents/{rid}", headers) for rid in ids]


# --------------------------------------------------------------------------- HTTP


def check_targets(base_url: str, targets: Sequence[h.Target]) -> dict[str, Any]:
    """Fail fast unless the first and last targets answer 200; returns the first body."""
    bodies: list[dict[str, Any]] = []
    for t in (targets[0], targets[-1]):
        response = httpx.get(base_url + t.path, headers=t.header_dict(), timeout=10.0)
        if response.status_code != 200:
            raise RuntimeError(f"GET {t.path} -> {response.status_code}: {response.text[:300]}")
        bodies.append(response.json())
    return bodies[0]


def warm_up(
    label: str,
    base_url: str,
    targets: Sequence[h.Target],
    *,
    connections: int,
    min_seconds: float,
    max_seconds: float,
    workdir: Any,
) -> None:
    """Load until every path was requested a few times (per-process caches fill per worker)."""
    done, spent = 0, 0.0
    while spent < min_seconds or (done < WARM_PASSES * len(targets) and spent < max_seconds):
        chunk = h.run_load(
            base_url,
            targets,
            duration=min(10.0, max(1.0, min_seconds)),
            connections=connections,
            workdir=workdir,
        )
        done, spent = done + chunk.requests, spent + chunk.seconds
        if chunk.requests == 0:
            break
    print(f"  warm-up {label}: {done} requests in {spent:.0f} s", flush=True)


@dataclass(frozen=True, slots=True)
class Side:
    label: str
    base_url: str
    targets: Sequence[h.Target]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Per-round load results of a measured side and its baseline.

    Beside throughput, the CPU time the server's processes (granian and its
    workers, not PostgreSQL) used per request during each slice: on a machine
    shared with other work, CPU per request moves much less than req/s.
    """

    measured: list[h.LoadResult]
    baseline: list[h.LoadResult]
    measured_cpu_us: list[float]
    baseline_cpu_us: list[float]

    @property
    def ratios(self) -> list[float]:
        return [
            m.rps / b.rps if b.rps else float("nan")
            for m, b in zip(self.measured, self.baseline, strict=True)
        ]

    @property
    def ratio(self) -> float:
        return h.median(self.ratios)

    @property
    def cpu_ratio(self) -> float:
        """Median of per-round (measured CPU/request ÷ baseline CPU/request)."""
        return h.median(
            [m / b for m, b in zip(self.measured_cpu_us, self.baseline_cpu_us, strict=True) if b]
        )

    @property
    def ok(self) -> bool:
        return all(r.ok for r in (*self.measured, *self.baseline))


def server_pids(base_url: str) -> list[int]:
    """The granian processes (main and workers) serving ``base_url``, found through /proc."""
    port = base_url.rsplit(":", 1)[1].encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--port" in argv and port in argv and any(a.endswith(b"granian") for a in argv[:2]):
            pids.append(int(entry.name))
    return pids


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds the processes have used so far (0 for vanished ones)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICK


def compare_throughput(
    measured: Side,
    baseline: Side,
    *,
    rounds: int,
    duration: float,
    connections: int,
    workdir: Any,
) -> Comparison:
    """Short alternating slices, order swapped every round (ABBA), so drift hits both sides."""
    results: dict[str, list[h.LoadResult]] = {"m": [], "b": []}
    cpu: dict[str, list[float]] = {"m": [], "b": []}
    pids = {id(side): server_pids(side.base_url) for side in (measured, baseline)}
    for r in range(1, rounds + 1):
        order = (measured, baseline) if r % 2 else (baseline, measured)
        for side in order:
            key = "m" if side is measured else "b"
            before = cpu_seconds(pids[id(side)])
            result = h.run_load(
                side.base_url,
                side.targets,
                duration=duration,
                connections=connections,
                workdir=workdir,
            )
            used = cpu_seconds(pids[id(side)]) - before
            per_request = used / result.requests * 1e6 if result.requests else float("nan")
            results[key].append(result)
            cpu[key].append(per_request)
            print(
                f"  round {r}/{rounds} {side.label:<26} {result.brief()}  "
                f"server CPU {per_request:5.0f} µs/req",
                flush=True,
            )
    return Comparison(results["m"], results["b"], cpu["m"], cpu["b"])


def scan_service_log(path: Path) -> list[str]:
    """Statuses >= 300 and warning/error events in the service's JSON log."""
    statuses: Counter[int] = Counter()
    events: Counter[str] = Counter()
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        status = entry.get("status")
        if entry.get("event") == "request" and isinstance(status, int) and status >= 300:
            statuses[status] += 1
        if entry.get("level") in ("warning", "error", "critical"):
            events[f"{entry.get('level')} {entry.get('event')}"] += 1
    notes = []
    if statuses:
        notes.append(
            "service log, responses >= 300: "
            + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
        )
    if events:
        notes.append(
            "service log, warnings/errors: "
            + ", ".join(f"{k}: {v}" for k, v in events.most_common(5))
        )
    return notes


def log_problems(log_path: Path, limit: int = 8) -> str:
    """A few server log lines that are not a 200 access line (what went wrong)."""
    try:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    odd = [ln for ln in lines if '"status": 200' not in ln and '"status":200' not in ln]
    shown = odd[:limit]
    more = f"\n... {len(odd) - limit} more" if len(odd) > limit else ""
    return "\n".join(shown) + more if shown else "(nothing but 200s)"


# --------------------------------------------------------------------------- timing/report


def time_samples(
    fn: Callable[[], object], samples: int, *, clock: Callable[[], float]
) -> list[float]:
    """Wall seconds of ``samples`` separate calls of ``fn``."""
    out: list[float] = []
    for _ in range(samples):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def spread(values: Sequence[float]) -> str:
    """min/median/max, for the log (the median is what is reported)."""
    if not values:
        return "n/a"
    return f"min {min(values):.3g} / median {statistics.median(values):.3g} / max {max(values):.3g}"


def row(what: str, value: str, target: str = "", verdict: str = "") -> None:
    print(f"{what:<64} {value:>14}   {target:<10} {verdict}")


def ratio_row(what: str, value: float, target: float, *, higher_is_better: bool) -> None:
    sign = ">=" if higher_is_better else "<="
    row(
        what,
        f"{value:.2f}",
        f"{sign} {target}",
        h.verdict(value, target, higher_is_better=higher_is_better),
    )
