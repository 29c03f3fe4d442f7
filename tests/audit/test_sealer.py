"""The sealer: contiguous per-town sequence numbers, no late commit skipped,
checkpoints signed with the town's key, a single leader, and sealed tables
nobody can rewrite."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared_gov.audit import merkle, tlog
from shared_gov.audit.recorder import seal
from shared_gov.audit.sealer import SEAL_LOCK, PassResult, Sealer, seal_pass
from shared_gov.crypto.providers import LocalKeyProvider
from shared_gov.db import Database
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU

NEW_TABLES = ("audit.leaves", "audit.nodes", "audit.checkpoints")
# One statement, one snapshot: the latest checkpoint covers every sealed leaf.
SIGNED_UP_TO_DATE = (
    "SELECT (SELECT max(tree_size) FROM audit.checkpoints WHERE tenant = $1) "
    "= (SELECT max(seq) + 1 FROM audit.leaves WHERE tenant = $1)"
)


async def record(db: Database, town: str, label: str) -> uuid.UUID:
    """Write one audit event for ``town`` the way the service does, and commit."""
    payload = {**event_body(label), "event_id": str(uuid.uuid4())}
    # MACed with the town's audit key, as every event the service writes.
    seal(payload, town, (await db.town_keys(town)).audit_mac)
    async with db.tenant(tenant_names(town, db.settings.role_prefix)) as uow:
        event_id: uuid.UUID = await uow.fetchval("SELECT audit.record($1::jsonb)", payload)
    return event_id


def event_body(label: str) -> dict[str, Any]:
    return {
        "action": "seal.test",
        "resource_type": "x",
        "outcome": "allowed",
        "request_id": label,
        "subjects": [str(2**62 + 7)],
        "roles": ["staff"],
        "fields": ["address"],
        "reason": 'ünïcode 住所 "quoted" \\ \n',
    }


async def seal_until(sealer: Sealer, db: Database, *event_ids: uuid.UUID) -> PassResult:
    """Seal until every one of ``event_ids`` is sealed.

    The watermark is cluster-wide: any transaction still running anywhere on
    the server (another test run, a benchmark) holds back events committed
    after it started, for as long as it runs.
    """
    total = PassResult()
    for _ in range(600):
        total.merge(await sealer.seal_once())
        if all([await seq_of(db, e) is not None for e in event_ids]):
            return total
        await asyncio.sleep(0.05)
    raise AssertionError("events not sealed within 30 s: a long transaction on the server?")


async def seq_of(db: Database, event_id: uuid.UUID) -> int | None:
    async with db.catalog() as conn:
        value: int | None = await conn.fetchval(
            "SELECT seq FROM audit.leaves WHERE event_id = $1", event_id
        )
    return value


@pytest.fixture
def sealer(db: Database) -> Sealer:
    return Sealer(db)


async def test_sequence_numbers_are_contiguous_per_town(db: Database, sealer: Sealer) -> None:
    """Every town's leaves are numbered 0, 1, 2, … with no gap and no repeat, every
    committed event is sealed exactly once, and each leaf is its event's hash."""
    ids = [await record(db, town, f"contig-{i}") for i in range(3) for town in (KAGA, KOMATSU)]
    await seal_until(sealer, db, *ids)
    async with db.catalog() as conn:
        for town in (KAGA, KOMATSU):
            seqs = [
                r["seq"]
                for r in await conn.fetch(
                    "SELECT seq FROM audit.leaves WHERE tenant = $1 ORDER BY seq", town
                )
            ]
            assert seqs == list(range(len(seqs)))
        rows = await conn.fetch(
            f"SELECT l.seq, l.tenant AS leaf_town, l.leaf_hash, {tlog.EVENT_SELECT} "
            "FROM audit.leaves AS l JOIN audit.events AS e USING (event_id) "
            "WHERE l.event_id = ANY($1::uuid[])",
            ids,
        )
        assert len(rows) == len(ids)
        for r in rows:
            assert r["leaf_town"] == r["tenant"]
            assert bytes(r["leaf_hash"]) == tlog.event_leaf_hash(r)
        assert await conn.fetchval("SELECT count(*) = count(DISTINCT event_id) FROM audit.leaves")


async def test_a_late_commit_is_sealed_next_and_never_skipped(db: Database, sealer: Sealer) -> None:
    """An event whose transaction is still open is not sealed — nor anything written
    after it — and once it commits it gets the next number, before the later ones."""
    await sealer.seal_once()
    kaga = tenant_names(KAGA, db.settings.role_prefix)
    async with db.tenant(kaga) as held:
        payload = {**event_body("late"), "event_id": str(uuid.uuid4())}
        seal(payload, KAGA, (await db.town_keys(KAGA)).audit_mac)
        late = await held.fetchval("SELECT audit.record($1::jsonb)", payload)
        after = await record(db, KAGA, "after-late")  # committed while `late` is open
        other_town = await record(db, KOMATSU, "after-late")
        await sealer.seal_once()
        async with db.catalog() as conn:
            size_before = await tlog.tree_size(conn, KAGA)
        assert await seq_of(db, late) is None
        assert await seq_of(db, after) is None
        assert await seq_of(db, other_town) is None
    # `late` has committed now.
    await seal_until(sealer, db, late, after, other_town)
    assert await seq_of(db, late) == size_before
    assert await seq_of(db, after) == size_before + 1
    assert await seq_of(db, other_town) is not None


