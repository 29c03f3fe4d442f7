"""The e-invoice console pages: inbox, search, an invoice and its steps, the original, export.

Each route declares the audit action, resource type and subject of the API
route behind it (:func:`shared_gov.web.domainpages.page_audited`) and calls
what that route calls — :func:`ledgerbook.search`, :func:`service.invoice`,
:func:`workflow.advance`, :func:`ledgerbook.original`, :func:`ledgerbook.export`
— so separation of duties, approval levels, If-Match and the sealed ledger
are the API's, and so are the refusals.

Purposes: the pages that read work under the purpose the person picks among
those that may search invoices (``invoices.payment``, ``invoices.inspection``,
``invoices.approval.N``), the first they hold by default; each step's form
offers the purposes they hold that cover that step (検収 under
``invoices.inspection``, 決裁 under an ``invoices.approval.N``, the rest under
``invoices.payment``); the export works under ``invoices.payment``.

The inbox is a GET (a state and a page cursor: nothing personal); the search
is a POST (a counterparty's number never sits in a URL). The original is
shown as text — Jinja escapes it, and the page's Content Security Policy
would run nothing anyway — and downloaded as an attachment, byte for byte.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from shared_gov import errors
from shared_gov.api.entry import Entry
from shared_gov.api.pipeline import known_query_only
from shared_gov.domains.invoices import ledgerbook, service, workflow
from shared_gov.domains.invoices import messages as m
from shared_gov.domains.invoices.controllers import Id, invoice_out, listed_out
from shared_gov.domains.invoices.models import Invoice
from shared_gov.domains.invoices.schemas import ExportIn, SearchIn, Transition
from shared_gov.policy import FieldView
from shared_gov.policy.purposes import Purpose
from shared_gov.web.domainpages import (
    decoded,
    if_match,
    offered_to,
    page_audited,
    refusal,
    text_of,
    work_under,
)
from shared_gov.web.pages import page

PAYMENT = "invoices.payment"
INSPECTION = "invoices.inspection"
APPROVALS = ("invoices.approval.3", "invoices.approval.2", "invoices.approval.1")
"""Highest first: a form's first choice is the person's highest level."""
READERS = (PAYMENT, INSPECTION, *APPROVALS)
"""Purposes that may search and read invoices (``invoice_search``)."""
STATES = ("received", "checked", "inspected", "approved", "payment_ordered", "paid", "returned")
PAGE_SIZE = 50
SEARCH_FIELDS = ("date_from", "date_to", "amount_min", "amount_max", "supplier_key", "state")


def step_purposes(step: str, state: str) -> tuple[str, ...]:
    """The purposes under which ``step`` can be taken on an invoice in ``state``."""
    if step == "inspect":
        return (INSPECTION,)
    if step == "approve":
        return APPROVALS
    if step == "return":
        # Returned from the stage it is at: the check (会計課) or 検収 (the ordering department).
        return (PAYMENT,) if state == "received" else (INSPECTION,)
    return (PAYMENT,)


def _steps_of(state: str) -> list[str]:
    return [s.name for s in workflow.STEPS.values() if state in s.sources]


async def _forms(entry: Entry, inv: Any) -> list[dict[str, Any]]:
    """The steps the invoice's state allows, each with the purposes the person may take it under."""
    forms = []
    for step in _steps_of(inv.state):
        choices = await offered_to(entry, step_purposes(step, inv.state))
        if choices:
            forms.append({"step": step, "choices": choices})
    return forms


def _base(entry: Entry) -> dict[str, Any]:
    return {"code": entry.code, "m": m, "states": STATES}


async def _invoice_page(
    request: Request[Any, Any, Any],
    entry: Entry,
    purpose: Purpose,
    found: Invoice,
    view: FieldView,
    history: list[Any] | None,
    notice: object = None,
) -> Response[Any]:
    inv = invoice_out(found, view, history)
    return page(
        request,
        "invoices/invoice.html",
        **_base(entry),
        purpose=purpose,
        choices=await offered_to(entry, READERS),
        inv=inv,
        history=history is not None,
        forms=await _forms(entry, inv),
        notice=notice,
    )


def _refused(
    request: Request[Any, Any, Any], entry: Entry, exc: errors.DomainError, back: str
) -> Response[Any]:
    """The API's refusal on a page; ``back``: the page to return to, under ``invoices/``."""
    return refusal(request, exc, "invoices/refused.html", **_base(entry), back=back)


