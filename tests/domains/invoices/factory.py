"""Invoices of our own for the tests: JP PINT documents built from a few lines.

:func:`document` computes everything an honest supplier's system computes
(line amounts, taxable amount and tax per rate, rounded once per rate,
totals), so a test changes one thing and sees the one rule that catches it.
The seller's T-number has a valid check digit (FACTS.md: 7123456789012);
the buyer is 東久留米市 (法人番号 3000020132225).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import msgspec
from msgspec.structs import replace

from shared_gov.domains.invoices import document as d
from shared_gov.domains.invoices.jsonform import render

SELLER_T = "T7123456789012"
SELLER_CORPORATE = "7123456789012"
BUYER_CORPORATE = "3000020132225"

RATES = {"S": Decimal(10), "AA": Decimal(8), "E": Decimal(0)}


def document(
    lines: list[tuple[int, int, str]] | None = None,
    *,
    number: str = "INV-0001",
    issued: date = date(2026, 10, 24),
    spec: str = d.STANDARD,
    seller_t: str | None = SELLER_T,
    unit: str | None = None,
    preceding: list[d.Reference] | None = None,
    seller: d.Party | None = None,
) -> d.Document:
    """A correct invoice: ``lines`` are (quantity, unit price, tax category)."""
    items = lines if lines is not None else [(3, 105, "S"), (2, 128, "AA")]
    doc_lines = [
        d.Line(
            id=str(i + 1),
            quantity=Decimal(q),
            unit="H87",
            amount=Decimal(q * price),
            item=f"品目{i + 1}",
            tax=d.TaxCategory(code, RATES[code]),
            price=Decimal(price),
            base_quantity=Decimal(1),
        )
        for i, (q, price, code) in enumerate(items)
    ]
    taxable: dict[str, Decimal] = {}
    for line in doc_lines:
        taxable[line.tax.code] = taxable.get(line.tax.code, Decimal(0)) + line.amount
    ntr = spec == d.NON_TAX_REGISTERED
    subtotals = [
        d.TaxSubtotal(
            tax=Decimal(0) if ntr else (amount * RATES[code] / 100).to_integral_value(ROUND_FLOOR),
            category=d.TaxCategory(code, RATES[code]),
            taxable=amount,
        )
        for code, amount in taxable.items()
    ]
    tax = sum((s.tax for s in subtotals), Decimal(0))
    net = sum((line.amount for line in doc_lines), Decimal(0))
    self_billing = spec == d.SELF_BILLING
    return d.Document(
        customization_id=spec,
        profile_id="urn:peppol:bis:selfbilling" if self_billing else "urn:peppol:bis:billing",
        number=number,
        issue_date=issued,
        type_code="389" if self_billing else ("480" if ntr else "380"),
        currency="JPY",
        buyer_reference=unit,
        period_start=issued.replace(day=1),
        period_end=issued,
        seller=seller
        or d.Party(
            name="株式会社テスト商事",
            endpoint=d.Identifier(SELLER_CORPORATE, "0188"),
            tax_id=None if ntr else seller_t,
            legal_id=d.Identifier(SELLER_CORPORATE, "0188"),
            id=d.Identifier(SELLER_CORPORATE, "0188") if ntr else None,
        ),
        buyer=d.Party(
            name="東久留米市",
            endpoint=d.Identifier(BUYER_CORPORATE, "0188"),
        ),
        totals=d.Totals(
            line_extension=net,
            tax_exclusive=net,
            tax_inclusive=net + tax,
            payable=net + tax,
        ),
        lines=doc_lines,
        tax_totals=[d.TaxTotal(currency="JPY", amount=tax, subtotals=subtotals)],
        preceding=preceding or [],
        payment=[d.Payment(means="30", account="0001:001:1:1234567", account_name="ﾃｽﾄｼﾖｳｼﾞ")],
    )


def xml(doc: d.Document) -> bytes:
    return render(doc)[0]


def json(doc: d.Document) -> bytes:
    return d.encode(doc)


def change(doc: d.Document, **fields: Any) -> d.Document:
    return replace(doc, **fields)


def as_dict(doc: d.Document) -> dict[str, Any]:
    result: dict[str, Any] = msgspec.to_builtins(doc)
    return result


def sole_registered() -> d.Party:
    """A sole proprietor registered for consumption tax (T1123456789018)."""
    return d.Party(
        name="山田 太郎", tax_id="T1123456789018", endpoint=d.Identifier("T1123456789018", "0221")
    )


def sole_unregistered() -> d.Party:
    """A sole proprietor not registered (known to the platform as X-SOLE0001)."""
    return d.Party(
        name="鈴木 花子",
        id=d.Identifier("X-SOLE0001"),
        endpoint=d.Identifier("123456789", "0060"),  # a DUNS number: no 法人番号, no T-number
    )
