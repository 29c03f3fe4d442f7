"""The second hostile review of the guarded entry: each finding, as the attack.

F1  a route's own refusal before any Cedar decision (the access report asked
    for another purpose) was recorded with the purpose the caller stated;
F2  an operator proposing an agreement got a 422 naming the body's fields,
    recorded nowhere;
F3  a console export with a bad filter was not recorded;
F4  a supplier could tell a missing invoice from another supplier's.

Every test performs the attack on the real service and asserts it fails and
what the log then holds.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body
from tests.security.test_entry_review import _discloser, _events, _one
from tests.sharing.test_agreements import proposal

BASE = f"/api/v1/tenants/{KAGA}"


@pytest.fixture
async def resident(client: Any, tokens: dict[str, str]) -> str:
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201, r.text
    resident_id: str = r.json()["id"]
    return resident_id


# --- F1: a purpose is recorded only once Cedar decided on it -------------------------


@pytest.mark.parametrize("who", ["kaga_auditor", "kaga"])
async def test_the_access_report_for_another_purpose_records_none(
    client: Any, tokens: dict[str, str], db: Database, resident: str, who: str
) -> None:
    """An auditor and 市民課 state kansa.audit for the access report: the route
    refuses it before Cedar decides anything, so the event carries no purpose."""
    r = await client.get(
        f"{BASE}/residents/{resident}/access-log", headers=auth(tokens[who], "kansa.audit")
    )
    assert r.status_code == 403, r.text
    assert "juki.disclosure" in r.json()["detail"]
    event = await _one(db, r)
    assert event["outcome"] == "denied"
    assert event["purpose"] is None


async def test_a_granted_access_report_records_the_disclosure_purpose(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database, resident: str
) -> None:
    discloser = await _discloser(client, tokens, issuer)
    r = await client.get(
        f"{BASE}/residents/{resident}/access-log", headers=auth(discloser, "juki.disclosure")
    )
    assert r.status_code == 200, r.text
    event = await _one(db, r)
    assert (event["outcome"], event["purpose"]) == ("allowed", "juki.disclosure")


# --- F2: an operator's proposal is refused before its body --------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"provider": KAGA},
        {"provider": KAGA, "recipient": KOMATSU, "x": 1},
        "valid",
    ],
)
async def test_an_operators_proposal_is_refused_before_its_body(
    client: Any, tokens: dict[str, str], db: Database, body: Any
) -> None:
    """No 422 naming the fields an operator sent: the 404, recorded in every
    town the body names that is on this deployment."""
    sent = proposal() if body == "valid" else body
    r = await client.post("/api/v1/agreements/", json=sent, headers=auth(tokens["operator"], None))
    assert r.status_code == 404, r.text
    assert "provider" not in r.text
    assert "recipient" not in r.text
    events = await _events(db, r)
    named = {sent["provider"], sent.get("recipient", sent["provider"])}
    assert sorted(e["tenant"] for e in events) == sorted(named)
    for event in events:
        assert (event["action"], event["outcome"], event["reason"], event["actor"]) == (
            "agreement.propose",
            "denied",
            "operators never act on a town's agreements",
            "op-1",
        )


async def test_an_operators_undecodable_proposal_is_a_404_recorded_nowhere(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    r = await client.post(
        "/api/v1/agreements",
        content=b"{",
        headers={**auth(tokens["operator"], None), "Content-Type": "application/json"},
    )
    assert r.status_code == 404, r.text
    assert await _events(db, r) == []
