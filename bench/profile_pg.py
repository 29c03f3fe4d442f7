"""PostgreSQL's share of a resident GET, statement by statement: a diagnostic.

One connection runs the hot path's own SQL (``binding_sql``, the repository's
``SELECT``, ``audit.record`` sent with ``COMMIT``) in a loop, in variants
that add one part at a time, over several towns (consecutive reads in
different towns, as in production) and over one town. For each variant it
prints the backend's CPU per GET (user + system, from ``/proc``), the
client's CPU (asyncpg) and the wall time. The differences between variants
are what binding, the read, the audit write and the WAL flush cost; the read
is prepared once per town as the repository does it, and once more as one
statement shared by all towns (re-planned whenever the town changes).

    SHARED_GOV_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/profile_pg.py [--towns 6] [--reads 3000]

Needs the server on this machine (``/proc`` of the backend). Nothing here
asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import asyncpg

import _bench_common as bc
import _harness as h
from profile_get import _prepare
from shared_gov.db.binding import read_only_binding_sql
from shared_gov.db.engine import binding_sql, commit_sql, dollar_quoted
from shared_gov.domains.residents import reads as resident_reads
from shared_gov.domains.residents.repository import _SELECT
from shared_gov.tenancy.names import tenant_names

# An event as the recorder writes it for a resident read (no personal value).
PAYLOAD = {
    "request_id": "r" * 36,
    "actor": "bench-staff",
    "actor_tenant": None,
    "department": "shimin",
    "roles": ["staff"],
    "auth_strength": "mfa",
    "client_addr": "127.0.0.1",
    "user_agent": "wrk",
    "action": "resident.read",
    "resource_type": "resident",
    "subjects": ["1234567890123"],
    "fields": ["address", "birth_date", "family_name", "given_name"],
    "rows": 1,
    "individual_number": False,
    "purpose": "juki.registration",
    "agreement_id": None,
    "outcome": "allowed",
    "reason": None,
    "policy_ids": [],
}


async def _measure(url: str, role_prefix: str, reads: list[tuple[str, str]], n: int) -> None:
    conn = await asyncpg.connect(url, statement_cache_size=2000)
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    names = {code: tenant_names(code, role_prefix) for code, _ in reads}
    audit = "SELECT audit.record(" + dollar_quoted(json.dumps(PAYLOAD)) + "::jsonb)"
    select = _SELECT + " WHERE id = $1"

    # The repository's hot reads are prepared once per town (town_statement):
    # the same comment, built here for the raw connection.
    own = {code: "/* " + n.schema + " */ " + select for code, n in names.items()}

    def variant(
        read: bool, record: bool, durable: bool = True, shared: bool = False
    ) -> Callable[..., Awaitable[None]]:
        async def run(items: Sequence[tuple[str, str]]) -> None:
            for code, rid in items:
                await conn.execute(binding_sql(names[code]))
                if read:
                    await conn.fetchrow(select if shared else own[code], rid)
                deferred = [] if durable else ["SET LOCAL synchronous_commit = off"]
                await conn.execute(commit_sql([*deferred, *([audit] if record else [])]))

        return run

    # Issue #16: the read's transaction is read-only (no key lock), and a GET
    # at home is one call of the town's read function, outside any
    # transaction; its event goes to the audit writer's batch (below).
    function = {
        code: f"SELECT {resident_reads.COLUMNS} FROM {n.schema}.{resident_reads.READ_FUNCTION}($1)"
        for code, n in names.items()
    }

    def read_only_bound() -> Callable[..., Awaitable[None]]:
        async def run(items: Sequence[tuple[str, str]]) -> None:
            for code, rid in items:
                await conn.execute(read_only_binding_sql(names[code]))
                await conn.fetchrow(own[code], rid)
                await conn.execute("COMMIT")

        return run

    def read_function() -> Callable[..., Awaitable[None]]:
        async def run(items: Sequence[tuple[str, str]]) -> None:
            for code, rid in items:
                await conn.fetch(function[code], rid)

        return run

    event = {
        **PAYLOAD,
        "mac": "\\x" + "ab" * 32,
        "writer": "00000000-0000-4000-8000-000000000000",
        "prev_mac": "\\x" + "cd" * 32,
    }

    def writer_batch(size: int) -> Callable[..., Awaitable[None]]:
        """The audit writer's batch: per town its role and one record_many; one COMMIT.

        ``size`` events per batch, of consecutive items' towns; the time is
        shown per event (per GET).
        """

        async def run(items: Sequence[tuple[str, str]]) -> None:
            for start in range(0, len(items), size):
                by_town: dict[str, int] = {}
                for code, _ in items[start : start + size]:
                    by_town[code] = by_town.get(code, 0) + 1
                parts = ["BEGIN"]
                for code, count in by_town.items():
                    parts.append(f"SELECT set_config('role', '{names[code].role}', true)")
                    events = json.dumps(
                        [{**event, "event_id": str(uuid.uuid4()), "wseq": i} for i in range(count)]
                    )
                    parts.append("SELECT audit.record_many(" + dollar_quoted(events) + "::jsonb)")
                parts.append("COMMIT")
                await conn.execute("; ".join(parts))

        return run

    variants = [
        ("read-only binding + SELECT + COMMIT", read_only_bound()),
        ("the town's read function alone (#16)", read_function()),
        ("audit writer batch of 1, per event", writer_batch(1)),
        ("audit writer batch of 4, per event", writer_batch(4)),
        ("audit writer batch of 16, per event", writer_batch(16)),
        ("binding + COMMIT", variant(False, False)),
        ("binding + SELECT + COMMIT (audit off)", variant(True, False)),
        ("  same, one SELECT shared by all towns", variant(True, False, shared=True)),
        ("binding + SELECT + audit/COMMIT (as shipped)", variant(True, True)),
        ("binding + audit/COMMIT", variant(False, True)),
        ("as shipped, synchronous_commit off (info)", variant(True, True, durable=False)),
    ]
    one_town = [r for r in reads if r[0] == reads[0][0]]
    print(f"{'variant':46} {'towns':>6}  backend  client    wall   (µs per GET)")
    try:
        for label, run in variants:
            for towns_label, items in ((str(len(names)), reads), ("1", one_town)):
                seq = (list(items) * (n // len(items) + 1))[:n]
                await run(seq[: n // 10])  # warm: plans, caches, connection
                c0, p0, w0 = bc.cpu_seconds([pid]), time.process_time(), time.perf_counter()
                await run(seq)
                c1, p1, w1 = bc.cpu_seconds([pid]), time.process_time(), time.perf_counter()
                print(
                    f"{label:46} {towns_label:>6}  {1e6 * (c1 - c0) / n:7.0f} "
                    f"{1e6 * (p1 - p0) / n:7.0f} {1e6 * (w1 - w0) / n:7.0f}",
                    flush=True,
                )
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--towns", type=int, default=6)
    parser.add_argument("--residents", type=int, default=50)
    parser.add_argument("--reads", type=int, default=3000)
    args = parser.parse_args(argv)
    with h.bench_database() as bdb:
        if bdb.embedded:
            print("note: embedded server; backend CPU is still read from /proc")
        manifests: list[Path] = sorted((h.ROOT / "tenants").glob("*.toml"))[: args.towns]
        targets, _ = asyncio.run(_prepare(bdb, "http://127.0.0.1:1", manifests, args.residents))
        # Paths are /api/v1/tenants/{code}/residents/{id}.
        reads = [(t.path.split("/")[4], t.path.split("/")[6]) for t in targets]
        asyncio.run(_measure(bdb.url, bdb.role_prefix, reads, args.reads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
