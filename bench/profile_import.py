"""The floor under a bulk import (issue #4): what no import code can avoid. A diagnostic.

``bench/crypto.py`` compares ``shared-gov residents import`` with a plain
``COPY ... (FORMAT csv)`` of the same 100,000 plaintext rows and asks for at
least 0.3 x the speed of that COPY. Before optimising further, this script
measures, side by side in ONE run and on THIS machine, what any import has to
pay whatever its Python looks like:

a. the baseline: plain COPY of the plaintext CSV (``crypto.copy_baseline``,
   the very function the benchmark uses), wall time and backend CPU;
b. PostgreSQL's share alone: COPY (binary) of exactly the rows an import
   writes, already encrypted, into the town's real tables with their real
   indexes, keys and foreign keys (households, residents, resident_history,
   events), in one transaction, committed. The rows are what a real
   ``import_csv`` wrote (run once, untimed), read back with ``COPY ... TO
   STDOUT (FORMAT binary)``; every repetition truncates the tables and
   COPYs them in again, bound to the town, the way the import loads an
   empty town (``shared_gov.db.bulk``: secondary indexes and foreign keys
   set aside, then rebuilt and checked, timed as "restore"); and b', the
   same with every index and foreign key in place (how a town that already
   has records is loaded), for context. Wall time and backend CPU
   (``/proc/<pid>/stat``);
c. the client's irreducible CPU: AES-256-GCM (the ``cryptography`` library)
   of exactly the values the import encrypts (the record's non-empty
   personal fields and the history entry's four), nonces and AAD built
   beforehand, one ``map`` per column; plus the HMAC-SHA256 blind-index
   values (pre-padded SHA-256 states, inputs already normalised and
   encoded). One core;
d. the lower bound on the import's wall time on this machine's cores,
   ``max(b wall, (b CPU + c CPU) / cores)``, and the best ratio any import
   could reach, ``COPY / bound``, beside the 0.3 target. For context also
   the bound with the CSV read by ``csv.reader`` (parsing no import can
   skip, left out of the bound above) and one real import of the same run.

    SHARED_GOV_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/profile_import.py [--rows 100000] [--repeat 3]

Own throw-away database (``_harness.bench_database``), dropped on exit.
Needs nothing from ``../shared/data`` (the town is built from
``tenants/kaga.toml`` or a built-in fallback). Backend CPU needs the server
on this machine; elsewhere it prints "unknown" and the bound uses wall times
only. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import gc
import hashlib
import hmac
import io
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import asyncpg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import _bench_common as bc
import _harness as h
import crypto as cb
from shared_gov.crypto.envelope import FORMAT_VERSION, NONCE_BYTES, aad
from shared_gov.crypto.keyring import WriteKeys
from shared_gov.db import Database, bulk
from shared_gov.db.engine import binding_sql
from shared_gov.domains.residents import indexing, transfer
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.models import Resident
from shared_gov.tenancy.names import TenantNames, quote_ident, tenant_names

FLOOR_TOWN = "011002"
CORES = os.cpu_count() or 1

# What import_csv writes, table by table, in load order (parents first), with
# the columns it sets (the rest take their defaults, as in the import).
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("households", ("household_no", "head_id")),
    ("residents", repo._WRITTEN),
    ("resident_history", transfer.HISTORY_COLUMNS),
    ("events", ("type", "record_type", "record_id", "fields", "ids")),
)
_SHA256_BLOCK = 64
HISTORY_SEALED = ("reason", "move_date", "notified_on", "snapshot")
"""The history entry's encrypted columns (``repository._SEALED``)."""


@dataclass(slots=True)
class Column:
    """One encrypted column's work, prepared outside the clock."""

    aead: AESGCM
    nonces: list[bytes]
    plaintexts: list[bytes]
    aads: list[bytes]


@dataclass(slots=True)
class Work:
    columns: list[Column]
    macs: list[tuple[bytes, list[bytes]]]
    """Per blind index and live key version: (key, encoded inputs)."""

    @property
    def envelopes(self) -> int:
        return sum(len(c.plaintexts) for c in self.columns)

    @property
    def plaintext_bytes(self) -> int:
        return sum(sum(map(len, c.plaintexts)) for c in self.columns)

    @property
    def hmacs(self) -> int:
        return sum(len(m) for _, m in self.macs)


