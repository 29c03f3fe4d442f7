"""Sharing benchmark (issue #6): cross-town reads and one-stop moves.

Run from the repository root::

    python bench/sharing.py [--residents R] [--duration S] [--rounds K] [--moves N]

Two towns, A (provider, the old town) and B (recipient, the new town),
configured like the demo town 加賀市, in a throw-away database; one service
(granian, 2 workers) serves both parts. In one run, each figure beside the
baseline it is compared with:

- **Cross-town GET versus same-town GET.** An agreement proposed by A and
  accepted by B (status ``active``) lets B's 介護保険課 (``kaigo``) read the
  fields of the purpose ``kaigo.qualification`` of A's residents. Measured:
  ``GET /api/v1/tenants/{A}/residents/{id}`` by B's kaigo staff with
  ``X-Purpose: kaigo.qualification`` and ``X-Agreement: <id>`` (one
  transaction for both towns, the agreement read under its shared lock, an
  audit event in each town). Baseline: the same URLs, the same resident
  rows, read by A's own kaigo staff for the same purpose (the same fields
  come back). wrk, 16 connections, short alternating slices (ABBA).
  Printed: both throughputs, the ratio, p50 latencies at 16 connections and
  at 1 connection, server CPU per request. Target: ratio >= 0.8.
- **One-stop moves per second.** N residents of A with a registered
  ``move_out_domestic`` (prepared in process through the service layer, not
  timed); then ``POST /api/v1/tenants/{B}/residents/one-stop-move-in`` for
  each by B's 市民課 staff (``juki.registration``), ``--in-flight`` requests
  at a time over HTTP. Baseline: N plain registrations
  (``POST /api/v1/tenants/{B}/residents``, a full body with the same kinds of
  fields the move copies) at the same concurrency, in alternating slices.
  Printed: moves/s, registrations/s, the ratio, p50 latencies. No target.

Timings are reported, never asserted: the script exits 0 even when a target
is missed (it says MISSED). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec

import _bench_common as c
import _harness as h
from shared_gov import policy
from shared_gov.auth.issuer import BuiltinIssuer, builtin_issuer
from shared_gov.auth.principal import Principal
from shared_gov.checkdigits import make_individual_number
from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.domains.residents import service
from shared_gov.domains.residents.models import ChangeEvent
from shared_gov.domains.residents.schemas import MoveCreate, ResidentCreate
from shared_gov.logs import configure_logging
from shared_gov.policy import Access, Actor, agreements
from shared_gov.policy.purposes import POLICY_FIELDS, purposes
from shared_gov.settings import Settings
from shared_gov.tenancy.names import quote_ident, tenant_names

PROVIDER = "172031"
"""Town A: provides under the agreement; the old town of the moves."""
RECIPIENT = "172065"
"""Town B: reads under the agreement; the new town of the moves."""
SEED = 172031
READ_DEPARTMENT = "kaigo"
READ_PURPOSE = "kaigo.qualification"
MOVE_DEPARTMENT = "shimin"
MOVE_PURPOSE = "juki.registration"
TARGET_READ_RATIO = 0.8
PREP_BATCH = 100
"""Residents prepared per transaction."""
WRITE_TIMEOUT_S = 30.0

A_ADDRESS = "石川県小松市小馬出町{n}"
B_ADDRESS = "石川県加賀市大聖寺南町{n}"
A_DOMICILE = "石川県小松市小馬出町91"
_FAMILY = (
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
)
_GIVEN = (
    ("陽菜", "ヒナ", "female"),
    ("蓮", "レン", "male"),
    ("結衣", "ユイ", "female"),
    ("悠真", "ユウマ", "male"),
    ("さくら", "サクラ", "female"),
    ("大翔", "ヒロト", "male"),
    ("美咲", "ミサキ", "female"),
    ("湊", "ミナト", "male"),
)
# Number ranges, so that nobody of one group shares a 個人番号 or 住民票コード
# with anybody of another (the seeded residents use the demo generator's).
LEAVERS_BASE = 31_000_000_000
NEWCOMERS_BASE = 32_000_000_000


# --------------------------------------------------------------------------- people


def person(i: int, base: int, *, town_address: str, today: date) -> dict[str, Any]:
    """A JSON body of ``POST …/residents`` (move-in, new household): synthetic values only."""
    family, family_kana = _FAMILY[i % len(_FAMILY)]
    given, given_kana, sex = _GIVEN[(i * 5 + i // len(_FAMILY)) % len(_GIVEN)]
    born = date(1940, 1, 1) + timedelta(days=(i * 37) % 24_000)
    return {
        "event": "move_in_domestic",
        "family_name": family,
        "given_name": given,
        "family_name_kana": family_kana,
        "given_name_kana": given_kana,
        "birth_date": born.isoformat(),
        "sex": sex,
        "address": town_address.format(n=f"{i % 90 + 1}-{i % 7 + 1}"),
        "postal_code": f"{9_230_000 + i % 1000:07d}",
        "individual_number": make_individual_number(f"{base + i:011d}"),
        "juminhyo_code": f"{base + i:011d}",
        "domicile": A_DOMICILE,
        "move_date": (today - timedelta(days=30)).isoformat(),
        "notified_on": (today - timedelta(days=29)).isoformat(),
    }


def newcomer(i: int, today: date) -> dict[str, Any]:
    """The baseline's registration in B: what a move-in from the 転出証明書 carries."""
    body = person(i, NEWCOMERS_BASE, town_address=B_ADDRESS, today=today)
    body["postal_code"] = "9220000"
    body["previous_address"] = A_ADDRESS.format(n=f"{i % 90 + 1}-{i % 7 + 1}")
    body["move_date"] = body["notified_on"] = today.isoformat()
    return body


