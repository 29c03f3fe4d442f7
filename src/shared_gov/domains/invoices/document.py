"""The invoice as the platform understands it: one model for both intake forms.

A JP PINT UBL 2.1 invoice (``ubl.parse``) and the JSON form (``jsonform``)
both become a :class:`Document`; the JSON form IS this model's JSON encoding
(msgspec), so an invoice posted as XML and the same invoice posted as JSON
give equal documents. The model holds what checking, approval, search and
the payment export need (JP PINT business terms ``ibt-…`` named in each
docstring); the XML original keeps everything else, byte for byte.

Amounts are :class:`~decimal.Decimal` (never float): JPY amounts are whole
yen and tax is computed on them exactly. Free text is ``validation.Text``
(no control or bidi characters), identifiers are bounded.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import msgspec

from shared_gov.validation import Text

Str = Annotated[str, msgspec.Meta(min_length=1, max_length=200), Text]
"""Names, references and other short text."""
LongText = Annotated[str, msgspec.Meta(min_length=1, max_length=2000), Text]
Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:@/+\-]{1,200}\Z")]
"""Identifiers and code-list values (CustomizationID, tax category, scheme ids)."""
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z")]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}\Z")]
Amount = Annotated[Decimal, msgspec.Meta()]

STANDARD = "urn:peppol:pint:billing-1@jp-1"
"""適格請求書 (qualified invoice, type 380; the seller's T-number is required)."""
NON_TAX_REGISTERED = "urn:peppol:pint:nontaxinvoice-1@jp-1"
"""区分記載請求書等 of a seller not registered for consumption tax (all tax 0)."""
SELF_BILLING = "urn:peppol:pint:selfbilling-1@jp-1"
"""仕入明細書 prepared by the buyer (type 389, profile urn:peppol:bis:selfbilling)."""

SPECIFICATIONS: dict[str, str] = {
    STANDARD: "jp",
    NON_TAX_REGISTERED: "jp-ntr",
    SELF_BILLING: "jp-sb",
}
"""CustomizationID → the JP PINT release package whose rules apply (``pint-<key>``)."""


def specification(customization_id: str | None) -> str | None:
    """The release key (``jp``, ``jp-ntr``, ``jp-sb``) a CustomizationID chooses, or None.

    A CustomizationID may carry a further ``#…`` or ``:…`` extension after the
    specification (as the official rules' ``starts-with`` allows); the longest
    known prefix wins.
    """
    if not customization_id:
        return None
    value = customization_id.strip()
    for uri, key in sorted(SPECIFICATIONS.items(), key=lambda kv: -len(kv[0])):
        if value == uri or value.startswith(uri):
            return key
    return None


class Identifier(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An identifier with its scheme (ISO 6523 ICD, e.g. ``0188`` = 法人番号)."""

    value: Str
    scheme: Code | None = None


class Party(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Seller (ibg-04) or buyer (ibg-07)."""

    name: Str
    """Legal registration name (ibt-027 / ibt-044). For a sole proprietor: personal."""
    country: Country | None = "JP"
    """Country code (ibt-040 / ibt-055), ISO 3166 alpha-2 (two letters)."""
    endpoint: Identifier | None = None
    """Electronic address (ibt-034 / ibt-049)."""
    id: Identifier | None = None
    """Party identifier (ibt-029 / ibt-046), e.g. a 0147 id the buyer assigned."""
    tax_id: Str | None = None
    """Tax identifier (ibt-031 / ibt-048): for a qualified issuer the ``T`` + 13 digits."""
    legal_id: Identifier | None = None
    """Legal registration identifier (ibt-030 / ibt-047), e.g. the 法人番号 (scheme 0188)."""


class TaxCategory(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A tax category (UNCL5305: S standard 10 %, AA reduced 8 %, E, G, O) and its rate."""

    code: Code
    percent: Amount | None = None


class AllowanceCharge(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A document-level allowance (ibg-20) or charge (ibg-21)."""

    charge: bool
    amount: Amount
    tax: TaxCategory | None = None
    reason: Str | None = None
    reason_code: Code | None = None


class Line(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An invoice line (ibg-25)."""

    id: Str
    quantity: Amount
    unit: Code
    """Unit of measure (UN/ECE rec 20, e.g. ``H87`` piece)."""
    amount: Amount
    """Line net amount (ibt-131)."""
    item: Str
    """Item name (ibt-153)."""
    tax: TaxCategory
    price: Amount
    """Item net price (ibt-146)."""
    base_quantity: Amount | None = None
    period_start: date | None = None
    period_end: date | None = None


class TaxSubtotal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A tax breakdown (ibg-23): one per tax category and rate."""

    tax: Amount
    category: TaxCategory
    taxable: Amount | None = None
    """Absent in the tax-accounting-currency total (ibt-190), present otherwise."""


class TaxTotal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Invoice total tax (ibt-110, or ibt-111 in the tax accounting currency)."""

    currency: Currency
    amount: Amount
    subtotals: list[TaxSubtotal] = msgspec.field(default_factory=list)


class Totals(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Document totals (ibg-22)."""

    line_extension: Amount
    tax_exclusive: Amount
    tax_inclusive: Amount
    payable: Amount
    allowance: Amount | None = None
    charge: Amount | None = None
    prepaid: Amount | None = None
    rounding: Amount | None = None


class Reference(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A preceding invoice (ibg-03): what a correction refers to."""

    id: Str
    issue_date: date | None = None


class Payment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Payment instructions (ibg-16): means code and, for a transfer, the account.

    The account (ibt-084 ``1234:567:1:3242394`` — bank, branch, type, number)
    and its holder's name are the supplier's bank details: the town stores
    them encrypted (``suppliers``), never in plain.
    """

    means: Code
    account: Str | None = None
    account_name: Str | None = None


class Document(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One JP PINT invoice (the JSON intake form is exactly this structure)."""

    customization_id: Code
    """Specification identifier (ibt-024): chooses the rules (:func:`specification`)."""
    number: Str
    """Invoice number (ibt-001)."""
    issue_date: date
    currency: Currency
    """Document currency (ibt-005)."""
    seller: Party
    buyer: Party
    totals: Totals
    lines: list[Line]
    tax_totals: list[TaxTotal]
    profile_id: Code | None = None
    type_code: Code = "380"
    """380 invoice (a correction is a new, possibly negative, 380), 389 self-billing."""
    due_date: date | None = None
    tax_currency: Currency | None = None
    """Tax accounting currency (ibt-006): JPY when the document is in another."""
    buyer_reference: Str | None = None
    """Buyer reference (ibt-010): the code of the town's accounting unit (会計)."""
    accounting_cost: Str | None = None
    order_reference: Str | None = None
    period_start: date | None = None
    period_end: date | None = None
    note: LongText | None = None
    preceding: list[Reference] = msgspec.field(default_factory=list)
    allowances: list[AllowanceCharge] = msgspec.field(default_factory=list)
    payment: list[Payment] = msgspec.field(default_factory=list)
    payment_terms: LongText | None = None

    @property
    def specification(self) -> str | None:
        return specification(self.customization_id)

    def tax_total(self, currency: str) -> TaxTotal | None:
        """The tax total in ``currency`` (the document's, or the tax accounting one)."""
        return next((t for t in self.tax_totals if t.currency == currency), None)

    @property
    def tax_amount(self) -> Decimal:
        """Total tax in the document currency (0 when absent)."""
        total = self.tax_total(self.currency)
        return total.amount if total is not None else Decimal(0)


def encode(document: Document) -> bytes:
    """The JSON form (also what is stored as the parsed model)."""
    return msgspec.json.encode(document)


def decode(data: bytes | str) -> Document:
    """The JSON form back into the model (raises ``msgspec.ValidationError``)."""
    return msgspec.json.decode(data, type=Document)
