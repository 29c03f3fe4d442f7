"""The auditor's analyses page (web/analyses.py) over HTTP: the API's analyses
and the period's accesses per day, hour and department, as tables and as
inline SVG charts with a table beside each; the API's gate and audit action;
bad input as a page naming the field; and the counts themselves
(audit/analyses/activity.py) on planted events."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from shared_gov.audit import queries
from shared_gov.audit.analyses import activity
from shared_gov.clock import JST, now_jst
from shared_gov.db import Database
from tests.audit.planting import plant
from tests.conftest import KAGA, KOMATSU, auth

from .flows import csrf_of, sign_in

URL = f"/console/towns/{KAGA}/audit/analyses"
# Mon 2023-02-20 .. Fri 2023-02-24 (JST); 02-23 天皇誕生日. No other test plants here.
WINDOW = {"from": "2023-02-20", "to": "2023-02-25"}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2023, 2, day, hour, minute, tzinfo=JST)


@pytest.fixture(scope="module")
async def planted(db: Database) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    ids["office"] = await plant(
        db,
        KAGA,
        [
            {"actor": "c-office", "department": "zeimu", "occurred_at": at(20, 10, m)}
            for m in range(6)
        ],
    )
    ids["night"] = await plant(
        db,
        KAGA,
        [
            {"actor": "c-night", "department": "shimin", "occurred_at": at(21, 22, 5)},
            {"actor": "c-night", "department": "shimin", "occurred_at": at(23, 11, 0)},
        ],
    )
    ids["denied"] = await plant(
        db,
        KAGA,
        [
            {
                "actor": "c-deny",
                "department": "kaigo",
                "occurred_at": at(22, 9, m),
                "outcome": "denied",
                "reason": "purpose not permitted",
            }
            for m in range(5)
        ],
    )
    return ids


async def _form(browser: httpx.AsyncClient) -> str:
    await sign_in(browser, KAGA, "audit-0001")
    page = await browser.get(f"/console/towns/{KAGA}/audit/")
    assert page.status_code == 200
    return csrf_of(page.text)


async def _events(client: Any, tokens: dict[str, str], **flt: str) -> list[dict[str, Any]]:
    for _ in range(50):
        r = await client.get(
            f"/api/v1/tenants/{KAGA}/audit/events",
            params={"order": "desc", "limit": "50", **flt},
            headers=auth(tokens["kaga_auditor"], None),
        )
        assert r.status_code == 200, r.text
        found = list(r.json()["events"])
        if found:
            return found
        await asyncio.sleep(0.1)
    return []


async def test_the_counts_per_day_hour_and_department(
    db: Database, planted: dict[str, list[str]]
) -> None:
    counted = await activity(db, KAGA, at(20, 0), at(25, 0))
    days = {d.isoformat(): (c.allowed, c.refused) for d, c in counted.per_day}
    # Every day of the window, zeros included.
    assert days == {
        "2023-02-20": (6, 0),
        "2023-02-21": (1, 0),
        "2023-02-22": (0, 5),
        "2023-02-23": (1, 0),
        "2023-02-24": (0, 0),
    }
    hours = {h: c.total for h, c in counted.per_hour}
    assert len(hours) == 24
    assert (hours[9], hours[10], hours[11], hours[22], hours[3]) == (5, 6, 1, 1, 0)
    departments = [(d, c.allowed, c.refused) for d, c in counted.per_department]
    # Most events first.
    assert departments == [("zeimu", 6, 0), ("kaigo", 0, 5), ("shimin", 2, 0)]
    assert counted.events == 13


async def test_auditor_sees_findings_and_charts_and_the_run_is_recorded(
    browser: httpx.AsyncClient, client: Any, tokens: dict[str, str], planted: dict[str, list[str]]
) -> None:
    token = await _form(browser)
    since = now_jst().isoformat()
    r = await browser.post(URL, data={**WINDOW, "_csrf_token": token})
    assert r.status_code == 200, r.text
    html = r.text
    # The findings: after hours (22:05 on a Tuesday) and the holiday, repeated denials.
    assert "c-night" in html
    assert "天皇誕生日" in html
    assert "c-deny" in html
    assert "令和5年2月21日" in html  # the day as a clerk reads it
    # Three charts, each an image with a name and a description, and its table.
    assert html.count('<svg class="chart-svg') == 3
    assert html.count('role="img"') == 3
    assert html.count("<desc id=") == 3
    assert "合計 13 件" in html
    assert html.count('<details class="chart-table">') == 3
    assert '<th scope="row">zeimu</th><td class="num">6</td>' in html
    # The Content Security Policy holds: no inline style, no inline script.
    assert "style=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    # "Show the events" posts the finding's filters to the search (never a URL).
    assert 'name="actor" value="c-deny"' in html
    assert "?actor=" not in html
    ran = await _events(
        client, tokens, action="audit.analyses", actor="audit-0001", **{"from": since}
    )
    assert [e["outcome"] for e in ran] == ["allowed"]
    assert ran[0]["rows_returned"] >= 3  # the findings


async def test_opening_the_page_runs_the_last_seven_days(
    browser: httpx.AsyncClient, planted: dict[str, list[str]]
) -> None:
    await sign_in(browser, KAGA, "audit-0001")
    r = await browser.get(URL)
    assert r.status_code == 200, r.text
    assert 'id="findings"' in r.text
    assert "c-night" not in r.text  # 2023 is not in the last 7 days
    # English is the same page in English, times in JST.
    switched = await browser.get("/console/language", params={"to": "en", "back": URL})
    assert switched.status_code in (302, 303)
    r = await browser.get(URL)
    assert "Accesses per day (JST)" in r.text
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} JST", r.text)


@pytest.mark.parametrize(
    ("field", "value", "pointer"),
    [
        ("from", "yesterday", "/query/from"),
        ("bulk_threshold", "many", "/query/bulk_threshold"),
        ("denial_threshold", "0", "/query/denial_threshold"),
        ("office_start", "25:00", "/query/office_start"),
    ],
)
async def test_bad_input_is_a_page_naming_the_field(
    browser: httpx.AsyncClient, field: str, value: str, pointer: str
) -> None:
    token = await _form(browser)
    r = await browser.post(URL, data={**WINDOW, field: value, "_csrf_token": token})
    assert r.status_code == 422, r.text
    assert 'role="alert"' in r.text
    assert pointer in r.text
    assert 'id="findings"' not in r.text


async def test_a_window_too_long_is_refused_and_recorded(
    browser: httpx.AsyncClient, client: Any, tokens: dict[str, str]
) -> None:
    token = await _form(browser)
    since = now_jst().isoformat()
    r = await browser.post(
        URL, data={"from": "2020-01-01", "to": "2023-01-01", "_csrf_token": token}
    )
    assert r.status_code == 422
    assert "/query/from" in r.text
    refused = await _events(
        client, tokens, action="audit.analyses", actor="audit-0001", **{"from": since}
    )
    assert [e["outcome"] for e in refused] == ["denied"]


async def test_only_the_towns_auditors_get_in(browser: httpx.AsyncClient) -> None:
    await sign_in(browser, KAGA, "staff-0001")
    assert (await browser.get(URL)).status_code == 403
    browser.cookies.clear()
    await sign_in(browser, KOMATSU, "audit-0001")
    other = await browser.get(URL)
    assert other.status_code == 404
    assert "c-night" not in other.text


async def test_a_post_without_its_csrf_token_is_refused(browser: httpx.AsyncClient) -> None:
    await sign_in(browser, KAGA, "audit-0001")
    r = await browser.post(URL, data=WINDOW)
    assert r.status_code == 403


async def test_the_counts_leave_out_other_towns_events_about_protected_residents(
    app: Any, client: Any, tokens: dict[str, str], db: Database
) -> None:
    """Rule 1: after a protected person moved from Komatsu to Kaga, Komatsu's
    charts count none of Kaga's staff's events about them (a count per hour
    would say when the new town looked at them)."""
    from shared_gov.api.auditors import guarded_subjects
    from tests.security.test_rule1_auditors import _moved

    p = await _moved(client, tokens)
    svc = app.state.services
    names = await svc.registry.get(KOMATSU)
    guarded = await guarded_subjects(svc, names)
    assert guarded
    start = now_jst().replace(hour=0, minute=0, second=0, microsecond=0)
    end = now_jst() + timedelta(minutes=1)
    whole = await activity(db, KOMATSU, start, end)
    masked = await activity(db, KOMATSU, start, end, guarded)
    subject = await queries.subject_hash(db, KOMATSU, p["id"])
    assert str(subject) in guarded
    # Every protected or linked resident's, this one's and any an earlier test moved.
    async with db.catalog() as conn:
        theirs = await conn.fetchval(
            "SELECT count(*) FROM audit.events WHERE tenant = $1 AND subjects && $2::bigint[]"
            " AND actor_tenant <> $1 AND occurred_at >= $3 AND occurred_at < $4",
            KOMATSU,
            [int(h) for h in guarded],
            start,
            end,
        )
    assert theirs >= 1
    assert whole.events - masked.events == theirs