def move_in_body(resident_id: str, i: int, today: date) -> dict[str, Any]:
    return {
        "from_tenant": PROVIDER,
        "resident_id": resident_id,
        "address": B_ADDRESS.format(n=f"{i % 90 + 1}-{i % 7 + 1}"),
        "postal_code": "9220000",
        "move_date": today.isoformat(),
        "notified_on": today.isoformat(),
    }


def _clerk(code: str) -> Access:
    """市民課 staff of ``code`` registering people, as the demo seeder acts (through Cedar)."""
    principal = Principal("bench-clerk", code, MOVE_DEPARTMENT, frozenset({"staff"}), frozenset())
    actor = Actor(
        tenant=code,
        department=MOVE_DEPARTMENT,
        roles=principal.roles,
        mfa=True,
        purposes=frozenset({MOVE_PURPOSE}),
        staff_id=principal.subject,
    )
    return Access(principal, actor, purposes()[MOVE_PURPOSE], policy.engine(), code)


async def prepare_leavers(db: Database, count: int) -> list[str]:
    """``count`` residents of A, each with a planned 転出 to B a week ahead; their ids.

    In process through the service layer (the same ``register`` and ``move``
    use cases as the API, Cedar included; no audit events), ``PREP_BATCH``
    people per transaction.
    """
    names = tenant_names(PROVIDER, db.settings.role_prefix)
    today = today_jst()
    move_out = MoveCreate(
        event=ChangeEvent.MOVE_OUT_DOMESTIC,
        move_date=today + timedelta(days=7),
        notified_on=today,
        forward_address=B_ADDRESS.format(n="1-1"),
        to_tenant=RECIPIENT,  # only the named new town may take the move one-stop
    )
    ids: list[str] = []
    for start in range(0, count, PREP_BATCH):
        access = _clerk(PROVIDER)
        async with db.tenant(names) as uow:
            for i in range(start, min(count, start + PREP_BATCH)):
                body = person(i, LEAVERS_BASE, town_address=A_ADDRESS, today=today)
                data = msgspec.json.decode(msgspec.json.encode(body), type=ResidentCreate)
                resident = await service.register(uow, access, data)
                await service.move(uow, access, resident.id, move_out, None)
                ids.append(resident.id)
    return ids


# --------------------------------------------------------------------------- set-up


@dataclass(frozen=True, slots=True)
class Prepared:
    residents: list[str]
    """A's seeded residents (the rows both read sides request)."""
    agreement_id: str
    leavers: list[str]
    seed_seconds: float
    prep_seconds: float


