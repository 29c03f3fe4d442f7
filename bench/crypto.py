"""Field-level encryption benchmark (issue #4): reads, bulk import, key rotation.

Run from the repository root::

    python bench/crypto.py [--rows N] [--residents R] [--duration S] [--rounds K]

In one run, each figure beside the baseline it is compared with:

- resident GET throughput of the service (one AES-GCM envelope decrypted per
  personal field) versus the same service storing the same fields as plaintext bytes
  (``bench/_plaintext_app.py``: ``TownKeys.encrypt``/``decrypt`` replaced by
  identity functions, so binding, policy and JSON are identical). Each server
  reads a town seeded in its own format with the same synthetic people; both
  served by granian with 2 workers and loaded by wrk in alternating slices.
  Target: ratio >= 0.85.
- import of N (default 100,000) residents with
  :func:`shared_gov.domains.residents.transfer.import_csv` (one transaction:
  validation, encryption, blind indexes, COPY of households, residents and
  one history entry each) versus a plain ``COPY ... (FORMAT csv)`` of the
  same CSV into a plaintext table with the residents' columns (text instead
  of bytea, an index for each blind index). Targets: import speed >= 0.3 x
  COPY speed, and < 15 s for 100,000 rows. ``--import-runs K`` imports K
  times (into fresh towns, a COPY baseline before and after each) and
  reports medians; ``--import-workers N`` sets import_csv's worker
  processes (default: its own choice). Always printed: the CPU seconds of
  this process, the import's worker processes and the PostgreSQL backends,
  and what the import's Python phases cost on one core (checking, sealing);
  with ``--profile`` or a missed time target, cProfile of an import of
  ``--profile-rows`` rows (this process only).
- DEK rotation of the ``address`` column over those rows
  (:func:`shared_gov.keys.rotation.rotate_dek`, grace 0 s) in rows/s,
  versus re-encrypting the same number of values in memory only (the floor
  the database work adds to); then of ``resident_history.snapshot`` (one
  entry per row, through the town's ``reseal_envelopes``). For both, the
  share of the rotation spent in its verification pass (every row on the
  new version decrypted once more before the old key is retired).

Timings are reported, never asserted: the script exits 0 even when a target
is missed (it says MISSED).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import csv
import gc
import io
import json
import os
import pstats
import resource
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import asyncpg

import _bench_common as c
import _harness as h
from _plaintext_app import plaintext_fields
from shared_gov.auth.issuer import builtin_issuer
from shared_gov.checkdigits import make_individual_number, make_serial
from shared_gov.db import Database
from shared_gov.domains.residents import import_pool, transfer
from shared_gov.domains.residents import repository as repo
from shared_gov.keys import rotation
from shared_gov.logs import configure_logging
from shared_gov.settings import Settings
from shared_gov.tenancy.names import quote_ident, tenant_names

ENCRYPTED_TOWN = "172065"
PLAINTEXT_TOWN = "172031"
IMPORT_TOWN = "011002"
PROFILE_TOWN = "011011"
MORE_IMPORT_TOWNS = ("012025", "012033", "012041", "012050", "012068")
"""Fresh towns for ``--import-runs`` beyond the first."""
SEED = 172065
"""Both HTTP towns get the same synthetic people."""
PLAINTEXT = "_plaintext_app:create_app"
ROTATED_COLUMN = "address"
HISTORY_COLUMN = "resident_history.snapshot"

TARGET_HTTP_RATIO = 0.85
TARGET_IMPORT_VS_COPY = 0.3
TARGET_IMPORT_SECONDS = 15.0
TARGET_IMPORT_ROWS = 100_000
"""The time target is stated for this many rows."""
ROTATION_TIMEOUT_S = 1800.0

PLAIN_SCHEMA = "bench_plain"
PLAIN_TABLE = f"{PLAIN_SCHEMA}.residents_import"
_DATE_COLUMNS = frozenset(
    {"birth_date", "resident_since", "address_since", "notified_on", "removed_on"}
)


# --------------------------------------------------------------------------- data


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
    ("陽菜", "ヒナ"),
    ("蓮", "レン"),
    ("結衣", "ユイ"),
    ("悠真", "ユウマ"),
    ("さくら", "サクラ"),
    ("大翔", "ヒロト"),
    ("美咲", "ミサキ"),
    ("湊", "ミナト"),
)
_MEMBERS = ("世帯主", "妻", "子")


def import_csv_text(rows: int, offset: int = 0) -> str:
    """A valid register in the import layout: households of three, every id given.

    Like ``tests/domains/residents/test_transfer.py``'s ``_row``, with more variety: names,
    birth dates, addresses and phone numbers differ between households.
    ``offset`` (a multiple of three) continues a register: later people,
    households and numbers.
    """
    out: list[list[str]] = []
    born = date(1940, 1, 1)
    for i in range(offset, offset + rows):
        hh, member = divmod(i, len(_MEMBERS))
        family, family_kana = _FAMILY[hh % len(_FAMILY)]
        given, given_kana = _GIVEN[(i * 5) % len(_GIVEN)]
        values = {
            "id": str(uuid.uuid4()),
            "atena_no": make_serial(1 + i),
            "household_no": make_serial(1 + hh),
            "relationship": _MEMBERS[member],
            "family_name": family,
            "given_name": given,
            "family_name_kana": family_kana,
            "given_name_kana": given_kana,
            "birth_date": (born + timedelta(days=(i * 37) % 24_000)).isoformat(),
            "sex": "1" if member == 0 else "2" if member == 1 else str(1 + i % 2),
            "address": f"石川県加賀市大聖寺{hh % 9 + 1}丁目{hh % 30 + 1}番{hh % 17 + 1}号",
            "postal_code": f"922{hh % 10_000:04d}",
            "individual_number": make_individual_number(f"{55_000_000_000 + i:011d}"),
            "juminhyo_code": f"{66_000_000_000 + i:011d}",
            "phone": f"0761-{70 + hh % 30}-{hh % 10_000:04d}" if member == 0 else "",
            "former_surname": "",
            "domicile": "石川県加賀市大聖寺八間道" if member == 0 else "",
            "previous_address": "",
            "forward_address": "",
            "resident_type": "1",
            "state": "active",
            "resident_since": "1980-04-01",
            "address_since": "1990-05-01",
            "notified_on": "1990-05-02",
            "removed_on": "",
        }
        out.append([values[col] for col in transfer.HEADER])
    return transfer.to_csv_text(out)


def _plain_ddl() -> list[str]:
    cols = []
    for name in transfer.HEADER:
        if name == "id":
            cols.append("id uuid PRIMARY KEY")
        elif name == "atena_no":
            cols.append("atena_no text NOT NULL UNIQUE")
        else:
            cols.append(f"{name} {'date' if name in _DATE_COLUMNS else 'text'}")
    cols += [
        "version integer NOT NULL DEFAULT 1",
        "history_no integer NOT NULL DEFAULT 1",
        "support_measure boolean NOT NULL DEFAULT false",
        "created_at timestamptz NOT NULL DEFAULT now()",
        "updated_at timestamptz NOT NULL DEFAULT now()",
    ]
    # The residents table has a blind index for each of these searches, and
    # an index on household_no: the plaintext table gets the same indexes.
    return [
        f"DROP SCHEMA IF EXISTS {PLAIN_SCHEMA} CASCADE",
        f"CREATE SCHEMA {PLAIN_SCHEMA}",
        f"CREATE TABLE {PLAIN_TABLE} ({', '.join(cols)})",
        f"CREATE INDEX ON {PLAIN_TABLE} (household_no)",
        f"CREATE INDEX ON {PLAIN_TABLE} (individual_number)",
        f"CREATE INDEX ON {PLAIN_TABLE} (juminhyo_code)",
        f"CREATE INDEX ON {PLAIN_TABLE} (phone)",
        f"CREATE INDEX ON {PLAIN_TABLE} (family_name_kana, birth_date)",
    ]


async def copy_baseline(url: str, data: bytes) -> float:
    """Seconds to COPY the CSV into the (emptied) plaintext table."""
    return (await copy_baseline_cpu(url, data))[0]


async def copy_baseline_cpu(url: str, data: bytes) -> tuple[float, float | None]:
    """:func:`copy_baseline`, plus the CPU seconds its PostgreSQL backend spent
    (None when ``/proc`` cannot show it: a server on another machine)."""
    conn = await asyncpg.connect(url, timeout=30)
    try:
        await conn.execute(f"TRUNCATE {PLAIN_TABLE}")
        await conn.execute("CHECKPOINT")
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        cpu0 = _proc_cpu(pid)
        started = time.perf_counter()
        await conn.copy_to_table(
            "residents_import",
            schema_name=PLAIN_SCHEMA,
            source=io.BytesIO(data),
            columns=list(transfer.HEADER),
            format="csv",
            header=True,
        )
        seconds = time.perf_counter() - started
        cpu1 = _proc_cpu(pid)
        copied = await conn.fetchval(f"SELECT count(*) FROM {PLAIN_TABLE}")
        if copied != data.count(b"\n") - 1:
            raise RuntimeError(f"COPY loaded {copied} rows")
    finally:
        await conn.close()
    return seconds, None if cpu0 is None or cpu1 is None else cpu1 - cpu0


# --------------------------------------------------------------------------- HTTP


@dataclass(slots=True)
class HttpResult:
    comparison: c.Comparison
    body_bytes: dict[str, int]
    stored: dict[str, str]


async def prepare_http_towns(settings: Settings, residents: int) -> dict[str, list[str]]:
    db = await c.open_database(settings)
    try:
        await c.onboard(db, c.town_manifest(ENCRYPTED_TOWN))
        await c.onboard(db, c.town_manifest(PLAINTEXT_TOWN))
        ids = {ENCRYPTED_TOWN: await c.seed(db, ENCRYPTED_TOWN, residents, SEED)}
        with plaintext_fields():
            ids[PLAINTEXT_TOWN] = await c.seed(db, PLAINTEXT_TOWN, residents, SEED)
    finally:
        await db.close()
    return ids


async def stored_family_name(settings: Settings, code: str, resident_id: str) -> bytes:
    """The raw bytes of one stored personal value (to show what each town holds)."""
    assert settings.database_url
    schema = quote_ident(tenant_names(code, settings.role_prefix).schema)
    conn = await asyncpg.connect(settings.database_url, timeout=30)
    try:
        value: bytes = await conn.fetchval(
            f"SELECT family_name FROM {schema}.residents WHERE id = $1",
            uuid.UUID(resident_id),
        )
    finally:
        await conn.close()
    return bytes(value)


def measure_http(args: argparse.Namespace, bdb: h.BenchDatabase, port: int) -> HttpResult:
    issuer_url = f"http://{h.LOOPBACK}:{port}"
    settings = c.run_settings(bdb, issuer_url)
    print(
        f"set-up: two towns with the same {args.residents} synthetic residents, "
        f"{ENCRYPTED_TOWN} encrypted, {PLAINTEXT_TOWN} plaintext ...",
        flush=True,
    )
    started = time.perf_counter()
    ids = asyncio.run(prepare_http_towns(settings, args.residents))
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
    stored = {
        code: asyncio.run(stored_family_name(settings, code, ids[code][0]))
        for code in (ENCRYPTED_TOWN, PLAINTEXT_TOWN)
    }
    issuer = builtin_issuer(bdb.data_dir, issuer_url, settings.audience)
    targets = {
        code: c.resident_targets(code, ids[code], c.staff_headers(issuer, code))
        for code in (ENCRYPTED_TOWN, PLAINTEXT_TOWN)
    }
    env = bdb.env(
        SHARED_GOV_ISSUER=issuer_url, SHARED_GOV_ACCESS_LOG=None, SHARED_GOV_LOG_LEVEL=None
    )
    with contextlib.ExitStack() as stack:
        enc_url = stack.enter_context(
            h.serve(
                c.SERVICE,
                env,
                log_path=bdb.workdir / "encrypted.log",
                port=port,
                working_dir=h.ROOT,
            )
        )
        plain_url = stack.enter_context(
            h.serve(PLAINTEXT, env, log_path=bdb.workdir / "plain.log", working_dir=h.BENCH_DIR)
        )
        enc_body = c.check_targets(enc_url, targets[ENCRYPTED_TOWN])
        plain_body = c.check_targets(plain_url, targets[PLAINTEXT_TOWN])
        differ = {
            k
            for k in enc_body.keys() | plain_body.keys()
            if enc_body.get(k) != plain_body.get(k) and k not in ("id", "atena_no")
        }
        if enc_body.keys() != plain_body.keys() or enc_body["withheld"]:
            raise RuntimeError("the two servers answer with different fields")
        if stored[PLAINTEXT_TOWN].decode() != plain_body["family_name"]:
            raise RuntimeError("the plaintext town does not hold plaintext")
        if (
            stored[ENCRYPTED_TOWN][0] != 1
            or enc_body["family_name"].encode() in stored[ENCRYPTED_TOWN]
        ):
            raise RuntimeError("the encrypted town does not hold envelopes")
        body_bytes = {
            "encrypted": len(json.dumps(enc_body, ensure_ascii=False).encode()),
            "plaintext": len(json.dumps(plain_body, ensure_ascii=False).encode()),
            "differing_fields": len(differ),
        }
        enc = c.Side("encrypted (service)", enc_url, targets[ENCRYPTED_TOWN])
        plain = c.Side("plaintext (baseline)", plain_url, targets[PLAINTEXT_TOWN])
        for side in (enc, plain):
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
            enc,
            plain,
            rounds=args.rounds,
            duration=args.duration,
            connections=args.connections,
            workdir=bdb.workdir,
        )
        if not comparison.ok:
            for name in ("encrypted.log", "plain.log"):
                print(f"--- {name}, not 200 ---\n{c.log_problems(bdb.workdir / name)}")
    return HttpResult(
        comparison,
        body_bytes,
        {code: f"{len(v)} B, starts {v[:8].hex()}" for code, v in stored.items()},
    )


# --------------------------------------------------------------------------- import


@dataclass(slots=True)
class ImportResult:
    rows: int
    csv_bytes: int
    copy_seconds: list[float]
    import_seconds: float
    """Median of ``import_runs``; NaN when the import failed (see ``import_error``)."""
    phases: dict[str, float]
    import_runs: list[float] = field(default_factory=list)
    cpu: list[dict[str, float | None]] = field(default_factory=list)
    """Per run: CPU seconds of this process, the worker processes, PostgreSQL."""
    workers: int | None = None
    import_error: str | None = None
    chunked_seconds: float | None = None
    """When the one-file import failed: the same rows in ``chunk_rows`` files."""
    chunk_rows: int = 0
    chunked_error: str | None = None
    profile: str | None = None
    rotation_error: str | None = None
    memory_rotation: list[float] = field(default_factory=list)
    rotation_seconds: float = float("nan")
    rotated: int = 0
    rotation_retired: bool = False
    rotation_rows_on_new: int = 0
    verify_seconds: float = float("nan")
    """Of ``rotation_seconds``: the verification pass (rotation._verify)."""
    verified: int = 0
    history_seconds: float = float("nan")
    history_verify_seconds: float = float("nan")
    history_rotated: int = 0
    history_verified: int = 0
    history_retired: bool = False


def _proc_cpu(pid: int) -> float | None:
    """CPU seconds of a local process (user + system), None if it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _backends(db: Database) -> list[int]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
    return [r["pid"] for r in rows]


