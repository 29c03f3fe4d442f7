"""The JSON intake form: the model's own JSON, rendered to UBL 2.1 for checking.

A supplier's system that does not produce UBL posts the invoice as JSON (the
:class:`~.document.Document` structure). It is decoded strictly — a repeated
key, an unknown field or a value of the wrong type is a fatal finding at its
JSON pointer — and rendered to a JP PINT UBL 2.1 document, element order as
the UBL 2.1 schema requires, so that the schema and the official rules check
exactly what an XML invoice gets checked by. Their findings' locations (XPaths
in the rendered document) are translated back into JSON pointers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

import msgspec
from lxml import etree

from shared_gov.validation import duplicate_key, msgspec_error_to_field

from .document import Document, Identifier, Party, TaxCategory
from .report import Finding, finding
from .ubl import CAC, CBC, INVOICE, MAX_BYTES, path_of


class JsonRefused(Exception):
    """The body is not the JSON form (its findings say where)."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__("not the JSON invoice form")
        self.findings = findings


def decode(data: bytes) -> Document:
    """The JSON form as a document, or :class:`JsonRefused`."""
    if len(data) > MAX_BYTES:
        raise JsonRefused(
            [
                finding(
                    "sg-json-01",
                    "fatal",
                    "",
                    "請求書が大きすぎます。",
                    "the invoice is too large",
                    "json",
                )
            ]
        )
    repeated = duplicate_key(data)
    if repeated is not None:
        raise JsonRefused(
            [
                finding(
                    "sg-json-01",
                    "fatal",
                    repeated,
                    "同じオブジェクトに同じキーが二度現れます。",
                    "the key occurs more than once in its object",
                    "json",
                )
            ]
        )
    try:
        return msgspec.json.decode(data, type=Document)
    except msgspec.ValidationError as exc:
        field = msgspec_error_to_field(str(exc))
        raise JsonRefused(
            [
                finding(
                    "sg-json-02",
                    "fatal",
                    field.pointer,
                    "JSON 形式の請求書の項目が正しくありません。",
                    str(field.detail),
                    "json",
                )
            ]
        ) from None
    except msgspec.DecodeError:  # after ValidationError, its subclass
        raise JsonRefused(
            [
                finding(
                    "sg-json-01",
                    "fatal",
                    "",
                    "JSON として正しくありません。",
                    "the body is not valid JSON",
                    "json",
                )
            ]
        ) from None


# --- rendering -----------------------------------------------------------------


def _num(value: Decimal) -> str:
    """A decimal as UBL writes it: plain notation, never an exponent."""
    text = format(value, "f")
    return text


class _Writer:
    def __init__(self) -> None:
        self.root = etree.Element(
            f"{{{INVOICE}}}Invoice", nsmap={None: INVOICE, "cac": CAC, "cbc": CBC}
        )
        self.where: dict[int, str] = {}
        """id(element) → JSON pointer (paths are computed once the tree is complete)."""
        self.elements: list[etree._Element] = []
        """Keeps every marked element alive, so no id in ``where`` is reused."""

    def mark(self, element: etree._Element, pointer: str) -> etree._Element:
        self.where[id(element)] = pointer
        self.elements.append(element)
        return element

    def cbc(
        self,
        parent: etree._Element,
        name: str,
        value: str | Decimal | None,
        pointer: str | None = None,
        **attributes: str,
    ) -> etree._Element | None:
        if value is None:
            return None
        el = etree.SubElement(parent, f"{{{CBC}}}{name}")
        el.text = _num(value) if isinstance(value, Decimal) else str(value)
        for k, v in attributes.items():
            el.set(k, v)
        if pointer is not None:
            self.mark(el, pointer)
        return el

    def cac(self, parent: etree._Element, name: str, pointer: str | None = None) -> etree._Element:
        el = etree.SubElement(parent, f"{{{CAC}}}{name}")
        if pointer is not None:
            self.mark(el, pointer)
        return el

    def category(
        self, parent: etree._Element, name: str, category: TaxCategory, pointer: str
    ) -> None:
        el = self.cac(parent, name, pointer)
        self.cbc(el, "ID", category.code, pointer + "/code")
        self.cbc(el, "Percent", category.percent, pointer + "/percent")
        scheme = self.cac(el, "TaxScheme")
        self.cbc(scheme, "ID", "VAT")

    def identifier(
        self, parent: etree._Element, name: str, ident: Identifier | None, pointer: str
    ) -> None:
        if ident is None:
            return
        attrs = {"schemeID": ident.scheme} if ident.scheme else {}
        self.cbc(parent, name, ident.value, pointer, **attrs)

    def party(self, parent: etree._Element, name: str, party: Party, pointer: str) -> None:
        outer = self.cac(parent, name, pointer)
        el = self.cac(outer, "Party")
        self.identifier(el, "EndpointID", party.endpoint, pointer + "/endpoint")
        if party.id is not None:
            ident = self.cac(el, "PartyIdentification")
            self.identifier(ident, "ID", party.id, pointer + "/id")
        if party.country is not None:
            address = self.cac(el, "PostalAddress")
            country = self.cac(address, "Country")
            self.cbc(country, "IdentificationCode", party.country, pointer + "/country")
        if party.tax_id is not None:
            scheme = self.cac(el, "PartyTaxScheme")
            self.cbc(scheme, "CompanyID", party.tax_id, pointer + "/tax_id")
            self.cbc(self.cac(scheme, "TaxScheme"), "ID", "VAT")
        legal = self.cac(el, "PartyLegalEntity")
        self.cbc(legal, "RegistrationName", party.name, pointer + "/name")
        self.identifier(legal, "CompanyID", party.legal_id, pointer + "/legal_id")


