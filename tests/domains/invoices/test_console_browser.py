"""The e-invoice journey in a real browser (Playwright driving Debian's chromium).

会計課's clerk signs in, opens the inbox, opens an invoice with its check report
and its original, and confirms it (確認); the ordering department's clerk
does 検収 and is refused 決裁 of what they inspected; the department's head
approves it (決裁); 会計課 orders the payment, downloads the payment export
and signs out. Skipped without a browser or without the JP PINT packages;
``SHARED_GOV_SCREENSHOTS=1`` saves the pages under ``docs/console/``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared_gov.settings import Settings
from tests.web.test_browser import _serve, _stop, page, shot, sign_in

from . import factory
from .conftest import SUPPLIER_A, TOWN, bearer

__all__ = ["page"]  # the browser page fixture, used by the tests below

PAGES = f"/console/towns/{TOWN}/invoices"


@pytest.fixture(scope="module")
def served(settings: Settings, db: Any, api: Any) -> Iterator[str]:
    """The service, once the e-invoice towns exist and the rules are installed."""
    running = _serve(dataclasses.replace(settings, access_log=False, pool_max=4))
    yield running.url
    _stop(running)


async def _sign_out(page: Any) -> None:
    await page.get_by_role("button", name="サインアウト").click()
    await page.get_by_text("サインアウトしました。").wait_for()


async def _step(page: Any, button: str, done: str) -> None:
    await page.get_by_role("button", name=button).click()
    await page.get_by_role("status").filter(has_text=done).wait_for()


async def test_an_invoice_from_the_inbox_to_the_payment_export(
    served: str, page: Any, api: httpx.AsyncClient, people: dict[str, str], registered: Any
) -> None:
    number = f"B-{uuid.uuid4().hex[:8]}"
    # An early transaction date: first in the inbox, whatever else is received.
    doc = factory.document(number=number, unit="ippan", issued=date(2025, 4, 1))
    r = await api.post(
        f"/api/v1/tenants/{TOWN}/supplier/invoices",
        content=factory.xml(doc),
        headers=bearer(people["a"], **{"Content-Type": "application/xml"}),
    )
    assert r.status_code == 201, r.text
    invoice_id = r.json()["invoice_id"]
    invoice_url = f"{served}{PAGES}/{invoice_id}"

    # 会計課: the inbox, the invoice with its report and original, 確認.
    await sign_in(page, served, TOWN, "kaikei-0001")
    await page.get_by_role("link", name="電子請求: 受信箱").click()
    await page.get_by_role("heading", name=f"請求書の受信箱 — {TOWN}").wait_for()
    await shot(page, "20-invoices-inbox")
    await page.get_by_role("link", name=f"請求書 {number}").click()
    await page.get_by_role("heading", name="検査結果（チェックレポート）").wait_for()
    assert number in await page.get_by_role("heading", level=1).inner_text()
    await shot(page, "21-invoice")
    await page.get_by_role("link", name="原本を表示する").click()
    source = page.locator("pre.source")
    await source.wait_for()
    assert f"<cbc:ID>{number}</cbc:ID>" in await source.inner_text()  # shown as text
    await shot(page, "22-invoice-original")
    await page.goto(invoice_url)
    await _step(page, "確認する", "確認しました。")
    await _sign_out(page)

    # The ordering department: 検収, then its own 決裁 is refused.
    await sign_in(page, served, TOWN, "doboku-0001")
    await page.goto(invoice_url)
    await _step(page, "検収する", "検収しました。")
    await page.get_by_role("button", name="決裁する").click()
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert "separation of duties" in await alert.inner_text() or "職務" in await alert.inner_text()
    await shot(page, "23-invoice-refused")
    await _sign_out(page)

    # The department's head approves.
    await sign_in(page, served, TOWN, "doboku-0002")
    await page.goto(invoice_url)
    await _step(page, "決裁する", "決裁しました。")
    await shot(page, "24-invoice-approved")
    await _sign_out(page)

    # 会計課: 支出命令, the export, a search; sign out.
    await sign_in(page, served, TOWN, "kaikei-0001")
    await page.goto(invoice_url)
    await _step(page, "支出命令する", "支出命令しました。")
    await page.get_by_role("link", name="支払データの出力").first.click()
    await page.get_by_label("文字コード").select_option("cp932")
    await shot(page, "25-invoices-export")
    async with page.expect_download() as info:
        await page.get_by_role("button", name="CSV をダウンロード").click()
    download = await info.value
    saved = Path(await download.path())
    text = (await asyncio.to_thread(saved.read_bytes)).decode("cp932")
    assert invoice_id in text
    await page.get_by_role("link", name="請求書の検索").first.click()
    await page.get_by_label("取引先（法人番号・登録番号・業者ID）").fill(SUPPLIER_A)
    await page.get_by_label("取引年月日（から）").fill("2025-04-01")
    await page.get_by_label("取引年月日（まで）").fill("2025-04-01")
    await page.get_by_role("button", name="検索する").click()
    await page.get_by_role("heading", name="検索結果").wait_for()
    assert SUPPLIER_A not in page.url
    assert await page.get_by_role("link", name=f"請求書 {number}").count() == 1
    await shot(page, "26-invoices-search")
    await _sign_out(page)
