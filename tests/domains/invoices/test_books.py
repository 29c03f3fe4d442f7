"""Search (電子帳簿保存法), retention, the original unchanged, and the payment export.

A town of its own (OTHER), so the counts are this module's: invoices of
several dates and amounts from two suppliers are searched by transaction
date, amount range and counterparty, alone and combined, page by page; one
past its retention is not found; the original downloads byte for byte with a
SHA-256 that verifies; the export lists each approved invoice once, in UTF-8
or CP932, and a re-export is explicit and audited.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from datetime import date
from typing import Any

import httpx
import pytest

from shared_gov.db import Database

from . import factory
from .conftest import OTHER, SUPPLIER_A, bearer, names_of

BASE = f"/api/v1/tenants/{OTHER}"
PAY = "invoices.payment"


@pytest.fixture(scope="module")
async def books(
    api: httpx.AsyncClient, db: Database, issuer: Any, registered: dict[str, str]
) -> dict[str, Any]:
    kaikei = issuer.mint(subject="o-kaikei", tenant=OTHER, department="kaikei", roles=["staff"])
    sole = issuer.mint(subject="X-OTHER0001", tenant=None, department=None, roles=["supplier"])
    r = await api.post(
        f"{BASE}/suppliers",
        json={
            "supplier_key": "X-OTHER0001",
            "kind": "sole_proprietor",
            "name": '=HYPERLINK("x")鈴木',  # a spreadsheet formula must stay text
            "bank_account": "0009:123:1:7654321",
            "bank_holder": "ｽｽﾞｷ ﾊﾅｺ",
        },
        headers=bearer(kaikei, PAY),
    )
    assert r.status_code == 201, r.text
    supplier_a = bearer(
        issuer.mint(subject=SUPPLIER_A, tenant=None, department=None, roles=["supplier"])
    )
    ids: dict[str, str] = {}
    plan = [
        ("B-0401", date(2026, 4, 10), [(1, 1000, "S")], supplier_a),
        ("B-0515", date(2026, 5, 15), [(2, 50_000, "S")], supplier_a),
        ("B-0620", date(2026, 6, 20), [(1, 300_000, "AA")], supplier_a),
    ]
    for number, day, lines, headers in plan:
        doc = factory.document(number=number, issued=day, lines=lines, unit="ippan")
        sent = await api.post(
            f"{BASE}/supplier/invoices",
            content=factory.xml(doc),
            headers={**headers, "Content-Type": "application/xml"},
        )
        assert sent.status_code == 201, sent.text
        ids[number] = sent.json()["invoice_id"]
    from shared_gov.domains.invoices import document as d

    sole_doc = factory.document(
        number="S-0610",
        issued=date(2026, 6, 10),
        lines=[(3, 2_000, "S")],
        unit="ippan",
        spec=d.NON_TAX_REGISTERED,
        seller=d.Party(
            name="鈴木 花子",
            id=d.Identifier("X-OTHER0001"),
            endpoint=d.Identifier("987654321", "0060"),
        ),
    )
    sent = await api.post(
        f"{BASE}/supplier/invoices",
        content=factory.json(sole_doc),
        headers={**bearer(sole), "Content-Type": "application/json"},
    )
    assert sent.status_code == 201, sent.text
    ids["S-0610"] = sent.json()["invoice_id"]
    return {"kaikei": kaikei, "ids": ids, "sole": sent.json()}


async def _search(api: httpx.AsyncClient, token: str, **query: Any) -> dict[str, Any]:
    r = await api.post(f"{BASE}/invoices/search", json=query, headers=bearer(token, PAY))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _numbers(body: dict[str, Any]) -> list[str]:
    return [i["number"] for i in body["invoices"]]


async def test_search_by_date_amount_and_counterparty_alone_or_combined(
    api: httpx.AsyncClient, books: dict[str, Any]
) -> None:
    k = books["kaikei"]
    everything = _numbers(await _search(api, k))
    assert [n for n in everything if n in {"B-0401", "B-0515", "S-0610", "B-0620"}] == [
        "B-0401",
        "B-0515",
        "S-0610",
        "B-0620",
    ]
    assert _numbers(await _search(api, k, date_from="2026-05-01", date_to="2026-06-15")) == [
        "B-0515",
        "S-0610",
    ]
    assert _numbers(await _search(api, k, amount_min=100_000)) == ["B-0515", "B-0620"]
    assert _numbers(await _search(api, k, supplier_key="X-OTHER0001")) == ["S-0610"]
    combined = await _search(
        api, k, supplier_key=SUPPLIER_A, amount_max=200_000, date_from="2026-05-01"
    )
    assert _numbers(combined) == ["B-0515"]
    assert combined["invoices"][0]["amount"] == "110000"
    bad = await api.post(
        f"{BASE}/invoices/search",
        json={"amount_min": 5, "amount_max": 1},
        headers=bearer(k, PAY),
    )
    assert bad.status_code == 422


async def test_search_pages_with_a_cursor(api: httpx.AsyncClient, books: dict[str, Any]) -> None:
    k = books["kaikei"]
    seen: list[str] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 1, "date_from": "2026-04-01", "date_to": "2026-06-30"}
        if cursor:
            query["after"] = cursor
        page = await _search(api, k, **query)
        seen += _numbers(page)
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ["B-0401", "B-0515", "S-0610", "B-0620"]


async def test_an_invoice_past_its_retention_is_not_found(
    api: httpx.AsyncClient, db: Database, books: dict[str, Any]
) -> None:
    schema = names_of(db, OTHER).schema
    target = books["ids"]["B-0401"]
    async with db.pool.acquire() as conn:
        await conn.execute(
            f'UPDATE "{schema}".invoices SET retain_until = $2 WHERE id = $1::uuid',
            target,
            date(2020, 3, 31),
        )
    try:
        assert "B-0401" not in _numbers(await _search(api, books["kaikei"]))
    finally:
        async with db.pool.acquire() as conn:
            await conn.execute(
                f'UPDATE "{schema}".invoices SET retain_until = $2 WHERE id = $1::uuid',
                target,
                date(2034, 3, 31),
            )
    # A unit keeps its invoices for its retention_years after the transaction's fiscal year.
    read = await api.get(f"{BASE}/invoices/{target}", headers=bearer(books["kaikei"], PAY))
    assert read.json()["retain_until"] == "2034-03-31"  # FY2026 (to 2027-03-31) + 7 years


async def test_the_original_downloads_unchanged_with_its_hash(
    api: httpx.AsyncClient, books: dict[str, Any]
) -> None:
    sole = books["ids"]["S-0610"]
    r = await api.get(f"{BASE}/invoices/{sole}/original", headers=bearer(books["kaikei"], PAY))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    digest = hashlib.sha256(r.content).digest()
    assert r.headers["x-content-sha256"] == digest.hex()
    assert r.headers["repr-digest"] == f"sha-256=:{base64.b64encode(digest).decode()}:"
    read = await api.get(f"{BASE}/invoices/{sole}", headers=bearer(books["kaikei"], PAY))
    assert read.json()["sha256"] == digest.hex()


async def _approve_all(api: httpx.AsyncClient, issuer: Any, ids: list[str], k: str) -> None:
    doboku = issuer.mint(subject="o-doboku", tenant=OTHER, department="doboku", roles=["staff"])
    fuku = issuer.mint(subject="o-fuku", tenant=OTHER, department="fukushicho", roles=["staff"])
    for inv in ids:
        for token, purpose, step, v in (
            (k, PAY, "check", 1),
            (doboku, "invoices.inspection", "inspect", 2),
            (fuku, "invoices.approval.3", "approve", 3),
        ):
            r = await api.post(
                f"{BASE}/invoices/{inv}/{step}",
                json={},
                headers={**bearer(token, purpose), "If-Match": f'"v{v}"'},
            )
            assert r.status_code == 200, r.text


async def test_the_export_lists_each_approved_invoice_once_and_a_reexport_is_explicit(
    api: httpx.AsyncClient, db: Database, issuer: Any, books: dict[str, Any]
) -> None:
    k = books["kaikei"]
    ids = books["ids"]
    await _approve_all(api, issuer, [ids["B-0515"], ids["S-0610"]], k)
    first = await api.post(
        f"{BASE}/invoices/export",
        json={"encoding": "cp932"},
        headers={**bearer(k, PAY), "X-Request-ID": "export-1"},
    )
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("text/csv")
    text = first.content.decode("cp932")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["invoice_number"] for r in rows} == {"B-0515", "S-0610"}
    sole = next(r for r in rows if r["invoice_number"] == "S-0610")
    assert sole["supplier_name"].startswith("'=HYPERLINK")  # inert in a spreadsheet
    assert (sole["bank_code"], sole["branch_code"], sole["account_number"]) == (
        "0009",
        "123",
        "7654321",
    )
    assert sole["account_holder"] == "ｽｽﾞｷ ﾊﾅｺ"
    export_id = first.headers["x-export-id"]
    assert hashlib.sha256(first.content).hexdigest() == first.headers["x-content-sha256"]
    # Idempotent: nothing new to export.
    second = await api.post(f"{BASE}/invoices/export", json={}, headers=bearer(k, PAY))
    assert second.status_code == 200
    assert list(csv.DictReader(io.StringIO(second.content.decode("utf-8")))) == []
    # A re-export is explicit: the same invoices again, in UTF-8 this time, audited.
    again = await api.post(
        f"{BASE}/invoices/export",
        json={"reexport": export_id, "encoding": "utf-8"},
        headers={**bearer(k, PAY), "X-Request-ID": "export-2"},
    )
    assert again.status_code == 200
    assert again.content.decode("utf-8") == text
    async with db.catalog() as conn:
        events = await conn.fetch(
            "SELECT action, reason, rows_returned FROM audit.events WHERE tenant = $1 "
            "AND client_request_id = ANY($2::text[]) ORDER BY occurred_at",
            OTHER,
            ["export-1", "export-2"],
        )
    assert [(e["action"], e["rows_returned"]) for e in events] == [
        ("invoice.export", 2),
        ("invoice.export", 2),
    ]
    assert events[1]["reason"] == f"re-export of {export_id}"
    history = await api.get(f"{BASE}/invoices/{ids['B-0515']}", headers=bearer(k, PAY))
    assert [h["kind"] for h in history.json()["history"]][-2:] == ["export", "reexport"]
    unknown = await api.post(
        f"{BASE}/invoices/export",
        json={"reexport": "00000000-0000-0000-0000-000000000000"},
        headers=bearer(k, PAY),
    )
    assert unknown.status_code == 404


async def test_only_payment_staff_export_and_download(
    api: httpx.AsyncClient, issuer: Any, books: dict[str, Any]
) -> None:
    doboku = issuer.mint(subject="o-doboku", tenant=OTHER, department="doboku", roles=["staff"])
    r = await api.post(
        f"{BASE}/invoices/export", json={}, headers=bearer(doboku, "invoices.inspection")
    )
    assert r.status_code == 403
    supplier = issuer.mint(subject=SUPPLIER_A, tenant=None, department=None, roles=["supplier"])
    r = await api.post(f"{BASE}/invoices/search", json={}, headers=bearer(supplier, PAY))
    assert r.status_code == 404
