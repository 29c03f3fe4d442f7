"""``audit verify``: an untouched log verifies; tampering as a database superuser
(triggers disabled, then re-enabled) is detected and the first bad position
located. Each tampering happens in a transaction that is rolled back, so the
session's log stays intact for the other tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from shared_gov.audit import tlog
from shared_gov.audit.sealer import SEAL_LOCK, Sealer, seal_pass
from shared_gov.audit.verify import verify_tenant
from shared_gov.cli.audit import audit_app
from shared_gov.crypto.providers import LocalKeyProvider
from shared_gov.db import Database
from shared_gov.settings import Settings, get_settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from tests.audit.test_sealer import record, seal_until
from tests.conftest import KAGA

runner = CliRunner()


@pytest.fixture(scope="module")
async def sealed(db: Database) -> dict[uuid.UUID, int]:
    """Twenty more Kaga events, sealed: event id -> seq."""
    ids = [await record(db, KAGA, f"verify-{i}") for i in range(20)]
    await seal_until(Sealer(db), db, *ids)
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT event_id, seq FROM audit.leaves WHERE event_id = ANY($1::uuid[])", ids
        )
    return {r["event_id"]: r["seq"] for r in rows}


@pytest.fixture
def kaga_key(db: Database) -> bytes:
    return db.keyring.provider.signing_public_key(KAGA)


@asynccontextmanager
async def superuser(db: Database) -> AsyncIterator[asyncpg.Connection]:
    """A superuser transaction that is rolled back at the end. It takes the sealer's
    pass lock first, so no sealer pass can interleave with the tampering."""
    conn = await asyncpg.connect(db.url)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", SEAL_LOCK)
            yield conn
        finally:
            await tx.rollback()
    finally:
        await conn.close()


async def _relations(conn: asyncpg.Connection) -> list[str]:
    """The audit tables and every partition of audit.events."""
    partitions = await conn.fetch(
        "SELECT inhrelid::regclass::text AS name FROM pg_inherits "
        "WHERE inhparent = 'audit.events'::regclass"
    )
    return [
        "audit.events",
        *[r["name"] for r in partitions],
        "audit.leaves",
        "audit.nodes",
        "audit.checkpoints",
    ]


async def _triggers(conn: asyncpg.Connection, enable: bool) -> None:
    for relation in await _relations(conn):
        await conn.execute(
            f"ALTER TABLE {relation} {'ENABLE' if enable else 'DISABLE'} TRIGGER USER"
        )


def _victim(sealed: dict[uuid.UUID, int]) -> tuple[uuid.UUID, int]:
    """An event in the middle of the ones this module sealed."""
    event_id, seq = sorted(sealed.items(), key=lambda item: item[1])[len(sealed) // 2]
    return event_id, seq


async def test_an_untouched_log_verifies(
    db: Database, sealed: dict[uuid.UUID, int], kaga_key: bytes
) -> None:
    async with db.catalog() as conn:
        trusted = await tlog.latest_checkpoint(conn, KAGA, with_subtrees=True)
    async with db.pool.acquire() as conn:
        report = await verify_tenant(conn, KAGA, public_key=kaga_key, trusted=trusted)
    assert report.ok, report.problems
    assert report.first_bad is None
    assert trusted is not None
    assert report.leaves >= trusted.tree_size >= max(sealed.values()) + 1
    assert report.verified_size >= trusted.tree_size
    assert report.checkpoints >= 1
    assert report.nodes >= report.leaves - 1 - report.leaves.bit_count() + 1


async def test_without_the_towns_key_nothing_is_vouched_for(
    db: Database, sealed: dict[uuid.UUID, int]
) -> None:
    async with db.pool.acquire() as conn:
        report = await verify_tenant(conn, KAGA, public_key=None)
    assert not report.ok
    assert set(report.counts) == {"unknown_key"}
    assert report.verified_size == 0


async def test_one_changed_field_is_located_exactly(
    db: Database, sealed: dict[uuid.UUID, int], kaga_key: bytes
) -> None:
    event_id, seq = _victim(sealed)
    async with superuser(db) as conn:
        await conn.execute("ALTER TABLE audit.events DISABLE TRIGGER no_update_delete")
        changed = await conn.execute(
            "UPDATE audit.events SET outcome = 'denied' WHERE event_id = $1", event_id
        )
        assert changed == "UPDATE 1"
        await conn.execute("ALTER TABLE audit.events ENABLE TRIGGER no_update_delete")
        report = await verify_tenant(conn, KAGA, public_key=kaga_key)
    assert not report.ok
    assert report.first_bad is not None
    assert (report.first_bad.kind, report.first_bad.position) == ("event_changed", seq)
    # The stored tree still matches what was signed: only the event is wrong.
    assert dict(report.counts) == {"event_changed": 1}
    # Every range reported contains the changed leaf.
    for p in report.problems:
        if p.end is not None:
            assert p.position is not None
            assert p.position <= seq < p.end, p


async def test_one_deleted_event_is_located_exactly(
    db: Database, sealed: dict[uuid.UUID, int], kaga_key: bytes
) -> None:
    event_id, seq = _victim(sealed)
    async with superuser(db) as conn:
        await conn.execute("ALTER TABLE audit.events DISABLE TRIGGER no_update_delete")
        assert await conn.execute("DELETE FROM audit.events WHERE event_id = $1", event_id) == (
            "DELETE 1"
        )
        await conn.execute("ALTER TABLE audit.events ENABLE TRIGGER no_update_delete")
        report = await verify_tenant(conn, KAGA, public_key=kaga_key)
    assert report.first_bad is not None
    assert (report.first_bad.kind, report.first_bad.position) == ("event_missing", seq)
    assert dict(report.counts) == {"event_missing": 1}


async def test_a_changed_event_with_its_leaf_rewritten_is_located_by_the_signed_heads(
    db: Database, sealed: dict[uuid.UUID, int], kaga_key: bytes
) -> None:
    """The tamperer also recomputes the leaf hash: the leaf matches the event again,
    but the signed checkpoints and the stored subtrees do not."""
    event_id, seq = _victim(sealed)
    async with superuser(db) as conn:
        await _triggers(conn, enable=False)
        await conn.execute("UPDATE audit.events SET actor = 'nobody' WHERE event_id = $1", event_id)
        row = await conn.fetchrow(
            f"SELECT {tlog.EVENT_SELECT} FROM audit.events AS e WHERE e.event_id = $1",
            event_id,
        )
        assert row is not None
        await conn.execute(
            "UPDATE audit.leaves SET leaf_hash = $2 WHERE event_id = $1",
            event_id,
            tlog.event_leaf_hash(row),
        )
        await _triggers(conn, enable=True)
        report = await verify_tenant(conn, KAGA, public_key=kaga_key)
    assert "event_changed" not in report.counts
    assert report.counts["root_mismatch"] >= 1
    assert report.counts["node_mismatch"] >= 1
    first = report.first_bad
    assert first is not None
    assert first.end is not None
    assert first.position is not None
    assert first.position <= seq < first.end
    assert first.end - first.position <= 2  # the level-1 subtree above the leaf


async def test_a_truncated_and_rechained_log_fails_and_is_located_by_a_saved_checkpoint(
    db: Database, sealed: dict[uuid.UUID, int], kaga_key: bytes, tmp_path: Path
) -> None:
    """Everything truncated, re-inserted without one event, re-sealed into a fresh
    tree and re-signed with another key: internally consistent, yet every checkpoint
    is signed by a stranger, and the checkpoint the auditor saved locates the change."""
    event_id, seq = _victim(sealed)
    async with db.catalog() as conn:
        saved = await tlog.latest_checkpoint(conn, KAGA, with_subtrees=True)
    assert saved is not None
    forged = LocalKeyProvider(tmp_path)
    forged.ensure_kek(KAGA)
    async with superuser(db) as conn:
        await conn.execute("CREATE TEMP TABLE copy ON COMMIT DROP AS SELECT * FROM audit.events")
        await _triggers(conn, enable=False)
        await conn.execute("TRUNCATE audit.events, audit.leaves, audit.nodes, audit.checkpoints")
        await conn.execute(
            "INSERT INTO audit.events SELECT * FROM copy WHERE event_id <> $1", event_id
        )
        await _triggers(conn, enable=True)
        remaining = await conn.fetchval("SELECT count(*) FROM audit.events")
        sealed_count = 0
        for _ in range(600):
            sealed_count += (await seal_pass(conn, forged, batch=100_000)).events
            if sealed_count == remaining:
                break
        assert sealed_count == remaining
        forged_head = await tlog.latest_checkpoint(conn, KAGA)
        assert forged_head is not None
        assert forged_head.signature_valid()  # valid, but not under the town's key

        alone = await verify_tenant(conn, KAGA, public_key=kaga_key)
        with_saved = await verify_tenant(conn, KAGA, public_key=kaga_key, trusted=saved)
    assert not alone.ok
    assert set(alone.counts) == {"unknown_key"}
    assert alone.verified_size == 0
    assert alone.counts["unknown_key"] == alone.checkpoints
    first = with_saved.first_bad
    assert first is not None
    assert first.kind == "trusted_mismatch"
    assert first.position is not None
    assert first.end is not None
    # The first complete subtree of the saved checkpoint that contains the gap.
    start, size = next((s, n) for s, n, _ in saved.subtrees if s <= seq < s + n)
    assert (first.position, first.end) == (start, start + size)


# --- the command line --------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, db: Database) -> Iterator[None]:
    """The CLI on the session's database, role prefix and key directory."""
    assert settings.database_url
    monkeypatch.setenv("SHARED_GOV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHARED_GOV_ROLE_PREFIX", settings.role_prefix)
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


