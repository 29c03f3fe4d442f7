"""The domain's sentences come from its catalogue (``invoices/messages.py``):
Japanese with ``Accept-Language: ja``, English by default and in the audit log;
a report carries every platform finding in both languages, from the catalogue."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from msgspec.structs import replace

from shared_gov.db import Database
from shared_gov.domains.invoices import messages as m
from shared_gov.domains.invoices import rules
from shared_gov.domains.invoices.report import said
from shared_gov.messages import lookup

from . import factory
from .conftest import TOWN, bearer

BASE = f"/api/v1/tenants/{TOWN}"
PAY = "invoices.payment"
JA = {"Accept-Language": "ja"}


async def _events(db: Database, request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2",
            TOWN,
            request_id,
        )
    return [dict(r) for r in rows]


def test_the_catalogue_is_the_domains_and_installed() -> None:
    """Listed in the spec, so the messages know it; ids start with ``invoices.``."""
    assert lookup("invoices.seller_not_supplier") is m.SELLER_NOT_SUPPLIER.entry
    assert lookup("invoices.sg_jp_06") is m.DUPLICATE.entry
    assert all(i.startswith("invoices.") for i in m.CATALOGUE.entries)


def test_a_platform_finding_carries_both_languages_of_its_entry() -> None:
    found = rules.duplicate(lambda pointer: "/Invoice/cbc:ID")
    assert found == said("sg-jp-06", "fatal", "/Invoice/cbc:ID", m.DUPLICATE)
    assert found.message.ja == "同じ請求書番号・発行日の請求書をすでに受け付けています。"
    assert found.message.en == str(m.DUPLICATE)
    unit = rules.registration_required(
        factory.document(seller_t=None), lambda pointer: pointer, "水道事業会計"
    )
    assert [f.message.ja for f in unit] == [
        "水道事業会計は適格請求書が必要です。売り手の登録番号（T＋13桁）を記載してください。"
    ]
    assert unit[0].message.en.startswith("水道事業会計 needs qualified invoices")


async def test_a_field_error_in_japanese_and_by_default_in_english(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    body = {"supplier_key": "7123456789013", "kind": "corporation", "name": "偽"}
    ja = await api.post(f"{BASE}/suppliers", json=body, headers=bearer(people["kaikei"], PAY, **JA))
    assert ja.status_code == 422
    assert ja.json()["errors"] == [
        {"pointer": "/supplier_key", "detail": "チェックデジットが一致しません"}
    ]
    en = await api.post(f"{BASE}/suppliers", json=body, headers=bearer(people["kaikei"], PAY))
    assert en.json()["errors"] == [
        {"pointer": "/supplier_key", "detail": "check digit does not match"}
    ]


async def test_a_refusal_in_japanese_is_recorded_in_english(
    api: httpx.AsyncClient, db: Database, people: dict[str, str], registered: dict[str, str]
) -> None:
    """B sends as A with ``Accept-Language: ja``: the 403 says why in Japanese; the
    town's log keeps the English sentence."""
    doc = factory.document(number="LANG-SPOOF-1", unit="ippan")
    r = await api.post(
        f"{BASE}/supplier/invoices",
        content=factory.xml(doc),
        headers=bearer(
            people["b"], **{"Content-Type": "application/xml", "X-Request-ID": "inv-ja-1", **JA}
        ),
    )
    assert r.status_code == 403
    assert r.json()["detail"] == "請求書の売り手が、認証された業者ではありません"
    assert r.json()["reason"] == "請求書の売り手が、認証された業者ではありません"
    (event,) = await _events(db, "inv-ja-1")
    assert event["reason"] == "the invoice's seller is not the authenticated supplier"


async def test_a_rejection_in_japanese_keeps_its_report_in_both(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    doc = factory.document(number="LANG-BAD-1", unit="ippan")
    total = doc.tax_totals[0]
    per_line = [replace(total.subtotals[0], tax=Decimal(30)), total.subtotals[1]]
    bad = replace(doc, tax_totals=[replace(total, amount=Decimal(50), subtotals=per_line)])
    r = await api.post(
        f"{BASE}/supplier/invoices",
        content=factory.xml(bad),
        headers=bearer(people["a"], **{"Content-Type": "application/xml", **JA}),
    )
    assert r.status_code == 422
    problem = r.json()
    assert problem["title"] == "請求書を受け付けませんでした"
    assert problem["detail"] == "請求書を受け付けませんでした。検査結果（report）を確認してください"
    entry = next(f for f in problem["report"]["findings"] if f["rule"] == "sg-jp-04")
    assert entry["message"] == {
        "ja": m.NOT_ROUNDED_ONCE(rate="S 10%").render("ja"),
        "en": str(m.NOT_ROUNDED_ONCE(rate="S 10%")),
    }
    en = await api.post(
        f"{BASE}/supplier/invoices",
        content=factory.xml(replace(bad, number="LANG-BAD-2")),
        headers=bearer(people["a"], **{"Content-Type": "application/xml"}),
    )
    assert (en.json()["title"], en.json()["detail"]) == (
        "Invoice rejected",
        "the invoice was rejected: see the report",
    )


async def test_unsupported_media_and_workflow_refusals_in_japanese(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    r = await api.post(
        f"{BASE}/supplier/invoices",
        content=b"x",
        headers=bearer(people["a"], **{"Content-Type": "text/plain", **JA}),
    )
    assert r.status_code == 415
    assert r.json()["title"] == "このメディアタイプは扱えません"
    assert r.json()["detail"].startswith("請求書は application/xml")
    sent = await api.post(
        f"{BASE}/supplier/invoices",
        content=factory.xml(factory.document(number="LANG-WF-1", unit="ippan")),
        headers=bearer(people["a"], **{"Content-Type": "application/xml"}),
    )
    assert sent.status_code == 201, sent.text
    step = f"{BASE}/invoices/{sent.json()['invoice_id']}/check"
    missing = await api.post(step, json={}, headers=bearer(people["kaikei"], PAY, **JA))
    assert missing.status_code == 428
    assert missing.json()["detail"] == "If-Match（読み込んだ ETag）が必要です"
    wrong = await api.post(
        f"{BASE}/invoices/{sent.json()['invoice_id']}/pay",
        json={},
        headers=bearer(people["kaikei"], PAY, **{"If-Match": '"v1"', **JA}),
    )
    assert wrong.status_code == 409
    assert wrong.json()["detail"] == "状態が received の請求書は paid にできません"
    unknown = await api.get(
        f"{BASE}/invoices/00000000-0000-4000-8000-000000000000",
        headers=bearer(people["kaikei"], PAY, **JA),
    )
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "該当する請求書はありません"
