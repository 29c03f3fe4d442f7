"""Reading a UBL 2.1 invoice safely, and mapping it onto the model.

The parser is hardened the way an intake that takes XML from the Internet
must be (OWASP XXE prevention; the attacks ``defusedxml`` lists): no DTD is
loaded and any DOCTYPE is refused outright (so no entity — internal "billion
laughs" or external file/URL — is ever declared, let alone expanded), no
network access, libxml2's default limits on depth and text size
(``huge_tree=False``), a size cap before parsing, UTF-8 only (Peppol's
encoding; the same text then goes to Saxon as a string).

:func:`parse` returns the tree, the :class:`~.document.Document` when the
invoice has what the model needs, the location of each model value (a JSON
pointer → the element's XPath, for the platform rules' findings) and every
amount with its currency (whole-yen rule). Locations are canonical XPaths
(``/Invoice/cac:InvoiceLine[2]/cbc:LineExtensionAmount``) whatever prefixes
the sender used: :func:`path_of` writes them, :func:`element_at` reads the
official rules' ``/*:Invoice[namespace-uri()='…'][1]/…`` form back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

import msgspec
from lxml import etree

from .document import (
    AllowanceCharge,
    Document,
    Identifier,
    Line,
    Party,
    Payment,
    Reference,
    TaxCategory,
    TaxSubtotal,
    TaxTotal,
    Totals,
)
from .report import Finding, finding

MAX_BYTES = 10 * 1024 * 1024
"""Largest invoice accepted (attachments travel base64-encoded inside it)."""

INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
EXT = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
PREFIXES = {INVOICE: "", CAC: "cac", CBC: "cbc", EXT: "ext"}
NAMESPACES = {"inv": INVOICE, "cac": CAC, "cbc": CBC, "ext": EXT}


class XmlRefused(Exception):
    """The bytes are not a safe, well-formed UTF-8 XML document (one finding says why)."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message.en)
        self.finding = finding


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        collect_ids=False,
        remove_pis=False,
    )


def _refused(rule: str, location: str, ja: str, en: str) -> XmlRefused:
    return XmlRefused(finding(rule, "fatal", location, ja, en, "xml"))