async def test_checkpoints_are_signed_by_the_towns_key_over_the_tree(
    db: Database, sealer: Sealer
) -> None:
    await seal_until(sealer, db, await record(db, KAGA, "checkpoint"))
    provider = db.keyring.provider
    kaga_key = provider.signing_public_key(KAGA)
    async with db.catalog() as conn:
        head = await tlog.latest_checkpoint(conn, KAGA, with_subtrees=True)
        assert head is not None
        assert await conn.fetchval(SIGNED_UP_TO_DATE, KAGA)
        leaves = [
            bytes(r["leaf_hash"])
            for r in await conn.fetch(
                "SELECT leaf_hash FROM audit.leaves WHERE tenant = $1 AND seq < $2 ORDER BY seq",
                KAGA,
                head.tree_size,
            )
        ]
        every = await conn.fetch(
            "SELECT tree_size, signed_at, root_hash, signature, public_key "
            "FROM audit.checkpoints WHERE tenant = $1",
            KAGA,
        )
    assert head.public_key == kaga_key
    assert head.signature_valid(kaga_key)
    assert not head.signature_valid(provider.signing_public_key(KOMATSU))
    assert head.root_hash == merkle.root(leaves)
    assert merkle.fold([h for _, _, h in head.subtrees]) == head.root_hash
    for row in every:
        older = tlog.Checkpoint(
            KAGA,
            row["tree_size"],
            bytes(row["root_hash"]),
            row["signed_at"],
            bytes(row["signature"]),
            bytes(row["public_key"]),
        )
        assert older.signature_valid(kaga_key)
        assert older.root_hash == merkle.root(leaves[: older.tree_size])


async def test_small_batches_drain_everything(db: Database) -> None:
    ids = [await record(db, KAGA, f"batch-{i}") for i in range(7)]
    await seal_until(Sealer(db, batch=2), db, *ids)
    seqs = sorted([await seq_of(db, i) for i in ids])  # type: ignore[type-var]
    assert seqs == list(range(seqs[0], seqs[0] + 7))
    async with db.catalog() as conn:
        head = await tlog.latest_checkpoint(conn, KAGA)
    assert head is not None
    assert head.tree_size == seqs[-1] + 1


async def test_a_town_without_a_signing_key_is_sealed_without_a_checkpoint(
    db: Database, tmp_path: Path
) -> None:
    keyless = LocalKeyProvider(tmp_path)
    async with db.catalog() as conn:
        # Hold the pass lock first: no other sealer (the service's, if it
        # runs) may seal this event with the town's key in between.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", SEAL_LOCK)
        before = await tlog.latest_checkpoint(conn, KAGA)
        event = await record(db, KAGA, "no-key")
        unsigned: list[str] = []
        for _ in range(600):
            unsigned += (await seal_pass(conn, keyless)).unsigned
            if await conn.fetchval("SELECT 1 FROM audit.leaves WHERE event_id = $1", event):
                break
            await asyncio.sleep(0.05)
        assert KAGA in unsigned
        assert await tlog.latest_checkpoint(conn, KAGA) == before
    assert await seq_of(db, event) is not None
    # The next pass with the town's key signs the whole tree again.
    await seal_until(Sealer(db), db, await record(db, KAGA, "key-back"))
    async with db.catalog() as conn:
        assert await conn.fetchval(SIGNED_UP_TO_DATE, KAGA)


class _FaultySigner(LocalKeyProvider):
    """A device that returns wrong signatures (as a failing HSM driver might)."""

    signatures_need_checking = True

    def sign(self, tenant: str, message: bytes) -> bytes:
        good = super().sign(tenant, message)
        return bytes([good[0] ^ 1]) + good[1:]


async def test_a_signature_that_does_not_verify_is_never_stored(db: Database) -> None:
    """With a provider whose signatures need checking, a bad one fails the
    pass (rolled back, retried later) instead of becoming a checkpoint that
    looks forged."""
    faulty = _FaultySigner(db.keyring.provider.directory)  # type: ignore[attr-defined]
    async with db.catalog() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", SEAL_LOCK)
            before = await tlog.latest_checkpoint(conn, KAGA)
            event = await record(db, KAGA, "faulty-signer")
            with pytest.raises(RuntimeError, match="does not verify"):
                for _ in range(600):
                    await seal_pass(conn, faulty)
                    if await conn.fetchval("SELECT 1 FROM audit.leaves WHERE event_id = $1", event):
                        break
                    await asyncio.sleep(0.05)
        finally:
            await tx.rollback()
        assert await tlog.latest_checkpoint(conn, KAGA) == before
    # The town's real key seals it afterwards.
    await seal_until(Sealer(db), db, event)
    async with db.catalog() as conn:
        assert await conn.fetchval(SIGNED_UP_TO_DATE, KAGA)


