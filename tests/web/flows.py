"""Signing in to the console without a browser (httpx against the app), for
the tests of what the pages and their protections do."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import httpx

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def sign_in(browser: httpx.AsyncClient, town: str, staff: str) -> httpx.Response:
    """The whole authorization code flow with PKCE; returns the page signed in."""
    start = await browser.get("/console/sign-in", params={"town": town})
    assert start.status_code in (302, 303), start.text
    authorize = start.headers["location"]
    assert authorize.startswith("/console/dev/authorize?")
    params = dict(parse_qsl(urlsplit(authorize).query))
    assert params["code_challenge_method"] == "S256"
    form_page = await browser.get(authorize)
    assert form_page.status_code == 200, form_page.text
    chosen = await browser.post(
        "/console/dev/authorize",
        data={**params, "staff": staff, "_csrf_token": csrf_of(form_page.text)},
    )
    assert chosen.status_code in (302, 303), chosen.text
    back = urlsplit(chosen.headers["location"])
    assert back.path == "/console/callback"
    done = await browser.get(f"{back.path}?{back.query}")
    return done
