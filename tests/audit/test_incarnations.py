"""Offboarding a town and onboarding the same code again: two towns, two logs.

The first town's log survives its offboarding and stays verifiable (with the
public key recorded when its private key was destroyed); the second town's
log is a new tree with its own key, and its auditors see only their own
town's events — in searches, exports, analyses, checkpoints and proofs.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from typer.testing import CliRunner

from shared_gov.audit import tlog
from shared_gov.audit.sealer import SEAL_LOCK, Sealer
from shared_gov.audit.verify import incarnation_keys, verify_tenant, verify_town
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.cli.audit import audit_app
from shared_gov.clock import JST
from shared_gov.db import Database
from shared_gov.settings import Settings, get_settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from tests.audit.planting import plant
from tests.audit.test_sealer import seal_until
from tests.conftest import auth
from tests.factories import resident_body

CODE = "139980"  # a made-up town (valid check digit) no other test uses
BASE = f"/api/v1/tenants/{CODE}"
# Planted after-hours reads of the first town, in a window of their own.
OLD_NIGHT = datetime(2024, 6, 4, 23, 0, tzinfo=JST)
WINDOW = {"from": "2024-06-01", "to": "2024-06-10"}
runner = CliRunner()


def _manifest() -> Any:
    return parse_manifest(
        {
            "code": CODE,
            "name": "試験町",
            "name_kana": "しけんちょう",
            "prefecture": "東京都",
            "population": 20_000,
            "departments": [
                {
                    "code": "shimin",
                    "name": "町民課",
                    "purposes": ["juki.registration", "juki.certificate"],
                },
                {"code": "kansa", "name": "監査室", "purposes": ["kansa.audit"]},
            ],
        }
    )


def _tokens(issuer: BuiltinIssuer, generation: str) -> dict[str, str]:
    return {
        "staff": issuer.mint(
            subject=f"{generation}-staff",
            tenant=CODE,
            department="shimin",
            roles=["staff"],
            mfa=True,
        ),
        "auditor": issuer.mint(
            subject=f"{generation}-auditor", tenant=CODE, department="kansa", roles=["auditor"]
        ),
    }


async def _activity(client: Any, token: str) -> list[str]:
    """A resident created and read through the API; the event ids of the town's log."""
    created = await client.post(
        f"{BASE}/residents", json=resident_body(address="東京都試験町1-1"), headers=auth(token)
    )
    assert created.status_code == 201, created.text
    resident = created.json()["id"]
    for _ in range(2):
        read = await client.get(f"{BASE}/residents/{resident}", headers=auth(token))
        assert read.status_code == 200, read.text
    return [resident]


async def _events(db: Database, actor: str) -> list[uuid.UUID]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT event_id FROM audit.events WHERE tenant = $1 AND actor = $2", CODE, actor
        )
    return [r["event_id"] for r in rows]


@pytest.fixture(scope="module")
async def towns(
    db: Database, app: Litestar, client: Any, issuer: BuiltinIssuer, tmp_path_factory: Any
) -> Any:
    """The first town: activity, sealed, offboarded; the second: activity, sealed."""
    await tenancy.onboard(db, _manifest())
    # The app learns of a town by NOTIFY; under load that can come after the
    # first request: read the catalogue now instead of racing it.
    await app.state.services.registry.refresh()
    first = _tokens(issuer, "old")
    old_residents = await _activity(client, first["staff"])
    # After-hours reads the first town's auditors would have been shown.
    planted = await plant(
        db,
        CODE,
        [{"actor": "old-night", "occurred_at": OLD_NIGHT + timedelta(minutes=i)} for i in range(3)],
    )
    old_events = await _events(db, "old-staff")
    old_events += [uuid.UUID(e) for e in planted]
    await seal_until(Sealer(db), db, *old_events)
    async with db.catalog() as conn:
        old_head = await tlog.latest_checkpoint(conn, CODE, with_subtrees=True)
    assert old_head is not None
    assert old_head.incarnation == 1
    old_key = db.keyring.provider.signing_public_key(CODE)

    await tenancy.offboard(db, CODE, tmp_path_factory.mktemp("export"))
    again = await tenancy.onboard(db, _manifest())
    assert again.outcome == "created"
    await app.state.services.registry.refresh()

    second = _tokens(issuer, "new")
    new_residents = await _activity(client, second["staff"])
    new_events = await _events(db, "new-staff")
    await seal_until(Sealer(db), db, *new_events)
    return {
        "first": first,
        "second": second,
        "old_events": old_events,
        "new_events": new_events,
        "old_head": old_head,
        "old_key": old_key,
        "old_residents": old_residents,
        "new_residents": new_residents,
    }


