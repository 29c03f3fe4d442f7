"""介護保険課's journey in a real browser (Playwright driving Debian's chromium).

A clerk signs in, opens the queue, opens a determination (its legal date,
legal basis and the questions for staff), answers and confirms it, sees it
confirmed and the person's insured record, and signs out; a clerk who
corrected a determination is refused when confirming it, in Japanese.
Skipped without a browser, as tests/web/test_browser.py says;
``SHARED_GOV_SCREENSHOTS=1`` saves the pages under ``docs/console/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from shared_gov.db import Database
from shared_gov.settings import Settings
from shared_gov.web.timefmt import wareki
from tests.conftest import KAGA
from tests.domains.kaigo.conftest import Register, queue_of, settle
from tests.web.test_browser import _serve, _stop, page, shot, sign_in

__all__ = ["page"]  # the browser page fixture, used by the tests below


@pytest.fixture(scope="module")
def served(settings: Settings, db: Any) -> Iterator[str]:
    running = _serve(dataclasses.replace(settings, access_log=False, pool_max=4))
    yield running.url
    _stop(running)


async def _determination(db: Database, register_: Register) -> Any:
    person = await register_.move_in(birth_date="1950-10-10")
    await settle(db)
    (d,) = await queue_of(db, KAGA, person["id"])
    return d


async def _find_in_queue(page: Any, determination_id: str) -> None:
    """Click the determination's link, paging through the queue as a clerk would."""
    link = page.locator(f'a[href$="/determinations/{determination_id}"]')
    for _ in range(10):
        if await link.count():
            await link.first.click()
            return
        await page.get_by_role("link", name="次のページ").click()
    raise AssertionError("the determination is not in the queue")


async def test_a_clerk_confirms_a_determination_from_the_queue(
    served: str, page: Any, db: Database, register_: Register
) -> None:
    d = await _determination(db, register_)
    await sign_in(page, served, KAGA, "kaigo-0001")
    await page.get_by_role("link", name="介護保険: 判定キュー").click()
    await page.get_by_role("heading", name=f"判定キュー — {KAGA}").wait_for()
    # Keyboard only: the filter's checkbox and its button.
    await page.get_by_label("資格取得", exact=True).check()
    await page.get_by_role("button", name="表示する").focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/kaigo/determinations?**")
    await shot(page, "10-kaigo-queue")
    await _find_in_queue(page, d.id)
    await page.get_by_role("heading", name="判定: 資格取得").wait_for()
    facts = await page.locator("dl.facts").first.inner_text()
    assert d.proposal.legal_basis in facts
    assert wareki(d.proposal.date) in facts  # 令和…年…月…日, as a clerk reads it
    await shot(page, "11-kaigo-determination")
    for q in d.proposal.questions:
        await page.get_by_label(q.text).fill("確認済み")
    await page.get_by_role("button", name="確定する").click()
    await page.get_by_role("status").filter(has_text="確定しました。").wait_for()
    assert "確定" in await page.locator("dl.facts").first.inner_text()
    assert await page.get_by_role("button", name="確定する").count() == 0
    await shot(page, "12-kaigo-confirmed")
    # The person's insured record: a POST (the resident id stays out of the URL).
    await page.get_by_role("button", name="この方の被保険者記録を見る").click()
    await page.get_by_role("heading", name="資格期間").wait_for()
    assert d.resident_id not in page.url
    assert wareki(d.proposal.date) in await page.locator("table").first.inner_text()
    await shot(page, "13-kaigo-insured")
    await page.get_by_role("button", name="サインアウト").click()
    await page.get_by_text("サインアウトしました。").wait_for()
    await page.goto(f"{served}/console/towns/{KAGA}/kaigo/determinations")
    assert page.url.endswith("/console/")


async def test_who_corrected_is_refused_when_confirming(
    served: str, page: Any, db: Database, register_: Register
) -> None:
    d = await _determination(db, register_)
    await sign_in(page, served, KAGA, "kaigo-0001")
    await page.goto(f"{served}/console/towns/{KAGA}/kaigo/determinations/{d.id}")
    await page.locator("#correct-reason").fill("届出書で転入日を確認した")
    await page.get_by_role("button", name="訂正する").click()
    await page.get_by_role("status").filter(has_text="訂正しました。").wait_for()
    await page.get_by_role("button", name="確定する").click()
    alert = page.get_by_role("alert")
    await alert.wait_for()
    assert "訂正した職員は同じ判定を確定できません（職務の分離）" in await alert.inner_text()
    await shot(page, "14-kaigo-refused")