async def _timed_import(
    db: Database, code: str, text: str, workers: int | None = None
) -> tuple[float, dict[str, float | None]]:
    """Seconds of one import_csv, and the CPU seconds it cost, by process."""
    names = tenant_names(code, db.settings.role_prefix)
    pids = await _backends(db)
    before = {pid: _proc_cpu(pid) for pid in pids}
    self0, children0 = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    started = time.perf_counter()
    async with db.tenant(names) as uow:
        loaded = await transfer.import_csv(uow, io.StringIO(text), workers=workers)
    seconds = time.perf_counter() - started
    self1, children1 = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    after = {pid: _proc_cpu(pid) for pid in pids}
    backend = [
        a - b for pid in pids if (a := after[pid]) is not None and (b := before[pid]) is not None
    ]
    cpu: dict[str, float | None] = {
        "main": self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime,
        # Worker processes are children of this one and have exited by now.
        "workers": children1.ru_utime
        + children1.ru_stime
        - children0.ru_utime
        - children0.ru_stime,
        "postgres": sum(backend) if backend else None,
    }
    async with db.tenant(names) as uow:
        count = await repo.count(uow)
    if loaded != count:
        raise RuntimeError(f"imported {loaded}, town holds {count}")
    return seconds, cpu


async def _chunked_import(db: Database, code: str, text: str, chunk_rows: int) -> float:
    """Fallback when one big import fails: the same rows as several files, one transaction each.

    Splitting on lines is safe for :func:`import_csv_text`'s data (no quoted
    newlines); chunks hold whole households (multiples of three rows).
    """
    header, *lines = text.rstrip("\n").split("\n")
    chunk_rows = max(len(_MEMBERS), chunk_rows - chunk_rows % len(_MEMBERS))
    names = tenant_names(code, db.settings.role_prefix)
    started = time.perf_counter()
    for start in range(0, len(lines), chunk_rows):
        part = "\n".join([header, *lines[start : start + chunk_rows]]) + "\n"
        async with db.tenant(names) as uow:
            await transfer.import_csv(uow, io.StringIO(part))
    seconds = time.perf_counter() - started
    async with db.tenant(names) as uow:
        count = await repo.count(uow)
    if count != len(lines):
        raise RuntimeError(f"chunked import: town holds {count} of {len(lines)} rows")
    return seconds