async def test_a_new_incarnation_is_a_new_log_with_its_own_key(db: Database, towns: Any) -> None:
    async with db.catalog() as conn:
        assert (
            await conn.fetchval("SELECT incarnation FROM catalog.tenants WHERE code = $1", CODE)
            == 2
        )
        placed = {
            r["event_id"]: (r["incarnation"], r["seq"])
            for r in await conn.fetch(
                "SELECT event_id, incarnation, seq FROM audit.leaves WHERE tenant = $1", CODE
            )
        }
        recorded = await conn.fetchval(
            "SELECT public_key FROM audit.incarnation_keys WHERE tenant = $1 AND incarnation = 1",
            CODE,
        )
        head = await tlog.latest_checkpoint(conn, CODE)
    assert {placed[e][0] for e in towns["old_events"]} == {1}
    assert {placed[e][0] for e in towns["new_events"]} == {2}
    # The new log starts again at 0 (with the onboarding's own change event).
    second = sorted(s for i, s in placed.values() if i == 2)
    assert second == list(range(len(second)))
    assert len(second) >= len(towns["new_events"])
    assert bytes(recorded) == towns["old_key"]
    new_key = db.keyring.provider.signing_public_key(CODE)
    assert new_key != towns["old_key"]
    assert head is not None
    assert head.incarnation == 2
    assert head.public_key == new_key
    assert head.body().startswith(f"shared-gov/audit/{CODE}/2\n".encode())
    assert head.signature_valid(new_key)
    # The first town's checkpoints keep their origin (and their signatures).
    assert towns["old_head"].body().startswith(f"shared-gov/audit/{CODE}\n".encode())
    assert towns["old_head"].signature_valid(towns["old_key"])


async def test_verify_passes_for_both_incarnations(db: Database, towns: Any) -> None:
    async with db.pool.acquire() as conn:
        keys = await incarnation_keys(
            conn, CODE, lambda: db.keyring.provider.signing_public_key(CODE)
        )
        assert keys == {1: towns["old_key"], 2: db.keyring.provider.signing_public_key(CODE)}
        reports = await verify_town(conn, CODE, keys, trusted=towns["old_head"])
    assert [(r.incarnation, r.ok) for r in reports] == [(1, True), (2, True)], [
        r.problems for r in reports
    ]
    assert reports[0].verified_size >= towns["old_head"].tree_size
    assert reports[1].leaves >= len(towns["new_events"])


async def test_the_new_towns_auditors_see_only_the_new_towns_events(
    db: Database, client: Any, towns: Any
) -> None:
    auditor = auth(towns["second"]["auditor"], purpose=None)
    found = await client.get(f"{BASE}/audit/events", params={"limit": 1000}, headers=auditor)
    assert found.status_code == 200, found.text
    ids = {uuid.UUID(e["event_id"]) for e in found.json()["events"]}
    assert set(towns["new_events"]) <= ids
    assert not ids & set(towns["old_events"])
    assert not {e["actor"] for e in found.json()["events"]} & {"old-staff", "old-night"}

    export = await client.get(f"{BASE}/audit/events", params={"format": "jsonl"}, headers=auditor)
    assert export.status_code == 200, export.text
    lines = [json.loads(line) for line in export.text.splitlines() if line.strip()]
    exported = {uuid.UUID(e["event_id"]) for e in lines if "event_id" in e}
    assert set(towns["new_events"]) <= exported
    assert not exported & set(towns["old_events"])

    # The first town's night reads would be an after-hours finding; not for the new town.
    analyses = await client.get(f"{BASE}/audit/analyses", params=WINDOW, headers=auditor)
    assert analyses.status_code == 200, analyses.text
    assert "old-night" not in analyses.text
    assert analyses.json()["after_hours"] == []


