"""The platform's own rules: each has a failing and a passing invoice of our own.

Every invoice here goes through the whole check (schema, official rules,
platform rules) so a passing one passes everything, and a failing one is
caught by the rule under test (whatever else the official rules also say).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from msgspec.structs import replace

from shared_gov.domains.invoices import checks, rules
from shared_gov.domains.invoices import document as d

from . import factory


def _check(
    installed: checks.Installed, doc: d.Document, options: rules.Options | None = None
) -> checks.Outcome:
    return checks.check("xml", factory.xml(doc), installed, options or rules.Options())


def _fired(outcome: checks.Outcome, rule: str) -> list[tuple[str, str]]:
    return [(f.severity, f.location) for f in outcome.report.findings if f.rule == rule]


def test_the_factory_invoice_passes_every_check_in_each_specification(
    installed: checks.Installed,
) -> None:
    for spec in (d.STANDARD, d.NON_TAX_REGISTERED, d.SELF_BILLING):
        outcome = _check(installed, factory.document(spec=spec))
        assert outcome.report.findings == [], spec


# --- sg-jp-01: the T-number's check digit ----------------------------------------------


def test_t_number_with_a_wrong_check_digit_is_a_warning_by_default(
    installed: checks.Installed,
) -> None:
    doc = factory.document(seller_t="T7123456789013")
    outcome = _check(installed, doc)
    assert _fired(outcome, "sg-jp-01") == [
        (
            "warning",
            "/Invoice/cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID",
        )
    ]
    assert not outcome.report.fatal  # the official rules check the format only


def test_t_number_check_digit_is_fatal_where_the_town_says_so(
    installed: checks.Installed,
) -> None:
    strict = rules.Options(t_number="fatal")
    wrong = _check(installed, factory.document(seller_t="T7123456789013"), strict)
    assert [s for s, _ in _fired(wrong, "sg-jp-01")] == ["fatal"]
    assert wrong.report.fatal
    right = _check(installed, factory.document(seller_t="T4011001098993"), strict)
    assert right.report.findings == []


# --- sg-jp-02: whole yen ----------------------------------------------------------------


def test_a_fraction_of_a_yen_anywhere_is_fatal(installed: checks.Installed) -> None:
    doc = factory.document(lines=[(2, 100, "S")])
    line = replace(doc.lines[0], price=Decimal("100.5"), base_quantity=Decimal(1))
    outcome = _check(installed, replace(doc, lines=[line]))
    assert ("fatal", "/Invoice/cac:InvoiceLine/cac:Price/cbc:PriceAmount") in _fired(
        outcome, "sg-jp-02"
    )


def test_a_fractional_jpy_tax_subtotal_is_fatal_here_though_not_officially(
    installed: checks.Installed,
) -> None:
    """315 × 10 % = 31.5: between floor and ceiling, so aligned-ibrp-051-jp lets it pass."""
    doc = factory.document(lines=[(3, 105, "S")])
    total = doc.tax_totals[0]
    sub = replace(total.subtotals[0], tax=Decimal("31.5"))
    fixed = replace(
        doc,
        tax_totals=[replace(total, amount=Decimal("31.5"), subtotals=[sub])],
        totals=replace(doc.totals, tax_inclusive=Decimal("346.5"), payable=Decimal("346.5")),
    )
    outcome = _check(installed, fixed)
    assert outcome.report.fatal
    located = {loc for _, loc in _fired(outcome, "sg-jp-02")}
    assert "/Invoice/cac:TaxTotal/cac:TaxSubtotal/cbc:TaxAmount" in located
    assert "aligned-ibrp-051-jp" not in outcome.report.rule_ids()
    whole = _check(installed, doc)
    assert whole.report.findings == []


# --- sg-jp-03: line totals per rate = taxable amount per rate -----------------------------


def test_a_taxable_amount_that_is_not_the_sum_of_its_lines_is_fatal(
    installed: checks.Installed,
) -> None:
    doc = factory.document()
    total = doc.tax_totals[0]
    wrong = replace(total.subtotals[1], taxable=Decimal(250), tax=Decimal(20))
    outcome = _check(
        installed, replace(doc, tax_totals=[replace(total, subtotals=[total.subtotals[0], wrong])])
    )
    assert _fired(outcome, "sg-jp-03") == [
        ("fatal", "/Invoice/cac:TaxTotal/cac:TaxSubtotal[2]/cbc:TaxableAmount")
    ]


def test_document_allowances_and_charges_count_towards_their_rates_taxable_amount(
    installed: checks.Installed,
) -> None:
    """¥315 at 10 % less a ¥15 discount plus a ¥100 delivery charge: taxable ¥400, tax ¥40."""
    doc = factory.document(lines=[(3, 105, "S")])
    ten = d.TaxCategory("S", Decimal(10))
    allowances = [
        d.AllowanceCharge(
            charge=False, amount=Decimal(15), tax=ten, reason="値引", reason_code="95"
        ),
        d.AllowanceCharge(
            charge=True, amount=Decimal(100), tax=ten, reason="配送", reason_code="FC"
        ),
    ]
    sub = d.TaxSubtotal(tax=Decimal(40), category=ten, taxable=Decimal(400))
    right = replace(
        doc,
        allowances=allowances,
        tax_totals=[d.TaxTotal("JPY", Decimal(40), [sub])],
        totals=d.Totals(
            line_extension=Decimal(315),
            tax_exclusive=Decimal(400),
            tax_inclusive=Decimal(440),
            payable=Decimal(440),
            allowance=Decimal(15),
            charge=Decimal(100),
        ),
    )
    assert _check(installed, right).report.findings == []
    ignored = replace(right, allowances=allowances[:1])  # the charge forgotten in the lines' sum
    ignored = replace(
        ignored, totals=replace(right.totals, charge=None, tax_exclusive=Decimal(300))
    )
    assert "sg-jp-03" in _check(installed, ignored).report.rule_ids("fatal")


def test_lines_of_a_rate_without_a_breakdown_for_it_are_fatal(installed: checks.Installed) -> None:
    doc = factory.document()
    total = doc.tax_totals[0]
    outcome = _check(
        installed, replace(doc, tax_totals=[replace(total, subtotals=total.subtotals[:1])])
    )
    assert ("fatal", "/Invoice/cac:TaxTotal") in _fired(outcome, "sg-jp-03")


# --- sg-jp-04: tax rounded once per invoice and rate --------------------------------------


def test_tax_rounded_per_line_and_added_up_is_fatal(installed: checks.Installed) -> None:
    """FACTS.md: 3 × ¥105 at 10 % + 2 × ¥128 at 8 % is ¥51 (31 + 20), not ¥50 (3×10 + 2×10)."""
    right = factory.document()
    assert right.tax_amount == 51
    assert _check(installed, right).report.findings == []
    total = right.tax_totals[0]
    per_line = [
        replace(total.subtotals[0], tax=Decimal(30)),  # 10.5 → 10, three times
        replace(total.subtotals[1], tax=Decimal(20)),  # 10.24 → 10, twice
    ]
    wrong = replace(
        right,
        tax_totals=[replace(total, amount=Decimal(50), subtotals=per_line)],
        totals=replace(right.totals, tax_inclusive=Decimal(621), payable=Decimal(621)),
    )
    outcome = _check(installed, wrong)
    assert _fired(outcome, "sg-jp-04") == [
        ("fatal", "/Invoice/cac:TaxTotal/cac:TaxSubtotal[1]/cbc:TaxAmount")
    ]


def test_two_breakdowns_for_one_rate_are_fatal(installed: checks.Installed) -> None:
    """Splitting a rate in two breakdowns is rounding it twice."""
    doc = factory.document(lines=[(1, 105, "S"), (1, 105, "S")])
    ten = d.TaxCategory("S", Decimal(10))
    split = [
        d.TaxSubtotal(tax=Decimal(10), category=ten, taxable=Decimal(105)),
        d.TaxSubtotal(tax=Decimal(10), category=ten, taxable=Decimal(105)),
    ]
    outcome = _check(
        installed,
        replace(
            doc,
            tax_totals=[d.TaxTotal("JPY", Decimal(20), split)],
            totals=replace(doc.totals, tax_inclusive=Decimal(230), payable=Decimal(230)),
        ),
    )
    assert ("fatal", "/Invoice/cac:TaxTotal/cac:TaxSubtotal[2]") in _fired(outcome, "sg-jp-04")
    assert _check(installed, doc).report.findings == []  # one breakdown: 210 × 10 % = 21


@pytest.mark.parametrize(("code", "percent"), [("S", 8), ("AA", 10)])
def test_the_standard_rate_is_10_and_the_reduced_rate_8(
    installed: checks.Installed, code: str, percent: int
) -> None:
    doc = factory.document(lines=[(1, 1000, "S")] if code == "S" else [(1, 1000, "AA")])
    category = d.TaxCategory(code, Decimal(percent))
    line = replace(doc.lines[0], tax=category)
    sub = d.TaxSubtotal(tax=Decimal(10 * percent), category=category, taxable=Decimal(1000))
    total = Decimal(1000 + 10 * percent)
    outcome = _check(
        installed,
        replace(
            doc,
            lines=[line],
            tax_totals=[d.TaxTotal("JPY", Decimal(10 * percent), [sub])],
            totals=replace(doc.totals, tax_inclusive=total, payable=total),
        ),
    )
    assert "sg-jp-04" in outcome.report.rule_ids("fatal")
    assert _check(installed, doc).report.findings == []


# --- sg-jp-05 and 06: the town's rules (service-level functions) ------------------------


def _here(pointer: str) -> str:
    return pointer


def test_registration_is_required_where_the_accounting_unit_files_consumption_tax() -> None:
    unit = "水道事業会計"
    ntr = rules.registration_required(factory.document(spec=d.NON_TAX_REGISTERED), _here, unit)
    assert [(f.rule, f.severity, f.location) for f in ntr] == [
        ("sg-jp-05", "fatal", "/customization_id")
    ]
    assert unit in ntr[0].message.ja
    missing = factory.document(seller_t=None)
    found = rules.registration_required(missing, _here, unit)
    assert [(f.rule, f.location) for f in found] == [("sg-jp-05", "/seller/tax_id")]
    assert rules.registration_required(factory.document(), _here, unit) == []
    assert rules.registration_required(factory.document(spec=d.SELF_BILLING), _here, unit) == []


def test_duplicate_is_its_own_fatal_rule_at_the_invoice_number() -> None:
    f = rules.duplicate(_here)
    assert (f.rule, f.severity, f.location) == ("sg-jp-06", "fatal", "/number")
