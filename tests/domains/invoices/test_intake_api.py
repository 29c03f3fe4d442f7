"""Suppliers' systems send invoices over HTTP; the town registers them first.

Real JWTs (the built-in issuer mints suppliers' tokens, as in development),
real Cedar with the domain's policies, real PostgreSQL, the official rules in
worker processes. Attacks: a supplier sending as another (spoofing the
seller), reading another's invoice or report, entering a town that did not
register it, staff on the supplier endpoints and suppliers on the staff ones,
forged supplier tokens, XXE over HTTP.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from shared_gov.domains.invoices import document as d
from shared_gov.domains.invoices.gateway import OWN_PEOPLE

from . import factory
from .conftest import OTHER, SUPPLIER_A, SUPPLIER_B, TOWN, bearer

PAY = "invoices.payment"
XML = {"Content-Type": "application/xml"}
JSON = {"Content-Type": "application/json"}


def _base(code: str = TOWN) -> str:
    return f"/api/v1/tenants/{code}"


async def _events(db: Database, request_id: str, code: str = TOWN) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2",
            code,
            request_id,
        )
    return [dict(r) for r in rows]


async def _send(
    api: httpx.AsyncClient,
    token: str,
    doc: d.Document,
    *,
    code: str = TOWN,
    form: str = "xml",
    request_id: str | None = None,
) -> httpx.Response:
    body = factory.xml(doc) if form == "xml" else factory.json(doc)
    headers = bearer(token, **(XML if form == "xml" else JSON))
    if request_id:
        headers["X-Request-ID"] = request_id
    return await api.post(f"{_base(code)}/supplier/invoices", content=body, headers=headers)


# --- registration -------------------------------------------------------------------------


async def test_registering_refuses_a_wrong_check_digit_and_a_second_registration(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    headers = bearer(people["kaikei"], PAY)
    wrong = await api.post(
        f"{_base()}/suppliers",
        json={"supplier_key": "7123456789013", "kind": "corporation", "name": "偽"},
        headers=headers,
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"] == [
        {"pointer": "/supplier_key", "detail": "check digit does not match"}
    ]
    again = await api.post(
        f"{_base()}/suppliers",
        json={"supplier_key": SUPPLIER_A, "kind": "corporation", "name": "x"},
        headers=headers,
    )
    assert again.status_code == 409


async def test_bank_details_are_shown_only_under_the_payment_purpose(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    r = await api.get(
        f"{_base()}/suppliers/{registered['a@' + TOWN]}", headers=bearer(people["kaikei"], PAY)
    )
    assert r.status_code == 200
    assert r.json()["bank_account"] == "0001:001:1:1234567"
    denied = await api.get(
        f"{_base()}/suppliers/{registered['a@' + TOWN]}",
        headers=bearer(people["doboku"], "invoices.inspection"),
    )
    assert denied.status_code == 403  # 検収 does not register suppliers


# --- intake --------------------------------------------------------------------------------


async def test_an_invoice_is_accepted_and_its_report_kept(
    api: httpx.AsyncClient, db: Database, people: dict[str, str], registered: dict[str, str]
) -> None:
    doc = factory.document(number="API-1", unit="suido")
    r = await _send(api, people["a"], doc, request_id="inv-submit-1")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["state"] == "received"
    assert body["report"]["findings"] == []
    assert body["report"]["rules"] == ["ubl 2.1", "pint-jp 1.1.3", "platform 1"]
    assert r.headers["location"].endswith(body["invoice_id"])
    (event,) = await _events(db, "inv-submit-1")
    assert (event["action"], event["outcome"]) == ("invoice.submit", "allowed")
    assert event["actor"] == SUPPLIER_A
    assert event["roles"] == ["supplier"]
    assert event["purpose"] == "invoices.supplier"
    # The town sees the same document, byte for byte behind it.
    staff = await api.get(
        f"{_base()}/invoices/{body['invoice_id']}", headers=bearer(people["kaikei"], PAY)
    )
    assert staff.status_code == 200, staff.text
    assert d.Document(**_struct(staff.json()["document"])) == doc
    assert staff.headers["etag"] == '"v1"'
    assert staff.json()["history"][0]["kind"] == "received"


def _struct(body: dict[str, Any]) -> dict[str, Any]:
    import msgspec

    value = msgspec.convert(body, d.Document)
    return {f: getattr(value, f) for f in d.Document.__struct_fields__}


async def test_the_json_form_is_accepted_as_the_same_invoice(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    doc = factory.document(number="API-JSON-1", unit="ippan")
    r = await _send(api, people["a"], doc, form="json")
    assert r.status_code == 201, r.text
    staff = await api.get(
        f"{_base()}/invoices/{r.json()['invoice_id']}", headers=bearer(people["kaikei"], PAY)
    )
    assert d.Document(**_struct(staff.json()["document"])) == doc


async def test_a_fatal_finding_is_422_with_the_full_report_fetchable_later(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    from msgspec.structs import replace

    doc = factory.document(number="API-BAD-1", unit="ippan")
    total = doc.tax_totals[0]
    per_line = [replace(total.subtotals[0], tax=Decimal(30)), total.subtotals[1]]
    bad = replace(doc, tax_totals=[replace(total, amount=Decimal(50), subtotals=per_line)])
    r = await _send(api, people["a"], bad)
    assert r.status_code == 422
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    fired = {f["rule"] for f in problem["report"]["findings"]}
    assert "sg-jp-04" in fired
    entry = next(f for f in problem["report"]["findings"] if f["rule"] == "sg-jp-04")
    assert entry["severity"] == "fatal"
    assert entry["location"] == "/Invoice/cac:TaxTotal/cac:TaxSubtotal[1]/cbc:TaxAmount"
    assert entry["message"]["ja"]
    assert entry["message"]["en"]
    later = await api.get(
        f"{_base()}/supplier/submissions/{problem['submission_id']}", headers=bearer(people["a"])
    )
    assert later.status_code == 200
    assert later.json()["accepted"] is False
    assert later.json()["report"] == problem["report"]


async def test_a_duplicate_is_409_and_kept_as_a_rejected_submission(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    doc = factory.document(number="API-DUP-1", unit="ippan")
    assert (await _send(api, people["a"], doc)).status_code == 201
    again = await _send(api, people["a"], doc, form="json")
    assert again.status_code == 409
    assert "sg-jp-06" in {f["rule"] for f in again.json()["report"]["findings"]}


async def test_the_same_invoice_twice_at_once_is_one_invoice_and_one_409(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    """The table's unique key decides between two identical submissions in flight
    (``ON CONFLICT DO NOTHING``): never two invoices, never a 500."""
    import asyncio

    doc = factory.document(number="API-RACE-1", unit="ippan")
    answers = await asyncio.gather(*(_send(api, people["a"], doc) for _ in range(4)))
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409]
    own = await api.get(f"{_base()}/supplier/invoices", headers=bearer(people["a"]))
    assert [i["number"] for i in own.json()["invoices"]].count("API-RACE-1") == 1


async def test_a_unit_that_files_consumption_tax_needs_a_qualified_invoice(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    unregistered = factory.sole_unregistered()
    to_suido = factory.document(
        number="NTR-1", unit="suido", spec=d.NON_TAX_REGISTERED, seller=unregistered
    )
    r = await _send(api, people["c"], to_suido)
    assert r.status_code == 422
    assert {f["rule"] for f in r.json()["report"]["findings"]} == {"sg-jp-05"}
    to_ippan = factory.document(
        number="NTR-2", unit="ippan", spec=d.NON_TAX_REGISTERED, seller=unregistered
    )
    assert (await _send(api, people["c"], to_ippan)).status_code == 201
    unknown = factory.document(number="U-1", unit="nowhere")
    r = await _send(api, people["a"], unknown)
    assert r.status_code == 422
    assert {f["rule"] for f in r.json()["report"]["findings"]} == {"sg-unit-01"}


async def test_xxe_over_http_is_refused_and_reported(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE Invoice [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">&x;</Invoice>'
    )
    r = await api.post(
        f"{_base()}/supplier/invoices", content=body, headers=bearer(people["a"], **XML)
    )
    assert r.status_code == 422
    assert [f["rule"] for f in r.json()["report"]["findings"]] == ["sg-xml-04"]
    assert "root:" not in r.text
    wrong_type = await api.post(
        f"{_base()}/supplier/invoices",
        content=b"x",
        headers=bearer(people["a"], **{"Content-Type": "text/plain"}),
    )
    assert wrong_type.status_code == 415


# --- attacks -------------------------------------------------------------------------------


async def test_a_supplier_cannot_send_as_another(
    api: httpx.AsyncClient, db: Database, people: dict[str, str], registered: dict[str, str]
) -> None:
    """B sends an invoice whose seller is A (A's T-number, A's 法人番号): 403, nothing kept."""
    doc = factory.document(number="SPOOF-1", unit="ippan")
    r = await _send(api, people["b"], doc, request_id="inv-spoof-1")
    assert r.status_code == 403
    assert r.json()["detail"] == "the invoice's seller is not the authenticated supplier"
    (event,) = await _events(db, "inv-spoof-1")
    assert (event["outcome"], event["actor"]) == ("denied", SUPPLIER_B)
    # B's own identity with A's T-number is refused too.
    mixed = factory.document(
        number="SPOOF-2", unit="ippan", seller=d.Party(name="山田 太郎", tax_id="T7123456789012")
    )
    assert (await _send(api, people["b"], mixed)).status_code == 403
    own = await api.get(f"{_base()}/supplier/invoices", headers=bearer(people["b"]))
    assert [i["number"] for i in own.json()["invoices"]] == []


async def test_a_supplier_sees_only_its_own_invoices_and_reports(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    doc = factory.document(number="OWN-1", unit="ippan")
    mine = (await _send(api, people["a"], doc)).json()
    other = await _send(
        api,
        people["b"],
        factory.document(number="B-1", unit="ippan", seller=factory.sole_registered()),
    )
    assert other.status_code == 201, other.text
    theirs = other.json()
    # A reads its own; B's invoice and report are the same 404 as nothing.
    assert (
        await api.get(
            f"{_base()}/supplier/invoices/{mine['invoice_id']}", headers=bearer(people["a"])
        )
    ).json()["state"] == "received"
    answers = set()
    for path in (
        f"/supplier/invoices/{theirs['invoice_id']}",
        f"/supplier/submissions/{theirs['submission_id']}",
        "/supplier/invoices/00000000-0000-0000-0000-000000000000",
        "/supplier/submissions/00000000-0000-0000-0000-000000000000",
    ):
        r = await api.get(_base() + path, headers=bearer(people["a"]))
        assert r.status_code == 404, path
        answers.add((r.json()["title"], r.json()["detail"]))
    # Another supplier's record and no record at all: one identical answer.
    assert len(answers) == 1, answers
    listed = await api.get(f"{_base()}/supplier/invoices", headers=bearer(people["a"]))
    numbers = {i["number"] for i in listed.json()["invoices"]}
    assert "OWN-1" in numbers
    assert "B-1" not in numbers


async def test_a_supplier_sees_its_invoices_in_every_town_it_sells_to(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    r = await _send(api, people["a"], factory.document(number="OTHER-1", unit="ippan"), code=OTHER)
    assert r.status_code == 201, r.text
    here = await api.get(f"{_base(OTHER)}/supplier/invoices", headers=bearer(people["a"]))
    numbers = [i["number"] for i in here.json()["invoices"]]
    assert "OTHER-1" in numbers
    assert "API-1" not in numbers  # sent to TOWN: each town lists its own
    # B is not registered in OTHER: the town does not exist for it.
    assert (
        await api.get(f"{_base(OTHER)}/supplier/invoices", headers=bearer(people["b"]))
    ).status_code == 404
    assert (
        await _send(
            api,
            people["b"],
            factory.document(number="B-OTHER", seller=factory.sole_registered()),
            code=OTHER,
        )
    ).status_code == 404


async def test_staff_and_suppliers_stay_on_their_own_side(
    api: httpx.AsyncClient, people: dict[str, str], registered: dict[str, str]
) -> None:
    assert (
        await api.get(f"{_base()}/supplier/invoices", headers=bearer(people["kaikei"], PAY))
    ).status_code == 404
    for path in ("/suppliers", f"/suppliers/{registered['a@' + TOWN]}", "/accounting-units"):
        r = await api.get(_base() + path, headers=bearer(people["a"], PAY))
        assert r.status_code == 404, path
    r = await api.post(
        f"{_base()}/residents/search",
        json={"atena_no": "00000017"},
        headers=bearer(people["a"], "juki.registration"),
    )
    assert r.status_code == 404


async def test_every_refusal_on_the_supplier_endpoints_is_one_event_with_its_reason(
    api: httpx.AsyncClient, db: Database, people: dict[str, str], registered: dict[str, str]
) -> None:
    """The one guarded entry through the suppliers' gate: whoever is no supplier
    gets the 404 of anyone outside before the body is read, a supplier the town
    does not know or asking for another's invoice the same 404; each is one
    denial in the town's log with its own reason, never with what was sent."""
    mine = (await _send(api, people["a"], factory.document(number="REF-1", unit="ippan"))).json()
    cases = [
        # (who, town, method, path, body, reason, actor, purpose)
        ("kaikei", TOWN, "GET", "/supplier/invoices", None, OWN_PEOPLE, "t-kaikei", None),
        (
            "kaikei",
            TOWN,
            "POST",
            "/supplier/invoices",
            b'{"a": 1}',
            OWN_PEOPLE,
            "t-kaikei",
            None,
        ),
        (
            "kaikei_other",
            TOWN,
            "GET",
            f"/supplier/invoices/{mine['invoice_id']}",
            None,
            "caller from another town",
            "o-kaikei",
            None,
        ),
        (
            "b",
            OTHER,
            "GET",
            "/supplier/invoices",
            None,
            "the supplier is not registered with this town",
            SUPPLIER_B,
            None,  # refused before Cedar decided on any purpose
        ),
        (
            "b",
            TOWN,
            "GET",
            f"/supplier/submissions/{mine['submission_id']}",
            None,
            "not this supplier's invoice",
            SUPPLIER_B,
            "invoices.supplier",
        ),
    ]
    for n, (who, town, method, path, body, reason, actor, purpose) in enumerate(cases):
        request_id = f"supplier-refused-{n}"
        headers = bearer(people[who], **JSON, **{"X-Request-ID": request_id})
        r = await api.request(method, _base(town) + path, content=body, headers=headers)
        assert r.status_code == 404, (n, r.text)
        (event,) = await _events(db, request_id, town)
        assert (event["outcome"], event["reason"]) == ("denied", reason), n
        assert (event["actor"], event["purpose"]) == (actor, purpose), n
        assert '"a"' not in repr(event), n
    # A supplier sending neither XML nor JSON: 415, one denial, purpose none decided on.
    headers = bearer(people["a"], **{"Content-Type": "text/plain", "X-Request-ID": "sup-415"})
    r = await api.post(f"{_base()}/supplier/invoices", content=b"hello", headers=headers)
    assert r.status_code == 415
    (event,) = await _events(db, "sup-415")
    assert (event["action"], event["outcome"], event["actor"]) == (
        "invoice.submit",
        "denied",
        SUPPLIER_A,
    )


