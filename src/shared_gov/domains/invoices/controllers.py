"""HTTP endpoints of the e-invoice domain under ``/api/v1/tenants/{code}``.

Two audiences, two entries:

- suppliers' systems (``/supplier/…``): the guarded entry through the
  suppliers' gate (``gateway.SUPPLIERS``) — send an invoice (UBL XML or the
  JSON form), see their own invoices and where each stands, fetch a
  submission's report;
- the town's staff (everything else): the guarded entry through the records
  gate — 業者登録, accounting units and settings, reading invoices.

Handlers parse, enter, call a service and shape the output; they never query.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, PathParameter, RawBody

from shared_gov import errors
from shared_gov.api.entry import Entry, audited
from shared_gov.api.pipeline import services
from shared_gov.messages.http import TITLE_UNSUPPORTED_MEDIA_TYPE
from shared_gov.openapi import Problem, sent_as, served_also_as
from shared_gov.policy import FieldView

from . import checks, intake, ledgerbook, service, ubl, workflow
from . import messages as m
from .gateway import SUPPLIERS
from .models import AccountingUnit, Invoice, InvoiceStatus, LedgerEntry, Submission, Supplier
from .repository import Listed
from .schemas import (
    ExportIn,
    InvoiceList,
    InvoiceOut,
    ListedOut,
    SearchIn,
    SettingsIn,
    SettingsOut,
    StatusList,
    StatusOut,
    SubmissionOut,
    Submitted,
    SupplierIn,
    SupplierOut,
    Transition,
    UnitIn,
    UnitOut,
)

Id = Annotated[str, PathParameter(pattern=r"^[0-9a-f-]{36}$", description="a record id")]
UnitCode = Annotated[str, PathParameter(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
ContentType = Annotated[str | None, HeaderParameter(name="Content-Type")]


# --- output shaping ---------------------------------------------------------------------


def supplier_out(s: Supplier, view: FieldView) -> SupplierOut:
    allowed = view.allowed
    return SupplierOut(
        id=s.id,
        supplier_key=s.supplier_key,
        kind=s.kind,
        corporate_number=s.corporate_number,
        t_number=s.t_number,
        active=s.active,
        name=s.name if "Supplier.name" in allowed else None,
        bank_account=s.bank_account if "Supplier.bank_account" in allowed else None,
        bank_holder=s.bank_holder if "Supplier.bank_holder" in allowed else None,
        withheld=list(view.withheld),
    )


def unit_out(u: AccountingUnit) -> UnitOut:
    return UnitOut(u.code, u.name, u.needs_qualified, u.retention_years)


def history_out(entries: list[LedgerEntry]) -> list[dict[str, Any]]:
    return [
        {
            "seq": e.seq,
            "kind": e.kind,
            "state": e.state,
            "actor": e.actor,
            "at": e.at.isoformat(),
            "reason": e.reason,
        }
        for e in entries
    ]


def invoice_out(
    inv: Invoice, view: FieldView, history: list[LedgerEntry] | None = None
) -> InvoiceOut:
    return InvoiceOut(
        id=inv.id,
        supplier_id=inv.supplier_id,
        unit=inv.unit,
        number=inv.number,
        issue_date=inv.issue_date,
        transaction_date=inv.transaction_date,
        currency=inv.currency,
        amount=format(inv.amount, "f"),
        tax=format(inv.tax, "f"),
        specification=inv.specification,
        type_code=inv.type_code,
        state=inv.state,
        version=inv.version,
        sha256=inv.sha256.hex(),
        received_at=inv.received_at,
        retain_until=inv.retain_until,
        corrects=inv.corrects,
        document=document_out(inv, view),
        report=inv.report,
        history=history_out(history or []),
        withheld=list(view.withheld),
    )


def document_out(inv: Invoice, view: FieldView) -> dict[str, Any] | None:
    """The parsed invoice when the purpose covers it; its payment lines (the
    payee's bank account) only when the purpose covers ``Invoice.payee_account``."""
    if "Invoice.document" not in view.allowed:
        return None
    document: dict[str, Any] = msgspec.to_builtins(inv.document)
    if "Invoice.payee_account" not in view.allowed:
        document.pop("payment", None)
    return document


def status_out(s: InvoiceStatus | Invoice) -> StatusOut:
    return StatusOut(
        id=s.id,
        number=s.number,
        issue_date=s.issue_date,
        amount=format(s.amount, "f"),
        currency=s.currency,
        state=s.state,
        received_at=s.received_at,
    )


def submission_out(s: Submission) -> SubmissionOut:
    return SubmissionOut(
        id=s.id,
        received_at=s.received_at,
        form=s.form,
        sha256=s.sha256.hex(),
        accepted=s.accepted,
        report=s.report,
        invoice_id=s.invoice_id,
    )


def _form(content_type: str | None) -> checks.Form:
    media = (content_type or "").split(";")[0].strip().lower()
    if media in ("application/xml", "text/xml"):
        return "xml"
    if media == "application/json":
        return "json"
    raise errors.DomainError(
        m.SEND_AS_XML_OR_JSON,
        status=415,
        type_slug="unsupported-media-type",
        title=TITLE_UNSUPPORTED_MEDIA_TYPE,
    )


# --- suppliers' systems ---------------------------------------------------------------------


class SupplierController(Controller):
    path = "/api/v1/tenants/{code:str}/supplier"
    tags = ("invoices (suppliers)",)

    @post(
        "/invoices",
        status_code=201,
        summary="Send an invoice (JP PINT UBL 2.1 XML, or the JSON form)",
        request_max_body_size=ubl.MAX_BYTES + 1024,
        responses={
            415: ResponseSpec(
                data_container=Problem,
                description="Not application/xml (UBL 2.1) nor application/json (the JSON form)",
                media_type=errors.PROBLEM_JSON,
                generate_examples=False,
            )
        },
        operation_class=sent_as(
            "application/xml", "application/json", description="UBL 2.1 XML, or the JSON form"
        ),
        **audited("invoice.submit", "invoice", gate=SUPPLIERS),
    )
    async def submit(
        self, entry: NamedDependency[Entry], body: RawBody, content_type: ContentType = None
    ) -> Response[Submitted]:
        # The body is read after the entry's middleware refused whoever is no supplier.
        form = _form(content_type)
        pool = intake.pool_for(services(entry.request).settings)
        async with entry:
            outcome = await intake.submit(entry, form, body, pool)
        report = msgspec.to_builtins(outcome.report)
        if outcome.invoice is None:
            # The submission and its report are stored (committed above): the
            # supplier can fetch them later by the id given here.
            status, slug, title = (
                (409, "duplicate-invoice", m.TITLE_DUPLICATE)
                if outcome.duplicate
                else (422, "invoice-rejected", m.TITLE_REJECTED)
            )
            raise errors.DomainError(
                m.REJECTED,
                status=status,
                type_slug=slug,
                title=title,
                extra={"submission_id": outcome.submission.id, "report": report},
            )
        code = entry.code
        location = f"/api/v1/tenants/{code}/supplier/invoices/{outcome.invoice.id}"
        submitted = Submitted(
            outcome.submission.id, outcome.invoice.id, outcome.invoice.state, report
        )
        return Response(submitted, status_code=201, headers={"Location": location})

    @get(
        "/invoices",
        summary="This supplier's invoices in this town and where each stands",
        **audited("invoice.status_list", "invoice", gate=SUPPLIERS),
    )
    async def own(self, entry: NamedDependency[Entry]) -> StatusList:
        async with entry:
            found = await intake.own_invoices(entry)
        return StatusList([status_out(s) for s in found])

    @get(
        "/invoices/{invoice_id:str}",
        summary="Where one of this supplier's invoices stands",
        **audited("invoice.status", "invoice", gate=SUPPLIERS, record="invoice_id"),
    )
    async def status(self, entry: NamedDependency[Entry], invoice_id: Id) -> StatusOut:
        async with entry:
            found, reason = await intake.status(entry, invoice_id)
        out = status_out(found)
        out.reason = reason
        return out

    @get(
        "/submissions/{submission_id:str}",
        summary="A submission of this supplier and its report",
        **audited("invoice.report", "invoice", gate=SUPPLIERS, record="submission_id"),
    )
    async def report(self, entry: NamedDependency[Entry], submission_id: Id) -> SubmissionOut:
        async with entry:
            found = await intake.submission(entry, submission_id)
        return submission_out(found)


# --- the town's staff ---------------------------------------------------------------------


def listed_out(i: Listed) -> ListedOut:
    return ListedOut(
        id=i.id,
        supplier_id=i.supplier_id,
        supplier_key=i.supplier_key,
        unit=i.unit,
        number=i.number,
        issue_date=i.issue_date,
        transaction_date=i.transaction_date,
        currency=i.currency,
        amount=format(i.amount, "f"),
        tax=format(i.tax, "f"),
        state=i.state,
        version=i.version,
        sha256=i.sha256,
        received_at=i.received_at,
        retain_until=i.retain_until,
        corrects=i.corrects,
    )


async def _advance(
    entry: Entry, invoice_id: str, step: str, data: Transition
) -> Response[InvoiceOut]:
    async with entry:
        found = await workflow.advance(
            entry.uow, entry.access, invoice_id, step, entry.if_match, data.reason
        )
        view = entry.access.field_view(False, record_type=service.INVOICE)
    return Response(invoice_out(found, view), headers={"ETag": service.etag(found.version)})


class TownInvoiceController(Controller):
    path = "/api/v1/tenants/{code:str}"
    tags = ("invoices",)

    @post(
        "/suppliers",
        status_code=201,
        summary="Register a supplier the town buys from (業者登録)",
        **audited("supplier.register", "supplier"),
    )
    async def register_supplier(
        self, entry: NamedDependency[Entry], data: JSONBody[SupplierIn]
    ) -> Response[SupplierOut]:
        async with entry:
            found, view = await service.register_supplier(entry.uow, entry.access, data)
        location = f"/api/v1/tenants/{entry.code}/suppliers/{found.id}"
        return Response(supplier_out(found, view), status_code=201, headers={"Location": location})

    @get(
        "/suppliers/{supplier_id:str}",
        summary="A registered supplier",
        **audited("supplier.read", "supplier", record="supplier_id"),
    )
    async def supplier(self, entry: NamedDependency[Entry], supplier_id: Id) -> SupplierOut:
        async with entry:
            found, view = await service.supplier(entry.uow, entry.access, supplier_id)
        return supplier_out(found, view)

    @get("/suppliers", summary="The town's suppliers", **audited("supplier.list", "supplier"))
    async def suppliers(self, entry: NamedDependency[Entry]) -> list[SupplierOut]:
        async with entry:
            found, view = await service.suppliers(entry.uow, entry.access)
        return [supplier_out(s, view) for s in found]

    @put(
        "/accounting-units/{unit:str}",
        summary="Create or change an accounting unit (会計)",
        **audited("invoice.unit", "invoice_settings"),
    )
    async def put_unit(
        self, entry: NamedDependency[Entry], unit: UnitCode, data: JSONBody[UnitIn]
    ) -> UnitOut:
        async with entry:
            found = await service.put_unit(entry.uow, entry.access, unit, data)
        return unit_out(found)

    @get(
        "/accounting-units",
        summary="The town's accounting units",
        **audited("invoice.units", "invoice_settings"),
    )
    async def units(self, entry: NamedDependency[Entry]) -> list[UnitOut]:
        async with entry:
            found = await service.units(entry.uow, entry.access)
        return [unit_out(u) for u in found]

    @get(
        "/invoice-settings",
        summary="The town's e-invoice settings (ETag)",
        **audited("invoice.settings", "invoice_settings"),
    )
    async def settings(self, entry: NamedDependency[Entry]) -> Response[SettingsOut]:
        async with entry:
            found, levels = await service.settings(entry.uow, entry.access)
        body = SettingsOut(found.t_number_severity, found.default_unit, levels)
        return Response(body, headers={"ETag": service.etag(found.version)})

    @put(
        "/invoice-settings",
        summary="Change the town's e-invoice settings (If-Match)",
        **audited("invoice.settings_change", "invoice_settings", if_match=True),
    )
    async def put_settings(
        self, entry: NamedDependency[Entry], data: JSONBody[SettingsIn]
    ) -> Response[SettingsOut]:
        async with entry:
            found, levels = await service.put_settings(
                entry.uow, entry.access, data, entry.if_match
            )
        body = SettingsOut(found.t_number_severity, found.default_unit, levels)
        return Response(body, headers={"ETag": service.etag(found.version)})

    @post(
        "/invoices/search",
        status_code=200,
        summary="Search by transaction date, amount range, counterparty (within retention)",
        **audited("invoice.search", "invoice"),
    )
    async def search(self, entry: NamedDependency[Entry], data: JSONBody[SearchIn]) -> InvoiceList:
        async with entry:
            found, cursor = await ledgerbook.search(entry.uow, entry.access, data)
        return InvoiceList([listed_out(i) for i in found], cursor)

    @get(
        "/invoices/{invoice_id:str}/original",
        summary="The original as received, byte for byte, with its SHA-256",
        media_type="application/xml",
        operation_class=served_also_as("application/json"),
        **audited("invoice.original", "invoice", record="invoice_id"),
    )
    async def original(self, entry: NamedDependency[Entry], invoice_id: Id) -> Response[bytes]:
        async with entry:
            data, sha256, media = await ledgerbook.original(entry.uow, entry.access, invoice_id)
        digest = base64.b64encode(bytes.fromhex(sha256)).decode()
        return Response(
            data,
            media_type=media,
            headers={"Repr-Digest": f"sha-256=:{digest}:", "X-Content-SHA256": sha256},
        )

    @post(
        "/invoices/export",
        status_code=200,
        summary="支出命令 export to financial accounting (CSV; each invoice once)",
        media_type="text/csv",
        **audited("invoice.export", "invoice"),
    )
    async def export(
        self, entry: NamedDependency[Entry], data: JSONBody[ExportIn]
    ) -> Response[bytes]:
        async with entry:
            result = await ledgerbook.export(entry.uow, entry.access, data)
        charset = "shift_jis" if result.encoding == "cp932" else "utf-8"
        return Response(
            result.body,
            media_type=f"text/csv; charset={charset}",
            headers={
                "X-Export-Id": result.export_id,
                "X-Export-Invoices": str(result.invoices),
                "X-Content-SHA256": result.sha256,
                "Content-Disposition": f'attachment; filename="shiharai-{result.export_id}.csv"',
            },
        )

    @get(
        "/invoices/{invoice_id:str}",
        summary="An invoice, its report and its history (ETag)",
        **audited("invoice.read", "invoice", record="invoice_id"),
    )
    async def invoice(self, entry: NamedDependency[Entry], invoice_id: Id) -> Response[InvoiceOut]:
        async with entry:
            found, view, history = await service.invoice(entry.uow, entry.access, invoice_id)
        return Response(
            invoice_out(found, view, history), headers={"ETag": service.etag(found.version)}
        )

    @post(
        "/invoices/{invoice_id:str}/check",
        status_code=200,
        summary="確認 (会計課): the invoice's content is right",
        **audited("invoice.check", "invoice", record="invoice_id", if_match=True),
    )
    async def check(
        self, entry: NamedDependency[Entry], invoice_id: Id, data: JSONBody[Transition]
    ) -> Response[InvoiceOut]:
        return await _advance(entry, invoice_id, "check", data)

    @post(
        "/invoices/{invoice_id:str}/inspect",
        status_code=200,
        summary="検収 (the ordering department): delivered as ordered",
        **audited("invoice.inspect", "invoice", record="invoice_id", if_match=True),
    )
    async def inspect(
        self, entry: NamedDependency[Entry], invoice_id: Id, data: JSONBody[Transition]
    ) -> Response[InvoiceOut]:
        return await _advance(entry, invoice_id, "inspect", data)

    @post(
        "/invoices/{invoice_id:str}/approve",
        status_code=200,
        summary="決裁: approve payment (the level the amount needs)",
        **audited("invoice.approve", "invoice", record="invoice_id", if_match=True),
    )
    async def approve(
        self, entry: NamedDependency[Entry], invoice_id: Id, data: JSONBody[Transition]
    ) -> Response[InvoiceOut]:
        return await _advance(entry, invoice_id, "approve", data)

    @post(
        "/invoices/{invoice_id:str}/order",
        status_code=200,
        summary="支出命令: order the payment",
        **audited("invoice.order", "invoice", record="invoice_id", if_match=True),
    )
    async def order(
        self, entry: NamedDependency[Entry], invoice_id: Id, data: JSONBody[Transition]
    ) -> Response[InvoiceOut]:
        return await _advance(entry, invoice_id, "order", data)

    @post(
        "/invoices/{invoice_id:str}/pay",
        status_code=200,
        summary="支払: record the payment",
        **audited("invoice.pay", "invoice", record="invoice_id", if_match=True),
    )
    async def pay(
        self, entry: NamedDependency[Entry], invoice_id: Id, data: JSONBody[Transition]
    ) -> Response[InvoiceOut]:
        return await _advance(entry, invoice_id, "pay", data)

    @post(
        "/invoices/{invoice_id:str}/return",
        status_code=200,
        summary="差し戻し: return to the supplier, with a reason",
        **audited("invoice.return", "invoice", record="invoice_id", if_match=True),
    )
    async def return_(
        self, entry: NamedDependency[Entry], invoice_id: Id, data: JSONBody[Transition]
    ) -> Response[InvoiceOut]:
        return await _advance(entry, invoice_id, "return", data)
