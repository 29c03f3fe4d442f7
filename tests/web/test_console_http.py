"""The console's sign-in, pages and protections, over HTTP (no browser).

The same journeys in Chromium are in test_browser.py; these run everywhere
and pin the security properties exactly: the cookie flags, the CSP, the
refused CSRF-less form, another town's 404 recorded as a denial, the
session's new id at sign-in, the idle timeout.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import KAGA, KOMATSU, auth

from .flows import csrf_of, sign_in


async def _events(client: Any, tokens: dict[str, str], **flt: str) -> list[dict[str, Any]]:
    r = await client.get(
        f"/api/v1/tenants/{KAGA}/audit/events",
        params={"order": "desc", "limit": "100", **flt},
        headers=auth(tokens["kaga_auditor"], None),
    )
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


async def _until(predicate: Any, client: Any, tokens: dict[str, str], **flt: str) -> list[Any]:
    for _ in range(50):
        found = [e for e in await _events(client, tokens, **flt) if predicate(e)]
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no event matching {flt}")


async def test_sign_in_is_pkce_and_sets_a_strict_http_only_session(
    browser: httpx.AsyncClient,
) -> None:
    before = await browser.get("/console/")
    assert before.status_code == 200
    planted = "f" * 64
    browser.cookies.set("sg_console", planted, domain="testserver.local", path="/console")
    done = await sign_in(browser, KAGA, "audit-0001")
    assert done.status_code in (302, 303)
    assert done.headers["location"] == "/console/home"
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("sg_console="))
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "samesite=strict" in lowered
    assert "path=/console" in lowered
    # A new id at sign-in: a session id planted before it is worthless.
    assert planted not in cookie
    home = await browser.get("/console/home")
    assert home.status_code == 200
    assert "audit-0001" in home.text
    assert 'lang="ja"' in home.text
    csp = home.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert home.headers["cache-control"] == "no-store"


async def test_every_console_response_carries_the_policy_even_an_error(
    browser: httpx.AsyncClient,
) -> None:
    r = await browser.get("/console/towns/172065/audit/")
    assert r.status_code in (302, 303), r.text
    assert r.headers["location"] == "/console/"
    assert "content-security-policy" in r.headers
    # A path no route matches leaves by the application's 404; the policy still holds.
    missing = await browser.get("/console/no-such-page")
    assert missing.status_code == 404
    assert "content-security-policy" in missing.headers


async def test_a_stolen_state_or_a_wrong_verifier_signs_nobody_in(
    browser: httpx.AsyncClient,
) -> None:
    r = await browser.get("/console/callback", params={"code": "x", "state": "y"})
    assert r.status_code == 400
    assert (await browser.get("/console/home")).status_code in (302, 303)


async def test_token_endpoint_needs_the_verifier(browser: httpx.AsyncClient) -> None:
    start = await browser.get("/console/sign-in", params={"town": KAGA})
    from urllib.parse import parse_qsl, urlsplit

    params = dict(parse_qsl(urlsplit(start.headers["location"]).query))
    page = await browser.get(start.headers["location"])
    chosen = await browser.post(
        "/console/dev/authorize",
        data={**params, "staff": "audit-0001", "_csrf_token": csrf_of(page.text)},
    )
    code = dict(parse_qsl(urlsplit(chosen.headers["location"]).query))["code"]
    wrong = await browser.post(
        "/console/dev/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": "not-the-verifier-" + "x" * 40,
            "client_id": params["client_id"],
            "redirect_uri": params["redirect_uri"],
        },
    )
    assert wrong.status_code == 400
    # The code was used up by the failed attempt: the callback cannot redeem it now.
    back = urlsplit(chosen.headers["location"])
    assert (await browser.get(f"{back.path}?{back.query}")).status_code == 401


async def test_auditor_searches_by_post_and_opens_an_event(
    browser: httpx.AsyncClient, client: Any, tokens: dict[str, str]
) -> None:
    # Something to find: a read of a resident who is not there (a not_found event).
    missing = str(uuid.uuid4())
    r = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/{missing}", headers=auth(tokens["kaga"])
    )
    assert r.status_code == 404
    await _until(lambda e: e["actor"] == "k-0001", client, tokens, actor="k-0001")
    await sign_in(browser, KAGA, "audit-0001")
    form = await browser.get(f"/console/towns/{KAGA}/audit/")
    assert form.status_code == 200
    assert 'method="post"' in form.text
    assert 'for="f-subject"' in form.text
    found = await browser.post(
        f"/console/towns/{KAGA}/audit/events",
        data={"subject": missing, "_csrf_token": csrf_of(form.text), "limit": "20"},
    )
    assert found.status_code == 200, found.text
    assert "resident.read" in found.text
    # The resident id went in the body: the page's URL and links never carry it.
    assert missing not in str(found.url)
    assert f"events?{missing}" not in found.text
    event_id = found.text.split("/audit/events/")[1].split('"')[0]
    event = await browser.get(f"/console/towns/{KAGA}/audit/events/{event_id}")
    assert event.status_code == 200
    assert "k-0001" in event.text
    # The search and the event page are in the log, as the API's calls would be.
    seen = await _until(
        lambda e: e["actor"] == "audit-0001" and e["action"] == "audit.query",
        client,
        tokens,
        actor="audit-0001",
    )
    # The search named the resident: its event has a subject (a keyed hash, never the id).
    assert any(e["subjects"] and missing not in e["subjects"] for e in seen)


async def test_a_form_without_its_csrf_token_is_refused(
    browser: httpx.AsyncClient, client: Any, tokens: dict[str, str]
) -> None:
    await sign_in(browser, KAGA, "audit-0001")
    r = await browser.post(f"/console/towns/{KAGA}/audit/events", data={"actor": "k-0001"})
    assert r.status_code == 403
    assert "content-security-policy" in r.headers
    out = await browser.post("/console/sign-out", data={})
    assert out.status_code == 403
    assert (await browser.get("/console/home")).status_code == 200  # still signed in


async def test_staff_of_another_town_see_nothing_and_are_recorded(
    browser: httpx.AsyncClient, client: Any, tokens: dict[str, str]
) -> None:
    await sign_in(browser, KOMATSU, "audit-0001")
    for path in ("/", "/verify", f"/events/{uuid.uuid4()}"):
        r = await browser.get(f"/console/towns/{KAGA}/audit{path}")
        assert r.status_code == 404, path
        assert KAGA not in r.text.replace(f"/console/towns/{KAGA}", "")
    denied = await _until(
        lambda e: (
            e["actor"] == "audit-0001" and e["actor_tenant"] == KOMATSU and e["outcome"] == "denied"
        ),
        client,
        tokens,
        actor_tenant=KOMATSU,
    )
    assert denied[0]["reason"] == "caller from another town"


async def test_staff_who_are_not_auditors_get_the_reason(
    browser: httpx.AsyncClient,
) -> None:
    await sign_in(browser, KAGA, "staff-0001")
    r = await browser.get(f"/console/towns/{KAGA}/audit/")
    assert r.status_code == 403
    assert 'role="alert"' in r.text


async def test_sign_out_ends_the_session(browser: httpx.AsyncClient) -> None:
    home = await sign_in(browser, KAGA, "audit-0001")
    page = await browser.get(home.headers["location"])
    out = await browser.post("/console/sign-out", data={"_csrf_token": csrf_of(page.text)})
    assert out.status_code in (302, 303)
    assert (await browser.get("/console/home")).status_code in (302, 303)


async def test_english_is_a_switch_away(browser: httpx.AsyncClient) -> None:
    r = await browser.get("/console/language", params={"to": "en", "back": "/console/"})
    assert r.status_code in (302, 303)
    page = await browser.get("/console/")
    assert 'lang="en"' in page.text
    assert "Sign in" in page.text
    evil = await browser.get("/console/language", params={"to": "en", "back": "//evil.example/"})
    assert evil.headers["location"] == "/console/"


@pytest.mark.parametrize("path", ["/console/dev/authorize", "/console/dev/token"])
async def test_console_is_not_in_the_openapi_document(client: Any, path: str) -> None:
    doc = (await client.get("/docs/openapi.json")).json()
    assert not any(p.startswith("/console") for p in doc["paths"])


async def test_an_export_with_a_bad_filter_is_recorded(
    browser: httpx.AsyncClient, client: Any, tokens: dict[str, str]
) -> None:
    """Like the search page's 422: the refused export is an audit.export event."""
    await sign_in(browser, KAGA, "audit-0001")
    form = await browser.get(f"/console/towns/{KAGA}/audit/")
    refused = await browser.post(
        f"/console/towns/{KAGA}/audit/events/export",
        data={"from": "notadate", "_csrf_token": csrf_of(form.text)},
    )
    assert refused.status_code == 422, refused.text
    seen = await _until(
        lambda e: e["action"] == "audit.export" and e["outcome"] == "denied",
        client,
        tokens,
        actor="audit-0001",
    )
    assert len(seen) == 1