NANAO = "172022"  # 七尾市: only the command-line test below onboards it


@pytest.fixture(scope="module")
async def nanao(db: Database) -> str:
    """A town of the command-line test's own, with a few events of its own.

    The command verifies everything of a town, its history and outbox links
    included: run on the session's shared Kaga, its outcome would depend on
    what every test before it left there. (That the shared towns stay
    verifiable whatever ran is checked at the end of every session: see
    ``tests.conftest.db``.)
    """
    await tenancy.onboard(
        db,
        parse_manifest(
            {
                "code": NANAO,
                "name": "七尾市",
                "name_kana": "ななおし",
                "prefecture": "石川県",
                "population": 50_000,
                "departments": [{"code": "shimin", "name": "市民課"}],
            }
        ),
    )
    ids = [await record(db, NANAO, f"verify-cli-{i}") for i in range(5)]
    # Sealed here: a `seal` pass seals only up to the cluster's oldest running
    # transaction, which another session on the server may hold back.
    await seal_until(Sealer(db), db, *ids)
    return NANAO


def test_cli_seal_checkpoint_and_verify(cli_env: None, nanao: str, tmp_path: Path) -> None:
    sealing = runner.invoke(audit_app, ["seal"])
    assert sealing.exit_code == 0, sealing.output
    assert "events sealed" in sealing.stdout

    saved = runner.invoke(audit_app, ["checkpoint", "--tenant", nanao])
    assert saved.exit_code == 0, saved.output
    document = json.loads(saved.stdout)
    checkpoint = tlog.Checkpoint.from_json(document)
    assert checkpoint.signature_valid()
    assert checkpoint.tree_size >= 5
    file = tmp_path / "nanao.json"
    file.write_text(saved.stdout, encoding="utf-8")

    ok = runner.invoke(audit_app, ["verify", "--tenant", nanao, "--trusted-checkpoint", str(file)])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.stdout
    assert "events/s" in ok.stdout