class InvoicePages(Controller):
    path = "/towns/{code:str}/invoices"
    include_in_schema = False

    # --- the inbox and the search ------------------------------------------------------

    @get("/", guards=[known_query_only], **page_audited("invoice.search", "invoice"))
    async def inbox(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        # ``state`` is a name Litestar keeps for itself: the parameter's own name is aliased.
        shown: Annotated[str, QueryParameter(name="state", max_length=20)] = "received",
        purpose: Annotated[str | None, QueryParameter(max_length=40)] = None,
        after: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> Response[Any]:
        chosen = await work_under(entry, READERS, purpose)
        try:
            query = decoded({"state": shown, "after": after, "limit": PAGE_SIZE}, SearchIn)
        except errors.DomainError as exc:
            await entry.refused(exc)
            return _refused(request, entry, exc, "")
        try:
            async with entry:
                found, following = await ledgerbook.search(entry.uow, entry.access, query)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, "")
        return page(
            request,
            "invoices/inbox.html",
            **_base(entry),
            purpose=chosen,
            choices=await offered_to(entry, READERS),
            state=query.state,
            rows=[listed_out(i) for i in found],
            following=following,
        )

    @get("/search", **page_audited("invoice.search", "invoice"))
    async def search_form(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        # Let in by the entry's middleware (the town's own people); nothing is read.
        return page(
            request,
            "invoices/search.html",
            **_base(entry),
            purpose=await work_under(entry, READERS),
            choices=await offered_to(entry, READERS),
            values={},
            rows=None,
        )

    @post("/search", status_code=200, **page_audited("invoice.search", "invoice"))
    async def search(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        form = await request.form()
        chosen = await work_under(entry, READERS, text_of(form, "purpose"))
        values = {n: v for n in SEARCH_FIELDS if (v := text_of(form, n, 64)) is not None}
        after = text_of(form, "after", 64)
        try:
            query = decoded(
                {**values, "limit": PAGE_SIZE, **({"after": after} if after else {})}, SearchIn
            )
        except errors.DomainError as exc:
            await entry.refused(exc)
            return _refused(request, entry, exc, "search")
        try:
            async with entry:
                found, following = await ledgerbook.search(entry.uow, entry.access, query)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, "search")
        return page(
            request,
            "invoices/search.html",
            **_base(entry),
            purpose=chosen,
            choices=await offered_to(entry, READERS),
            values=values,
            rows=[listed_out(i) for i in found],
            following=following,
        )

    # --- the payment export --------------------------------------------------------------

    @get("/export", **page_audited("invoice.export", "invoice"))
    async def export_form(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        # Let in by the entry's middleware; nothing is read until the export is asked for.
        return page(
            request,
            "invoices/export.html",
            **_base(entry),
            purpose=await work_under(entry, (PAYMENT,)),
        )

    @post("/export", status_code=200, **page_audited("invoice.export", "invoice"))
    async def export(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        form = await request.form()
        await work_under(entry, (PAYMENT,))
        reexport = text_of(form, "reexport", 64)
        body = {"encoding": text_of(form, "encoding", 16) or "utf-8"}
        try:
            asked = decoded({**body, **({"reexport": reexport} if reexport else {})}, ExportIn)
        except errors.DomainError as exc:
            await entry.refused(exc)
            return _refused(request, entry, exc, "export")
        try:
            async with entry:
                result = await ledgerbook.export(entry.uow, entry.access, asked)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, "export")
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

    # --- one invoice ----------------------------------------------------------------------

    @get(
        "/{invoice_id:str}",
        guards=[known_query_only],
        **page_audited("invoice.read", "invoice", record="invoice_id"),
    )
    async def invoice(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        invoice_id: Id,
        purpose: Annotated[str | None, QueryParameter(max_length=40)] = None,
    ) -> Response[Any]:
        chosen = await work_under(entry, READERS, purpose)
        try:
            async with entry:
                found, view, history = await service.invoice(entry.uow, entry.access, invoice_id)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, "")
        return await _invoice_page(request, entry, chosen, found, view, history)

    @get(
        "/{invoice_id:str}/original",
        guards=[known_query_only],
        **page_audited("invoice.original", "invoice", record="invoice_id"),
    )
    async def original(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        invoice_id: Id,
        purpose: Annotated[str | None, QueryParameter(max_length=40)] = None,
    ) -> Response[Any]:
        chosen = await work_under(entry, READERS, purpose)
        try:
            async with entry:
                data, sha256, media = await ledgerbook.original(entry.uow, entry.access, invoice_id)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, invoice_id)
        return page(
            request,
            "invoices/original.html",
            **_base(entry),
            purpose=chosen,
            invoice_id=invoice_id,
            text=data.decode("utf-8", errors="replace"),
            size=len(data),
            sha256=sha256,
            media=media,
        )

    @get(
        "/{invoice_id:str}/original/download",
        guards=[known_query_only],
        **page_audited("invoice.original", "invoice", record="invoice_id"),
    )
    async def original_download(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        invoice_id: Id,
        purpose: Annotated[str | None, QueryParameter(max_length=40)] = None,
    ) -> Response[Any]:
        await work_under(entry, READERS, purpose)
        try:
            async with entry:
                data, sha256, media = await ledgerbook.original(entry.uow, entry.access, invoice_id)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, invoice_id)
        digest = base64.b64encode(bytes.fromhex(sha256)).decode()
        suffix = "xml" if media == "application/xml" else "json"
        return Response(
            data,
            media_type=media,
            headers={
                "Repr-Digest": f"sha-256=:{digest}:",
                "X-Content-SHA256": sha256,
                # An attachment: the browser saves it, never renders it in the console's origin.
                "Content-Disposition": f'attachment; filename="invoice-{invoice_id}.{suffix}"',
            },
        )

    # --- the workflow's steps (one route each: each is its own action in the log) ------

    async def _step(
        self, request: Request[Any, Any, Any], entry: Entry, invoice_id: str, step: str
    ) -> Response[Any]:
        form = await request.form()
        state = text_of(form, "state", 20) or ""
        chosen = await work_under(entry, step_purposes(step, state), text_of(form, "purpose"))
        entry.if_match = if_match(form.get("version"))
        reason = text_of(form, "reason", 600)
        try:
            data = decoded({"reason": reason} if reason else {}, Transition)
        except errors.DomainError as exc:
            await entry.refused(exc)
            return _refused(request, entry, exc, invoice_id)
        try:
            async with entry:
                found = await workflow.advance(
                    entry.uow, entry.access, invoice_id, step, entry.if_match, data.reason
                )
                view = entry.access.field_view(False, record_type=service.INVOICE)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, invoice_id)
        return await _invoice_page(request, entry, chosen, found, view, None, notice=m.C_DONE[step])

    @post(
        "/{invoice_id:str}/check",
        status_code=200,
        **page_audited("invoice.check", "invoice", record="invoice_id"),
    )
    async def check(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry], invoice_id: Id
    ) -> Response[Any]:
        return await self._step(request, entry, invoice_id, "check")

    @post(
        "/{invoice_id:str}/inspect",
        status_code=200,
        **page_audited("invoice.inspect", "invoice", record="invoice_id"),
    )
    async def inspect(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry], invoice_id: Id
    ) -> Response[Any]:
        return await self._step(request, entry, invoice_id, "inspect")

    @post(
        "/{invoice_id:str}/approve",
        status_code=200,
        **page_audited("invoice.approve", "invoice", record="invoice_id"),
    )
    async def approve(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry], invoice_id: Id
    ) -> Response[Any]:
        return await self._step(request, entry, invoice_id, "approve")

    @post(
        "/{invoice_id:str}/order",
        status_code=200,
        **page_audited("invoice.order", "invoice", record="invoice_id"),
    )
    async def order(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry], invoice_id: Id
    ) -> Response[Any]:
        return await self._step(request, entry, invoice_id, "order")

    @post(
        "/{invoice_id:str}/pay",
        status_code=200,
        **page_audited("invoice.pay", "invoice", record="invoice_id"),
    )
    async def pay(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry], invoice_id: Id
    ) -> Response[Any]:
        return await self._step(request, entry, invoice_id, "pay")

    @post(
        "/{invoice_id:str}/return",
        status_code=200,
        **page_audited("invoice.return", "invoice", record="invoice_id"),
    )
    async def return_(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry], invoice_id: Id
    ) -> Response[Any]:
        return await self._step(request, entry, invoice_id, "return")
