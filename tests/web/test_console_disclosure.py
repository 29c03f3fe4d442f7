"""The disclosure desk's console pages over HTTP: a resident found by POST,
the access report as the API gives it (same gate, same event naming the
resident), printable on A4; other departments refused with the reason,
other towns with the 404 page, a CSRF-less form refused.

A town of this module's own, whose 市民課 holds ``juki.disclosure`` (the
demo staff ``staff-0001`` is its clerk).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.tenancy.manifest import Department
from shared_gov.web.timefmt import wareki
from tests.conftest import KOMATSU, auth
from tests.factories import resident_body
from tests.security.sod_helpers import manifest_json, town_code

from .flows import csrf_of, sign_in
from .test_console_admin import events

TOWN = town_code("47975")
DEPARTMENTS = [
    Department(code="shimin", name="市民課", purposes=["juki.registration", "juki.disclosure"]),
    Department(code="kaigo", name="介護保険課", purposes=["kaigo.qualification"]),
    Department(code="somu", name="総務課", purposes=[]),
]


@pytest.fixture(scope="module")
async def resident(client: Any, tokens: dict[str, str], issuer: BuiltinIssuer) -> str:
    """A resident of the town, registered and read by 市民課 (two accesses to disclose)."""
    r = await client.post(
        "/api/v1/tenants",
        json=manifest_json(TOWN, departments=DEPARTMENTS),
        headers=auth(tokens["operator"]),
    )
    assert r.status_code in (200, 201), r.text
    clerk = issuer.mint(
        subject="reg-0001", tenant=TOWN, department="shimin", roles=["staff"], mfa=True
    )
    created = await client.post(
        f"/api/v1/tenants/{TOWN}/residents", json=resident_body(), headers=auth(clerk)
    )
    assert created.status_code == 201, created.text
    rid: str = created.json()["id"]
    read = await client.get(f"/api/v1/tenants/{TOWN}/residents/{rid}", headers=auth(clerk))
    assert read.status_code == 200
    return rid


async def test_the_clerk_finds_a_resident_and_gets_the_a4_report(
    browser: httpx.AsyncClient,
    client: Any,
    db: Database,
    issuer: BuiltinIssuer,
    resident: str,
) -> None:
    await sign_in(browser, TOWN, "staff-0001")
    home = await browser.get("/console/home")
    assert f"/console/towns/{TOWN}/residents/disclosure/" in home.text
    form = await browser.get(f"/console/towns/{TOWN}/residents/disclosure/")
    assert form.status_code == 200, form.text
    assert 'method="post"' in form.text
    assert 'for="r-resident_id"' in form.text
    before = len(await events(db, TOWN, "resident.access_log"))
    r = await browser.post(
        f"/console/towns/{TOWN}/residents/disclosure/report",
        data={"_csrf_token": csrf_of(form.text), "resident_id": resident},
    )
    assert r.status_code == 200, r.text
    assert resident not in str(r.url)  # the id went in the form, not the address
    assert "試験市" in r.text  # the town's name on the letterhead
    assert wareki(today_jst()) in r.text  # the date of issue, in the Japanese calendar
    assert "住民記録の記載" in r.text
    assert "住民記録の閲覧" in r.text
    assert "市民課" in r.text
    assert "reg-0001" not in r.text  # offices, never people
    assert "/report.css" in r.text
    # The API's event: action, resident (keyed hash), purpose, outcome.
    after = await events(db, TOWN, "resident.access_log")
    assert len(after) == before + 1
    page_event = after[-1]
    assert (page_event["outcome"], page_event["purpose"]) == ("allowed", "juki.disclosure")
    clerk = issuer.mint(subject="staff-0001", tenant=TOWN, department="shimin", roles=["staff"])
    api = await client.get(
        f"/api/v1/tenants/{TOWN}/residents/{resident}/access-log",
        headers=auth(clerk, "juki.disclosure"),
    )
    assert api.status_code == 200, api.text
    api_event = (await events(db, TOWN, "resident.access_log"))[-1]
    for key in ("action", "resource_type", "outcome", "purpose", "subjects", "actor"):
        assert api_event[key] == page_event[key], key


async def test_the_report_prints_on_a4_without_the_console(browser: httpx.AsyncClient) -> None:
    css = await browser.get("/console/")
    static = css.text.split('href="')[1].split("/console.css")[0]
    report = await browser.get(f"{static}/report.css")
    assert report.status_code == 200
    assert "@page { size: A4" in report.text
    assert "@media print" in report.text
    assert ".bar" in report.text.split("@media print")[1]


async def test_an_unknown_resident_is_said_beside_the_form(
    browser: httpx.AsyncClient, db: Database, resident: str
) -> None:
    await sign_in(browser, TOWN, "staff-0001")
    form = await browser.get(f"/console/towns/{TOWN}/residents/disclosure/")
    r = await browser.post(
        f"/console/towns/{TOWN}/residents/disclosure/report",
        data={"_csrf_token": csrf_of(form.text), "resident_id": str(uuid.uuid4())},
    )
    assert r.status_code == 404
    assert 'role="alert"' in r.text
    assert (await events(db, TOWN, "resident.access_log"))[-1]["outcome"] == "not_found"
    bad = await browser.post(
        f"/console/towns/{TOWN}/residents/disclosure/report",
        data={"_csrf_token": csrf_of(form.text), "resident_id": resident, "from": "2026-13-45"},
    )
    assert bad.status_code == 422
    assert "/query/from" in bad.text


async def test_other_departments_get_the_reason_and_are_recorded(
    browser: httpx.AsyncClient, db: Database, resident: str
) -> None:
    await sign_in(browser, TOWN, "kaigo-0001")
    before = len(await events(db, TOWN, "resident.access_log", "denied"))
    r = await browser.get(f"/console/towns/{TOWN}/residents/disclosure/")
    assert r.status_code == 403
    assert 'role="alert"' in r.text
    assert len(await events(db, TOWN, "resident.access_log", "denied")) == before + 1


async def test_another_towns_clerk_sees_nothing(
    browser: httpx.AsyncClient, db: Database, resident: str
) -> None:
    await sign_in(browser, KOMATSU, "staff-0001")
    r = await browser.get(f"/console/towns/{TOWN}/residents/disclosure/")
    assert r.status_code == 404
    assert "見つかりません" in r.text
    denied = await events(db, TOWN, "resident.access_log", "denied")
    assert denied[-1]["actor_tenant"] == KOMATSU


async def test_a_report_posted_without_its_csrf_token_is_refused(
    browser: httpx.AsyncClient, db: Database, resident: str
) -> None:
    await sign_in(browser, TOWN, "staff-0001")
    before = len(await events(db, TOWN, "resident.access_log"))
    r = await browser.post(
        f"/console/towns/{TOWN}/residents/disclosure/report", data={"resident_id": resident}
    )
    assert r.status_code == 403
    assert len(await events(db, TOWN, "resident.access_log")) == before


async def test_the_report_in_english(browser: httpx.AsyncClient, resident: str) -> None:
    await sign_in(browser, TOWN, "staff-0001")
    await browser.get("/console/language", params={"to": "en", "back": "/console/"})
    form = await browser.get(f"/console/towns/{TOWN}/residents/disclosure/")
    r = await browser.post(
        f"/console/towns/{TOWN}/residents/disclosure/report",
        data={"_csrf_token": csrf_of(form.text), "resident_id": resident, "from": "2020-01-01"},
    )
    assert r.status_code == 200, r.text
    assert 'lang="en"' in r.text
    assert "Record of accesses to your resident record" in r.text
    assert "JST" in r.text  # times in Japan time, said so
    assert "resident.register" in r.text  # the action as the log names it
    assert "2020-01-01" in r.text  # the period asked for