async def _phases(db: Database, code: str, text: str) -> dict[str, float]:
    """The import's Python work, phase by phase, on one core, in memory (nothing written).

    Uses the import's own functions on its chunks: checking (csv.reader, then
    transfer.check_columns) and sealing (transfer.CopyWriter: every envelope,
    blind index, history entry and event, framed as binary COPY), with the
    cyclic garbage collector paused as the import pauses it.
    """
    clock = time.process_time
    keys = await db.town_keys(code)
    assert keys.write_keys is not None
    writer = transfer.CopyWriter(keys.write_keys)
    import_id = str(uuid.uuid4())
    today = date.today()
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = clock()
        reader = csv.reader(io.StringIO(text, newline=""))
        positions = transfer._positions(next(reader))
        rows = [r for r in reader if r]
        size = import_pool.CHUNK_ROWS
        checked = [
            transfer.check_columns(rows[i : i + size], positions, 1 + i, today)
            for i in range(0, len(rows), size)
        ]
        t1 = clock()
        for _, columns in checked:
            if columns is None:
                raise RuntimeError("problems in the generated CSV")
            writer.write(columns, today, import_id)
        t2 = clock()
    finally:
        if enabled:
            gc.enable()
    return {"parse": t1 - t0, "seal": t2 - t1}