@dataclass(slots=True)
class Run:
    copy_wall: float
    copy_cpu: float | None
    floor_wall: float
    floor_cpu: float | None
    kept_wall: float
    """b with every index and foreign key in place (a town that has records)."""
    kept_cpu: float | None
    tables: dict[str, tuple[float, float | None]]
    aes_cpu: float
    hmac_cpu: float
    csv_cpu: float


@dataclass(slots=True)
class Prepared:
    dumps: dict[str, bytes] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    import_seconds: float = float("nan")


# --------------------------------------------------------------------------- b


async def _import_once(db: Database, text: str) -> float:
    """One real import into the floor town (untimed for the floor: it makes the rows)."""
    names = tenant_names(FLOOR_TOWN, db.settings.role_prefix)
    started = time.perf_counter()
    async with db.tenant(names) as uow:
        await transfer.import_csv(uow, io.StringIO(text))
    return time.perf_counter() - started


async def _dump(url: str, schema: str) -> Prepared:
    """Each table the import wrote, as COPY binary bytes (its columns only)."""
    out = Prepared()
    conn = await asyncpg.connect(url, timeout=30)
    try:
        for table, columns in TABLES:
            buffer = io.BytesIO()
            await conn.copy_from_table(
                table, schema_name=schema, columns=list(columns), format="binary", output=buffer
            )
            out.dumps[table] = buffer.getvalue()
            out.counts[table] = await conn.fetchval(
                f"SELECT count(*) FROM {quote_ident(schema)}.{table}"
            )
    finally:
        await conn.close()
    return out


async def _floor_copy(
    url: str, names: TenantNames, prepared: Prepared, *, set_aside: bool
) -> tuple[float, float | None, dict[str, tuple[float, float | None]]]:
    """COPY the encrypted rows into the emptied real tables, one transaction, committed.

    Bound to the town as the import is. ``set_aside``: as the import of an
    empty town loads (``shared_gov.db.bulk``: secondary indexes and foreign
    keys dropped, then restored and checked, timed as "restore"); otherwise
    with every index and foreign key in place (a town that has records).
    """
    schema = names.schema
    conn = await asyncpg.connect(url, timeout=30)
    qualified = ", ".join(f"{quote_ident(schema)}.{t}" for t, _ in TABLES)
    per_table: dict[str, tuple[float, float | None]] = {}

    def since(cpu0: float | None, wall0: float) -> tuple[float, float | None]:
        cpu1 = cb._proc_cpu(pid)
        return time.perf_counter() - wall0, None if cpu0 is None or cpu1 is None else cpu1 - cpu0

    try:
        await conn.execute(f"TRUNCATE {qualified}")
        await conn.execute("CHECKPOINT")
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        cpu_start = cb._proc_cpu(pid)
        started = time.perf_counter()
        await conn.execute(binding_sql(names))  # BEGIN, bound to the town
        loading = (
            bulk.empty_tables_load(conn, names, transfer.LOADED_TABLES)
            if set_aside
            else contextlib.nullcontext(False)
        )
        async with loading as aside:
            if aside != set_aside:
                raise RuntimeError("the tables were not set aside as asked")
            for table, columns in TABLES:
                cpu0, wall0 = cb._proc_cpu(pid), time.perf_counter()
                await conn.copy_to_table(
                    table,
                    schema_name=schema,
                    columns=list(columns),
                    source=memoryview(prepared.dumps[table]),  # bytes would be a path
                    format="binary",
                )
                per_table[table] = since(cpu0, wall0)
            cpu0, wall0 = cb._proc_cpu(pid), time.perf_counter()
        per_table["restore"] = since(cpu0, wall0)
        await conn.execute("COMMIT")
        wall = time.perf_counter() - started
        cpu_end = cb._proc_cpu(pid)
        for table, _ in TABLES:
            count = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(schema)}.{table}")
            if count != prepared.counts[table]:
                raise RuntimeError(f"{table}: COPY loaded {count} of {prepared.counts[table]}")
    finally:
        await conn.close()
    cpu = None if cpu_start is None or cpu_end is None else cpu_end - cpu_start
    return wall, cpu, per_table


# --------------------------------------------------------------------------- c


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, date) else value  # type: ignore[return-value]