def decode_utf8(data: bytes) -> str:
    """The document as text (a UTF-8 BOM dropped); anything but UTF-8 is refused."""
    if len(data) > MAX_BYTES:
        raise _refused(
            "sg-xml-01",
            "/",
            f"請求書が大きすぎます（上限 {MAX_BYTES // (1024 * 1024)} MB）。",
            f"the invoice is larger than {MAX_BYTES // (1024 * 1024)} MB",
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _refused(
            "sg-xml-02",
            "/",
            "請求書は UTF-8 で符号化してください。",
            "the invoice must be encoded in UTF-8",
        ) from None


_DOCTYPE = re.compile(r"\A\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*)*<!DOCTYPE", re.DOTALL)
"""A DOCTYPE in the prolog (before the root element), found before any parsing."""
_DECLARED = re.compile(r"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")


def parse_tree(data: bytes) -> tuple[etree._Element, str]:
    """The root element and the document text, or :class:`XmlRefused`."""
    text = decode_utf8(data)
    declared = _DECLARED.match(text[:200])
    if declared and declared.group(1).replace("_", "-").lower() not in ("utf-8", "utf8"):
        raise _refused(
            "sg-xml-02",
            "/",
            "請求書は UTF-8 で符号化してください。",
            "the invoice must be encoded in UTF-8",
        )
    if _DOCTYPE.match(text):
        raise _doctype()
    try:
        root = etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 0
        raise _refused(
            "sg-xml-03",
            f"line {line}",
            "XML として正しくありません（整形式でない）。",
            "the invoice is not well-formed XML",
        ) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _doctype()  # the prolog scan missed it: refused all the same
    return root, text


def _doctype() -> XmlRefused:
    # Entities are how XML bombs and XXE work; an invoice never needs a DTD.
    return _refused(
        "sg-xml-04",
        "/",
        "DOCTYPE（DTD・実体宣言）を含む XML は受け付けません。",
        "XML with a DOCTYPE (DTD or entity declarations) is not accepted",
    )


# --- canonical locations ---------------------------------------------------------


def _step(element: etree._Element) -> str:
    q = etree.QName(element)
    prefix = PREFIXES.get(q.namespace or "")
    if prefix is None:
        name = f"*[local-name()='{q.localname}']"
    else:
        name = f"{prefix}:{q.localname}" if prefix else q.localname
    parent = element.getparent()
    if parent is None:
        return name
    same = [c for c in parent if isinstance(c.tag, str) and c.tag == element.tag]
    return name if len(same) == 1 else f"{name}[{same.index(element) + 1}]"


def path_of(element: etree._Element) -> str:
    """The element's canonical XPath (``/Invoice/cac:InvoiceLine[2]/cbc:ID``)."""
    steps: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        steps.append(_step(node))
        node = node.getparent()
    return "/" + "/".join(reversed(steps))


_SVRL_STEP = re.compile(
    r"^\*:(?P<name>[A-Za-z_][\w.\-]*)\[namespace-uri\(\)='(?P<ns>[^']*)'\]\[(?P<n>\d+)\]$"
)


def element_at(root: etree._Element, location: str) -> tuple[etree._Element | None, str]:
    """The element an official rule's location names, and any ``/@attr`` tail.

    Saxon's SVRL locations read ``/*:Invoice[namespace-uri()='…'][1]/*:X[…][n]``.
    None when a step cannot be followed (the caller keeps the location as is).
    """
    steps = [s for s in location.split("/") if s]
    tail = ""
    if steps and steps[-1].startswith("@"):
        tail = "/" + steps.pop()
    node: etree._Element | None = None
    for i, step in enumerate(steps):
        m = _SVRL_STEP.match(step)
        if m is None:
            return None, tail
        tag = f"{{{m.group('ns')}}}{m.group('name')}" if m.group("ns") else m.group("name")
        n = int(m.group("n"))
        if i == 0:
            if root.tag != tag or n != 1:
                return None, tail
            node = root
            continue
        if node is None:  # pragma: no cover - the first step set it
            return None, tail
        matches = [c for c in node if c.tag == tag]
        if len(matches) < n:
            return None, tail
        node = matches[n - 1]
    return node, tail


def canonical_location(root: etree._Element, location: str) -> str:
    """An official rule's location as a canonical XPath (unchanged when unreadable)."""
    element, tail = element_at(root, location)
    return location if element is None else path_of(element) + tail


# --- mapping onto the model --------------------------------------------------------


class _Missing(Exception):
    """A value the model needs is absent or unreadable (``where``: its location)."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(what)
        self.where = where
        self.what = what


@dataclass
class _Reader:
    root: etree._Element
    pointers: dict[str, Any] = field(default_factory=dict)
    """JSON pointer of each model value → its element (its XPath is written only
    when a finding needs it: computing every path cost more than the parse)."""

    def find(self, node: etree._Element, path: str) -> etree._Element | None:
        found: etree._Element | None = node.find(path, NAMESPACES)
        return found

    def text(self, node: etree._Element, path: str, pointer: str | None = None) -> str | None:
        el = self.find(node, path)
        if el is None or el.text is None or not el.text.strip():
            return None
        if pointer is not None:
            self.pointers[pointer] = el
        return str(el.text).strip()

    def need(self, node: etree._Element, path: str, pointer: str) -> str:
        value = self.text(node, path, pointer)
        if value is None:
            raise _Missing(path_of(node) + "/" + path, pointer)
        return value

    def amount(self, node: etree._Element, path: str, pointer: str) -> Decimal | None:
        value = self.text(node, path, pointer)
        if value is None:
            return None
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise _Missing(path_of(self.pointers[pointer]), pointer) from None
        if not result.is_finite():
            raise _Missing(path_of(self.pointers[pointer]), pointer)
        return result

    def need_amount(self, node: etree._Element, path: str, pointer: str) -> Decimal:
        value = self.amount(node, path, pointer)
        if value is None:
            raise _Missing(path_of(node) + "/" + path, pointer)
        return value

    def day(self, node: etree._Element, path: str, pointer: str) -> date | None:
        value = self.text(node, path, pointer)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _Missing(path_of(self.pointers[pointer]), pointer) from None

    def ident(self, node: etree._Element, path: str, pointer: str) -> Identifier | None:
        el = self.find(node, path)
        if el is None or el.text is None or not el.text.strip():
            return None
        self.pointers[pointer] = el
        return Identifier(el.text.strip(), el.get("schemeID"))

    def all(self, node: etree._Element, path: str) -> list[etree._Element]:
        found: list[etree._Element] = node.findall(path, NAMESPACES)
        return found


def _category(r: _Reader, node: etree._Element | None, pointer: str) -> TaxCategory | None:
    if node is None:
        return None
    code = r.text(node, "cbc:ID", pointer + "/code")
    if code is None:
        return None
    return TaxCategory(code, r.amount(node, "cbc:Percent", pointer + "/percent"))


def _party(r: _Reader, node: etree._Element | None, pointer: str) -> Party:
    if node is None:
        raise _Missing("/Invoice", pointer)
    party = r.find(node, "cac:Party")
    if party is None:
        raise _Missing(path_of(node) + "/cac:Party", pointer)
    name = r.text(party, "cac:PartyLegalEntity/cbc:RegistrationName", pointer + "/name")
    if name is None:
        raise _Missing(path_of(party) + "/cac:PartyLegalEntity/cbc:RegistrationName", pointer)
    tax_id = None
    for scheme in r.all(party, "cac:PartyTaxScheme"):
        if (r.text(scheme, "cac:TaxScheme/cbc:ID") or "").upper() == "VAT":
            tax_id = r.text(scheme, "cbc:CompanyID", pointer + "/tax_id")
            break
    return Party(
        name=name,
        country=r.text(party, "cac:PostalAddress/cac:Country/cbc:IdentificationCode"),
        endpoint=r.ident(party, "cbc:EndpointID", pointer + "/endpoint"),
        id=r.ident(party, "cac:PartyIdentification/cbc:ID", pointer + "/id"),
        tax_id=tax_id,
        legal_id=r.ident(party, "cac:PartyLegalEntity/cbc:CompanyID", pointer + "/legal_id"),
    )


def _document(r: _Reader) -> Document:
    root = r.root
    lines: list[Line] = []
    for i, el in enumerate(r.all(root, "cac:InvoiceLine")):
        p = f"/lines/{i}"
        r.pointers[p] = el
        tax = _category(r, r.find(el, "cac:Item/cac:ClassifiedTaxCategory"), p + "/tax")
        if tax is None:
            raise _Missing(path_of(el) + "/cac:Item/cac:ClassifiedTaxCategory", p + "/tax")
        quantity_el = r.find(el, "cbc:InvoicedQuantity")
        lines.append(
            Line(
                id=r.need(el, "cbc:ID", p + "/id"),
                quantity=r.need_amount(el, "cbc:InvoicedQuantity", p + "/quantity"),
                unit=(quantity_el.get("unitCode") if quantity_el is not None else None) or "H87",
                amount=r.need_amount(el, "cbc:LineExtensionAmount", p + "/amount"),
                item=r.need(el, "cac:Item/cbc:Name", p + "/item"),
                tax=tax,
                price=r.need_amount(el, "cac:Price/cbc:PriceAmount", p + "/price"),
                base_quantity=r.amount(el, "cac:Price/cbc:BaseQuantity", p + "/base_quantity"),
                period_start=r.day(el, "cac:InvoicePeriod/cbc:StartDate", p + "/period_start"),
                period_end=r.day(el, "cac:InvoicePeriod/cbc:EndDate", p + "/period_end"),
            )
        )
    tax_totals: list[TaxTotal] = []
    for i, el in enumerate(r.all(root, "cac:TaxTotal")):
        p = f"/tax_totals/{i}"
        r.pointers[p] = el
        amount_el = r.find(el, "cbc:TaxAmount")
        subtotals: list[TaxSubtotal] = []
        for j, sub in enumerate(r.all(el, "cac:TaxSubtotal")):
            q = f"{p}/subtotals/{j}"
            r.pointers[q] = sub
            category = _category(r, r.find(sub, "cac:TaxCategory"), q + "/category")
            if category is None:
                raise _Missing(path_of(sub) + "/cac:TaxCategory", q + "/category")
            subtotals.append(
                TaxSubtotal(
                    tax=r.need_amount(sub, "cbc:TaxAmount", q + "/tax"),
                    category=category,
                    taxable=r.amount(sub, "cbc:TaxableAmount", q + "/taxable"),
                )
            )
        tax_totals.append(
            TaxTotal(
                currency=(amount_el.get("currencyID") if amount_el is not None else None) or "",
                amount=r.need_amount(el, "cbc:TaxAmount", p + "/amount"),
                subtotals=subtotals,
            )
        )
    allowances: list[AllowanceCharge] = []
    for i, el in enumerate(r.all(root, "cac:AllowanceCharge")):
        p = f"/allowances/{i}"
        r.pointers[p] = el
        allowances.append(
            AllowanceCharge(
                charge=r.need(el, "cbc:ChargeIndicator", p + "/charge").lower() == "true",
                amount=r.need_amount(el, "cbc:Amount", p + "/amount"),
                tax=_category(r, r.find(el, "cac:TaxCategory"), p + "/tax"),
                reason=r.text(el, "cbc:AllowanceChargeReason", p + "/reason"),
                reason_code=r.text(el, "cbc:AllowanceChargeReasonCode", p + "/reason_code"),
            )
        )
    totals_el = r.find(root, "cac:LegalMonetaryTotal")
    if totals_el is None:
        raise _Missing("/Invoice/cac:LegalMonetaryTotal", "/totals")
    t = "/totals"
    totals = Totals(
        line_extension=r.need_amount(totals_el, "cbc:LineExtensionAmount", t + "/line_extension"),
        tax_exclusive=r.need_amount(totals_el, "cbc:TaxExclusiveAmount", t + "/tax_exclusive"),
        tax_inclusive=r.need_amount(totals_el, "cbc:TaxInclusiveAmount", t + "/tax_inclusive"),
        payable=r.need_amount(totals_el, "cbc:PayableAmount", t + "/payable"),
        allowance=r.amount(totals_el, "cbc:AllowanceTotalAmount", t + "/allowance"),
        charge=r.amount(totals_el, "cbc:ChargeTotalAmount", t + "/charge"),
        prepaid=r.amount(totals_el, "cbc:PrepaidAmount", t + "/prepaid"),
        rounding=r.amount(totals_el, "cbc:PayableRoundingAmount", t + "/rounding"),
    )
    preceding = [
        Reference(
            id=r.need(el, "cbc:ID", f"/preceding/{i}/id"),
            issue_date=r.day(el, "cbc:IssueDate", f"/preceding/{i}/issue_date"),
        )
        for i, el in enumerate(r.all(root, "cac:BillingReference/cac:InvoiceDocumentReference"))
    ]
    payment = [
        Payment(
            means=r.need(el, "cbc:PaymentMeansCode", f"/payment/{i}/means"),
            account=r.text(el, "cac:PayeeFinancialAccount/cbc:ID", f"/payment/{i}/account"),
            account_name=r.text(
                el, "cac:PayeeFinancialAccount/cbc:Name", f"/payment/{i}/account_name"
            ),
        )
        for i, el in enumerate(r.all(root, "cac:PaymentMeans"))
    ]
    issue = r.day(root, "cbc:IssueDate", "/issue_date")
    if issue is None:
        raise _Missing("/Invoice/cbc:IssueDate", "/issue_date")
    return Document(
        customization_id=r.need(root, "cbc:CustomizationID", "/customization_id"),
        number=r.need(root, "cbc:ID", "/number"),
        issue_date=issue,
        currency=r.need(root, "cbc:DocumentCurrencyCode", "/currency"),
        seller=_party(r, r.find(root, "cac:AccountingSupplierParty"), "/seller"),
        buyer=_party(r, r.find(root, "cac:AccountingCustomerParty"), "/buyer"),
        totals=totals,
        lines=lines,
        tax_totals=tax_totals,
        profile_id=r.text(root, "cbc:ProfileID", "/profile_id"),
        type_code=r.text(root, "cbc:InvoiceTypeCode", "/type_code") or "380",
        due_date=r.day(root, "cbc:DueDate", "/due_date"),
        tax_currency=r.text(root, "cbc:TaxCurrencyCode", "/tax_currency"),
        buyer_reference=r.text(root, "cbc:BuyerReference", "/buyer_reference"),
        accounting_cost=r.text(root, "cbc:AccountingCost", "/accounting_cost"),
        order_reference=r.text(root, "cac:OrderReference/cbc:ID", "/order_reference"),
        period_start=r.day(root, "cac:InvoicePeriod/cbc:StartDate", "/period_start"),
        period_end=r.day(root, "cac:InvoicePeriod/cbc:EndDate", "/period_end"),
        note=r.text(root, "cbc:Note", "/note"),
        preceding=preceding,
        allowances=allowances,
        payment=payment,
        payment_terms=r.text(root, "cac:PaymentTerms/cbc:Note", "/payment_terms"),
    )


@dataclass
class Parsed:
    """What :func:`parse` read from one XML invoice."""

    root: etree._Element
    text: str
    """The document as text (what Saxon parses)."""
    document: Document | None
    """None when the invoice lacks something the model needs (see ``findings``)."""
    findings: list[Finding]
    pointers: dict[str, Any]
    """JSON pointer of a model value → its element."""
    amounts: list[tuple[Callable[[], str], str, str]]
    """(its location, when asked; currencyID; text) of every element carrying a currency."""

    def locate(self, pointer: str) -> str:
        """The XPath of a model value (its nearest located ancestor's otherwise)."""
        probe = pointer
        while probe:
            if probe in self.pointers:
                return path_of(self.pointers[probe])
            probe = probe.rsplit("/", 1)[0]
        return "/Invoice"


def amounts_of(root: etree._Element) -> list[tuple[Callable[[], str], str, str]]:
    """Every element with a currencyID: (its path, when a finding needs it; currency; text)."""
    return [
        (partial(path_of, el), el.get("currencyID") or "", (el.text or "").strip())
        for el in root.iter()
        if isinstance(el.tag, str) and el.get("currencyID") is not None
    ]


def _validated(document: Document) -> Document:
    """The model's own constraints (text rules, lengths) hold for what XML gave."""
    return msgspec.json.decode(msgspec.json.encode(document), type=Document)


def parse(data: bytes) -> Parsed:
    """Parse safely and map onto the model; raises :class:`XmlRefused` for unsafe or
    malformed XML, otherwise reports what keeps it from being an invoice."""
    root, text = parse_tree(data)
    findings: list[Finding] = []
    reader = _Reader(root)
    document: Document | None = None
    q = etree.QName(root)
    if q.namespace == CREDIT_NOTE:
        findings.append(
            finding(
                "sg-doc-01",
                "fatal",
                "/CreditNote",
                "日本ではクレジットノートではなく、マイナスの請求書（380）で訂正します。",
                "Japan corrects with a (negative) 380 invoice, not a credit note",
            )
        )
    elif q.namespace != INVOICE or q.localname != "Invoice":
        findings.append(
            finding(
                "sg-doc-01",
                "fatal",
                "/",
                "UBL 2.1 の Invoice 文書ではありません。",
                "not a UBL 2.1 Invoice document",
            )
        )
    else:
        try:
            document = _validated(_document(reader))
        except _Missing as missing:
            findings.append(_incomplete(missing.where))
        except msgspec.ValidationError as exc:
            findings.append(_incomplete(_located(reader, str(exc))))
    return Parsed(root, text, document, findings, reader.pointers, amounts_of(root))


def _located(reader: _Reader, message: str) -> str:
    from shared_gov.validation import msgspec_error_to_field

    pointer = msgspec_error_to_field(message).pointer
    probe = pointer
    while probe:
        if probe in reader.pointers:
            return path_of(reader.pointers[probe])
        probe = probe.rsplit("/", 1)[0]
    return "/Invoice"


def _incomplete(where: str) -> Finding:
    return finding(
        "sg-doc-02",
        "fatal",
        where,
        "請求書として処理するのに必要な項目がないか、読み取れません。",
        "a value the platform needs to process the invoice is missing or unreadable",
    )
