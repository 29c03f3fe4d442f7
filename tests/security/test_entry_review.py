"""The hostile review of the guarded entry (issue #15): each finding, as the attack.

M1  the events feed recorded whatever purpose the caller stated: an
    integration's ``X-Purpose: kansa.audit`` showed in a resident's access
    report as 監査 by 介護保険課;
M2  every refusal on the auditors' endpoints was recorded with kansa.audit,
    and refusals on records before any decision with the stated purpose;
M3  ``?format=json&format=csv``: recorded as a query, answered as an export;
M4  anyone could write their own text into any town's append-only log
    through a refused change's ``requested`` and ``target``;
L2  another town got a 422 naming its body's fields before its 404;
L3  a repeated X-Purpose was accepted (first wins); operators' agreement
    steps and malformed agreement bodies left no event anywhere.

Every test performs the attack on the real service and asserts it fails and
what the log then holds.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from tests.conftest import KAGA, KOMATSU, auth
from tests.domains.residents.events.conftest import start
from tests.factories import resident_body
from tests.sharing.test_agreements import proposal

BASE = f"/api/v1/tenants/{KAGA}"
PERSONAL = "山田太郎 090-1234-5678"


async def _events(db: Database, response: Any) -> list[dict[str, Any]]:
    """Every event of the request, in any town's log."""
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE request_id = $1 ORDER BY tenant",
            response.headers["x-request-id"],
        )
    return [dict(r) for r in rows]


async def _one(db: Database, response: Any) -> dict[str, Any]:
    rows = await _events(db, response)
    assert len(rows) == 1, [(r["tenant"], r["action"], r["outcome"]) for r in rows]
    return rows[0]


@pytest.fixture
async def resident(client: Any, tokens: dict[str, str]) -> str:
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201, r.text
    resident_id: str = r.json()["id"]
    return resident_id


# --- M1: the events feed records no purpose the caller merely stated ---------------