def prepare_work(residents: Sequence[Resident], keys: WriteKeys) -> Work:
    """Every envelope and blind-index value the import computes, ready to compute.

    The same values as the import's workers seal (non-empty fields only, dates
    in ISO form, the history entry's reason, dates and msgspec snapshot), the
    same AAD (town, table, column, row id or "id/history_no", key version).
    """
    tenant = keys.tenant
    columns: list[Column] = []

    def column(table: str, name: str, places: list[str], values: list[str | bytes | None]) -> None:
        version, key = keys.deks[f"{table}.{name}"]
        kept = [(p, v) for p, v in zip(places, values, strict=True) if v is not None]
        columns.append(
            Column(
                AESGCM(key),
                [os.urandom(NONCE_BYTES) for _ in kept],
                [v.encode() if isinstance(v, str) else v for _, v in kept],
                [aad(tenant, table, name, p, str(version)) for p, _ in kept],
            )
        )

    ids = [r.id for r in residents]
    for name in repo.ENCRYPTED:
        column("residents", name, ids, [_iso(getattr(r, name)) for r in residents])
    entries = [f"{r.id}/{r.history_no}" for r in residents]
    history: dict[str, list[str | bytes | None]] = {
        "reason": ["import"] * len(residents),
        "move_date": [_iso(r.address_since) for r in residents],
        "notified_on": [_iso(r.notified_on) for r in residents],
        "snapshot": [repo._snapshot(r) for r in residents],
    }
    for name in HISTORY_SEALED:
        column("resident_history", name, entries, history[name])
    texts = list(zip(*map(indexing.index_texts, residents), strict=True))
    macs: list[tuple[bytes, list[bytes]]] = []
    for name, inputs in zip(indexing.RESIDENT_INDEXES, texts, strict=True):
        encoded = [t.encode() for t in inputs if t is not None]
        macs.extend((key, encoded) for _, _, key in keys.indexes[name])
    return Work(columns, macs)


def aes_cpu(work: Work) -> float:
    """CPU seconds of every AES-256-GCM encryption, one column at a time."""
    clock = time.process_time
    started = clock()
    for c in work.columns:
        sealed = list(map(c.aead.encrypt, c.nonces, c.plaintexts, c.aads))
        del sealed
    return clock() - started


def hmac_cpu(work: Work) -> float:
    """CPU seconds of every HMAC-SHA256 blind-index value.

    From SHA-256 states that have absorbed the key pads, copied per value:
    about twice as fast as ``hmac.digest`` (OpenSSL one-shot) here, so the
    tightest loop we know. Inputs are normalised and encoded beforehand.
    """
    states = []
    for key, inputs in work.macs:
        block = key if len(key) <= _SHA256_BLOCK else hashlib.sha256(key).digest()
        block = block.ljust(_SHA256_BLOCK, b"\0")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        states.append((inner, outer, inputs))
        # Same bytes as the standard library's HMAC (checked once, untimed).
        if inputs:
            first_inner = inner.copy()
            first_inner.update(inputs[0])
            first = outer.copy()
            first.update(first_inner.digest())
            if first.digest() != hmac.digest(key, inputs[0], "sha256"):
                raise RuntimeError("pre-padded HMAC differs from hmac.digest")
    clock = time.process_time
    started = clock()
    for inner, outer, inputs in states:
        macs = []
        append = macs.append
        for message in inputs:
            i = inner.copy()
            i.update(message)
            o = outer.copy()
            o.update(i.digest())
            append(o.digest())
        del macs
    return clock() - started


def csv_cpu(text: str) -> float:
    """CPU seconds of reading the CSV into cells (``csv.reader``), no checks."""
    clock = time.process_time
    started = clock()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    seconds = clock() - started
    del rows
    return seconds


# --------------------------------------------------------------------------- run


def _fmt(value: float | None, digits: int = 2) -> str:
    return "unknown" if value is None else f"{value:.{digits}f}"


