"""Check 3: the platform's own rules, for what the official rules miss.

Each rule has its own id (``sg-jp-NN``), a fatal severity unless said
otherwise, and a message in Japanese and English. Rules 01–04 need only the
invoice (:func:`check`, run in the worker with the other checks); 05 and 06
need the town (its accounting unit, its earlier invoices) and are run by the
service (:func:`registration_required`, :func:`duplicate`).

- ``sg-jp-01`` the seller's registration number (``T`` + 法人番号) has a valid
  check digit (国税庁: first digit = 9 − (Σ Pn·Qn mod 9)). The official rule
  ``aligned-ibr-jp-01`` checks the format only, and the official examples
  carry ``T1234567890123``, whose check digit is wrong: so this is a warning
  by default, made fatal per town (``Options.t_number``).
- ``sg-jp-02`` every JPY amount is whole yen (円未満なし), in the document and
  the tax accounting currency alike: the official rules let a fractional JPY
  tax subtotal through.
- ``sg-jp-03`` per tax category and rate, the line net amounts less the
  document allowances plus the document charges equal that breakdown's
  taxable amount (what the tax was computed on).
- ``sg-jp-04`` tax is computed once per invoice and rate (消費税法施行令
  第70条の10, 適格請求書の端数処理は税率ごとに1回): one breakdown per
  category and rate, the standard rate is 10 % (``S``) and the reduced
  8 % (``AA``), and the tax amount is the taxable amount times the rate,
  rounded once (down, up or half up: any whole yen between floor and
  ceiling). Rounding per line and adding up (3 × ¥105 at 10 % + 2 × ¥128 at
  8 % → ¥50 instead of ¥51) fails it.
- ``sg-jp-05`` an accounting unit that files consumption tax (公営企業会計)
  needs qualified invoices: the standard or self-billing specification and a
  seller ``T``-number.
- ``sg-jp-06`` the same supplier, invoice number and issue date arrive once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from shared_gov.checkdigits import is_valid_invoice_registration_number

from . import messages as m
from .document import Document, TaxCategory
from .report import Finding, Severity, said

VERSION = "platform 1"
"""The platform rules' version, recorded in every report."""

T_NUMBER = re.compile(r"^T[0-9]{13}\Z")
STANDARD_RATE = Decimal(10)
REDUCED_RATE = Decimal(8)
RATES = {"S": STANDARD_RATE, "AA": REDUCED_RATE}
"""消費税法 第29条 (標準税率 10 %), 28年改正法附則 第34条 (軽減税率 8 %)."""

Locate = Callable[[str], str]
"""A model value's JSON pointer → its location in the submitted form."""


@dataclass(frozen=True, slots=True)
class Options:
    """A town's choices about the platform rules."""

    t_number: Severity = "warning"
    """Severity of ``sg-jp-01`` (a wrong check digit in the seller's T-number)."""


def _rate_key(category: TaxCategory | None) -> tuple[str, Decimal | None]:
    if category is None:
        return ("O", None)
    percent = category.percent.normalize() if category.percent is not None else None
    return (category.code.strip().upper(), percent)


def _label(key: tuple[str, Decimal | None]) -> str:
    code, percent = key
    return code if percent is None else f"{code} {format(percent, 'f')}%"


def t_number(doc: Document, locate: Locate, severity: Severity) -> list[Finding]:
    tax_id = doc.seller.tax_id
    if tax_id is None or not T_NUMBER.match(tax_id) or is_valid_invoice_registration_number(tax_id):
        return []
    return [said("sg-jp-01", severity, locate("/seller/tax_id"), m.T_NUMBER_CHECK_DIGIT)]


Amounts = Iterable[tuple[Callable[[], str], str, str]]
"""(the amount's location, computed when a finding needs it; currencyID; text)."""


def whole_yen(amounts: Amounts) -> list[Finding]:
    found: list[Finding] = []
    for location, currency, text in amounts:
        if currency != "JPY":
            continue
        try:
            value = Decimal(text)
        except InvalidOperation:
            continue  # the schema reports an unreadable amount
        if value.is_finite() and value != value.to_integral_value():
            found.append(said("sg-jp-02", "fatal", location(), m.FRACTION_OF_A_YEN))
    return found