def render_tree(doc: Document) -> tuple[etree._Element, dict[int, str], list[etree._Element]]:
    """The document as a UBL 2.1 tree, each element (by id) → its JSON pointer, and the
    elements themselves: lxml hands out a new proxy object per access, so an id is
    only an element's while that proxy is kept alive."""
    w = _Writer()
    root = w.mark(w.root, "")
    cur = {"currencyID": doc.currency}
    w.cbc(root, "CustomizationID", doc.customization_id, "/customization_id")
    w.cbc(root, "ProfileID", doc.profile_id, "/profile_id")
    w.cbc(root, "ID", doc.number, "/number")
    w.cbc(root, "IssueDate", doc.issue_date.isoformat(), "/issue_date")
    w.cbc(root, "DueDate", doc.due_date.isoformat() if doc.due_date else None, "/due_date")
    w.cbc(root, "InvoiceTypeCode", doc.type_code, "/type_code")
    w.cbc(root, "Note", doc.note, "/note")
    w.cbc(root, "DocumentCurrencyCode", doc.currency, "/currency")
    w.cbc(root, "TaxCurrencyCode", doc.tax_currency, "/tax_currency")
    w.cbc(root, "AccountingCost", doc.accounting_cost, "/accounting_cost")
    w.cbc(root, "BuyerReference", doc.buyer_reference, "/buyer_reference")
    if doc.period_start or doc.period_end:
        period = w.cac(root, "InvoicePeriod")
        w.cbc(period, "StartDate", _day(doc.period_start), "/period_start")
        w.cbc(period, "EndDate", _day(doc.period_end), "/period_end")
    if doc.order_reference is not None:
        w.cbc(w.cac(root, "OrderReference"), "ID", doc.order_reference, "/order_reference")
    for i, ref in enumerate(doc.preceding):
        billing = w.cac(root, "BillingReference", f"/preceding/{i}")
        inner = w.cac(billing, "InvoiceDocumentReference")
        w.cbc(inner, "ID", ref.id, f"/preceding/{i}/id")
        w.cbc(inner, "IssueDate", _day(ref.issue_date), f"/preceding/{i}/issue_date")
    w.party(root, "AccountingSupplierParty", doc.seller, "/seller")
    w.party(root, "AccountingCustomerParty", doc.buyer, "/buyer")
    for i, pay in enumerate(doc.payment):
        p = f"/payment/{i}"
        means = w.cac(root, "PaymentMeans", p)
        w.cbc(means, "PaymentMeansCode", pay.means, p + "/means")
        if pay.account is not None or pay.account_name is not None:
            account = w.cac(means, "PayeeFinancialAccount")
            w.cbc(account, "ID", pay.account, p + "/account")
            w.cbc(account, "Name", pay.account_name, p + "/account_name")
    if doc.payment_terms is not None:
        w.cbc(w.cac(root, "PaymentTerms"), "Note", doc.payment_terms, "/payment_terms")
    for i, ac in enumerate(doc.allowances):
        p = f"/allowances/{i}"
        el = w.cac(root, "AllowanceCharge", p)
        w.cbc(el, "ChargeIndicator", "true" if ac.charge else "false", p + "/charge")
        w.cbc(el, "AllowanceChargeReasonCode", ac.reason_code, p + "/reason_code")
        w.cbc(el, "AllowanceChargeReason", ac.reason, p + "/reason")
        w.cbc(el, "Amount", ac.amount, p + "/amount", **cur)
        if ac.tax is not None:
            w.category(el, "TaxCategory", ac.tax, p + "/tax")
    for i, total in enumerate(doc.tax_totals):
        p = f"/tax_totals/{i}"
        el = w.cac(root, "TaxTotal", p)
        tcur = {"currencyID": total.currency}
        w.cbc(el, "TaxAmount", total.amount, p + "/amount", **tcur)
        for j, sub in enumerate(total.subtotals):
            q = f"{p}/subtotals/{j}"
            s = w.cac(el, "TaxSubtotal", q)
            w.cbc(s, "TaxableAmount", sub.taxable, q + "/taxable", **tcur)
            w.cbc(s, "TaxAmount", sub.tax, q + "/tax", **tcur)
            w.category(s, "TaxCategory", sub.category, q + "/category")
    t = doc.totals
    el = w.cac(root, "LegalMonetaryTotal", "/totals")
    w.cbc(el, "LineExtensionAmount", t.line_extension, "/totals/line_extension", **cur)
    w.cbc(el, "TaxExclusiveAmount", t.tax_exclusive, "/totals/tax_exclusive", **cur)
    w.cbc(el, "TaxInclusiveAmount", t.tax_inclusive, "/totals/tax_inclusive", **cur)
    w.cbc(el, "AllowanceTotalAmount", t.allowance, "/totals/allowance", **cur)
    w.cbc(el, "ChargeTotalAmount", t.charge, "/totals/charge", **cur)
    w.cbc(el, "PrepaidAmount", t.prepaid, "/totals/prepaid", **cur)
    w.cbc(el, "PayableRoundingAmount", t.rounding, "/totals/rounding", **cur)
    w.cbc(el, "PayableAmount", t.payable, "/totals/payable", **cur)
    for i, line in enumerate(doc.lines):
        p = f"/lines/{i}"
        el = w.cac(root, "InvoiceLine", p)
        w.cbc(el, "ID", line.id, p + "/id")
        w.cbc(el, "InvoicedQuantity", line.quantity, p + "/quantity", unitCode=line.unit)
        w.cbc(el, "LineExtensionAmount", line.amount, p + "/amount", **cur)
        if line.period_start or line.period_end:
            period = w.cac(el, "InvoicePeriod")
            w.cbc(period, "StartDate", _day(line.period_start), p + "/period_start")
            w.cbc(period, "EndDate", _day(line.period_end), p + "/period_end")
        item = w.cac(el, "Item")
        w.cbc(item, "Name", line.item, p + "/item")
        w.category(item, "ClassifiedTaxCategory", line.tax, p + "/tax")
        price = w.cac(el, "Price")
        w.cbc(price, "PriceAmount", line.price, p + "/price", **cur)
        if line.base_quantity is not None:
            w.cbc(
                price, "BaseQuantity", line.base_quantity, p + "/base_quantity", unitCode=line.unit
            )
    return root, w.where, w.elements