@pytest.mark.parametrize(
    "claims",
    [
        {"tenant": TOWN},  # a supplier belongs to no town
        {"dept": "kaikei"},
        {"roles": ["supplier", "staff"]},
        {"sub": "7123456789013x"},
        {"sub": "not-a-key"},
    ],
)
async def test_forged_supplier_tokens_are_refused(
    api: httpx.AsyncClient, issuer: BuiltinIssuer, claims: dict[str, Any]
) -> None:
    extra = dict(claims)
    subject = extra.pop("sub", SUPPLIER_A)
    token = issuer.mint(
        subject=subject, tenant=None, department=None, roles=["supplier"], extra=extra
    )
    r = await api.get(f"{_base()}/supplier/invoices", headers=bearer(token))
    assert r.status_code == 401


async def test_without_rules_the_intake_answers_503(
    api: httpx.AsyncClient,
    people: dict[str, str],
    registered: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    from shared_gov.domains.invoices import checks, intake

    empty = checks.CheckPool(tmp_path / "no-rules", workers=1)
    monkeypatch.setattr(intake, "pool_for", lambda _settings: empty)
    r = await _send(api, people["a"], factory.document(number="NORULES-1", unit="ippan"))
    assert r.status_code == 503
    assert "invoice checks unavailable" in r.json()["detail"]
    assert "Retry-After" in r.headers


async def test_a_broken_body_from_a_supplier_is_422_with_its_report_and_one_event(
    api: httpx.AsyncClient, db: Database, people: dict[str, str], registered: dict[str, str]
) -> None:
    for body, rule in ((b"{", "sg-json-01"), (b'{"a": 1, "a": 2}', "sg-json-01")):
        request_id = f"broken-{len(body)}"
        r = await api.post(
            f"{_base()}/supplier/invoices",
            content=body,
            headers=bearer(people["a"], **JSON, **{"X-Request-ID": request_id}),
        )
        assert r.status_code == 422
        assert [f["rule"] for f in r.json()["report"]["findings"]] == [rule]
        (event,) = await _events(db, request_id)
        assert (event["outcome"], event["reason"]) == ("denied", "invoice rejected by its checks")
        assert '"a"' not in repr(event)
    # Operators and platform endpoints know no supplier either.
    assert (await api.get("/api/v1/tenants", headers=bearer(people["a"]))).status_code == 404