def test_cli_verify_fails_on_a_checkpoint_the_log_does_not_extend(
    cli_env: None, sealed: dict[uuid.UUID, int], tmp_path: Path
) -> None:
    """A "saved" checkpoint of another history (signed by another key): exit 1,
    with the problems and the first bad position."""
    saved = runner.invoke(audit_app, ["checkpoint", "--tenant", KAGA])
    real = tlog.Checkpoint.from_json(json.loads(saved.stdout))
    key = Ed25519PrivateKey.generate()
    other = tlog.Checkpoint(KAGA, real.tree_size, b"\x42" * 32, real.signed_at)
    other = tlog.Checkpoint(
        KAGA,
        other.tree_size,
        other.root_hash,
        other.signed_at,
        key.sign(other.body()),
        key.public_key().public_bytes_raw(),
    )
    file = tmp_path / "other.json"
    file.write_text(json.dumps(other.to_json()), encoding="utf-8")
    result = runner.invoke(
        audit_app, ["verify", "--tenant", KAGA, "--trusted-checkpoint", str(file)]
    )
    assert result.exit_code == 1, result.output
    assert "trusted_key" in result.output
    assert "trusted_mismatch" in result.output
    assert "first bad position" in result.output

    bad = runner.invoke(audit_app, ["verify", "--tenant", "12345"])
    assert bad.exit_code == 2


async def test_worker_processes_find_the_same(
    db: Database, sealed: dict[uuid.UUID, int], kaga_key: bytes
) -> None:
    """Hashing in worker processes (one exported snapshot) reports what one process
    does, on an intact log and on a committed change (undone afterwards)."""
    async with db.pool.acquire() as conn:
        alone = await verify_tenant(conn, KAGA, public_key=kaga_key)
        parallel = await verify_tenant(conn, KAGA, public_key=kaga_key, workers=2, url=db.url)
    assert alone.ok
    assert parallel.ok, parallel.problems
    assert (parallel.leaves, parallel.nodes, parallel.checkpoints) == (
        alone.leaves,
        alone.nodes,
        alone.checkpoints,
    )

    event_id, seq = _victim(sealed)
    conn = await asyncpg.connect(db.url)

    async def set_outcome(outcome: str) -> None:
        # Committed, so that the workers' sessions see it.
        async with conn.transaction():
            await conn.execute("ALTER TABLE audit.events DISABLE TRIGGER no_update_delete")
            await conn.execute(
                "UPDATE audit.events SET outcome = $2 WHERE event_id = $1", event_id, outcome
            )
            await conn.execute("ALTER TABLE audit.events ENABLE TRIGGER no_update_delete")

    try:
        original = await conn.fetchval(
            "SELECT outcome FROM audit.events WHERE event_id = $1", event_id
        )
        await set_outcome("error")
        try:
            async with db.pool.acquire() as pooled:
                report = await verify_tenant(
                    pooled, KAGA, public_key=kaga_key, workers=2, url=db.url
                )
        finally:
            await set_outcome(original)
    finally:
        await conn.close()
    assert report.first_bad is not None
    assert (report.first_bad.kind, report.first_bad.position) == ("event_changed", seq)
    assert dict(report.counts) == {"event_changed": 1}
    async with db.pool.acquire() as pooled:
        assert (await verify_tenant(pooled, KAGA, public_key=kaga_key)).ok