async def _profile_import(db: Database, code: str, text: str) -> str:
    """cProfile of one import_csv of ``text`` into town ``code``."""
    names = tenant_names(code, db.settings.role_prefix)
    profiler = cProfile.Profile()
    profiler.enable()
    async with db.tenant(names) as uow:
        await transfer.import_csv(uow, io.StringIO(text))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(22)
    stats.sort_stats("cumulative").print_stats(30)
    return out.getvalue()


async def _address_blobs(db: Database, code: str) -> list[tuple[str, bytes]]:
    schema = quote_ident(tenant_names(code, db.settings.role_prefix).schema)
    async with db.catalog() as conn:
        rows = await conn.fetch(
            f"SELECT id::text AS rid, {ROTATED_COLUMN} AS blob FROM {schema}.residents"
        )
    return [(r["rid"], bytes(r["blob"])) for r in rows]


async def _memory_reencrypt(db: Database, code: str) -> float:
    """Seconds to decrypt and re-encrypt every address value in memory only."""
    blobs = await _address_blobs(db, code)
    cipher = (await db.town_keys(code)).ciphers[f"residents.{ROTATED_COLUMN}"]
    started = time.perf_counter()
    for rid, blob in blobs:
        context = (code, "residents", ROTATED_COLUMN, rid)
        cipher.encrypt(cipher.decrypt(blob, context), context)
    return time.perf_counter() - started