async def test_the_feed_records_no_purpose_the_caller_stated(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    """An integration states kansa.audit, an admin juki.registration: both reads are
    recorded with no purpose, and the resident's report shows none."""
    system = issuer.mint(subject="i-0001", tenant=KAGA, department="kaigo", roles=["integration"])
    cursor = await start(client, system, db)
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201
    person = r.json()["id"]
    stated = {system: "kansa.audit", tokens["kaga_admin"]: "juki.registration"}
    for token, purpose in stated.items():
        deadline = time.monotonic() + 30
        while True:
            page = await client.get(
                f"{BASE}/events",
                params={"after": cursor, "limit": 1},
                headers=auth(token, purpose=purpose),
            )
            assert page.status_code == 200, page.text
            if page.json()["count"]:
                break
            assert time.monotonic() < deadline, "the registration's event did not arrive"
            await asyncio.sleep(0.05)
        assert page.json()["events"][0]["resident_id"] == person
        event = await _one(db, page)
        assert (event["action"], event["outcome"]) == ("events.read", "allowed")
        assert event["purpose"] is None, purpose

    discloser = await _discloser(client, tokens, issuer)
    report = await client.get(
        f"{BASE}/residents/{person}/access-log", headers=auth(discloser, "juki.disclosure")
    )
    assert report.status_code == 200, report.text
    feed = [e for e in report.json()["entries"] if e["action"] == "events.read"]
    assert len(feed) == 2
    assert all(e["purpose"] is None for e in feed)
    assert "監査" not in report.text


async def _discloser(client: Any, tokens: dict[str, str], issuer: BuiltinIssuer) -> str:
    r = await client.put(
        f"{BASE}/staff/k-disc-review",
        json={"department": "shimin", "purposes": ["juki.disclosure"]},
        headers=auth(tokens["kaga_admin"], purpose=None),
    )
    assert r.status_code == 200, r.text
    return issuer.mint(subject="k-disc-review", tenant=KAGA, department="shimin", roles=["staff"])


# --- M2: a refusal records a purpose only when one was decided on for the caller -----


@pytest.mark.parametrize(
    "who", ["kaga", "kaga_admin", "integration", "operator", "komatsu", "komatsu_admin"]
)
@pytest.mark.parametrize("tail", ["/audit/events", "/audit/checkpoint"])
async def test_a_refusal_on_the_audit_log_records_no_audit_purpose(
    client: Any,
    tokens: dict[str, str],
    issuer: BuiltinIssuer,
    db: Database,
    who: str,
    tail: str,
) -> None:
    token = (
        issuer.mint(subject="i-0001", tenant=KAGA, department="kaigo", roles=["integration"])
        if who == "integration"
        else tokens[who]
    )
    r = await client.get(BASE + tail, headers=auth(token, purpose="kansa.audit"))
    assert r.status_code in (403, 404), r.text
    event = await _one(db, r)
    assert event["outcome"] == "denied"
    assert event["purpose"] is None


async def test_a_granted_audit_query_still_records_kansa_audit(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    r = await client.get(f"{BASE}/audit/events", headers=auth(tokens["kaga_auditor"], None))
    assert r.status_code == 200, r.text
    event = await _one(db, r)
    assert (event["outcome"], event["purpose"]) == ("allowed", "kansa.audit")


async def test_refusals_on_records_before_any_decision_record_no_purpose(
    client: Any, tokens: dict[str, str], db: Database, resident: str
) -> None:
    """An operator, another town, a body the route refused, a method it does not
    take: each states juki.registration; none of them is recorded with it."""
    url = f"{BASE}/residents/{resident}"
    attempts = [
        await client.get(url, headers=auth(tokens["operator"])),
        await client.get(url, headers=auth(tokens["komatsu"])),
        await client.post(f"{BASE}/residents", json={"x": 1}, headers=auth(tokens["kaga"])),
        await client.patch(url, json={}, headers=auth(tokens["kaga"])),
    ]
    assert [a.status_code for a in attempts] == [404, 404, 422, 405]
    for attempt in attempts:
        event = await _one(db, attempt)
        assert event["outcome"] == "denied"
        assert event["purpose"] is None, event["action"]
    # Once the entry bound the request to it, the purpose is recorded.
    granted = await client.get(url, headers=auth(tokens["kaga"]))
    assert (await _one(db, granted))["purpose"] == "juki.registration"


# --- M3 and L3: one value each, or 400 ------------------------------------------------


async def test_a_repeated_format_is_refused_not_exported(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    r = await client.get(
        f"{BASE}/audit/events?format=json&format=csv", headers=auth(tokens["kaga_auditor"], None)
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "format" in r.json()["detail"]
    event = await _one(db, r)
    # Recorded under the action the bound value would have performed.
    assert (event["action"], event["outcome"], event["reason"]) == (
        "audit.export",
        "denied",
        "repeated query parameter",
    )


async def test_a_non_auditor_repeating_format_gets_the_refusal_first(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    r = await client.get(
        f"{BASE}/audit/events?format=json&format=csv", headers=auth(tokens["kaga"], None)
    )
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("who", "url"),
    [
        # The feed: a single-valued limit repeated; its repeatable ``type`` is fine.
        ("integration", f"{BASE}/events?limit=1&limit=500"),
        # A route outside any town's entry.
        ("kaga", f"/api/v1/agreements?tenant={KAGA}&tenant={KOMATSU}"),
        # An administration route.
        ("kaga_admin", f"{BASE}/staff/k-0001/explain?purpose=juki.registration&mfa=false&mfa=true"),
    ],
)
async def test_repeated_single_valued_query_parameters_are_refused_everywhere(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, who: str, url: str
) -> None:
    token = (
        issuer.mint(subject="i-0001", tenant=KAGA, department="kaigo", roles=["integration"])
        if who == "integration"
        else tokens[who]
    )
    r = await client.get(url, headers=auth(token, None))
    assert r.status_code == 400, r.text
    assert "more than once" in r.json()["detail"]


async def test_a_repeatable_query_parameter_is_still_taken(
    client: Any, issuer: BuiltinIssuer
) -> None:
    system = issuer.mint(subject="i-0001", tenant=KAGA, department="kaigo", roles=["integration"])
    r = await client.get(
        f"{BASE}/events?type=resident.registered&type=resident.moved_in&limit=1",
        headers=auth(system, None),
    )
    assert r.status_code == 200, r.text


async def test_a_repeated_x_purpose_is_refused(
    client: Any, tokens: dict[str, str], db: Database, resident: str
) -> None:
    """Two X-Purpose headers: the first used to win. Now a 400, recorded with no purpose."""
    headers = [
        ("Authorization", f"Bearer {tokens['kaga']}"),
        ("X-Purpose", "juki.registration"),
        ("X-Purpose", "kaigo.qualification"),
    ]
    r = await client.get(f"{BASE}/residents/{resident}", headers=headers)
    assert r.status_code == 400, r.text
    assert "X-Purpose" in r.json()["detail"] or "x-purpose" in r.json()["detail"]
    event = await _one(db, r)
    assert (event["outcome"], event["reason"], event["purpose"]) == (
        "denied",
        "repeated header",
        None,
    )


# --- M4: refused callers write no text of their own into the town's log --------------


async def test_an_operator_writes_no_text_into_a_towns_log(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    r = await client.put(
        f"{BASE}/departments/evil",
        json={"name": PERSONAL},
        headers=auth(tokens["operator"], None),
    )
    assert r.status_code == 404
    event = await _one(db, r)
    assert event["tenant"] == KAGA
    assert event["reason"] == "operators never change a town's identity or permissions"
    assert "山田" not in str(event)
    assert "evil" not in str(event)


async def test_another_towns_staff_write_no_text_into_a_towns_log(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    r = await client.put(
        f"{BASE}/staff/山田花子%20加賀市大聖寺南町",
        json={"purposes": ["juki.registration"]},
        headers=auth(tokens["komatsu"], None),
    )
    assert r.status_code == 404
    event = await _one(db, r)
    assert (event["tenant"], event["reason"]) == (KAGA, "caller from another town")
    assert "山田" not in str(event)


async def test_the_towns_non_admins_write_no_text_into_its_log(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """Refused by the gate (Cedar: not an admin): the plain reason, not the request."""
    r = await client.put(
        f"{BASE}/departments/evil", json={"name": PERSONAL}, headers=auth(tokens["kaga"], None)
    )
    assert r.status_code == 403
    event = await _one(db, r)
    assert event["outcome"] == "denied"
    assert "山田" not in str(event)
    with pytest.raises(json.JSONDecodeError):
        json.loads(event["reason"])


# --- L2: another town gets its 404 before anything about its body --------------------


@pytest.mark.parametrize("who", ["komatsu", "komatsu_admin", "operator"])
@pytest.mark.parametrize(
    ("method", "tail"),
    [
        ("POST", "/residents/{R}/moves"),
        ("POST", "/residents"),
        ("POST", "/residents/search"),
        ("PUT", "/departments/zeimu"),
        ("PUT", "/staff/k-0001"),
        ("PUT", "/issuer"),
        ("POST", "/issuer/pending/" + str(uuid.UUID(int=7)) + "/approve"),
    ],
)
async def test_outsiders_get_their_404_before_any_body_error(
    client: Any,
    tokens: dict[str, str],
    db: Database,
    resident: str,
    who: str,
    method: str,
    tail: str,
) -> None:
    r = await client.request(
        method,
        BASE + tail.replace("{R}", resident),
        json={"no_such_field": [1, 2, 3]},
        headers=auth(tokens[who]),
    )
    assert r.status_code == 404, r.text
    assert "errors" not in r.json()
    event = await _one(db, r)
    assert event["outcome"] == "denied"
    assert "body" not in (event["reason"] or "")


# --- L3: agreements — operators and malformed bodies leave an event -------------------


async def test_an_operators_agreement_steps_are_recorded_in_the_parties_logs(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    proposed = await client.post(
        "/api/v1/agreements", json=proposal(), headers=auth(tokens["komatsu_admin"], None)
    )
    assert proposed.status_code == 201, proposed.text
    agreement = proposed.json()["id"]
    operator = auth(tokens["operator"], None)
    attempts = [
        (
            "agreement.propose",
            await client.post("/api/v1/agreements", json=proposal(), headers=operator),
        ),
        (
            "agreement.accept",
            await client.post(f"/api/v1/agreements/{agreement}/accept", headers=operator),
        ),
        (
            "agreement.revoke",
            await client.post(f"/api/v1/agreements/{agreement}/revoke", headers=operator),
        ),
    ]
    for action, r in attempts:
        assert r.status_code == 404, r.text
        events = await _events(db, r)
        assert sorted(e["tenant"] for e in events) == sorted([KAGA, KOMATSU]), action
        for event in events:
            assert (event["action"], event["outcome"], event["reason"]) == (
                action,
                "denied",
                "operators never act on a town's agreements",
            )
            assert event["actor"] == "op-1"
    # An id naming no agreement names no town: nothing to record in.
    nowhere = await client.post(f"/api/v1/agreements/{uuid.uuid4()}/revoke", headers=operator)
    assert nowhere.status_code == 404
    assert await _events(db, nowhere) == []


@pytest.mark.parametrize("body", [b"{", b'{"provider": "172031", "provider": "172065"}', b"{}"])
async def test_a_malformed_agreement_body_is_recorded_in_the_admins_town(
    client: Any, tokens: dict[str, str], db: Database, body: bytes
) -> None:
    r = await client.post(
        "/api/v1/agreements",
        content=body,
        headers={**auth(tokens["komatsu_admin"], None), "Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    event = await _one(db, r)
    assert (event["tenant"], event["action"], event["outcome"]) == (
        KOMATSU,
        "agreement.propose",
        "denied",
    )


async def test_a_non_admin_proposing_gets_the_refusal_not_a_body_error(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    r = await client.post(
        "/api/v1/agreements", json={"x": 1}, headers=auth(tokens["komatsu"], None)
    )
    assert r.status_code == 403, r.text
    event = await _one(db, r)
    assert (event["tenant"], event["action"], event["outcome"]) == (
        KOMATSU,
        "agreement.propose",
        "denied",
    )


async def test_agreement_reads_go_through_the_entry(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """Listing another town's agreements, reading one this town is no party to: the
    404 as before, now an event in the caller's own town; a granted read is none."""
    others = await client.get(
        "/api/v1/agreements", params={"tenant": KOMATSU}, headers=auth(tokens["kaga"], None)
    )
    assert others.status_code == 404
    event = await _one(db, others)
    assert (event["tenant"], event["action"], event["outcome"], event["reason"]) == (
        KAGA,
        "agreement.list",
        "denied",
        "the agreements of another town",
    )
    unknown = uuid.uuid4()
    missing = await client.get(f"/api/v1/agreements/{unknown}", headers=auth(tokens["kaga"], None))
    assert missing.status_code == 404
    event = await _one(db, missing)
    assert (event["tenant"], event["action"], event["outcome"], event["agreement_id"]) == (
        KAGA,
        "agreement.read",
        "not_found",
        str(unknown),
    )
    own = await client.get(
        "/api/v1/agreements", params={"tenant": KAGA}, headers=auth(tokens["kaga"], None)
    )
    assert own.status_code == 200, own.text
    assert await _events(db, own) == []
