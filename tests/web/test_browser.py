"""The console in a real browser: Playwright driving Debian's chromium.

Each journey end to end, as a member of staff would click it: sign in with
the development issuer, do the job, see the result, sign out; plus another
town's auditor who sees nothing of this town, a form posted without its
CSRF token, and a session that ends after its idle timeout.

The service runs in a thread (uvicorn) against the tests' PostgreSQL. The
tests skip when no browser is present — install one with
``apt-get install -y chromium`` (``.ci/run`` does; on CI a missing browser
fails instead) or point ``SHARED_GOV_CHROMIUM`` at a Chromium binary.
``SHARED_GOV_SCREENSHOTS=1`` saves each main page under ``docs/console/``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from shared_gov.app import create_app
from shared_gov.clock import JST
from shared_gov.settings import Settings
from tests.audit.planting import plant
from tests.conftest import KAGA, KOMATSU, auth

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="pip install playwright (the dev extra) to run browser tests"
)

ROOT = Path(__file__).resolve().parents[2]


def _mar(day: int, hour: int) -> datetime:
    return datetime(2023, 3, day, hour, 5, tzinfo=JST)


SHOTS = ROOT / "docs" / "console"


def _chromium() -> str | None:
    given = os.environ.get("SHARED_GOV_CHROMIUM")
    if given:
        return given
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM = _chromium()
if CHROMIUM is None:
    message = (
        "no Chromium: apt-get install -y chromium (or set SHARED_GOV_CHROMIUM) "
        "to run the console's browser tests"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)


@dataclasses.dataclass
class Served:
    url: str
    server: Any
    thread: threading.Thread


def _serve(settings: Settings) -> Served:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert settings.database_url
    app = create_app(settings, settings.database_url)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "the console's server did not start"
    return Served(f"http://127.0.0.1:{port}", server, thread)


def _stop(served: Served) -> None:
    served.server.should_exit = True
    served.thread.join(timeout=10)


@pytest.fixture(scope="module")
def console(settings: Settings, db: Any) -> Iterator[str]:
    served = _serve(dataclasses.replace(settings, access_log=False, pool_max=4))
    yield served.url
    _stop(served)


@pytest.fixture(scope="module")
def short_lived(settings: Settings, db: Any) -> Iterator[str]:
    """A service whose console sessions end after 2 idle seconds."""
    served = _serve(
        dataclasses.replace(settings, access_log=False, pool_max=4, console_idle_timeout=2)
    )
    yield served.url
    _stop(served)


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = await browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
        yield await context.new_page()
        await context.close()
        await browser.close()


async def shot(page: Any, name: str) -> None:
    if os.environ.get("SHARED_GOV_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Any, base: str, town: str, staff: str, screenshots: bool = False) -> None:
    await page.goto(f"{base}/console/")
    if screenshots:
        await shot(page, "01-sign-in")
    await page.get_by_label("地方公共団体コード（6桁）").fill(town)
    await page.get_by_role("button", name="サインイン").click()
    await page.wait_for_url("**/console/dev/authorize?**")
    await page.locator(f"#staff-{staff}").check()
    if screenshots:
        await shot(page, "02-dev-sign-in")
    await page.get_by_role("button", name="続ける").click()
    await page.wait_for_url("**/console/home")


BROWSER_CHECKED = (
    "() => ['ok', 'bad', 'unsupported'].includes("
    "document.querySelector('section.browser-proof')?.dataset.state)"
)
# Mon 2023-03-20 .. Fri 2023-03-24 (JST); 03-21 春分の日. Planted by the journey below only.
ANALYSED = {"from": "2023-03-20", "to": "2023-03-25"}


async def _browser_state(page: Any) -> str | None:
    state: str | None = await page.evaluate(
        "() => document.querySelector('section.browser-proof')?.dataset.state ?? null"
    )
    return state


async def _sealed_event_page(page: Any, base: str, client: Any, tokens: dict[str, str]) -> None:
    """A fresh event of Kaga's log, its page reloaded until the sealer has sealed it."""
    r = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/{uuid.uuid4()}", headers=auth(tokens["kaga"])
    )
    assert r.status_code == 404
    found = None
    for _ in range(50):
        listed = await client.get(
            f"/api/v1/tenants/{KAGA}/audit/events",
            params={"actor": "k-0001", "action": "resident.read", "order": "desc", "limit": "1"},
            headers=auth(tokens["kaga_auditor"], None),
        )
        assert listed.status_code == 200, listed.text
        found = next(iter(listed.json()["events"]), None)
        if found:
            break
        await asyncio.sleep(0.1)
    assert found is not None
    await page.goto(f"{base}/console/towns/{KAGA}/audit/events/{found['event_id']}")
    for _ in range(40):
        if await page.get_by_text("検証済み").count():
            return
        await asyncio.sleep(0.5)
        await page.reload()
    raise AssertionError("the event was not sealed in time")


