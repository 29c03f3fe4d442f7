"""Sharing agreements in the console over HTTP: the providing town's admin
proposes, the receiving town's admin accepts, either revokes — each step the
API's step, in both towns' logs; staff are refused with the reason, another
town sees nothing, a CSRF-less form is refused.

Two towns of this module's own, so the shared towns' agreements stay as the
sharing tests expect them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared_gov.clock import today_jst
from shared_gov.db import Database
from tests.conftest import KOMATSU, auth
from tests.security.sod_helpers import manifest_json, town_code

from .flows import csrf_of, sign_in
from .test_console_admin import events

PROVIDER = town_code("47973")
RECIPIENT = town_code("47974")


@pytest.fixture(scope="module")
async def towns(client: Any, tokens: dict[str, str]) -> tuple[str, str]:
    for code in (PROVIDER, RECIPIENT):
        r = await client.post(
            "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
        )
        assert r.status_code in (200, 201), r.text
    return PROVIDER, RECIPIENT


def _proposal(token: str) -> dict[str, Any]:
    today = today_jst()
    return {
        "_csrf_token": token,
        "recipient": RECIPIENT,
        "recipient_departments": "kaigo",
        "purposes": ["kaigo.qualification"],
        "fields": ["family_name", "birth_date"],
        "actions": ["read"],
        "legal_basis": "介護保険法 第203条",
        "valid_from": today.isoformat(),
        "valid_until": (today + timedelta(days=30)).isoformat(),
    }


async def test_propose_accept_revoke_through_the_console(
    app: Any, db: Database, towns: tuple[str, str]
) -> None:
    transport = httpx.ASGITransport(app=app)
    base = "http://testserver.local"
    async with (
        httpx.AsyncClient(transport=transport, base_url=base) as provider,
        httpx.AsyncClient(transport=transport, base_url=base) as recipient,
    ):
        await sign_in(provider, PROVIDER, "admin-0001")
        await sign_in(recipient, RECIPIENT, "admin-0001")
        listed = await provider.get("/console/agreements/")
        assert listed.status_code == 200, listed.text
        proposed = await provider.post(
            "/console/agreements/propose", data=_proposal(csrf_of(listed.text))
        )
        assert proposed.status_code == 200, proposed.text
        assert "提案中" in proposed.text
        agreement = proposed.text.split("<code>")[1].split("</code>")[0]
        # Each step in both towns' logs, as the API's.
        for code in towns:
            assert (await events(db, code, "agreement.propose", "allowed"))[-1]["actor"] == (
                "admin-0001"
            )
        # The provider cannot accept its own proposal: the API's refusal, with its reason.
        refused = await provider.post(
            f"/console/agreements/{agreement}/accept",
            data={"_csrf_token": csrf_of(proposed.text)},
        )
        assert refused.status_code == 403, refused.text
        assert 'role="alert"' in refused.text
        shown = await recipient.get(f"/console/agreements/{agreement}")
        assert shown.status_code == 200
        accepted = await recipient.post(
            f"/console/agreements/{agreement}/accept", data={"_csrf_token": csrf_of(shown.text)}
        )
        assert accepted.status_code == 200, accepted.text
        assert "協定を受諾しました" in accepted.text
        assert "発効中" in accepted.text
        revoked = await provider.post(
            f"/console/agreements/{agreement}/revoke",
            data={"_csrf_token": csrf_of(proposed.text)},
        )
        assert revoked.status_code == 200, revoked.text
        assert "廃止" in revoked.text
    for code in towns:
        assert (await events(db, code, "agreement.revoke", "allowed"))[-1]["actor"] == (
            "admin-0001"
        )


async def test_staff_cannot_propose_and_other_towns_see_nothing(
    browser: httpx.AsyncClient, app: Any, db: Database, towns: tuple[str, str]
) -> None:
    await sign_in(browser, PROVIDER, "staff-0001")
    listed = await browser.get("/console/agreements/")
    assert listed.status_code == 200  # any of the town's people may read them
    assert "/console/agreements/propose" not in listed.text  # the form is the admins'
    before = len(await events(db, PROVIDER, "agreement.propose", "denied"))
    r = await browser.post("/console/agreements/propose", data=_proposal(csrf_of(listed.text)))
    assert r.status_code == 403
    assert 'role="alert"' in r.text
    assert len(await events(db, PROVIDER, "agreement.propose", "denied")) == before + 1
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as other:
        await sign_in(other, KOMATSU, "admin-0001")
        async with db.catalog() as conn:
            ids = await conn.fetch(
                "SELECT agreement_id::text FROM catalog.agreements "
                "WHERE provider = $1 AND kind = 'bilateral'",
                PROVIDER,
            )
        assert ids
        for row in ids:
            seen = await other.get(f"/console/agreements/{row[0]}")
            assert seen.status_code == 404
            assert "見つかりません" in seen.text


async def test_a_proposal_without_its_csrf_token_is_refused(
    browser: httpx.AsyncClient, db: Database, towns: tuple[str, str]
) -> None:
    await sign_in(browser, PROVIDER, "admin-0001")
    before = len(await events(db, PROVIDER, "agreement.propose"))
    r = await browser.post("/console/agreements/propose", data=_proposal("forged"))
    assert r.status_code == 403
    assert len(await events(db, PROVIDER, "agreement.propose")) == before


async def test_a_bad_proposal_is_a_422_page_never_a_500(
    browser: httpx.AsyncClient, db: Database, towns: tuple[str, str]
) -> None:
    await sign_in(browser, PROVIDER, "admin-0001")
    listed = await browser.get("/console/agreements/")
    token = csrf_of(listed.text)
    before = len(await events(db, PROVIDER, "agreement.propose", "allowed"))
    for bad in (
        {"recipient": "12345x"},
        {"valid_from": "not a date"},
        {"legal_basis": "x" * 1000},
        {"legal_basis": "a\x00b"},
        {"actions": ["read", "search", "write"]},
        {"recipient_departments": ""},
    ):
        r = await browser.post("/console/agreements/propose", data={**_proposal(token), **bad})
        assert r.status_code in (403, 409, 422), (bad.keys(), r.status_code)
        assert 'role="alert"' in r.text
    for path in ("not-an-id", "00000000-0000-0000-0000-000000000000"):
        assert (await browser.get(f"/console/agreements/{path}")).status_code == 404
        step = await browser.post(f"/console/agreements/{path}/revoke", data={"_csrf_token": token})
        assert step.status_code == 404
    assert len(await events(db, PROVIDER, "agreement.propose", "allowed")) == before
