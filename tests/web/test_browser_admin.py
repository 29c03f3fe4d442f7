"""The town admin's and the disclosure desk's journeys in a real browser
(Playwright driving Debian's chromium, as test_browser.py; skipped without it).

- A town admin signs in, suspends a member of staff, reads why a person cannot
  see a field, looks at the departments and the identity provider, proposes a
  sharing agreement, sees each result, signs out.
- A 市民課 clerk signs in, finds a resident by keyboard (a POST: the id is not
  in the address), opens the access report, which prints as one A4 document
  without the console's navigation, and signs out.

``SHARED_GOV_SCREENSHOTS=1`` saves each main page under ``docs/console/``.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from typing import Any

import pytest

from shared_gov.clock import today_jst
from shared_gov.tenancy.manifest import Department
from tests.conftest import auth
from tests.factories import resident_body
from tests.security.sod_helpers import OwnIdp, manifest_json, town_code

from .test_browser import SHOTS, console, page, shot, sign_in  # noqa: F401 - fixtures

ADMIN_TOWN = town_code("47976")
IDP_TOWN = town_code("47979")
DESK_TOWN = town_code("47977")
PARTNER = town_code("47978")


@pytest.fixture(scope="module")
async def towns(client: Any, tokens: dict[str, str]) -> None:
    desk = [
        Department(code="shimin", name="市民課", purposes=["juki.registration", "juki.disclosure"]),
        Department(code="somu", name="総務課", purposes=[]),
    ]
    made: tuple[tuple[str, dict[str, Any]], ...] = (
        (ADMIN_TOWN, {}),
        (PARTNER, {}),
        (IDP_TOWN, {}),
        (DESK_TOWN, {"departments": desk}),
    )
    for code, extra in made:
        r = await client.post(
            "/api/v1/tenants",
            json=manifest_json(code, **extra),
            headers=auth(tokens["operator"]),
        )
        assert r.status_code in (200, 201), r.text


async def test_a_town_admin_suspends_someone_and_proposes_an_agreement(
    console: str,  # noqa: F811 - the fixture
    page: Any,  # noqa: F811
    towns: None,
) -> None:
    await sign_in(page, console, ADMIN_TOWN, "admin-0001")
    await page.get_by_role("link", name="職員の権限と利用停止").click()
    await page.get_by_role("heading", name=re.compile("職員の権限と利用停止")).wait_for()
    await page.get_by_label("職員ID").fill("clerk-0800")
    await page.get_by_label("所属", exact=True).select_option("shimin")
    await page.get_by_label("この職員を利用停止にする").check()
    # By keyboard to the button: the focused control shows a visible outline.
    await page.get_by_label(re.compile("^備考")).focus()
    await page.keyboard.press("Tab")
    focused = "document.activeElement"
    assert await page.evaluate(f"{focused}.textContent.trim()") == "保存"
    assert await page.evaluate(f"getComputedStyle({focused}).outlineStyle") != "none"
    await page.keyboard.press("Enter")
    status = page.get_by_role("status")
    await status.wait_for()
    assert "clerk-0800 の権限を保存しました" in await status.inner_text()
    row = page.get_by_role("row", name=re.compile("clerk-0800"))
    assert "利用停止中" in await row.inner_text()
    await shot(page, "admin-2-staff")
    # Lift it again from the table, by keyboard.
    lift = page.get_by_role("button", name="利用停止を解除: clerk-0800")
    await lift.focus()
    await page.keyboard.press("Enter")
    await page.get_by_text("clerk-0800 の利用停止を解除しました").wait_for()

    await page.get_by_role("link", name="この職員がこの項目を見られない理由").first.click()
    await page.get_by_label("職員ID").fill("clerk-0800")
    await page.get_by_label("利用目的").select_option("juki.registration")
    await page.get_by_label(re.compile("^所属")).fill("shimin")
    await page.get_by_role("button", name="理由を表示").click()
    await page.get_by_role("table").wait_for()
    decided = await page.locator("tbody").inner_text()
    assert "閲覧できる" in decided
    assert "閲覧できない" in decided
    assert "clerk-0800" not in page.url
    await shot(page, "admin-3-explain")

    await page.get_by_role("link", name="部署と利用目的").first.click()
    await page.get_by_role("table").wait_for()
    assert "市民課" in await page.locator("tbody").inner_text()
    await page.locator("summary", has_text="kaigo").click()  # the change form opens
    await page.locator("#d-kaigo-name").wait_for()
    await shot(page, "admin-1-departments")
    await page.get_by_role("link", name="認証基盤（IdP）").first.click()
    await page.get_by_role("heading", name="現在の設定").wait_for()

    await page.get_by_role("link", name="団体間の提供協定").first.click()
    today = today_jst()
    await page.get_by_label(re.compile("提供先の団体")).fill(PARTNER)
    await page.get_by_label(re.compile("提供先の部署")).fill("kaigo")
    await page.get_by_label("有効期間の開始日").fill(today.isoformat())
    await page.get_by_label("有効期間の終了日（この日を含む）").fill(
        (today + timedelta(days=90)).isoformat()
    )
    await page.get_by_label("根拠法令").fill("介護保険法 第203条")
    await page.get_by_label(re.compile("^閲覧")).check()
    await page.get_by_label(re.compile("kaigo.qualification")).check()
    await page.get_by_label(re.compile("（family_name）")).check()
    await page.get_by_role("button", name="提案する").click()
    await page.get_by_role("status").wait_for()
    assert "協定を提案しました" in await page.get_by_role("status").inner_text()
    assert "提案中" in await page.locator("dl.facts").inner_text()
    await shot(page, "admin-5-agreement")

    await page.get_by_role("button", name="サインアウト").click()
    await page.get_by_text("サインアウトしました。").wait_for()


async def test_two_admins_change_the_identity_provider(
    console: str,  # noqa: F811
    page: Any,  # noqa: F811
    towns: None,
) -> None:
    """Four eyes: one admin proposes, the other reviews the digest and approves."""
    idp = OwnIdp(f"https://idp.t{IDP_TOWN}.example")
    await sign_in(page, console, IDP_TOWN, "admin-0001")
    await page.get_by_role("link", name="認証基盤（IdP）").click()
    await page.get_by_label("発行者 URL").fill(idp.url)
    await page.get_by_label("受け手（audience）").fill("shared-gov-town")
    await page.get_by_label(re.compile("^公開鍵（JWKS の JSON")).fill(
        json.dumps(idp.config()["jwks"])
    )
    await page.get_by_role("button", name="提案する").click()
    await page.get_by_text("認証基盤を登録しました。").wait_for()  # the first one (development)
    await page.get_by_label("受け手（audience）").fill("shared-gov-town-2")
    await page.get_by_role("button", name="提案する").click()
    await page.get_by_text("別の管理者の承認が必要です").wait_for()
    # One's own proposal: refused, with the reason.
    await page.get_by_role("button", name="承認する").click()
    assert "自分" in await page.get_by_role("alert").inner_text()
    await page.get_by_role("button", name="サインアウト").click()
    await page.get_by_text("サインアウトしました。").wait_for()

    await sign_in(page, console, IDP_TOWN, "admin-0002")
    await page.get_by_role("link", name="認証基盤（IdP）").click()
    pending = await page.locator("#pending").locator("xpath=..").inner_text()
    assert "admin-0001" in pending
    assert "shared-gov-town-2" in pending
    await shot(page, "admin-4-issuer")
    await page.get_by_role("button", name="承認する").click()
    await page.get_by_text("承認しました。変更は有効になりました。").wait_for()
    assert "shared-gov-town-2" in await page.locator("#in-effect").locator("xpath=..").inner_text()
    await page.get_by_role("button", name="サインアウト").click()
    await page.get_by_text("サインアウトしました。").wait_for()


async def test_the_disclosure_clerk_prints_a_residents_access_report(
    console: str,  # noqa: F811
    page: Any,  # noqa: F811
    towns: None,
    client: Any,
    issuer: Any,
) -> None:
    clerk = issuer.mint(
        subject="reg-0001", tenant=DESK_TOWN, department="shimin", roles=["staff"], mfa=True
    )
    created = await client.post(
        f"/api/v1/tenants/{DESK_TOWN}/residents", json=resident_body(), headers=auth(clerk)
    )
    assert created.status_code == 201, created.text
    resident = created.json()["id"]
    await sign_in(page, console, DESK_TOWN, "staff-0001")
    await page.get_by_role("link", name="アクセス記録の開示（窓口）").click()
    field = page.get_by_label("住民ID")
    await field.fill(resident)
    await shot(page, "disclosure-1-lookup")
    await field.press("Enter")
    await page.wait_for_url("**/residents/disclosure/report")
    assert resident not in page.url
    heading = page.get_by_role("heading", name="住民記録の利用状況（アクセス記録）の開示")
    await heading.wait_for()
    text = await page.locator("article").inner_text()
    assert "令和" in text
    assert "住民記録の記載" in text
    assert "市民課" in text
    await shot(page, "disclosure-2-report")
    # On paper: the document alone, on A4 (the screenshot at A4's 96 dpi size).
    await page.set_viewport_size({"width": 794, "height": 1123})
    await page.emulate_media(media="print")
    assert not await page.locator("header.bar").is_visible()
    assert not await page.get_by_role("button", name="印刷（A4）").is_visible()
    assert await heading.is_visible()
    await shot(page, "disclosure-3-print")
    pdf = await page.pdf(prefer_css_page_size=True)
    if os.environ.get("SHARED_GOV_SCREENSHOTS") == "1":
        (SHOTS / "disclosure-report-a4.pdf").write_bytes(pdf)
    box = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    assert box is not None
    width, height = float(box.group(1)), float(box.group(2))
    # A4 in points (210 mm x 297 mm).
    assert abs(width - 595.3) < 2, width
    assert abs(height - 841.9) < 2, height
    await page.emulate_media(media="screen")
    await page.get_by_role("button", name="サインアウト").click()
    await page.get_by_text("サインアウトしました。").wait_for()
