"""介護保険課's console pages over HTTP (no browser): real sign-in, Cedar, PostgreSQL.

The queue, a determination with its legal date and basis, confirm / correct /
reject through the forms (CSRF token, the version the page showed), the
corrector refused in Japanese when confirming, insured persons looked up by
POST; another town's staff get the 404 and a wrong department the 403, each
a denial in the town's log; every page's event is the one the API call
behind it leaves (action, resource type, outcome, purpose, fields, rows,
subjects). The same journey in Chromium: test_console_browser.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar

from shared_gov.db import Database
from shared_gov.domains.kaigo.models import Determination
from tests.conftest import KAGA, KOMATSU, auth
from tests.domains.kaigo.conftest import Register, queue_of, settle
from tests.web.flows import csrf_of, sign_in

Q = "kaigo.qualification"
PAGES = f"/console/towns/{KAGA}/kaigo"
API = f"/api/v1/tenants/{KAGA}/kaigo"


@pytest.fixture
async def browser(app: Litestar, client: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie jar of its own over the running app (``client`` runs the lifespan)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
async def second(app: Litestar, client: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Another person's browser."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c


async def _gain(db: Database, register_: Register) -> tuple[dict[str, Any], Determination]:
    person = await register_.move_in(birth_date="1950-10-10")
    await settle(db)
    (d,) = await queue_of(db, KAGA, person["id"])
    return person, d


async def _events(db: Database, request_id: str, tenant: str = KAGA) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2 "
            "ORDER BY occurred_at",
            tenant,
            request_id,
        )
    return [dict(r) for r in rows]


def _shape(event: dict[str, Any]) -> tuple[Any, ...]:
    """What must be the same for a page and the API call behind it."""
    return (
        event["action"],
        event["resource_type"],
        event["outcome"],
        event["purpose"],
        sorted(event["fields"] or []),
        event["rows_returned"],
        len(event["subjects"] or []),
    )


def _rid() -> str:
    return f"console-{uuid.uuid4().hex[:12]}"


async def test_the_clerk_opens_the_queue_and_confirms_a_determination(
    db: Database,
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    register_: Register,
    kaigo_tokens: dict[str, str],
) -> None:
    person, d = await _gain(db, register_)
    await sign_in(browser, KAGA, "kaigo-0001")
    home = await browser.get("/console/home")
    assert f"/console/towns/{KAGA}/kaigo/determinations" in home.text
    rid = _rid()
    queue = await browser.get(f"{PAGES}/determinations", headers={"X-Request-ID": rid})
    assert queue.status_code == 200, queue.text
    assert f"{PAGES}/determinations/{d.id}" in queue.text
    assert "資格取得" in queue.text
    (listed,) = await _events(db, rid)
    assert (listed["action"], listed["outcome"], listed["purpose"]) == (
        "kaigo.determination.list",
        "allowed",
        Q,
    )
    # Filters as the API's: a kind the queue does not know is the API's 422.
    wrong = await browser.get(f"{PAGES}/determinations", params={"kind": "nonsense"})
    assert wrong.status_code == 422
    page = await browser.get(f"{PAGES}/determinations/{d.id}")
    assert page.status_code == 200, page.text
    assert d.proposal.legal_basis in page.text
    assert d.proposal.date.isoformat() in page.text
    assert d.deadline.isoformat() in page.text
    for q in d.proposal.questions:
        assert f'for="answer-{q.code}"' in page.text
    answers = {f"answer.{q.code}": "確認済み" for q in d.proposal.questions}
    rid = _rid()
    done = await browser.post(
        f"{PAGES}/determinations/{d.id}/confirm",
        data={"_csrf_token": csrf_of(page.text), "version": str(d.version), **answers},
        headers={"X-Request-ID": rid},
    )
    assert done.status_code == 200, done.text
    assert "確定しました。" in done.text
    assert "kaigo-0001" in done.text  # decided by
    (console_event,) = await _events(db, rid)
    # The API's confirm of another determination leaves the same event.
    _, other = await _gain(db, register_)
    token = kaigo_tokens["kaga"]
    etag = (await client.get(f"{API}/determinations/{other.id}", headers=auth(token, Q))).headers[
        "ETag"
    ]
    rid_api = _rid()
    r = await client.post(
        f"{API}/determinations/{other.id}/confirm",
        json={"answers": {q.code: "確認済み" for q in other.proposal.questions}},
        headers=auth(token, Q, **{"If-Match": etag, "X-Request-ID": rid_api}),
    )
    assert r.status_code == 200, r.text
    (api_event,) = await _events(db, rid_api)
    assert _shape(console_event) == _shape(api_event)
    assert console_event["action"] == "kaigo.determination.confirm"
    # Confirmed: the page says so and offers no decision any more.
    again = await browser.get(f"{PAGES}/determinations/{d.id}")
    assert "この判定は処理済みです。" in again.text
    assert "/confirm" not in again.text
    # The insured person, found by POST: the resident id is in no URL.
    form = await browser.get(f"{PAGES}/insured")
    assert form.status_code == 200
    rid = _rid()
    found = await browser.post(
        f"{PAGES}/insured",
        data={"_csrf_token": csrf_of(form.text), "resident_id": person["id"], "purpose": Q},
        headers={"X-Request-ID": rid},
    )
    assert found.status_code == 200, found.text
    assert person["id"] not in str(found.url)
    assert d.proposal.date.isoformat() in found.text  # the period's gain date
    (search_event,) = await _events(db, rid)
    api_search = _rid()
    r = await client.post(
        f"{API}/insured/search",
        json={"resident_id": person["id"]},
        headers=auth(token, Q, **{"X-Request-ID": api_search}),
    )
    assert r.status_code == 200
    assert _shape(search_event) == _shape((await _events(db, api_search))[0])
    insured_id = r.json()["insured"][0]["id"]
    year = d.proposal.fiscal_year
    rid = _rid()
    months = await browser.post(
        f"{PAGES}/insured/premium-months",
        data={
            "_csrf_token": csrf_of(found.text),
            "insured_id": insured_id,
            "fiscal_year": str(year),
            "purpose": Q,
        },
        headers={"X-Request-ID": rid},
    )
    assert months.status_code == 200, months.text
    assert f"{year}年度" in months.text
    api_months = _rid()
    r = await client.get(
        f"{API}/insured/{insured_id}/premium-months",
        params={"fiscal_year": str(year)},
        headers=auth(token, Q, **{"X-Request-ID": api_months}),
    )
    assert r.status_code == 200
    assert _shape((await _events(db, rid))[0]) == _shape((await _events(db, api_months))[0])
    for month in r.json()["months"]:
        assert month in months.text


async def test_who_corrected_cannot_confirm_and_is_told_why_in_japanese(
    db: Database,
    browser: httpx.AsyncClient,
    second: httpx.AsyncClient,
    register_: Register,
) -> None:
    _person, d = await _gain(db, register_)
    await sign_in(browser, KAGA, "kaigo-0001")
    page = await browser.get(f"{PAGES}/determinations/{d.id}")
    corrected_day = d.proposal.date - timedelta(days=1)
    # A correction needs its reason: the API's field error, on the page.
    missing = await browser.post(
        f"{PAGES}/determinations/{d.id}/correct",
        data={"_csrf_token": csrf_of(page.text), "version": str(d.version)},
    )
    assert missing.status_code == 422
    assert "/reason" in missing.text
    corrected = await browser.post(
        f"{PAGES}/determinations/{d.id}/correct",
        data={
            "_csrf_token": csrf_of(page.text),
            "version": str(d.version),
            "reason": "転入日を届出書で確認した",
            "date": corrected_day.isoformat(),
        },
    )
    assert corrected.status_code == 200, corrected.text
    assert "訂正しました。" in corrected.text
    assert corrected_day.isoformat() in corrected.text
    # The page showed version 1: a form still holding it is stale now.
    rid = _rid()
    stale = await browser.post(
        f"{PAGES}/determinations/{d.id}/confirm",
        data={"_csrf_token": csrf_of(page.text), "version": str(d.version)},
        headers={"X-Request-ID": rid},
    )
    assert stale.status_code == 412
    assert "判定は読み込んだ後に変更されました" in stale.text
    rid = _rid()
    refused = await browser.post(
        f"{PAGES}/determinations/{d.id}/confirm",
        data={"_csrf_token": csrf_of(corrected.text), "version": str(d.version + 1)},
        headers={"X-Request-ID": rid},
    )
    assert refused.status_code == 403
    assert "訂正した職員は同じ判定を確定できません（職務の分離）" in refused.text
    assert 'role="alert"' in refused.text
    (event,) = await _events(db, rid)
    assert (event["action"], event["outcome"]) == ("kaigo.determination.confirm", "denied")
    assert event["reason"] == (
        "whoever corrected a determination cannot confirm it (separation of duties)"
    )
    # Someone else confirms it.
    await sign_in(second, KAGA, "kaigo-0002")
    theirs = await second.get(f"{PAGES}/determinations/{d.id}")
    assert "kaigo-0001" in theirs.text  # corrected by
    done = await second.post(
        f"{PAGES}/determinations/{d.id}/confirm",
        data={"_csrf_token": csrf_of(theirs.text), "version": str(d.version + 1)},
    )
    assert done.status_code == 200, done.text
    assert "確定しました。" in done.text


async def test_a_rejection_keeps_its_reason(
    db: Database, browser: httpx.AsyncClient, register_: Register
) -> None:
    _person, d = await _gain(db, register_)
    await sign_in(browser, KAGA, "kaigo-0001")
    page = await browser.get(f"{PAGES}/determinations/{d.id}")
    done = await browser.post(
        f"{PAGES}/determinations/{d.id}/reject",
        data={
            "_csrf_token": csrf_of(page.text),
            "version": str(d.version),
            "reason": "住所地特例の対象者と判明",
        },
    )
    assert done.status_code == 200, done.text
    assert "却下しました。" in done.text
    assert "住所地特例の対象者と判明" in done.text


async def test_staff_of_another_town_get_the_404_and_are_recorded(
    db: Database, browser: httpx.AsyncClient, register_: Register
) -> None:
    _person, d = await _gain(db, register_)
    await sign_in(browser, KOMATSU, "kaigo-0001")
    rid = _rid()
    for path in (f"/determinations/{d.id}", "/determinations", "/insured"):
        r = await browser.get(f"{PAGES}{path}", headers={"X-Request-ID": rid})
        assert r.status_code == 404, path
        assert "見つかりません" in r.text
        # Nothing of the determination (its id is only in the language switch's way back).
        assert d.proposal.summary not in r.text
        assert d.proposal.legal_basis not in r.text
    events = await _events(db, rid)
    assert {(e["outcome"], e["reason"], e["actor_tenant"]) for e in events} == {
        ("denied", "caller from another town", KOMATSU)
    }
    assert len(events) == 3
    # Nor can they post to this town's forms (their own token is for their own town).
    own = await browser.get(f"/console/towns/{KOMATSU}/kaigo/determinations")
    assert own.status_code == 200
    r = await browser.post(
        f"{PAGES}/determinations/{d.id}/confirm",
        data={"_csrf_token": csrf_of(own.text), "version": str(d.version)},
    )
    assert r.status_code == 404


async def test_a_wrong_department_gets_the_403_with_the_reason(
    db: Database, browser: httpx.AsyncClient
) -> None:
    await sign_in(browser, KAGA, "kaikei-0001")
    rid = _rid()
    r = await browser.get(f"{PAGES}/determinations", headers={"X-Request-ID": rid})
    assert r.status_code == 403
    assert 'role="alert"' in r.text
    (event,) = await _events(db, rid)
    assert (event["action"], event["outcome"]) == ("kaigo.determination.list", "denied")


async def test_a_form_without_its_csrf_token_is_refused(
    db: Database, browser: httpx.AsyncClient, register_: Register
) -> None:
    _person, d = await _gain(db, register_)
    await sign_in(browser, KAGA, "kaigo-0001")
    r = await browser.post(
        f"{PAGES}/determinations/{d.id}/confirm", data={"version": str(d.version)}
    )
    assert r.status_code == 403
    (still,) = await queue_of(db, KAGA, d.resident_id)
    assert still.status == "open"


async def test_signed_out_the_pages_send_to_sign_in(browser: httpx.AsyncClient) -> None:
    r = await browser.get(f"{PAGES}/determinations")
    assert r.status_code in (302, 303)
    assert r.headers["location"] == "/console/"


async def test_the_pages_are_in_english_one_switch_away(
    db: Database, browser: httpx.AsyncClient, register_: Register
) -> None:
    _person, d = await _gain(db, register_)
    await sign_in(browser, KAGA, "kaigo-0001")
    switched = await browser.get(
        "/console/language", params={"to": "en", "back": f"{PAGES}/determinations/{d.id}"}
    )
    assert switched.status_code in (302, 303)
    page = await browser.get(switched.headers["location"])
    assert page.status_code == 200
    assert 'lang="en"' in page.text
    assert "Determination: gain of qualification" in page.text
    assert "Legal basis" in page.text
    assert "Questions for staff" in page.text
    refused = await browser.post(
        f"{PAGES}/determinations/{d.id}/confirm",
        data={"_csrf_token": csrf_of(page.text), "version": "99"},
    )
    assert refused.status_code == 412
    assert "the determination changed since it was read" in refused.text
    queue = await browser.get(f"{PAGES}/determinations")
    assert "Determination queue" in queue.text
    insured = await browser.get(f"{PAGES}/insured")
    assert "Insured number (10 digits)" in insured.text