async def test_one_leader_at_a_time_and_another_takes_over(db: Database) -> None:
    """Workers compete for the session lock; one seals; when it stops, another leads."""
    lock = f"test.sealer.{secrets.token_hex(4)}"  # not the service's own lease
    workers = [Sealer(db, interval=0.05, leader_lock=lock) for _ in range(3)]
    tasks = [asyncio.create_task(w.run_forever()) for w in workers]
    try:

        async def leaders() -> list[Sealer]:
            for _ in range(200):
                found = [w for w in workers if w.is_leader]
                if found:
                    return found
                await asyncio.sleep(0.02)
            return []

        first = await leaders()
        assert len(first) == 1
        event = await record(db, KAGA, "leader-1")
        for _ in range(200):
            if await seq_of(db, event) is not None:
                break
            await asyncio.sleep(0.02)
        assert await seq_of(db, event) is not None
        assert sum(w.is_leader for w in workers) == 1

        first[0].stop()
        await tasks[workers.index(first[0])]
        second = [w for w in await leaders() if w is not first[0]]
        for _ in range(200):
            second = [w for w in workers if w.is_leader and w is not first[0]]
            if second:
                break
            await asyncio.sleep(0.02)
        assert len(second) == 1
        event = await record(db, KAGA, "leader-2")
        for _ in range(200):
            if await seq_of(db, event) is not None:
                break
            await asyncio.sleep(0.02)
        assert await seq_of(db, event) is not None
    finally:
        for w in workers:
            w.stop()
        await asyncio.gather(*tasks)
    assert not any(w.is_leader for w in workers)


@pytest.mark.parametrize("table", NEW_TABLES)
async def test_the_town_role_can_neither_read_nor_write_the_sealed_tables(
    db: Database, table: str
) -> None:
    kaga = tenant_names(KAGA, db.settings.role_prefix)
    for statement in (
        f"SELECT count(*) FROM {table}",
        f"UPDATE {table} SET tenant = tenant",
        f"DELETE FROM {table}",
        f"TRUNCATE {table}",
        f"INSERT INTO {table} (tenant) VALUES ('{KAGA}')",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.tenant(kaga) as uow:
                await uow.execute(statement)


async def test_the_town_role_cannot_call_the_sealing_functions(db: Database) -> None:
    kaga = tenant_names(KAGA, db.settings.role_prefix)
    for call in (
        "SELECT audit.append_leaves('{}', '{}', '{}', '{}', '{}')",
        "SELECT audit.append_nodes('{}', '{}', '{}', '{}')",
        "SELECT audit.add_checkpoints('{}', '{}', '{}', '{}', '{}', '{}')",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.tenant(kaga) as uow:
                await uow.execute(call)


@pytest.mark.parametrize("table", NEW_TABLES)
async def test_nobody_updates_deletes_or_truncates_the_sealed_tables(
    db: Database, sealer: Sealer, table: str
) -> None:
    """Triggers refuse even the platform role (a superuser in tests)."""
    await seal_until(sealer, db, await record(db, KAGA, "protect"))
    async with db.catalog() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") > 0
        for statement in (
            f"UPDATE {table} SET tenant = tenant",
            f"DELETE FROM {table}",
            f"TRUNCATE {table}",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                async with conn.transaction():
                    await conn.execute(statement)


async def test_the_sealing_functions_refuse_what_would_break_the_tree(
    db: Database, sealer: Sealer
) -> None:
    """A gap, a leaf for no event, a node over unsealed leaves, a checkpoint of a
    size the tree does not have: all refused (and nothing is written)."""
    event = await record(db, KAGA, "guards")
    async with db.catalog() as conn:
        row = await conn.fetchrow("SELECT occurred_at FROM audit.events WHERE event_id = $1", event)
        assert row is not None
        size = await tlog.tree_size(conn, KAGA)
        komatsu_size = await tlog.tree_size(conn, KOMATSU)
    hash32 = b"\x11" * 32
    cases = [
        (
            "without a gap",
            "SELECT audit.append_leaves($1, $2, $3, $4, $5)",
            ([KAGA], [size + 5], [event], [row["occurred_at"]], [hash32]),
        ),
        (
            "existing event",
            "SELECT audit.append_leaves($1, $2, $3, $4, $5)",
            ([KAGA], [size], [uuid.uuid4()], [row["occurred_at"]], [hash32]),
        ),
        (
            "existing event",  # an event of another town
            "SELECT audit.append_leaves($1, $2, $3, $4, $5)",
            ([KOMATSU], [komatsu_size], [event], [row["occurred_at"]], [hash32]),
        ),
        (
            "sealed leaves only",
            "SELECT audit.append_nodes($1, $2::smallint[], $3, $4)",
            ([KAGA], [3], [size], [hash32]),
        ),
        (
            "current tree",
            "SELECT audit.add_checkpoints($1, $2, $3, $4, $5, $6)",
            ([KAGA], [size + 1], [hash32], [row["occurred_at"]], [b"\0" * 64], [hash32]),
        ),
    ]
    for message, sql, args in cases:
        async with db.catalog() as conn:
            with pytest.raises(asyncpg.PostgresError, match=message):
                async with conn.transaction():
                    await conn.execute(sql, *args)