async def prepare(settings: Settings, residents: int, leavers: int) -> Prepared:
    db = await c.open_database(settings)
    try:
        await c.onboard(db, c.town_manifest(PROVIDER))
        await c.onboard(db, c.town_manifest(RECIPIENT))
        started = time.perf_counter()
        ids = await c.seed(db, PROVIDER, residents, SEED)
        seed_seconds = time.perf_counter() - started
        now = datetime.now(UTC).replace(microsecond=0)
        proposed = await agreements.propose(
            db,
            agreements.Proposal(
                provider=PROVIDER,
                recipient=RECIPIENT,
                recipient_departments=[READ_DEPARTMENT],
                purposes=[READ_PURPOSE],
                fields=sorted(purposes()[READ_PURPOSE].fields),
                actions=["read"],
                legal_basis="介護保険法 第203条 (資料の提供等)",
                valid_from=now - timedelta(hours=1),
                valid_until=now + timedelta(days=365),
            ),
            "bench-admin-a",
        )
        agreement_id = proposed["agreement_id"]
        accepted = await agreements.transition(
            db, agreement_id, RECIPIENT, "accept", "bench-admin-b"
        )
        if accepted["status"] != "active":
            raise RuntimeError(f"the agreement is {accepted['status']} after accepting")
        started = time.perf_counter()
        moving = await prepare_leavers(db, leavers) if leavers else []
        prep_seconds = time.perf_counter() - started
    finally:
        await db.close()
    return Prepared(ids, str(agreement_id), moving, seed_seconds, prep_seconds)


def staff_headers(
    issuer: BuiltinIssuer,
    code: str,
    department: str,
    purpose: str,
    agreement_id: str | None = None,
) -> tuple[tuple[str, str], ...]:
    """Like ``_bench_common.staff_headers``, for any department and purpose (MFA, staff)."""
    token = issuer.mint(
        subject=f"bench-{code}-{department}",
        tenant=code,
        department=department,
        roles=["staff"],
        mfa=True,
    )
    headers = (("Authorization", "Bearer " + token), ("X-Purpose", purpose))
    return (*headers, ("X-Agreement", agreement_id)) if agreement_id else headers


async def town_rows(url: str, code: str, role_prefix: str) -> dict[str, int]:
    """Residents of ``code`` by state (a check that the moves did what they said)."""
    schema = quote_ident(tenant_names(code, role_prefix).schema)
    conn = await asyncpg.connect(url, timeout=30)
    try:
        rows = await conn.fetch(
            f"SELECT state, count(*) AS n FROM {schema}.residents GROUP BY state"
        )
    finally:
        await conn.close()
    return {r["state"]: int(r["n"]) for r in rows}


# --------------------------------------------------------------------------- reads


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


def postgres_cpu(url: str) -> dict[int, float] | None:
    """CPU seconds so far of each PostgreSQL backend connected to the run's database.

    None unless the server runs on this machine (its backends readable in /proc).
    """
    pids = asyncio.run(_backend_pids(url))
    out: dict[int, float] = {}
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                return None
        except OSError:
            continue
        out[pid] = c.cpu_seconds([pid])
    return out if out or not pids else None


@dataclass(slots=True)
class ReadSlices:
    """Per-round load results of both sides, with CPU per request of server and PostgreSQL."""

    cross: list[h.LoadResult] = dataclasses.field(default_factory=list)
    same: list[h.LoadResult] = dataclasses.field(default_factory=list)
    cpu_us: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {"cross": [], "same": []}
    )
    pg_us: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {"cross": [], "same": []}
    )

    @property
    def ratios(self) -> list[float]:
        return [
            x.rps / y.rps if y.rps else float("nan")
            for x, y in zip(self.cross, self.same, strict=True)
        ]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in (*self.cross, *self.same))