async def test_checkpoints_and_proofs_are_the_new_towns(
    db: Database, client: Any, towns: Any
) -> None:
    auditor = auth(towns["second"]["auditor"], purpose=None)
    head = await client.get(f"{BASE}/audit/checkpoint", headers=auditor)
    assert head.status_code == 200, head.text
    checkpoint = tlog.Checkpoint.from_json(head.json())
    assert checkpoint.incarnation == 2
    assert checkpoint.public_key == db.keyring.provider.signing_public_key(CODE)
    assert checkpoint.signature_valid()

    old = towns["old_events"][0]
    refused = await client.get(
        f"{BASE}/audit/proofs/inclusion", params={"event": str(old)}, headers=auditor
    )
    assert refused.status_code == 404, refused.text
    new = towns["new_events"][0]
    proof = await client.get(
        f"{BASE}/audit/proofs/inclusion", params={"event": str(new)}, headers=auditor
    )
    assert proof.status_code == 200, proof.text
    assert proof.json()["checkpoint"]["incarnation"] == 2
    beyond = await client.get(
        f"{BASE}/audit/proofs/consistency",
        params={"first": 1, "second": towns["old_head"].tree_size},
        headers=auditor,
    )
    # The old tree was larger than the new one: no proof about it here.
    if towns["old_head"].tree_size > checkpoint.tree_size:
        assert beyond.status_code == 404, beyond.text


async def test_the_old_towns_proofs_still_verify(db: Database, towns: Any) -> None:
    async with db.catalog() as conn:
        proof = await tlog.inclusion(conn, CODE, towns["old_events"][0], incarnation=1)
    assert proof is not None
    assert proof.checkpoint.incarnation == 1
    assert proof.checkpoint.signature_valid(towns["old_key"])


async def test_tampering_with_the_old_towns_log_is_still_detected(db: Database, towns: Any) -> None:
    victim = towns["old_events"][0]
    conn = await asyncpg.connect(db.url)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", SEAL_LOCK)
            await conn.execute("ALTER TABLE audit.events DISABLE TRIGGER no_update_delete")
            changed = await conn.execute(
                "UPDATE audit.events SET outcome = 'denied' WHERE event_id = $1", victim
            )
            assert changed == "UPDATE 1"
            await conn.execute("ALTER TABLE audit.events ENABLE TRIGGER no_update_delete")
            old = await verify_tenant(conn, CODE, public_key=towns["old_key"], incarnation=1)
            new = await verify_tenant(
                conn,
                CODE,
                public_key=db.keyring.provider.signing_public_key(CODE),
                incarnation=2,
            )
            # Moving an event into the new town's log is detected in both logs.
            await conn.execute("ALTER TABLE audit.events DISABLE TRIGGER no_update_delete")
            await conn.execute(
                "UPDATE audit.events SET incarnation = 2 WHERE event_id = $1",
                towns["old_events"][1],
            )
            await conn.execute("ALTER TABLE audit.events ENABLE TRIGGER no_update_delete")
            moved_old = await verify_tenant(conn, CODE, public_key=towns["old_key"], incarnation=1)
            moved_new = await verify_tenant(
                conn,
                CODE,
                public_key=db.keyring.provider.signing_public_key(CODE),
                incarnation=2,
            )
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    assert not old.ok
    assert old.first_bad is not None
    assert old.first_bad.kind == "event_changed"
    assert new.ok, new.problems
    assert "event_missing" in moved_old.counts
    assert "unsealed_event" in moved_new.counts


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, db: Database) -> Any:
    assert settings.database_url
    monkeypatch.setenv("SHARED_GOV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHARED_GOV_ROLE_PREFIX", settings.role_prefix)
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_verifies_every_incarnation_or_the_one_asked_for(
    cli_env: None, towns: Any, tmp_path: Path
) -> None:
    both = runner.invoke(audit_app, ["verify", "--tenant", CODE, "--workers", "0"])
    assert both.exit_code == 0, both.output
    assert f"town {CODE} incarnation 1:" in both.stdout
    assert f"town {CODE} incarnation 2:" in both.stdout
    assert both.stdout.count("OK") == 2

    saved = tmp_path / "old.json"
    saved.write_text(json.dumps(towns["old_head"].to_json()), encoding="utf-8")
    one = runner.invoke(
        audit_app,
        ["verify", "--tenant", CODE, "--incarnation", "1", "--trusted-checkpoint", str(saved)],
    )
    assert one.exit_code == 0, one.output
    assert "incarnation 2" not in one.stdout

    old_head = runner.invoke(audit_app, ["checkpoint", "--tenant", CODE, "--incarnation", "1"])
    assert old_head.exit_code == 0, old_head.output
    assert tlog.Checkpoint.from_json(json.loads(old_head.stdout)).incarnation == 1

    unknown = runner.invoke(audit_app, ["verify", "--tenant", CODE, "--incarnation", "9"])
    assert unknown.exit_code == 2, unknown.output