async def import_and_rotate(args: argparse.Namespace, settings: Settings) -> ImportResult:
    assert settings.database_url
    rows = args.rows
    print(f"set-up: building a {rows:,}-row CSV in memory ...", flush=True)
    text = import_csv_text(rows)
    data = text.encode()
    db = await c.open_database(settings)
    try:
        await c.onboard(db, c.town_manifest(IMPORT_TOWN, population=rows))
        conn = await asyncpg.connect(settings.database_url, timeout=30)
        try:
            for statement in _plain_ddl():
                await conn.execute(statement)
        finally:
            await conn.close()

        print(
            f"import: COPY baseline, then {args.import_runs} x (import_csv, COPY baseline) ...",
            flush=True,
        )
        copy_s = [await copy_baseline(settings.database_url, data)]
        print(f"  COPY (plaintext table)   {copy_s[-1]:.2f} s", flush=True)
        import_error: str | None = None
        runs: list[float] = []
        cpus: list[dict[str, float | None]] = []
        for number, town in enumerate((IMPORT_TOWN, *MORE_IMPORT_TOWNS)[: args.import_runs]):
            if number:
                await c.onboard(db, c.town_manifest(town, population=rows))
            try:
                seconds, cpu = await _timed_import(db, town, text, args.import_workers)
                runs.append(seconds)
                cpus.append(cpu)
                print(
                    f"  import_csv               {seconds:.2f} s (CPU s: "
                    + ", ".join(f"{k} {'?' if v is None else f'{v:.2f}'}" for k, v in cpu.items())
                    + ")",
                    flush=True,
                )
            except Exception as exc:  # a benchmark reports a failure and goes on
                import_error = f"{type(exc).__name__}: {exc}"
                print(f"  import_csv               FAILED: {import_error}", flush=True)
                break
            copy_s.append(await copy_baseline(settings.database_url, data))
            print(f"  COPY (plaintext table)   {copy_s[-1]:.2f} s", flush=True)
        import_s = h.median(runs) if runs and import_error is None else float("nan")
        phases = await _phases(db, IMPORT_TOWN, text)
        result = ImportResult(
            rows,
            len(data),
            copy_s,
            import_s,
            phases,
            import_error=import_error,
            import_runs=runs,
            cpu=cpus,
            workers=args.import_workers,
        )
        scaled = import_s * TARGET_IMPORT_ROWS / rows
        if import_error is None and (args.profile or scaled > TARGET_IMPORT_SECONDS):
            print(f"profile: cProfile of an import of {args.profile_rows:,} rows ...", flush=True)
            try:
                await c.onboard(db, c.town_manifest(PROFILE_TOWN, population=args.profile_rows))
                result.profile = (
                    f"cProfile of one import of {args.profile_rows:,} rows into an empty town:\n"
                    + await _profile_import(db, PROFILE_TOWN, import_csv_text(args.profile_rows))
                )
            except Exception as exc:  # a benchmark reports a failure and goes on
                result.profile = f"profiled import FAILED: {type(exc).__name__}: {exc}"

        if import_error is not None:
            print(f"  fallback: the same rows as files of {args.chunk_rows:,} rows ...", flush=True)
            result.chunk_rows = args.chunk_rows
            try:
                result.chunked_seconds = await _chunked_import(
                    db, IMPORT_TOWN, text, args.chunk_rows
                )
                print(f"  import_csv, in files     {result.chunked_seconds:.2f} s", flush=True)
            except Exception as exc:  # a benchmark reports a failure and goes on
                result.chunked_error = f"{type(exc).__name__}: {exc}"
                print(f"  import_csv, in files     FAILED: {result.chunked_error}", flush=True)
        if result.chunked_error is not None and not args.skip_rotation:
            result.rotation_error = "skipped: the import failed, there are no rows to rotate"
        elif not args.skip_rotation:
            try:
                await _rotate(db, rows, result)
            except Exception as exc:  # a benchmark reports a failure and goes on
                result.rotation_error = f"{type(exc).__name__}: {exc}"
                print(f"  rotate_dek               FAILED: {result.rotation_error}", flush=True)
        slow_fallback = (
            result.chunked_seconds is not None
            and result.chunked_seconds * TARGET_IMPORT_ROWS / rows > TARGET_IMPORT_SECONDS
        )
        if slow_fallback or (args.profile and result.chunked_seconds is not None):
            # The files get slower as the town fills (see the report): profile
            # one more file into the town that now holds every row.
            extra = result.chunk_rows - result.chunk_rows % len(_MEMBERS)
            print(f"profile: cProfile of one more file of {extra:,} rows ...", flush=True)
            start = rows + (-rows) % len(_MEMBERS)
            try:
                result.profile = (
                    f"cProfile of one more file of {extra:,} rows into the town holding "
                    f"{rows:,}:\n"
                    + await _profile_import(db, IMPORT_TOWN, import_csv_text(extra, start))
                )
            except Exception as exc:  # a benchmark reports a failure and goes on
                result.profile = f"profiled import FAILED: {type(exc).__name__}: {exc}"
    finally:
        await db.close()
    return result


