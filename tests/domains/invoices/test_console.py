"""会計課's and the ordering department's console pages over HTTP (no browser).

The inbox by state, an invoice with its check report, its original shown
escaped and downloaded byte for byte, 確認 → 検収 → 決裁 (whoever confirmed
検収 refused, with the reason) → 支出命令, 差し戻し with its reason, the
search by POST, the payment export in UTF-8 and CP932 and its explicit
re-export; another town's staff get the 404 and a wrong department the 403,
each a denial in the town's log; a form without its CSRF token is refused;
every page's event is the one the API call behind it leaves. The journey in
Chromium: test_console_browser.py.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from litestar import Litestar

from shared_gov.db import Database

from . import factory
from .conftest import OTHER, SUPPLIER_A, TOWN, bearer

PAGES = f"/console/towns/{TOWN}/invoices"
API = f"/api/v1/tenants/{TOWN}"
PAY = "invoices.payment"
ISSUED = date(2025, 4, 2)


async def _client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
async def kaikei(app: Litestar, api: Any) -> AsyncIterator[httpx.AsyncClient]:
    """会計課's browser (``api`` runs the lifespan and installs the rules)."""
    async for c in _client(app):
        yield c


@pytest.fixture
async def doboku(app: Litestar, api: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The ordering department's clerk (検収)."""
    async for c in _client(app):
        yield c


@pytest.fixture
async def kacho(app: Litestar, api: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The ordering department's head (決裁, level 1)."""
    async for c in _client(app):
        yield c


async def _sign_in(browser: httpx.AsyncClient, staff: str, town: str = TOWN) -> None:
    from tests.web.flows import sign_in

    done = await sign_in(browser, town, staff)
    assert done.headers["location"] == "/console/home", done.text


def _csrf(html: str) -> str:
    from tests.web.flows import csrf_of

    return csrf_of(html)


async def _new(api: httpx.AsyncClient, people: dict[str, str]) -> tuple[str, bytes]:
    number = f"CON-{uuid.uuid4().hex[:8]}"
    # An early transaction date: on the inbox's first page, whatever else is received.
    body = factory.xml(factory.document(number=number, unit="ippan", issued=ISSUED))
    r = await api.post(
        f"{API}/supplier/invoices",
        content=body,
        headers=bearer(people["a"], **{"Content-Type": "application/xml"}),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["invoice_id"]), body


async def _events(db: Database, request_id: str, tenant: str = TOWN) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2 "
            "ORDER BY occurred_at",
            tenant,
            request_id,
        )
    return [dict(r) for r in rows]


def _shape(event: dict[str, Any]) -> tuple[Any, ...]:
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


async def _step(
    browser: httpx.AsyncClient,
    page: httpx.Response,
    invoice_id: str,
    step: str,
    purpose: str,
    version: int,
    state: str,
    **extra: str,
) -> httpx.Response:
    return await browser.post(
        f"{PAGES}/{invoice_id}/{step}",
        data={
            "_csrf_token": _csrf(page.text),
            "purpose": purpose,
            "version": str(version),
            "state": state,
        },
        headers=extra,
    )


async def test_an_invoice_from_the_inbox_to_the_export(
    api: httpx.AsyncClient,
    db: Database,
    people: dict[str, str],
    registered: dict[str, str],
    kaikei: httpx.AsyncClient,
    doboku: httpx.AsyncClient,
    kacho: httpx.AsyncClient,
) -> None:
    invoice_id, original = await _new(api, people)
    await _sign_in(kaikei, "kaikei-0001")
    home = await kaikei.get("/console/home")
    assert f"/console/towns/{TOWN}/invoices/" in home.text
    rid = _rid()
    inbox = await kaikei.get(f"{PAGES}/", headers={"X-Request-ID": rid})
    assert inbox.status_code == 200, inbox.text
    assert f"{PAGES}/{invoice_id}" in inbox.text
    (listed,) = await _events(db, rid)
    assert (listed["action"], listed["outcome"], listed["purpose"]) == (
        "invoice.search",
        "allowed",
        PAY,
    )
    # The invoice with its check report; the same event as the API's read.
    rid = _rid()
    page = await kaikei.get(f"{PAGES}/{invoice_id}", headers={"X-Request-ID": rid})
    assert page.status_code == 200, page.text
    assert "検査結果（チェックレポート）" in page.text
    assert "platform 1" in page.text  # the rules run
    api_rid = _rid()
    r = await api.get(
        f"{API}/invoices/{invoice_id}",
        headers=bearer(people["kaikei"], PAY, **{"X-Request-ID": api_rid}),
    )
    assert r.status_code == 200
    assert _shape((await _events(db, rid))[0]) == _shape((await _events(db, api_rid))[0])
    # The original: shown escaped, downloaded unchanged.
    shown = await kaikei.get(f"{PAGES}/{invoice_id}/original")
    assert shown.status_code == 200
    assert "&lt;Invoice" in shown.text or "&lt;?xml" in shown.text
    assert "<Invoice" not in shown.text
    assert hashlib.sha256(original).hexdigest() in shown.text
    download = await kaikei.get(f"{PAGES}/{invoice_id}/original/download")
    assert download.status_code == 200
    assert download.content == original
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.headers["x-content-sha256"] == hashlib.sha256(original).hexdigest()
    assert "content-security-policy" in download.headers
    # 確認 by 会計課.
    checked = await _step(kaikei, page, invoice_id, "check", PAY, 1, "received")
    assert checked.status_code == 200, checked.text
    assert "確認しました。" in checked.text
    # 検収 by the ordering department; the same person may not approve it.
    await _sign_in(doboku, "doboku-0001")
    theirs = await doboku.get(f"{PAGES}/{invoice_id}")
    assert 'id="do-inspect"' in theirs.text
    inspected = await _step(
        doboku, theirs, invoice_id, "inspect", "invoices.inspection", 2, "checked"
    )
    assert inspected.status_code == 200, inspected.text
    assert "検収しました。" in inspected.text
    rid = _rid()
    refused = await _step(
        doboku,
        inspected,
        invoice_id,
        "approve",
        "invoices.approval.1",
        3,
        "inspected",
        **{"X-Request-ID": rid},
    )
    assert refused.status_code == 403
    assert "separation of duties" in refused.text or "職務の分離" in refused.text
    (event,) = await _events(db, rid)
    assert (event["action"], event["outcome"]) == ("invoice.approve", "denied")
    # 決裁 by the head of the department: the same event as the API's approval.
    await _sign_in(kacho, "doboku-0002")
    head = await kacho.get(f"{PAGES}/{invoice_id}")
    rid = _rid()
    approved = await _step(
        kacho,
        head,
        invoice_id,
        "approve",
        "invoices.approval.1",
        3,
        "inspected",
        **{"X-Request-ID": rid},
    )
    assert approved.status_code == 200, approved.text
    assert "決裁しました。" in approved.text
    (console_event,) = await _events(db, rid)
    other, _ = await _new(api, people)
    for who, purpose, step, version in (
        ("kaikei", PAY, "check", 1),
        ("doboku", "invoices.inspection", "inspect", 2),
    ):
        r = await api.post(
            f"{API}/invoices/{other}/{step}",
            json={},
            headers=bearer(people[who], purpose, **{"If-Match": f'"v{version}"'}),
        )
        assert r.status_code == 200, r.text
    api_rid = _rid()
    r = await api.post(
        f"{API}/invoices/{other}/approve",
        json={},
        headers=bearer(
            people["doboku2"],
            "invoices.approval.1",
            **{"If-Match": '"v3"', "X-Request-ID": api_rid},
        ),
    )
    assert r.status_code == 200, r.text
    assert _shape(console_event) == _shape((await _events(db, api_rid))[0])
    # 支出命令 by 会計課, then the export: UTF-8, then CP932 as a re-export.
    page = await kaikei.get(f"{PAGES}/{invoice_id}")
    ordered = await _step(kaikei, page, invoice_id, "order", PAY, 4, "approved")
    assert ordered.status_code == 200, ordered.text
    form = await kaikei.get(f"{PAGES}/export")
    assert form.status_code == 200
    rid = _rid()
    exported = await kaikei.post(
        f"{PAGES}/export",
        data={"_csrf_token": _csrf(form.text), "encoding": "utf-8"},
        headers={"X-Request-ID": rid},
    )
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv; charset=utf-8")
    assert exported.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8"))))
    assert invoice_id in {row["invoice_id"] for row in rows}
    export_id = exported.headers["x-export-id"]
    (event,) = await _events(db, rid)
    assert (event["action"], event["outcome"], event["purpose"]) == (
        "invoice.export",
        "allowed",
        PAY,
    )
    again = await kaikei.post(
        f"{PAGES}/export",
        data={"_csrf_token": _csrf(form.text), "encoding": "cp932", "reexport": export_id},
    )
    assert again.status_code == 200, again.text
    assert again.headers["content-type"].startswith("text/csv; charset=shift_jis")
    assert again.headers["x-export-id"] == export_id
    text = again.content.decode("cp932")
    assert invoice_id in text
    assert "株式会社テスト商事" in text or SUPPLIER_A in text


async def test_a_return_needs_its_reason(
    api: httpx.AsyncClient,
    people: dict[str, str],
    registered: dict[str, str],
    kaikei: httpx.AsyncClient,
) -> None:
    invoice_id, _ = await _new(api, people)
    await _sign_in(kaikei, "kaikei-0001")
    page = await kaikei.get(f"{PAGES}/{invoice_id}")
    assert 'id="do-return"' in page.text
    bare = await _step(kaikei, page, invoice_id, "return", PAY, 1, "received")
    assert bare.status_code == 422
    assert "/reason" in bare.text
    returned = await kaikei.post(
        f"{PAGES}/{invoice_id}/return",
        data={
            "_csrf_token": _csrf(page.text),
            "purpose": PAY,
            "version": "1",
            "state": "received",
            "reason": "単価が契約と異なります",
        },
    )
    assert returned.status_code == 200, returned.text
    assert "差し戻しました。" in returned.text
    seen = await api.get(f"{API}/supplier/invoices/{invoice_id}", headers=bearer(people["a"]))
    assert seen.json()["reason"] == "単価が契約と異なります"


async def test_the_search_is_a_post_by_date_amount_and_counterparty(
    api: httpx.AsyncClient,
    db: Database,
    people: dict[str, str],
    registered: dict[str, str],
    kaikei: httpx.AsyncClient,
) -> None:
    invoice_id, _ = await _new(api, people)
    await _sign_in(kaikei, "kaikei-0001")
    form = await kaikei.get(f"{PAGES}/search")
    assert form.status_code == 200
    assert 'for="s-supplier_key"' in form.text
    rid = _rid()
    found = await kaikei.post(
        f"{PAGES}/search",
        data={
            "_csrf_token": _csrf(form.text),
            "supplier_key": SUPPLIER_A,
            "amount_min": "600",
            "amount_max": "700",
            "date_from": "2025-04-01",
            "date_to": "2025-04-30",
        },
        headers={"X-Request-ID": rid},
    )
    assert found.status_code == 200, found.text
    assert f"{PAGES}/{invoice_id}" in found.text
    assert SUPPLIER_A not in str(found.url)
    api_rid = _rid()
    r = await api.post(
        f"{API}/invoices/search",
        json={
            "supplier_key": SUPPLIER_A,
            "amount_min": 600,
            "amount_max": 700,
            "date_from": "2025-04-01",
            "date_to": "2025-04-30",
            "limit": 50,
        },
        headers=bearer(people["kaikei"], PAY, **{"X-Request-ID": api_rid}),
    )
    assert r.status_code == 200
    console_event = (await _events(db, rid))[0]
    api_event = (await _events(db, api_rid))[0]
    assert _shape(console_event)[:5] == _shape(api_event)[:5]
    # A range the wrong way round: the API's field error, on the page.
    wrong = await kaikei.post(
        f"{PAGES}/search",
        data={"_csrf_token": _csrf(form.text), "amount_min": "700", "amount_max": "600"},
    )
    assert wrong.status_code == 422
    assert "/amount_max" in wrong.text


async def test_another_towns_staff_get_the_404_and_are_recorded(
    api: httpx.AsyncClient,
    db: Database,
    people: dict[str, str],
    registered: dict[str, str],
    kaikei: httpx.AsyncClient,
) -> None:
    invoice_id, _ = await _new(api, people)
    await _sign_in(kaikei, "kaikei-0001", OTHER)
    rid = _rid()
    for path in (f"/{invoice_id}", "/", f"/{invoice_id}/original/download", "/export"):
        r = await kaikei.get(f"{PAGES}{path}", headers={"X-Request-ID": rid})
        assert r.status_code == 404, path
        assert invoice_id not in r.text.replace(f"{PAGES}/{invoice_id}", "")
    events = await _events(db, rid)
    assert len(events) == 4
    assert {(e["outcome"], e["reason"], e["actor_tenant"]) for e in events} == {
        ("denied", "caller from another town", OTHER)
    }


async def test_a_wrong_department_gets_the_403_with_the_reason(
    api: httpx.AsyncClient,
    db: Database,
    people: dict[str, str],
    registered: dict[str, str],
    kaikei: httpx.AsyncClient,
    doboku: httpx.AsyncClient,
) -> None:
    invoice_id, _ = await _new(api, people)
    # 市民課 holds no purpose of the e-invoice domain.
    shimin = doboku
    await _sign_in(shimin, "staff-0001")
    rid = _rid()
    r = await shimin.get(f"{PAGES}/{invoice_id}", headers={"X-Request-ID": rid})
    assert r.status_code == 403
    assert 'role="alert"' in r.text
    (event,) = await _events(db, rid)
    assert (event["action"], event["outcome"]) == ("invoice.read", "denied")
    # 会計課 does not confirm delivery: 検収 is refused to them.
    await _sign_in(kaikei, "kaikei-0001")
    page = await kaikei.get(f"{PAGES}/{invoice_id}")
    checked = await _step(kaikei, page, invoice_id, "check", PAY, 1, "received")
    assert checked.status_code == 200
    assert 'id="do-inspect"' not in checked.text  # not theirs to take
    refused = await _step(
        kaikei, checked, invoice_id, "inspect", "invoices.inspection", 2, "checked"
    )
    assert refused.status_code == 403


async def test_a_form_without_its_csrf_token_is_refused(
    api: httpx.AsyncClient,
    people: dict[str, str],
    registered: dict[str, str],
    kaikei: httpx.AsyncClient,
) -> None:
    invoice_id, _ = await _new(api, people)
    await _sign_in(kaikei, "kaikei-0001")
    r = await kaikei.post(
        f"{PAGES}/{invoice_id}/check", data={"purpose": PAY, "version": "1", "state": "received"}
    )
    assert r.status_code == 403
    still = await api.get(f"{API}/invoices/{invoice_id}", headers=bearer(people["kaikei"], PAY))
    assert still.json()["state"] == "received"
    export = await kaikei.post(f"{PAGES}/export", data={"encoding": "utf-8"})
    assert export.status_code == 403


async def test_the_pages_are_in_english_one_switch_away(
    api: httpx.AsyncClient,
    people: dict[str, str],
    registered: dict[str, str],
    kaikei: httpx.AsyncClient,
) -> None:
    invoice_id, _ = await _new(api, people)
    await _sign_in(kaikei, "kaikei-0001")
    kaikei.cookies.set("sg_console_lang", "en", domain="testserver.local", path="/console")
    for path, words in (
        ("/", "Invoice inbox"),
        (f"/{invoice_id}", "Check report"),
        (f"/{invoice_id}/original", "Original as received"),
        ("/search", "Counterparty (corporate number, T-number or supplier id)"),
        ("/export", "Payment export"),
    ):
        page = await kaikei.get(f"{PAGES}{path}")
        assert page.status_code == 200, path
        assert 'lang="en"' in page.text
        assert words in page.text, path


DEMO = "132403"
"""A town seeded with ``make run``'s invoice demo, walked by the demo's own staff."""


async def test_the_demo_staff_work_the_demo_invoices(
    api: httpx.AsyncClient,
    app: Litestar,
    db: Database,
    kaikei: httpx.AsyncClient,
    doboku: httpx.AsyncClient,
    kacho: httpx.AsyncClient,
) -> None:
    """What `make run` offers: 会計課 sees the inbox, 土木課's clerk does 検収, its head
    approves (level 1), 会計課 orders and exports — the demo's grants, the demo staff."""
    import re
    import tomllib

    from shared_gov.domains.invoices import demo
    from shared_gov.tenancy import service as tenancy
    from shared_gov.tenancy.manifest import parse_manifest
    from tests.conftest import TENANTS_DIR

    raw = tomllib.loads((TENANTS_DIR / "kaga.toml").read_text(encoding="utf-8"))
    await tenancy.onboard(db, parse_manifest({**raw, "code": DEMO, "name": "デモ市"}))
    await app.state.services.registry.refresh()
    assert await demo.seed_town(db, DEMO, 0, 0) == 8
    pages = f"/console/towns/{DEMO}/invoices"

    async def find(browser: httpx.AsyncClient, state: str, number: str) -> str:
        inbox = await browser.get(f"{pages}/", params={"state": state})
        assert inbox.status_code == 200, inbox.text
        found = re.search(
            rf'href="{pages}/([0-9a-f-]{{36}})\?purpose=[^"]*">請求書 {number}<', inbox.text
        )
        assert found, (state, number)
        return found.group(1)

    async def step(browser: httpx.AsyncClient, invoice_id: str, name: str, purpose: str) -> str:
        page = await browser.get(f"{pages}/{invoice_id}")
        assert f'id="do-{name}"' in page.text, name
        version = re.search(r'name="version" value="(\d+)"', page.text)
        state = re.search(r'name="state" value="([a-z_]+)"', page.text)
        assert version
        assert state
        done = await browser.post(
            f"{pages}/{invoice_id}/{name}",
            data={
                "_csrf_token": _csrf(page.text),
                "purpose": purpose,
                "version": version.group(1),
                "state": state.group(1),
            },
        )
        assert done.status_code == 200, done.text
        return done.text

    await _sign_in(kaikei, "kaikei-0001", DEMO)
    await find(kaikei, "received", "DEMO-001")
    await _sign_in(doboku, "doboku-0001", DEMO)
    second = await find(doboku, "checked", "DEMO-002")
    assert "検収しました。" in await step(doboku, second, "inspect", "invoices.inspection")
    await _sign_in(kacho, "doboku-0002", DEMO)
    third = await find(kacho, "inspected", "DEMO-003")
    assert "決裁しました。" in await step(kacho, third, "approve", "invoices.approval.1")
    assert "支出命令しました。" in await step(kaikei, third, "order", PAY)
    form = await kaikei.get(f"{pages}/export")
    exported = await kaikei.post(
        f"{pages}/export", data={"_csrf_token": _csrf(form.text), "encoding": "cp932"}
    )
    assert exported.status_code == 200, exported.text
    assert third in exported.content.decode("cp932")