def compare_reads(
    args: argparse.Namespace,
    bdb: h.BenchDatabase,
    base_url: str,
    sides: dict[str, Sequence[h.Target]],
) -> ReadSlices:
    """Short alternating slices, order swapped every round (ABBA), like
    ``_bench_common.compare_throughput``; besides the server's CPU per request,
    the PostgreSQL backends' (those that were recycled during a slice are
    missed, so it is a slight undercount; local servers only)."""
    out = ReadSlices()
    pids = c.server_pids(base_url)
    for r in range(1, args.rounds + 1):
        order = ("cross", "same") if r % 2 else ("same", "cross")
        for key in order:
            pg_before = postgres_cpu(bdb.url)
            before = c.cpu_seconds(pids)
            result = h.run_load(
                base_url,
                sides[key],
                duration=args.duration,
                connections=args.connections,
                workdir=bdb.workdir,
            )
            used = c.cpu_seconds(pids) - before
            pg_after = postgres_cpu(bdb.url)
            n = result.requests or 1
            per_request = used / n * 1e6
            pg_note = ""
            if pg_before is not None and pg_after is not None:
                pg_used = sum(v - pg_before.get(pid, 0.0) for pid, v in pg_after.items())
                out.pg_us[key].append(pg_used / n * 1e6)
                pg_note = f", PostgreSQL {pg_used / n * 1e6:5.0f}"
            (out.cross if key == "cross" else out.same).append(result)
            out.cpu_us[key].append(per_request)
            print(
                f"  round {r}/{args.rounds} {SIDE_LABELS[key]:<24} {result.brief()}  "
                f"CPU/req: server {per_request:5.0f}{pg_note} µs",
                flush=True,
            )
    return out


SIDE_LABELS = {"cross": "cross-town (B reads A)", "same": "same-town (A reads A)"}


@dataclass(slots=True)
class ReadResult:
    slices: ReadSlices
    latency_cross: list[h.LoadResult]
    latency_same: list[h.LoadResult]
    body_bytes: dict[str, int]
    fields: int


def measure_reads(
    args: argparse.Namespace,
    bdb: h.BenchDatabase,
    base_url: str,
    same: Sequence[h.Target],
    cross: Sequence[h.Target],
) -> ReadResult:
    same_body = c.check_targets(base_url, same)
    cross_body = c.check_targets(base_url, cross)
    if same_body.keys() != cross_body.keys() or same_body.get("withheld") != cross_body.get(
        "withheld"
    ):
        raise RuntimeError(
            "cross-town and same-town reads return different fields: "
            f"{sorted(same_body.keys() ^ cross_body.keys())}, withheld "
            f"{same_body.get('withheld')} vs {cross_body.get('withheld')}"
        )
    sizes = {
        "same": len(json.dumps(same_body, ensure_ascii=False).encode()),
        "cross": len(json.dumps(cross_body, ensure_ascii=False).encode()),
    }
    shown = sum(1 for k in same_body if k in POLICY_FIELDS)
    sides = {"cross": cross, "same": same}
    for key in ("cross", "same"):
        c.warm_up(
            SIDE_LABELS[key],
            base_url,
            sides[key],
            connections=args.connections,
            min_seconds=args.warmup,
            max_seconds=60.0,
            workdir=bdb.workdir,
        )
    slices = compare_reads(args, bdb, base_url, sides)
    # Latency without queueing: one connection, ABBA.
    lat: dict[str, list[h.LoadResult]] = {"cross": [], "same": []}
    for r in range(2):
        for key in ("cross", "same") if r % 2 == 0 else ("same", "cross"):
            result = h.run_load(
                base_url, sides[key], duration=args.duration, connections=1, workdir=bdb.workdir
            )
            lat[key].append(result)
            print(f"  latency c=1 {SIDE_LABELS[key]:<24} {result.brief()}", flush=True)
    return ReadResult(slices, lat["cross"], lat["same"], sizes, shown)


# --------------------------------------------------------------------------- moves


@dataclass(slots=True)
class WriteSlice:
    label: str
    count: int
    ok: int
    seconds: float
    latencies_ms: list[float]
    failures: dict[str, int]

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else float("nan")