async def _rotate(db: Database, rows: int, result: ImportResult) -> None:
    """DEK rotation of one column over the imported rows, between two in-memory baselines."""
    print(f"rotation: DEK of residents.{ROTATED_COLUMN} over {rows:,} rows ...", flush=True)
    result.memory_rotation.append(await _memory_reencrypt(db, IMPORT_TOWN))
    print(f"  in memory only           {result.memory_rotation[-1]:.2f} s", flush=True)
    next_mark = [max(1, rows // 5)]

    def progress(done: int, total: int) -> None:
        if done >= next_mark[0]:
            next_mark[0] += max(1, rows // 5)
            print(f"    {done:,}/{total:,} rows re-encrypted", flush=True)

    verifying = [0.0]
    real_verify = rotation._verify

    async def timed_verify(*args: Any, **kwargs: Any) -> tuple[int, int]:
        began = time.perf_counter()
        try:
            return await real_verify(*args, **kwargs)
        finally:
            verifying[0] += time.perf_counter() - began

    rotation._verify = timed_verify  # type: ignore[assignment]  # timed, then restored
    try:
        started = time.perf_counter()
        outcome = await asyncio.wait_for(
            rotation.rotate_dek(
                db, IMPORT_TOWN, ROTATED_COLUMN, grace_seconds=0, on_progress=progress
            ),
            timeout=ROTATION_TIMEOUT_S,
        )
        result.rotation_seconds = time.perf_counter() - started
        result.verify_seconds, verifying[0] = verifying[0], 0.0
        print(f"  rotate_dek               {result.rotation_seconds:.2f} s", flush=True)
        print(f"  history: DEK of {HISTORY_COLUMN} ...", flush=True)
        started = time.perf_counter()
        history = await asyncio.wait_for(
            rotation.rotate_dek(db, IMPORT_TOWN, HISTORY_COLUMN, grace_seconds=0),
            timeout=ROTATION_TIMEOUT_S,
        )
        result.history_seconds = time.perf_counter() - started
        result.history_verify_seconds = verifying[0]
        print(f"  rotate_dek (history)     {result.history_seconds:.2f} s", flush=True)
    finally:
        rotation._verify = real_verify  # type: ignore[assignment]
    result.rotated = outcome.reencrypted
    result.rotation_retired = outcome.retired
    result.verified = outcome.verified
    result.history_rotated = history.reencrypted
    result.history_verified = history.verified
    result.history_retired = history.retired
    statuses = await rotation.status(db, IMPORT_TOWN)
    result.rotation_rows_on_new = sum(
        s.rows or 0
        for s in statuses
        if s.name == f"residents.{ROTATED_COLUMN}" and s.version == outcome.version
    )
    result.memory_rotation.append(await _memory_reencrypt(db, IMPORT_TOWN))
    print(f"  in memory only           {result.memory_rotation[-1]:.2f} s", flush=True)


# --------------------------------------------------------------------------- report


def report_http(args: argparse.Namespace, r: HttpResult) -> None:
    comp = r.comparison
    print()
    print(f"== resident GET over HTTP, c={args.connections}, {args.rounds} round(s) ==")
    c.row("what", "measured", "target", "")
    c.row("encrypted (req/s, median)", f"{h.median([x.rps for x in comp.measured]):.0f}")
    c.row(
        "baseline: plaintext fields (req/s, median)",
        f"{h.median([x.rps for x in comp.baseline]):.0f}",
    )
    c.ratio_row(
        "  throughput ratio encrypted / plaintext",
        comp.ratio,
        TARGET_HTTP_RATIO,
        higher_is_better=True,
    )
    c.row(
        "  p50 latency encrypted / plaintext (ms)",
        f"{h.median([x.p50_ms for x in comp.measured]):.2f}/"
        f"{h.median([x.p50_ms for x in comp.baseline]):.2f}",
    )
    c.row(
        "server CPU per request, encrypted / plaintext (µs)",
        f"{h.median(comp.measured_cpu_us):.0f}/{h.median(comp.baseline_cpu_us):.0f}",
    )
    c.row("  CPU per request ratio encrypted / plaintext (context)", f"{comp.cpu_ratio:.2f}")
    print("per-round throughput ratios: " + ", ".join(f"{x:.3f}" for x in comp.ratios))
    print(
        f"bodies: encrypted {r.body_bytes['encrypted']} B, plaintext {r.body_bytes['plaintext']} B "
        f"({r.body_bytes['differing_fields']} fields differ besides id/atena_no); stored "
        f"family_name: encrypted town {r.stored[ENCRYPTED_TOWN]}, plaintext town "
        f"{r.stored[PLAINTEXT_TOWN]}"
    )
    if not comp.ok:
        print("WARNING: errors or non-2xx responses during the load runs")


def report_import(r: ImportResult, skip_rotation: bool) -> None:
    copy_s = h.median(r.copy_seconds)
    scale = "" if r.rows == TARGET_IMPORT_ROWS else ", scaled"
    print()
    print(f"== import of {r.rows:,} residents ({r.csv_bytes / 1e6:.1f} MB of CSV) ==")
    c.row("what", "measured", "target", "")
    c.row("baseline: COPY csv into a plaintext table (s, median)", f"{copy_s:.2f}")
    c.row("  runs (s)", " ".join(f"{s:.2f}" for s in r.copy_seconds))
    c.row("  COPY rows/s", f"{r.rows / copy_s:,.0f}")
    if r.import_error is None:
        c.row("import_csv, one file, one transaction (s, median)", f"{r.import_seconds:.2f}")
        c.row("  runs (s)", " ".join(f"{s:.2f}" for s in r.import_runs))
        c.row("  import rows/s", f"{r.rows / r.import_seconds:,.0f}")
        c.ratio_row(
            "  import speed / COPY speed",
            copy_s / r.import_seconds,
            TARGET_IMPORT_VS_COPY,
            higher_is_better=True,
        )
        scaled = r.import_seconds * TARGET_IMPORT_ROWS / r.rows
        c.row(
            f"  import time for {TARGET_IMPORT_ROWS:,} rows (s{scale})",
            f"{scaled:.2f}",
            f"<= {TARGET_IMPORT_SECONDS:g}",
            h.verdict(scaled, TARGET_IMPORT_SECONDS, higher_is_better=False),
        )
        for key, label in (
            ("main", "this process"),
            ("workers", "worker processes"),
            ("postgres", "PostgreSQL backends"),
        ):
            values = [v for cpu in r.cpu if (v := cpu.get(key)) is not None]
            c.row(
                f"  CPU s, {label} (median)",
                f"{h.median(values):.2f}" if values else "unknown",
            )
    else:
        c.row("import_csv, one file, one transaction", "FAILED", "both", "MISSED")
        print(f"  {r.import_error}")
        if r.chunked_error is not None:
            c.row(f"fallback: import_csv in files of {r.chunk_rows:,} rows", "FAILED")
            print(f"  {r.chunked_error}")
        elif r.chunked_seconds is not None:
            files = -(-r.rows // r.chunk_rows)
            c.row(
                f"fallback: import_csv in {files} files of {r.chunk_rows:,} rows (s)",
                f"{r.chunked_seconds:.2f}",
            )
            c.row("  rows/s", f"{r.rows / r.chunked_seconds:,.0f}")
            c.row("  import speed / COPY speed (fallback)", f"{copy_s / r.chunked_seconds:.2f}")
            c.row(
                f"  time for {TARGET_IMPORT_ROWS:,} rows (s{scale}, fallback)",
                f"{r.chunked_seconds * TARGET_IMPORT_ROWS / r.rows:.2f}",
            )
    p = r.phases
    print(
        "the import's Python phases on one core, in memory (the import runs them in "
        "worker processes, beside COPY):"
    )
    for what, seconds in (
        ("check the CSV (csv.reader, transfer.check_columns)", p["parse"]),
        (
            f"seal: {len(repo.ENCRYPTED)} envelopes, blind indexes, history, events "
            "(transfer.CopyWriter)",
            p["seal"],
        ),
    ):
        c.row(f"  {what}", f"{seconds:.2f} s CPU, {seconds / r.rows * 1e6:.0f} µs/row")
    if r.profile:
        print()
        print(r.profile.rstrip())
    if skip_rotation:
        return
    print()
    print(f"== DEK rotation of residents.{ROTATED_COLUMN}, {r.rows:,} rows ==")
    if r.rotation_error is not None:
        c.row("rotate_dek", "FAILED", "", "")
        print(f"  {r.rotation_error}")
        return
    memory = h.median(r.memory_rotation)
    c.row("what", "measured", "target", "")
    c.row("baseline: decrypt + re-encrypt in memory (rows/s)", f"{r.rows / memory:,.0f}")
    c.row("  runs (s)", " ".join(f"{s:.2f}" for s in r.memory_rotation))
    c.row("rotate_dek, grace 0 s (rows/s)", f"{r.rotated / r.rotation_seconds:,.0f}")
    c.row("  seconds", f"{r.rotation_seconds:.2f}")
    c.row("  rotate_dek speed / in-memory speed", f"{memory / r.rotation_seconds:.3f}")
    c.row(
        "  rows re-encrypted / on the new version / old key retired",
        f"{r.rotated}/{r.rotation_rows_on_new}/{'yes' if r.rotation_retired else 'NO'}",
    )
    c.row(
        "  of which the verification pass (s; share of rotate_dek)",
        f"{r.verify_seconds:.2f}; {r.verify_seconds / r.rotation_seconds:.2f}",
    )
    c.row("  rows decrypted by it (rows/s)", f"{r.verified / r.verify_seconds:,.0f}")
    print(f"== DEK rotation of {HISTORY_COLUMN}, {r.history_rotated:,} entries ==")
    c.row("rotate_dek, grace 0 s (rows/s)", f"{r.history_rotated / r.history_seconds:,.0f}")
    c.row("  seconds", f"{r.history_seconds:.2f}")
    c.row(
        "  of which the verification pass (s; share of rotate_dek)",
        f"{r.history_verify_seconds:.2f}; {r.history_verify_seconds / r.history_seconds:.2f}",
    )
    c.row(
        "  rows decrypted by it (rows/s)",
        f"{r.history_verified / r.history_verify_seconds:,.0f}",
    )
    c.row("  old key retired", "yes" if r.history_retired else "NO")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=TARGET_IMPORT_ROWS, help="rows imported")
    parser.add_argument("--residents", type=int, default=200, help="residents per HTTP town")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per load slice")
    parser.add_argument("--warmup", type=float, default=3.0, help="minimum warm-up seconds")
    parser.add_argument("--rounds", type=int, default=8, help="alternating load rounds (ABBA)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=1_500,
        help="rows per file if the one-file import fails (the rotation still gets its rows)",
    )
    parser.add_argument("--profile", action="store_true", help="always profile an import")
    parser.add_argument("--profile-rows", type=int, default=20_000, help="rows of the profiled run")
    parser.add_argument("--skip-http", action="store_true", help="no HTTP comparison")
    parser.add_argument("--skip-import", action="store_true", help="no import (nor rotation)")
    parser.add_argument("--skip-rotation", action="store_true", help="no DEK rotation")
    parser.add_argument(
        "--import-runs",
        type=int,
        default=1,
        help=f"imports into fresh towns, medians reported (at most {1 + len(MORE_IMPORT_TOWNS)})",
    )
    parser.add_argument(
        "--import-workers",
        type=int,
        default=None,
        help="worker processes of import_csv (default: its own choice; 0: none)",
    )
    args = parser.parse_args(argv)
    if (
        min(
            args.rows,
            args.residents,
            args.rounds,
            args.connections,
            args.profile_rows,
            args.chunk_rows,
            args.import_runs,
        )
        < 1
        or args.duration <= 0
    ):
        parser.error("counts and durations must be positive")
    if args.import_runs > 1 + len(MORE_IMPORT_TOWNS):
        parser.error(f"--import-runs: at most {1 + len(MORE_IMPORT_TOWNS)}")
    if args.import_workers is not None and args.import_workers < 0:
        parser.error("--import-workers must not be negative")
    if args.rows > 3_000_000:
        parser.error("--rows above 3,000,000 would not fit the 7-digit serial numbers")
    configure_logging("warning")
    wrk = h.wrk_path()
    if wrk is None and not args.skip_http:
        print(h.WRK_MISSING, flush=True)
    print(
        f"crypto benchmark: code {h.revision()}, load tool {'wrk' if wrk else 'python fallback'}, "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    http: HttpResult | None = None
    imported: ImportResult | None = None
    with h.bench_database() as bdb:
        port = h.free_port()
        if not args.skip_http:
            http = measure_http(args, bdb, port)
        if not args.skip_import:
            settings = c.run_settings(bdb, f"http://{h.LOOPBACK}:{port}")
            imported = asyncio.run(import_and_rotate(args, settings))
    if http is not None:
        report_http(args, http)
        if wrk is None:
            print("NOTE: measured with the Python fallback load generator; install wrk")
    if imported is not None:
        report_import(imported, args.skip_rotation)
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    print("Timings are context, not tests: this script exits 0 whatever the verdicts.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