async def test_auditor_signs_in_searches_opens_an_event_and_signs_out(
    console: str, page: Any, client: Any, tokens: dict[str, str], db: Any
) -> None:
    await plant(
        db,
        KAGA,
        [
            {"actor": "p-equinox", "department": "zeimu", "occurred_at": _mar(21, 10)},
            {"actor": "p-equinox", "department": "zeimu", "occurred_at": _mar(22, 23)},
            *(
                {"actor": "p-busy", "department": "shimin", "occurred_at": _mar(20, 9 + i % 8)}
                for i in range(12)
            ),
            *(
                {
                    "actor": "p-busy",
                    "department": "shimin",
                    "occurred_at": _mar(22, 14),
                    "outcome": "denied",
                    "reason": "purpose not permitted",
                }
                for _ in range(3)
            ),
        ],
    )
    # Something for the auditor to find: a staff member's read of a missing record.
    r = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/{uuid.uuid4()}", headers=auth(tokens["kaga"])
    )
    assert r.status_code == 404
    await sign_in(page, console, KAGA, "audit-0001", screenshots=True)
    await shot(page, "03-home")
    await page.get_by_role("link", name="アクセスログ（監査）").click()
    actor = page.get_by_label("職員ID", exact=True)
    await actor.fill("k-0001")
    # Keyboard only: Enter in a field submits the search.
    await actor.press("Enter")
    await page.wait_for_url("**/audit/events")
    assert "k-0001" not in page.url  # a POST: the filter is not in the URL
    await page.get_by_role("table").wait_for()
    rows = page.locator("tbody tr")
    assert await rows.count() >= 1
    assert "resident.read" in await page.locator("tbody").inner_text()
    await shot(page, "04-search")
    await rows.first.get_by_role("link").click()
    await page.get_by_role("heading", name="包含証明").wait_for()
    assert "k-0001" in await page.locator("dl.facts").first.inner_text()
    # The sealer runs every few seconds: once sealed, the proof is shown checked.
    for _ in range(40):
        if await page.get_by_text("検証済み").count():
            break
        await asyncio.sleep(0.5)
        await page.reload()
    assert await page.get_by_text("検証済み").count() == 1
    assert await page.locator(".bad").count() == 0
    # The browser's own check (static/proof.js) agrees.
    await page.wait_for_function(BROWSER_CHECKED)
    assert await _browser_state(page) == "ok"
    assert "お使いのブラウザで確認しました" in await page.locator(".browser-proof").inner_text()
    await shot(page, "05-event")
    await page.goto(f"{console}/console/towns/{KAGA}/audit/verify")
    await page.get_by_role("button", name="今すぐログを検証").click()
    await page.get_by_role("status").wait_for()
    status = await page.get_by_role("status").inner_text()
    assert "ログは正しく検証されました" in status, status
    await shot(page, "06-verify")
    # Visible focus: the focused control has an outline.
    await page.get_by_role("button", name="今すぐログを検証").focus()
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    # The analyses: the planted week, its findings and its charts.
    await page.goto(f"{console}/console/home")
    await page.get_by_role("link", name="アクセスログの分析").click()
    await page.get_by_role("heading", name="検出結果").wait_for()
    await page.get_by_label("開始（この日時を含む）").fill(ANALYSED["from"])
    to = page.get_by_label("終了（この日時を含まない）")
    await to.fill(ANALYSED["to"])
    await to.press("Enter")  # keyboard only, as the search
    await page.get_by_role("cell", name="春分の日", exact=False).first.wait_for()
    assert await page.locator("svg.chart-svg").count() == 3
    assert await page.get_by_role("img", name="日ごとのアクセス（日本時間）").count() == 1
    # The table behind a chart opens with the keyboard.
    summary = page.locator("details.chart-table summary").first
    await summary.focus()
    await summary.press("Enter")
    assert await page.locator("details.chart-table").first.get_attribute("open") is not None
    await shot(page, "07-analyses")
    # A finding opens its events in the search (a POST: the actor is not in the URL).
    row = page.locator("#after-hours ~ table tr", has_text="p-equinox").first
    await row.get_by_role("button", name="イベントを見る").click()
    await page.wait_for_url("**/audit/events")
    assert "p-equinox" not in page.url
    assert "p-equinox" in await page.locator("tbody").inner_text()
    await page.get_by_role("button", name="サインアウト").click()
    await page.get_by_text("サインアウトしました。").wait_for()
    await page.goto(f"{console}/console/home")
    assert page.url.endswith("/console/")  # signed out: back to sign-in