def taxable_per_rate(doc: Document, locate: Locate) -> list[Finding]:
    total = doc.tax_total(doc.currency)
    if total is None:
        return []
    expected: dict[tuple[str, Decimal | None], Decimal] = {}
    for line in doc.lines:
        key = _rate_key(line.tax)
        expected[key] = expected.get(key, Decimal(0)) + line.amount
    for ac in doc.allowances:
        key = _rate_key(ac.tax)
        expected[key] = expected.get(key, Decimal(0)) + (ac.amount if ac.charge else -ac.amount)
    index = next(i for i, t in enumerate(doc.tax_totals) if t is total)
    found: list[Finding] = []
    stated: set[tuple[str, Decimal | None]] = set()
    for j, sub in enumerate(total.subtotals):
        key = _rate_key(sub.category)
        stated.add(key)
        if sub.taxable is None:
            continue
        if sub.taxable != expected.get(key, Decimal(0)):
            found.append(
                said(
                    "sg-jp-03",
                    "fatal",
                    locate(f"/tax_totals/{index}/subtotals/{j}/taxable"),
                    m.TAXABLE_NOT_THE_SUM(rate=_label(key)),
                )
            )
    for key in expected:
        if key not in stated:
            found.append(
                said(
                    "sg-jp-03",
                    "fatal",
                    locate(f"/tax_totals/{index}"),
                    m.NO_BREAKDOWN_FOR_RATE(rate=_label(key)),
                )
            )
    return found


def rounded_once(doc: Document, locate: Locate) -> list[Finding]:
    if doc.specification == "jp-ntr":
        return []  # a seller not registered charges no consumption tax (all 0)
    total = doc.tax_total(doc.currency)
    if total is None:
        return []
    index = next(i for i, t in enumerate(doc.tax_totals) if t is total)
    found: list[Finding] = []
    seen: set[tuple[str, Decimal | None]] = set()
    for j, sub in enumerate(total.subtotals):
        key = _rate_key(sub.category)
        where = f"/tax_totals/{index}/subtotals/{j}"
        if key in seen:
            found.append(
                said("sg-jp-04", "fatal", locate(where), m.BREAKDOWN_TWICE(rate=_label(key)))
            )
        seen.add(key)
        code, percent = key
        rate = RATES.get(code)
        if rate is not None and percent != rate:
            found.append(
                said(
                    "sg-jp-04",
                    "fatal",
                    locate(where + "/category/percent"),
                    m.WRONG_RATE(code=code, rate=rate),
                )
            )
            continue
        if doc.currency != "JPY" or percent is None or sub.taxable is None:
            continue
        exact = sub.taxable * percent / 100
        low, high = (exact.to_integral_value(ROUND_FLOOR), exact.to_integral_value(ROUND_CEILING))
        if not low <= sub.tax <= high:
            found.append(
                said(
                    "sg-jp-04",
                    "fatal",
                    locate(where + "/tax"),
                    m.NOT_ROUNDED_ONCE(rate=_label(key)),
                )
            )
    return found


def check(doc: Document, locate: Locate, amounts: Amounts, options: Options) -> list[Finding]:
    """Rules 01–04 on one invoice."""
    return [
        *t_number(doc, locate, options.t_number),
        *whole_yen(amounts),
        *taxable_per_rate(doc, locate),
        *rounded_once(doc, locate),
    ]


def registration_required(doc: Document, locate: Locate, unit_label: str) -> list[Finding]:
    """Rule 05, for an accounting unit that needs qualified invoices."""
    if doc.specification == "jp-ntr":
        return [
            said(
                "sg-jp-05",
                "fatal",
                locate("/customization_id"),
                m.QUALIFIED_NOT_NON_REGISTERED(unit=unit_label),
            )
        ]
    tax_id = doc.seller.tax_id
    if tax_id is None or not T_NUMBER.match(tax_id):
        return [
            said(
                "sg-jp-05",
                "fatal",
                locate("/seller/tax_id"),
                m.QUALIFIED_NEEDS_T_NUMBER(unit=unit_label),
            )
        ]
    return []


def duplicate(locate: Locate) -> Finding:
    """Rule 06: this supplier's invoice with this number and issue date exists."""
    return said("sg-jp-06", "fatal", locate("/number"), m.DUPLICATE)
