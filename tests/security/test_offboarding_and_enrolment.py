"""Offboarding leaves its trace; enrolment guesses cost the town nothing (hostile review
H1, M1, M4).

- H1: the status change, the export (how many records, which file, no personal
  value) and the key destruction are events in the town's log, written while
  its role and keys still exist.
- M1: wrong enrolment codes have a budget of their own, counted only when they
  fail: a flood of them from many addresses neither locks out the correct code
  nor hides forged tokens' ``authenticate`` events for the town.
- M4: an enrolment's actor is the fixed ``enrolment``; a refused attempt does
  not record the admin the caller claimed at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from shared_gov.api.pipeline import BearerAuthenticationMiddleware
from shared_gov.auth.failures import (
    ENROLMENT_PER_TOWN,
    ENROLMENT_STATE_KEY,
    FailedLoginGate,
    enrolment_gate,
)
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from shared_gov.settings import Settings
from tests.conftest import auth
from tests.factories import resident_body
from tests.security.offboarding_helpers import offboard_cli
from tests.security.sod_helpers import OwnIdp, manifest_json, town_code

LOGIN_GATE = BearerAuthenticationMiddleware.GATE_STATE_KEY


async def _log(db: Database, town: str, action: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND action = $2 ORDER BY occurred_at",
            town,
            action,
        )
    return [dict(r) for r in rows]


# --- H1 ------------------------------------------------------------------------


async def test_offboarding_records_status_export_and_key_destruction_in_the_towns_log(
    client: Any,
    db: Database,
    tokens: dict[str, str],
    issuer: BuiltinIssuer,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    tmp_path: Path,
) -> None:
    code = town_code("47943")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert created.status_code == 201, created.text
    clerk = issuer.mint(subject="c-1", tenant=code, department="shimin", roles=["staff"], mfa=True)
    names = [("退去", "一郎"), ("退去", "二郎"), ("残留", "花子")]
    for family, given in names:
        r = await client.post(
            f"/api/v1/tenants/{code}/residents",
            json=resident_body(family_name=family, given_name=given),
            headers=auth(clerk),
        )
        assert r.status_code == 201, r.text

    path = await offboard_cli(monkeypatch, settings, code, tmp_path)

    (status,) = await _log(db, code, "tenant.offboard")
    (export,) = await _log(db, code, "tenant.export")
    (keys,) = await _log(db, code, "tenant.keys_destroy")
    # In this order, each by the operator who ran the command, in the log of the
    # incarnation that ended.
    assert status["occurred_at"] < export["occurred_at"] < keys["occurred_at"]
    for event in (status, export, keys):
        assert event["outcome"] == "allowed"
        assert event["actor"].startswith("os:")
        assert "operator" in event["roles"]
        assert event["incarnation"] == 1
        for family, given in names:
            assert family not in event["reason"]
            assert given not in event["reason"]
    change = json.loads(status["reason"])
    assert (change["before"]["status"], change["after"]["status"]) == ("active", "inactive")
    exported = json.loads(export["reason"])["after"]
    assert exported["residents"] == len(names)
    assert exported["file"] == str(path.resolve())
    content = await asyncio.to_thread(path.read_bytes)
    assert exported["sha256"] == hashlib.sha256(content).hexdigest()
    destroyed = json.loads(keys["reason"])["after"]
    assert (destroyed["status"], destroyed["keys"]) == ("offboarded", "destroyed")
    async with db.catalog() as conn:
        public_key = await conn.fetchval(
            "SELECT public_key FROM audit.incarnation_keys WHERE tenant = $1 AND incarnation = 1",
            code,
        )
        status_now = await conn.fetchval("SELECT status FROM catalog.tenants WHERE code = $1", code)
    assert status_now == "offboarded"
    assert destroyed["public_signing_key_sha256"] == hashlib.sha256(public_key).hexdigest()


# --- M1, M4 ----------------------------------------------------------------------


@pytest.fixture
def fresh_gates(app: Litestar, client: Any) -> Iterator[tuple[FailedLoginGate, FailedLoginGate]]:
    """The production limits, starting from nothing (other tests' failures do not count)."""
    previous = {key: app.state.get(key) for key in (LOGIN_GATE, ENROLMENT_STATE_KEY)}
    logins, enrolments = FailedLoginGate(), enrolment_gate()
    app.state[LOGIN_GATE] = logins
    app.state[ENROLMENT_STATE_KEY] = enrolments
    yield logins, enrolments
    for key, value in previous.items():
        if value is None:
            app.state.pop(key, None)
        else:
            app.state[key] = value


@pytest.fixture
async def addresses(app: Litestar, client: Any) -> AsyncIterator[list[httpx.AsyncClient]]:
    """26 clients of the running app, each from an address of its own."""
    opened: list[httpx.AsyncClient] = []
    try:
        for i in range(26):
            transport = httpx.ASGITransport(app=app, client=(f"198.51.100.{i + 1}", 40000))
            opened.append(
                httpx.AsyncClient(transport=transport, base_url="http://testserver.local")
            )
        yield opened
    finally:
        for c in opened:
            await c.aclose()


async def test_a_flood_of_wrong_codes_neither_locks_enrolment_nor_hides_forged_tokens(
    client: Any,
    db: Database,
    tokens: dict[str, str],
    issuer: BuiltinIssuer,
    fresh_gates: tuple[FailedLoginGate, FailedLoginGate],
    addresses: list[httpx.AsyncClient],
) -> None:
    """The review's attack: 1,200 wrong codes from 25 addresses within a minute."""
    code = town_code("47944")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    secret = created.json()["enrolment_code"]
    idp = OwnIdp(f"https://idp.town{code}.example")
    url = f"/api/v1/tenants/{code}/enrolment"
    wrong = {"code": "w" * 32, "first_admin": "j-1", "issuer": idp.config()}

    async def flood(c: httpx.AsyncClient) -> list[int]:
        return [(await c.post(url, json=wrong)).status_code for _ in range(48)]

    statuses = [s for batch in await asyncio.gather(*map(flood, addresses[:25])) for s in batch]
    assert len(statuses) == 1200
    assert set(statuses) == {403}
    denied = [e["reason"] for e in await _log(db, code, "tenant.enrol") if e["outcome"] == "denied"]
    # Wrong codes recorded up to the town's enrolment budget; the rest refused
    # as "too many" (recorded within the budget for callers without a token).
    wrong_codes = [r for r in denied if '"refused":"wrong enrolment code"' in r]
    assert len(wrong_codes) == ENROLMENT_PER_TOWN
    logins, enrolments = fresh_gates
    assert enrolments.suppressed_total == 1200 - ENROLMENT_PER_TOWN
    assert logins.suppressed_total == 0

    # A forged token for the town, from a fresh address: still in the town's log.
    token = issuer.mint(subject="f-1", tenant=code, department="shimin", roles=["staff"])
    other = issuer.mint(subject="f-2", tenant=code, department="shimin", roles=["staff"])
    forged = ".".join([*token.split(".")[:2], other.split(".")[2]])
    before = len(await _log(db, code, "authenticate"))
    r = await addresses[25].get(
        f"/api/v1/tenants/{code}/departments", headers=auth(forged, purpose=None)
    )
    assert r.status_code == 401
    after = await _log(db, code, "authenticate")
    assert len(after) == before + 1
    assert after[-1]["outcome"] == "denied"

    # The correct code from one of the flooding addresses: enrolled.
    ok = await addresses[0].post(url, json={**wrong, "code": secret})
    assert ok.status_code == 201, ok.text


async def test_a_refused_enrolment_records_a_fixed_actor_and_not_the_claimed_admin(
    client: Any, db: Database, tokens: dict[str, str], fresh_gates: Any
) -> None:
    code = town_code("47945")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert created.status_code == 201
    idp = OwnIdp(f"https://idp.town{code}.example")
    url = f"/api/v1/tenants/{code}/enrolment"
    claimed = "k-admin-01" + "Ｘ" * 100
    r = await client.post(
        url, json={"code": "w" * 32, "first_admin": claimed, "issuer": idp.config()}
    )
    assert r.status_code == 403
    (event,) = [e for e in await _log(db, code, "tenant.enrol") if e["outcome"] == "denied"]
    assert event["actor"] == "enrolment"
    # The claimed admin is the caller's text: recorded neither as actor nor as data.
    assert "k-admin-01" not in str(event)
    # A subject no token could carry is refused before anything else.
    for bad in ("k-admin\u0007", "k\nadmin", "\u200bk"):
        r = await client.post(
            url,
            json={
                "code": created.json()["enrolment_code"],
                "first_admin": bad,
                "issuer": idp.config(),
            },
        )
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["pointer"] == "/first_admin"
    ok = await client.post(
        url,
        json={
            "code": created.json()["enrolment_code"],
            "first_admin": "j-1",
            "issuer": idp.config(),
        },
    )
    assert ok.status_code == 201, ok.text
    (accepted,) = [e for e in await _log(db, code, "tenant.enrol") if e["outcome"] == "allowed"]
    assert accepted["actor"] == "enrolment"
    assert json.loads(accepted["reason"])["after"]["first_admin"] == "j-1"


async def test_refusals_with_the_towns_keys_not_cached_never_need_a_second_connection(
    client: Any, db: Database, settings: Settings, tokens: dict[str, str]
) -> None:
    """A burst of refused changes on a worker that has not loaded the town's keys yet
    (a fresh worker, or right after a change invalidated them) with a pool of two:
    each refusal's transaction holds a pooled connection and needs the town's audit
    key for its event's MAC. Taking a second connection for the key while holding
    one would exhaust the pool (every caller waiting for one more), and every
    refusal would go unrecorded. All are recorded."""
    import dataclasses

    from shared_gov.audit.recorder import operator_actor
    from shared_gov.crypto.keyring import keyring_from_settings
    from shared_gov.towns.changes import record_refusal, refusal_event

    code = town_code("47946")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert created.status_code == 201, created.text
    assert settings.database_url
    tight = dataclasses.replace(settings, pool_min=1, pool_max=2, pool_acquire_timeout=2.0)
    # A keyring of its own: the town's keys are not cached in this "worker".
    small = Database(settings.database_url, tight, keyring_from_settings(tight))
    await small.open()
    try:
        event = refusal_event("tenant.enrol", "enrolment", code, {}, "burst", "denied")
        await asyncio.gather(
            *(record_refusal(small, code, operator_actor("test"), event) for _ in range(8))
        )
    finally:
        await small.close()
    recorded = [e for e in await _log(db, code, "tenant.enrol") if "burst" in (e["reason"] or "")]
    assert len(recorded) == 8
    # MACed like every event of the town's (the key was loaded, not skipped).
    assert all(e["mac"] is not None for e in recorded)