async def test_the_browser_refuses_a_tampered_proof(
    console: str, page: Any, client: Any, tokens: dict[str, str]
) -> None:
    await sign_in(page, console, KAGA, "audit-0001")
    await _sealed_event_page(page, console, client, tokens)
    await page.wait_for_function(BROWSER_CHECKED)
    assert await _browser_state(page) == "ok"
    again = page.get_by_role("button", name="ブラウザで再確認")
    # Another leaf (32 zero bytes) in the page's data: the path leads elsewhere.
    await page.evaluate(
        "() => { document.querySelector('section.browser-proof').dataset.leafHash ="
        " btoa(String.fromCharCode(...new Uint8Array(32))); }"
    )
    await again.click()
    await page.wait_for_function(
        "() => document.querySelector('section.browser-proof').dataset.state === 'bad'"
    )
    assert "確認できません" in await page.locator(".browser-proof-result").inner_text()
    # Back to the true leaf, but a root the checkpoint did not sign: the signature fails.
    await page.reload()
    await page.wait_for_function(BROWSER_CHECKED)
    assert await _browser_state(page) == "ok"
    await page.evaluate(
        "() => { const s = document.querySelector('section.browser-proof');"
        " const lines = s.dataset.body.split('\\n');"
        " lines[1] = String(Number(lines[1]) + 1);"
        " s.dataset.body = lines.join('\\n'); }"
    )
    await again.click()
    await page.wait_for_function(
        "() => document.querySelector('section.browser-proof').dataset.state === 'bad'"
    )
    assert await page.locator(".browser-proof-result.bad").count() == 1


async def test_auditor_of_another_town_sees_nothing_of_this_town(console: str, page: Any) -> None:
    await sign_in(page, console, KOMATSU, "audit-0001")
    for path in ("/", "/verify"):
        response = await page.goto(f"{console}/console/towns/{KAGA}/audit{path}")
        assert response is not None
        assert response.status == 404
        assert await page.get_by_role("heading", name="見つかりません").is_visible()
    # Their own town's log is theirs.
    response = await page.goto(f"{console}/console/towns/{KOMATSU}/audit/")
    assert response is not None
    assert response.status == 200


async def test_a_form_posted_without_its_csrf_token_is_refused(console: str, page: Any) -> None:
    await sign_in(page, console, KAGA, "audit-0001")
    # The browser's own cookies (session and CSRF cookie), but no token in the form:
    # what a page on another site could make the browser send.
    answer = await page.context.request.post(
        f"{console}/console/towns/{KAGA}/audit/events", form={"actor": "k-0001"}
    )
    assert answer.status == 403
    assert "k-0001" not in await answer.text()
    answer = await page.context.request.post(f"{console}/console/sign-out", form={})
    assert answer.status == 403


async def test_a_session_ends_after_its_idle_timeout(short_lived: str, page: Any) -> None:
    await sign_in(page, short_lived, KAGA, "audit-0001")
    await asyncio.sleep(3)
    await page.get_by_role("link", name="アクセスログ（監査）").click()
    await page.wait_for_url("**/console/?expired=1")
    assert await page.get_by_role("status").is_visible()
    assert "一定時間操作がなかった" in await page.get_by_role("status").inner_text()


async def test_english_is_one_click_away(console: str, page: Any) -> None:
    await page.goto(f"{console}/console/")
    await page.get_by_role("link", name="English").click()
    await page.get_by_role("heading", name="Sign in").wait_for()
    assert await page.get_attribute("html", "lang") == "en"