async def _post_all(
    client: httpx.AsyncClient,
    label: str,
    requests: Sequence[tuple[str, dict[str, Any]]],
    headers: dict[str, str],
    in_flight: int,
) -> WriteSlice:
    """POST every (path, body), ``in_flight`` at a time; 201s counted as done."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    failures: dict[str, int] = {}

    async def worker() -> None:
        while queue:
            path, body = queue.pop()
            t0 = time.perf_counter()
            try:
                response = await client.post(path, json=body, headers=headers)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
                failures[key] = failures.get(key, 0) + 1
                continue
            if response.status_code == 201:
                latencies.append((time.perf_counter() - t0) * 1000)
            else:
                key = f"{response.status_code} {response.text[:160]}"
                failures[key] = failures.get(key, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(in_flight, len(requests)))))
    seconds = time.perf_counter() - started
    return WriteSlice(label, len(requests), len(latencies), seconds, latencies, failures)


@dataclass(slots=True)
class MoveResult:
    moves: list[WriteSlice]
    registrations: list[WriteSlice]
    rows_a: dict[str, int]
    rows_b: dict[str, int]

    @property
    def ratios(self) -> list[float]:
        return [m.rate / r.rate for m, r in zip(self.moves, self.registrations, strict=True)]


async def measure_moves(
    args: argparse.Namespace,
    base_url: str,
    leavers: Sequence[str],
    clerk_b: dict[str, str],
) -> tuple[list[WriteSlice], list[WriteSlice]]:
    today = today_jst()
    moves_path = f"/api/v1/tenants/{RECIPIENT}/residents/one-stop-move-in"
    register_path = f"/api/v1/tenants/{RECIPIENT}/residents"
    moves = [(moves_path, move_in_body(rid, i, today)) for i, rid in enumerate(leavers)]
    registrations = [(register_path, newcomer(i, today)) for i in range(len(leavers))]
    warm = args.write_warmup
    limits = httpx.Limits(max_connections=args.in_flight, max_keepalive_connections=args.in_flight)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=WRITE_TIMEOUT_S
    ) as client:
        # One of each first, to fail fast with the server's answer.
        for label, first in (("one-stop move", moves[0]), ("registration", registrations[0])):
            response = await client.post(first[0], json=first[1], headers=clerk_b)
            if response.status_code != 201:
                raise RuntimeError(f"{label}: {response.status_code} {response.text[:500]}")
        # Warm-up (not timed): per-worker caches of both towns, the standing agreement.
        for label, items in (
            ("moves", moves[1 : 1 + warm]),
            ("registrations", registrations[1 : 1 + warm]),
        ):
            done = await _post_all(client, label, items, clerk_b, args.in_flight)
            print(f"  warm-up {label}: {done.ok} in {done.seconds:.1f} s", flush=True)
        timed_moves, timed_regs = moves[1 + warm :], registrations[1 + warm :]
        rounds = args.move_rounds
        size = len(timed_moves) // rounds
        result: dict[str, list[WriteSlice]] = {"moves": [], "registrations": []}
        for r in range(rounds):
            chunk = slice(r * size, (r + 1) * size)
            order = (
                (("moves", timed_moves[chunk]), ("registrations", timed_regs[chunk]))
                if r % 2 == 0
                else (("registrations", timed_regs[chunk]), ("moves", timed_moves[chunk]))
            )
            for label, items in order:
                done = await _post_all(client, label, items, clerk_b, args.in_flight)
                result[label].append(done)
                flags = f"  [failed: {done.failures}]" if done.failures else ""
                print(
                    f"  round {r + 1}/{rounds} {label:<14} {done.ok:5d} in {done.seconds:5.2f} s "
                    f"= {done.rate:6.1f}/s  p50 {h.percentile(done.latencies_ms, 50):6.1f} ms  "
                    f"p90 {h.percentile(done.latencies_ms, 90):6.1f} ms{flags}",
                    flush=True,
                )
    return result["moves"], result["registrations"]


# --------------------------------------------------------------------------- report


def report_reads(args: argparse.Namespace, r: ReadResult, used_wrk: bool) -> None:
    sl = r.slices
    indicative = "" if used_wrk else " (indicative: no wrk)"
    print()
    print(
        f"== resident GET, cross-town vs same-town, {args.residents} residents of {PROVIDER}, "
        f"c={args.connections}, {args.rounds} round(s) =="
    )
    c.row("what", "measured", "target", "")
    c.row(
        f"cross-town: {RECIPIENT} {READ_DEPARTMENT} staff + X-Agreement (req/s)",
        f"{h.median([x.rps for x in sl.cross]):.0f}",
    )
    c.row(
        f"baseline: same-town, {PROVIDER} {READ_DEPARTMENT} staff (req/s)",
        f"{h.median([x.rps for x in sl.same]):.0f}",
    )
    ratio = h.median(sl.ratios)
    c.row(
        "  throughput ratio cross-town / same-town",
        f"{ratio:.2f}",
        f">= {TARGET_READ_RATIO}",
        h.verdict(ratio, TARGET_READ_RATIO, higher_is_better=True) + indicative,
    )
    c.row(
        f"  p50 latency at c={args.connections}, cross / same (ms)",
        f"{h.median([x.p50_ms for x in sl.cross]):.2f}/{h.median([x.p50_ms for x in sl.same]):.2f}",
    )
    c.row(
        "  p50 latency at c=1, cross / same (ms)",
        f"{h.median([x.p50_ms for x in r.latency_cross]):.2f}/"
        f"{h.median([x.p50_ms for x in r.latency_same]):.2f}",
    )
    for what, values in (("server", sl.cpu_us), ("PostgreSQL", sl.pg_us)):
        if not values["cross"] or not values["same"]:
            continue
        cross_us, same_us = h.median(values["cross"]), h.median(values["same"])
        c.row(
            f"  {what} CPU per request, cross / same (µs; ratio)",
            f"{cross_us:.0f}/{same_us:.0f}; {cross_us / same_us:.2f}",
        )
    if sl.pg_us["cross"] and sl.pg_us["same"]:
        # On a CPU-bound machine throughput follows total CPU per request, and
        # CPU per request moves much less with the neighbours' load than req/s.
        total = {k: h.median(sl.cpu_us[k]) + h.median(sl.pg_us[k]) for k in ("cross", "same")}
        c.row(
            "  CPU-based ratio: (server + PostgreSQL) same / cross (context)",
            f"{total['same'] / total['cross']:.2f}",
        )
    print("per-round throughput ratios: " + ", ".join(f"{x:.3f}" for x in sl.ratios))
    print(
        f"bodies: cross-town {r.body_bytes['cross']} B, same-town {r.body_bytes['same']} B "
        f"(the same {r.fields} personal fields; only the wording of withheld_reasons differs)"
    )
    if not sl.ok or not all(x.ok for x in (*r.latency_cross, *r.latency_same)):
        print("WARNING: errors or non-2xx responses during the load runs")


def report_moves(args: argparse.Namespace, r: MoveResult) -> None:
    moves_ok = sum(s.ok for s in r.moves)
    regs_ok = sum(s.ok for s in r.registrations)
    moves_s = sum(s.seconds for s in r.moves)
    regs_s = sum(s.seconds for s in r.registrations)
    print()
    print(
        f"== one-stop moves {PROVIDER} -> {RECIPIENT} vs plain registrations in {RECIPIENT}, "
        f"{args.in_flight} in flight, {args.move_rounds} alternating slice(s) each =="
    )
    c.row("what", "measured", "target", "")
    c.row(f"one-stop moves ({moves_ok} timed), per second", f"{moves_ok / moves_s:.1f}")
    c.row(f"baseline: registrations ({regs_ok} timed), per second", f"{regs_ok / regs_s:.1f}")
    ratio = h.median(r.ratios)
    c.row("  ratio moves / registrations (median of slices)", f"{ratio:.2f}", "none", "")
    moves_lat = [x for s in r.moves for x in s.latencies_ms]
    regs_lat = [x for s in r.registrations for x in s.latencies_ms]
    c.row(
        "  p50 latency, move / registration (ms)",
        f"{h.percentile(moves_lat, 50):.1f}/{h.percentile(regs_lat, 50):.1f}",
    )
    c.row(
        "  p90 latency, move / registration (ms)",
        f"{h.percentile(moves_lat, 90):.1f}/{h.percentile(regs_lat, 90):.1f}",
    )
    print("per-slice ratios: " + ", ".join(f"{x:.3f}" for x in r.ratios))
    print(f"rows at the end: {PROVIDER} {r.rows_a}, {RECIPIENT} {r.rows_b}")
    failures: dict[str, int] = {}
    for s in (*r.moves, *r.registrations):
        for k, v in s.failures.items():
            failures[k] = failures.get(k, 0) + v
    if failures:
        print(f"WARNING: failed requests: {failures}")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--residents", type=int, default=200, help="residents of A read")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per load slice")
    parser.add_argument("--warmup", type=float, default=3.0, help="minimum warm-up seconds")
    parser.add_argument("--rounds", type=int, default=8, help="alternating read rounds (ABBA)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--moves", type=int, default=800, help="timed one-stop moves (and regs)")
    parser.add_argument(
        "--move-rounds", type=int, default=4, help="alternating slices of moves / registrations"
    )
    parser.add_argument("--in-flight", type=int, default=16, help="concurrent write requests")
    parser.add_argument(
        "--write-warmup", type=int, default=32, help="untimed moves and registrations first"
    )
    parser.add_argument("--skip-reads", action="store_true", help="no cross-town GET comparison")
    parser.add_argument("--skip-moves", action="store_true", help="no one-stop moves")
    args = parser.parse_args(argv)
    if (
        min(args.residents, args.rounds, args.connections, args.in_flight, args.move_rounds) < 1
        or args.duration <= 0
        or args.write_warmup < 0
        or args.moves < args.move_rounds
    ):
        parser.error("counts and durations must be positive, --moves at least --move-rounds")
    configure_logging("warning")
    wrk = h.wrk_path()
    if wrk is None and not args.skip_reads:
        print(h.WRK_MISSING, flush=True)
    print(
        f"sharing benchmark: code {h.revision()}, load tool {'wrk' if wrk else 'python fallback'}, "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    leavers = 0 if args.skip_moves else 1 + args.write_warmup + args.moves
    reads: ReadResult | None = None
    moved: MoveResult | None = None
    with h.bench_database() as bdb:
        port = h.free_port()
        issuer_url = f"http://{h.LOOPBACK}:{port}"
        settings = c.run_settings(bdb, issuer_url)
        print(
            f"set-up: towns {PROVIDER} (A) and {RECIPIENT} (B), {args.residents} residents in A, "
            f"an agreement A -> B ({READ_DEPARTMENT}, {READ_PURPOSE}), {leavers} residents of A "
            "with a planned move-out ...",
            flush=True,
        )
        prep = asyncio.run(prepare(settings, args.residents, leavers))
        print(
            f"  seeded in {prep.seed_seconds:.1f} s, move-outs prepared in "
            f"{prep.prep_seconds:.1f} s",
            flush=True,
        )
        issuer = builtin_issuer(bdb.data_dir, issuer_url, settings.audience)
        same = c.resident_targets(
            PROVIDER, prep.residents, staff_headers(issuer, PROVIDER, READ_DEPARTMENT, READ_PURPOSE)
        )
        cross = c.resident_targets(
            PROVIDER,
            prep.residents,
            staff_headers(issuer, RECIPIENT, READ_DEPARTMENT, READ_PURPOSE, prep.agreement_id),
        )
        clerk_b = dict(staff_headers(issuer, RECIPIENT, MOVE_DEPARTMENT, MOVE_PURPOSE))
        env = bdb.env(
            SHARED_GOV_ISSUER=issuer_url, SHARED_GOV_ACCESS_LOG=None, SHARED_GOV_LOG_LEVEL=None
        )
        log_path = bdb.workdir / "service.log"
        load_before = os.getloadavg()[0]
        with h.serve(c.SERVICE, env, log_path=log_path, port=port, working_dir=h.ROOT) as url:
            if not args.skip_reads:
                print("reads: warm-up, then alternating slices ...", flush=True)
                reads = measure_reads(args, bdb, url, same, cross)
            if not args.skip_moves:
                print("moves: one-stop moves and plain registrations into B ...", flush=True)
                moves, registrations = asyncio.run(measure_moves(args, url, prep.leavers, clerk_b))
                moved = MoveResult(
                    moves,
                    registrations,
                    asyncio.run(town_rows(bdb.url, PROVIDER, bdb.role_prefix)),
                    asyncio.run(town_rows(bdb.url, RECIPIENT, bdb.role_prefix)),
                )
        load_after = os.getloadavg()[0]
        notes = c.scan_service_log(log_path)
    if reads is not None:
        report_reads(args, reads, wrk is not None)
    if moved is not None:
        report_moves(args, moved)
    for note in notes:
        print(note)
    print(
        f"load average (1 min) before / after the HTTP runs: {load_before:.2f} / {load_after:.2f}"
    )
    print("Timings are context, not tests: this script exits 0 whatever the verdicts.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
