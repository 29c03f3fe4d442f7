"""Audit recording: one event per access, in the access's transaction; denials in
their own; append-only storage the application cannot rewrite."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from shared_gov.audit.recorder import seal
from shared_gov.db import Database
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"


async def _events(db: Database, tenant: str, request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2 "
            "ORDER BY occurred_at",
            tenant,
            request_id,
        )
    return [dict(r) for r in rows]


async def _maced(db: Database, town: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with an event id and the town's MAC, as the service writes events
    (so that the shared log of the test session keeps verifying with MACs)."""
    payload = {**payload, "event_id": str(uuid.uuid4())}
    seal(payload, town, (await db.town_keys(town)).audit_mac)
    return payload


async def _subject_hash(db: Database, tenant: str, resident_id: str) -> int:
    return (await db.town_keys(tenant)).index("audit_subject", resident_id)


@pytest.fixture(scope="module")
async def person(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201
    result: dict[str, Any] = r.json()
    return result


async def test_a_read_writes_one_event(
    client: Any, tokens: dict[str, str], db: Database, person: dict[str, Any]
) -> None:
    """GET writes exactly one allowed event: who, what (hashed id, fields, rows,
    individual number touched), why — and no personal value."""
    r = await client.get(
        f"{BASE}/residents/{person['id']}",
        headers=auth(tokens["kaga"], **{"X-Request-ID": "audit-read-1"}),
    )
    assert r.status_code == 200
    events = await _events(db, KAGA, "audit-read-1")
    assert len(events) == 1
    e = events[0]
    assert e["action"] == "resident.read"
    assert e["outcome"] == "allowed"
    assert e["actor"] == "k-0001"
    assert e["department"] == "shimin"
    assert e["auth_strength"] == "mfa"
    assert e["purpose"] == "juki.registration"
    assert e["rows_returned"] == 1
    assert e["individual_number"] is True
    assert "family_name" in e["fields"]
    assert e["subjects"] == [await _subject_hash(db, KAGA, person["id"])]
    flat = repr(e)
    for value in (person["family_name"], person["individual_number"], person["id"]):
        assert value not in flat


async def test_a_denial_is_recorded_in_its_own_transaction(
    client: Any, issuer: Any, db: Database, person: dict[str, Any]
) -> None:
    """A 403 leaves an event with the reason and the determining policies."""
    token = issuer.mint(subject="k-kaigo", tenant=KAGA, department="kaigo", roles=["staff"])
    r = await client.post(
        f"{BASE}/residents/search",
        json={"individual_number": person["individual_number"]},
        headers=auth(token, purpose="kaigo.qualification", **{"X-Request-ID": "audit-deny-1"}),
    )
    assert r.status_code == 403
    (e,) = await _events(db, KAGA, "audit-deny-1")
    assert e["outcome"] == "denied"
    assert e["reason"] == "two-factor authentication required"
    assert e["policy_ids"] == ["search-by-individual-number-needs-mfa"]
    assert e["action"] == "resident.search"


async def test_cross_town_attempt_lands_in_the_target_towns_log(
    client: Any, tokens: dict[str, str], db: Database, person: dict[str, Any]
) -> None:
    """Town B's staff probing town A: 404 to them, a denied event in A's log."""
    r = await client.get(
        f"{BASE}/residents/{person['id']}",
        headers=auth(tokens["komatsu"], **{"X-Request-ID": "audit-cross-1"}),
    )
    assert r.status_code == 404
    (e,) = await _events(db, KAGA, "audit-cross-1")
    assert e["outcome"] == "denied"
    assert e["actor_tenant"] == KOMATSU
    assert e["reason"] == "caller from another town"
    assert await _events(db, KOMATSU, "audit-cross-1") == []


async def test_missing_purpose_and_not_found_are_recorded(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    missing = await client.get(
        f"{BASE}/residents/00000000-0000-4000-8000-000000000000",
        headers=auth(tokens["kaga"], purpose=None, **{"X-Request-ID": "audit-np"}),
    )
    assert missing.status_code == 400
    assert [e["outcome"] for e in await _events(db, KAGA, "audit-np")] == ["denied"]
    unknown = await client.get(
        f"{BASE}/residents/00000000-0000-4000-8000-000000000000",
        headers=auth(tokens["kaga"], **{"X-Request-ID": "audit-nf"}),
    )
    assert unknown.status_code == 404
    assert [e["outcome"] for e in await _events(db, KAGA, "audit-nf")] == ["not_found"]


async def test_if_the_audit_write_fails_the_access_fails(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """Make the audit insert raise: the registration answers an error, returns no
    data, and leaves no resident behind."""
    schema = tenant_names(KAGA, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        before = await conn.fetchval(f'SELECT count(*) FROM "{schema}".residents')
        await conn.execute(
            "CREATE TRIGGER test_fail BEFORE INSERT ON audit.events FOR EACH ROW "
            "WHEN (NEW.action = 'resident.register') EXECUTE FUNCTION audit.refuse()"
        )
    try:
        body = resident_body(family_name="監査失敗")
        r = await client.post(f"{BASE}/residents", json=body, headers=auth(tokens["kaga"]))
        assert r.status_code >= 500
        assert "監査失敗" not in r.text
        async with db.catalog() as conn:
            assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".residents') == before
    finally:
        async with db.catalog() as conn:
            await conn.execute("DROP TRIGGER test_fail ON audit.events")


async def test_the_town_cannot_read_rewrite_or_forge_the_log(db: Database) -> None:
    """A town's role can only call audit.record (stamped with its own town); it can
    neither read nor change events, and nobody can call record outside a town."""
    kaga = tenant_names(KAGA, db.settings.role_prefix)
    for statement in (
        "SELECT count(*) FROM audit.events",
        "UPDATE audit.events SET outcome = 'allowed'",
        "DELETE FROM audit.events",
        "TRUNCATE audit.events",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.tenant(kaga) as uow:
                await uow.execute(statement)
    async with db.tenant(kaga) as uow:
        event_id = await uow.fetchval(
            "SELECT audit.record($1::jsonb)",
            await _maced(
                db,
                KAGA,
                {"action": "forge", "resource_type": "x", "outcome": "allowed", "tenant": KOMATSU},
            ),
        )
    async with db.catalog() as conn:
        assert (
            await conn.fetchval("SELECT tenant FROM audit.events WHERE event_id = $1", event_id)
            == KAGA
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT audit.record('{}'::jsonb)")


async def test_even_the_owner_cannot_update_delete_or_truncate(db: Database) -> None:
    """Triggers refuse UPDATE, DELETE and TRUNCATE for everyone, on the partitioned
    table and on a partition directly (a superuser must disable them to tamper)."""
    async with db.tenant(tenant_names(KAGA, db.settings.role_prefix)) as uow:
        await uow.execute(
            "SELECT audit.record($1::jsonb)",
            await _maced(db, KAGA, {"action": "probe", "resource_type": "x", "outcome": "allowed"}),
        )
    async with db.catalog() as conn:
        # This month's partition holds the events the other tests wrote (row
        # triggers only fire on rows that exist).
        partition = "audit.events_" + await conn.fetchval("SELECT to_char(now(), 'YYYY_MM')")
        assert await conn.fetchval(f"SELECT count(*) FROM {partition}") > 0
        for statement in (
            "UPDATE audit.events SET reason = 'x'",
            "DELETE FROM audit.events",
            "TRUNCATE audit.events",
            f"TRUNCATE {partition}",
            f"DELETE FROM {partition}",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                async with conn.transaction():
                    await conn.execute(statement)


async def test_a_hostile_user_agent_cannot_break_the_audit_write(
    client: Any, tokens: dict[str, str], db: Database, person: dict[str, Any]
) -> None:
    """Control characters in User-Agent (NUL is refused by jsonb) are dropped from the
    event instead of failing the audit write and with it the request."""
    r = await client.get(
        f"{BASE}/residents/{person['id']}",
        headers=auth(
            tokens["kaga"], **{"X-Request-ID": "audit-ua", "User-Agent": "evil\x00\x1b[31m"}
        ),
    )
    assert r.status_code == 200
    (e,) = await _events(db, KAGA, "audit-ua")
    assert e["user_agent"] == "evil[31m"


async def test_a_hostile_purpose_header_is_still_a_recorded_400(
    client: Any, tokens: dict[str, str], db: Database, person: dict[str, Any]
) -> None:
    """An unknown X-Purpose with control characters gets its 400 and a denied event."""
    r = await client.get(
        f"{BASE}/residents/{person['id']}",
        headers=auth(tokens["kaga"], purpose="x\x01y", **{"X-Request-ID": "audit-bad-purpose"}),
    )
    assert r.status_code == 400
    (e,) = await _events(db, KAGA, "audit-bad-purpose")
    assert e["outcome"] == "denied"
    # The log holds the purpose Cedar decided on: none here, never the caller's text.
    assert e["purpose"] is None