def _med(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return h.median(known) if len(known) == len(values) and known else None


async def measure(args: argparse.Namespace, bdb: h.BenchDatabase) -> None:
    settings = bc.run_settings(bdb, "http://127.0.0.1:1")
    assert settings.database_url
    url = settings.database_url
    rows = args.rows
    print(f"set-up: a {rows:,}-row CSV (crypto.import_csv_text), town {FLOOR_TOWN} ...", flush=True)
    text = cb.import_csv_text(rows)
    data = text.encode()
    names = tenant_names(FLOOR_TOWN, settings.role_prefix)
    schema = names.schema
    db = await bc.open_database(settings)
    try:
        await bc.onboard(db, bc.town_manifest(FLOOR_TOWN, population=rows))
        conn = await asyncpg.connect(url, timeout=30)
        try:
            for statement in cb._plain_ddl():
                await conn.execute(statement)
        finally:
            await conn.close()
        import_seconds = await _import_once(db, text)
        print(
            f"  one real import_csv (context, makes the rows)  {import_seconds:.2f} s", flush=True
        )
        prepared = await _dump(url, schema)
        prepared.import_seconds = import_seconds
        for table, _ in TABLES:
            print(
                f"  {table:<18} {prepared.counts[table]:>8,} rows, "
                f"{len(prepared.dumps[table]) / 1e6:6.1f} MB as COPY binary",
                flush=True,
            )
        keys = await db.town_keys(FLOOR_TOWN)
        assert keys.write_keys is not None
        residents, errors = transfer.parse(io.StringIO(text))
        if errors:
            raise RuntimeError(f"{len(errors)} problems in the generated CSV")
        work = prepare_work(residents, keys.write_keys)
        # The tight loop computes the import's envelopes: one of them decrypts
        # with the town's own keys at the place the import would store it.
        first = work.columns[0]
        version = keys.write_keys.deks[f"residents.{repo.ENCRYPTED[0]}"][0]
        blob = (
            bytes([FORMAT_VERSION])
            + version.to_bytes(4, "big")
            + first.nonces[0]
            + first.aead.encrypt(first.nonces[0], first.plaintexts[0], first.aads[0])
        )
        plain = keys.decrypt("residents", repo.ENCRYPTED[0], residents[0].id, blob)
        if plain is None or plain.encode() != first.plaintexts[0]:
            raise RuntimeError("the tight loop does not produce the import's envelopes")
        if len(work.columns[0].plaintexts) != rows:
            raise RuntimeError("expected one family_name envelope per row")
        print(
            f"  client work: {work.envelopes:,} envelopes ({work.envelopes / rows:.2f} per row, "
            f"{work.plaintext_bytes / 1e6:.1f} MB of plaintext), "
            f"{work.hmacs:,} HMACs ({work.hmacs / rows:.2f} per row)",
            flush=True,
        )
    finally:
        await db.close()

    runs: list[Run] = []
    print(f"measuring: {args.repeat} x (a COPY baseline, b COPY of the encrypted rows, c CPU)")
    for number in range(args.repeat):
        copy_wall, copy_cpu = await cb.copy_baseline_cpu(url, data)
        floor_wall, floor_cpu, tables = await _floor_copy(url, names, prepared, set_aside=True)
        kept_wall, kept_cpu, _ = await _floor_copy(url, names, prepared, set_aside=False)
        enabled = gc.isenabled()
        gc.disable()  # as the import runs: no collector passes over the bulk objects
        try:
            aes = min(aes_cpu(work) for _ in range(args.crypto_repeat))
            mac = min(hmac_cpu(work) for _ in range(args.crypto_repeat))
            reader = min(csv_cpu(text) for _ in range(args.crypto_repeat))
        finally:
            if enabled:
                gc.enable()
        runs.append(
            Run(
                copy_wall,
                copy_cpu,
                floor_wall,
                floor_cpu,
                kept_wall,
                kept_cpu,
                tables,
                aes,
                mac,
                reader,
            )
        )
        print(
            f"  run {number + 1}: a COPY {copy_wall:.2f} s (backend CPU {_fmt(copy_cpu)}), "
            f"b encrypted COPY {floor_wall:.2f} s (backend CPU {_fmt(floor_cpu)}; "
            f"checks in place {kept_wall:.2f} s, {_fmt(kept_cpu)}), "
            f"c AES {aes:.2f} + HMAC {mac:.2f} s CPU, csv.reader {reader:.2f} s CPU",
            flush=True,
        )
    report(rows, prepared, runs)


def report(rows: int, prepared: Prepared, runs: list[Run]) -> None:
    copy_wall = h.median([r.copy_wall for r in runs])
    copy_cpu = _med([r.copy_cpu for r in runs])
    b_wall = h.median([r.floor_wall for r in runs])
    b_cpu = _med([r.floor_cpu for r in runs])
    aes = h.median([r.aes_cpu for r in runs])
    mac = h.median([r.hmac_cpu for r in runs])
    reader = h.median([r.csv_cpu for r in runs])
    c_cpu = aes + mac

    def bound(client: float) -> float:
        return max(b_wall, ((b_cpu if b_cpu is not None else b_wall) + client) / CORES)

    print()
    print(f"== floor of an import of {rows:,} residents, {CORES} cores (medians of {len(runs)}) ==")
    bc.row("what", "wall s / CPU s", "target", "")
    bc.row("a. plain COPY csv, plaintext table", f"{copy_wall:.2f} / {_fmt(copy_cpu)}")
    bc.row("b. COPY binary of the encrypted rows, real tables", f"{b_wall:.2f} / {_fmt(b_cpu)}")
    bc.row("   (an empty town: indexes and foreign keys set aside)", "")
    for table in [*(t for t, _ in TABLES), "restore"]:
        wall = h.median([r.tables[table][0] for r in runs])
        cpu = _med([r.tables[table][1] for r in runs])
        what = (
            f"{table} ({prepared.counts[table]:,} rows)"
            if table in prepared.counts
            else "restore: build the indexes, add and check the foreign keys"
        )
        bc.row(f"  {what}", f"{wall:.2f} / {_fmt(cpu)}")
    kept_wall = h.median([r.kept_wall for r in runs])
    bc.row(
        "b'. the same with every index and foreign key in place",
        f"{kept_wall:.2f} / {_fmt(_med([r.kept_cpu for r in runs]))}",
    )
    bc.row("   b ÷ a (wall)", f"{b_wall / copy_wall:.2f}")
    bc.row("c. AES-256-GCM, every envelope, one core (CPU s)", f"{aes:.2f}")
    bc.row("   HMAC-SHA256, every blind-index value (CPU s)", f"{mac:.2f}")
    bc.row("   c total (CPU s; µs per row)", f"{c_cpu:.2f}; {c_cpu / rows * 1e6:.1f}")
    floor = bound(c_cpu)
    bc.row(f"d. bound on import wall, max(b wall, (b CPU + c) / {CORES}) (s)", f"{floor:.2f}")
    bc.ratio_row(
        "   best possible ratio COPY / bound", copy_wall / floor, 0.3, higher_is_better=True
    )
    bc.row("   import time the 0.3 target allows, COPY / 0.3 (s)", f"{copy_wall / 0.3:.2f}")
    bc.row(
        "   CPU left for everything else on 2 cores at 0.3 (s)",
        f"{CORES * copy_wall / 0.3 - (b_cpu or b_wall) - c_cpu:.2f}",
    )
    with_csv = bound(c_cpu + reader)
    bc.row("context: csv.reader of the file, one core (CPU s)", f"{reader:.2f}")
    bc.ratio_row(
        "   ratio bound with csv.reader too", copy_wall / with_csv, 0.3, higher_is_better=True
    )
    bc.row(
        "   one real import_csv in this run (s; ratio to median COPY)",
        f"{prepared.import_seconds:.2f}; {copy_wall / prepared.import_seconds:.2f}",
    )
    per_run = [
        r.copy_wall
        / max(r.floor_wall, ((r.floor_cpu or r.floor_wall) + r.aes_cpu + r.hmac_cpu) / CORES)
        for r in runs
    ]
    print("per run, best ratio COPY / bound: " + ", ".join(f"{x:.2f}" for x in per_run))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=cb.TARGET_IMPORT_ROWS)
    parser.add_argument("--repeat", type=int, default=3, help="measurement rounds (a, b, c)")
    parser.add_argument(
        "--crypto-repeat", type=int, default=3, help="c: best of this many passes per round"
    )
    args = parser.parse_args(argv)
    if min(args.rows, args.repeat, args.crypto_repeat) < 1:
        parser.error("counts must be positive")
    if args.rows > 3_000_000:
        parser.error("--rows above 3,000,000 would not fit the 7-digit serial numbers")
    cb.configure_logging("warning")
    print(
        f"import floor: code {h.revision()}, {CORES} cores, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    with h.bench_database() as bdb:
        if bdb.embedded:
            print("note: embedded server; backend CPU is still read from /proc")
        asyncio.run(measure(args, bdb))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("Timings are context, not tests: nothing here asserts a timing.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