def render(doc: Document) -> tuple[bytes, dict[str, str]]:
    """The document as UBL 2.1 XML, and each element's canonical XPath → JSON pointer."""
    root, where, elements = render_tree(doc)
    pointers = {path_of(e): where[id(e)] for e in elements}
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8"), pointers


def _day(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass
class Rendered:
    """A JSON invoice rendered for checking."""

    document: Document
    root: etree._Element
    xml: bytes
    where: dict[int, str]
    """Each rendered element (by id) → the JSON pointer it came from."""
    elements: list[etree._Element]
    """The rendered elements, kept alive (their ids are the keys of ``where``)."""
    _paths: dict[str, str] | None = None

    def pointer(self, xpath: str) -> str:
        """The JSON pointer of a location in the rendered XML (nearest mapped ancestor)."""
        if self._paths is None:  # only when there is a finding to place
            self._paths = {path_of(e): self.where[id(e)] for e in self.elements}
        probe = xpath.split("/@", 1)[0]
        while probe:
            if probe in self._paths:
                return self._paths[probe] or "/"
            probe = probe.rsplit("/", 1)[0]
        return "/"

    def amounts(self) -> list[tuple[Callable[[], str], str, str]]:
        return [
            (partial(self.where.__getitem__, id(el)), el.get("currencyID") or "", el.text or "")
            for el in self.elements
            if el.get("currencyID") is not None
        ]


def prepare(data: bytes) -> Rendered:
    """Decode the JSON form and render it (raises :class:`JsonRefused`)."""
    document = decode(data)
    root, where, elements = render_tree(document)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Rendered(document, root, xml, where, elements)
