"""Intake: a supplier's invoice, checked, and stored or rejected with its report.

:func:`submit` runs the checks in the worker processes (``checks.CheckPool``),
then the rules that need the town: the seller must be the authenticated
supplier (otherwise 403, nothing stored: a spoofing attempt), the accounting
unit the invoice names (``BuyerReference``; the town's default otherwise,
``sg-unit-01`` if none), qualified invoices where that unit files
consumption tax (``sg-jp-05``), duplicates (``sg-jp-06``). Every submission
is stored with its report, accepted or not, so the supplier can fetch the
report later; an accepted invoice is stored with its original byte for byte
and sealed. A correction (a new, possibly negative, 380 referring to a
preceding invoice) is linked to the invoice it corrects.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import msgspec

from shared_gov import errors
from shared_gov.api.entry import Entry
from shared_gov.db import TenantUnitOfWork
from shared_gov.settings import Settings

from . import checks, paths, rules
from . import messages as m
from . import repository as repo
from .document import Document
from .gateway import admitted, registered, require_own
from .models import AccountingUnit, Invoice, InvoiceStatus, Submission, Supplier
from .report import Finding, Report, said

_POOLS: dict[Path, checks.CheckPool] = {}


def pool_for(settings: Settings) -> checks.CheckPool:
    """This process's checker for the installed rules (started on first use)."""
    where = paths.rules_dir(settings)
    found = _POOLS.get(where)
    if found is None:
        found = _POOLS[where] = checks.CheckPool(where)
    return found


def close_pools() -> None:
    """Stop this process's checkers (their worker processes end; the next use restarts one)."""
    while _POOLS:
        _, found = _POOLS.popitem()
        found.close()


@dataclass
class Outcome:
    submission: Submission
    invoice: Invoice | None
    report: Report
    duplicate: bool = False


def seller_is(supplier: Supplier, doc: Document) -> bool:
    """Whether the invoice's seller is this supplier (its identifiers, its T-number)."""
    seller = doc.seller
    if seller.tax_id is not None and seller.tax_id != supplier.t_number:
        return False  # someone else's registration number
    ours = {supplier.supplier_key}
    if supplier.corporate_number:
        ours.add(supplier.corporate_number)
    if supplier.t_number:
        ours.add(supplier.t_number)
    theirs = {i.value for i in (seller.endpoint, seller.legal_id, seller.id) if i is not None}
    if seller.tax_id is not None:
        theirs.add(seller.tax_id)
    return bool(ours & theirs)


def transaction_date(doc: Document) -> date:
    """取引年月日 as searched: the end of the invoice period, else the issue date."""
    return doc.period_end or doc.issue_date


def retain_until(day: date, years: int) -> date:
    """Kept until the end of the fiscal year (April–March) ``years`` after the transaction's."""
    fiscal_end = day.year if day.month <= 3 else day.year + 1
    return date(fiscal_end + years, 3, 31)


def _unit_missing(location: str, known: bool) -> Finding:
    return said("sg-unit-01", "fatal", location, m.UNIT_UNKNOWN if known else m.UNIT_NONE)


async def submit(entry: Entry, form: checks.Form, data: bytes, pool: checks.CheckPool) -> Outcome:
    """A supplier's submission through the suppliers' gate: decided, checked, filed.

    One statement reads the supplier's registration, the town's settings and
    its accounting units (``repository.intake``); the checks run in the worker
    processes while the event loop serves other requests; filing an accepted
    invoice is three more round trips, the last one the COMMIT.
    """
    ctx = await repo.intake.context(entry.uow, entry.principal.subject)
    supplier = admitted(ctx.supplier)
    require_own(entry, supplier)
    reason = pool.ready()
    if reason is not None:
        raise errors.unavailable(m.CHECKS_UNAVAILABLE(reason=reason), retry_after=60)
    town = ctx.settings
    options = rules.Options(t_number="fatal" if town.t_number_severity == "fatal" else "warning")
    checked = await pool.check(form, data, options)
    outcome = await file(
        entry.uow, supplier, form, data, checked, town.default_unit, units=ctx.units, last=True
    )
    audit = entry.audit
    if outcome.invoice is not None:
        audit.subjects.append(outcome.invoice.id)
    else:
        audit.outcome = "denied"
        audit.reason = (
            "duplicate invoice" if outcome.duplicate else "invoice rejected by its checks"
        )
    audit.rows += 1
    return outcome


async def file(
    uow: TenantUnitOfWork,
    supplier: Supplier,
    form: checks.Form,
    data: bytes,
    checked: checks.Outcome,
    default_unit: str | None,
    units: dict[str, AccountingUnit] | None = None,
    last: bool = False,
) -> Outcome:
    """The town's rules on a checked submission, then store it (and the invoice if accepted).

    ``units``: the town's accounting units when the caller read them already.
    ``last``: nothing after this in the transaction appends to the invoice
    ledger, so the receipt's entry travels with the COMMIT (the API's intake).
    """
    report, doc = checked.report, checked.document
    unit = None
    corrects: str | None = None
    if doc is not None:
        if not seller_is(supplier, doc):
            raise errors.forbidden(m.SELLER_NOT_SUPPLIER)
        code = doc.buyer_reference or default_unit
        if code is None:
            unit = None
        elif units is not None:
            unit = units.get(code)
        else:
            unit = await repo.unit(uow, code)
        if unit is None:
            report.add(_unit_missing(checked.locate("/buyer_reference"), code is not None))
        elif unit.needs_qualified:
            report.findings.extend(rules.registration_required(doc, checked.locate, unit.name))
        for ref in doc.preceding:
            earlier = [
                i
                for i in await repo.by_number(uow, supplier.id, ref.id)
                if ref.issue_date is None or i.issue_date == ref.issue_date
            ]
            if earlier:
                corrects = earlier[-1].id
    now = repo.now()
    sha = hashlib.sha256(data).digest()
    actor = f"supplier:{supplier.supplier_key}"
    if doc is not None and unit is not None and not report.fatal:
        invoice = _invoice(supplier, form, data, sha, doc, report, unit, corrects, now)
        document_json = repo.intake.document_json(invoice)
        submission_id = str(uuid.uuid4())
        if await repo.intake.file_accepted(uow, invoice, submission_id, document_json):
            head = await repo.intake.ledger_head(uow)
            await repo.intake.seal(uow, invoice, document_json, actor, head, at_commit=last)
            submission = Submission(
                submission_id, supplier.id, now, form, sha, True, invoice.report, invoice.id
            )
            return Outcome(submission, invoice, report)
        # The same supplier, number and issue date were filed before (or just now).
        report.add(rules.duplicate(checked.locate))
        duplicate = True
    else:
        duplicate = doc is not None and bool(
            await repo.duplicate_of(uow, supplier.id, doc.number, doc.issue_date)
        )
        if duplicate:
            report.add(rules.duplicate(checked.locate))
    submission = Submission(
        id=str(uuid.uuid4()),
        supplier_id=supplier.id,
        received_at=now,
        form=form,
        sha256=sha,
        accepted=False,
        report=msgspec.to_builtins(report),
    )
    await repo.intake.insert_rejected(uow, submission)
    return Outcome(submission, None, report, duplicate)


def _invoice(
    supplier: Supplier,
    form: checks.Form,
    data: bytes,
    sha: bytes,
    doc: Document,
    report: Report,
    unit: AccountingUnit,
    corrects: str | None,
    now: datetime,
) -> Invoice:
    day = transaction_date(doc)
    return Invoice(
        id=str(uuid.uuid4()),
        supplier_id=supplier.id,
        unit=unit.code,
        number=doc.number,
        issue_date=doc.issue_date,
        transaction_date=day,
        currency=doc.currency,
        amount=doc.totals.payable,
        tax=doc.tax_amount,
        specification=report.specification or "",
        type_code=doc.type_code,
        corrects=corrects,
        form=form,
        original=data,
        sha256=sha,
        document=doc,
        report=msgspec.to_builtins(report),
        state="received",
        received_at=now,
        retain_until=retain_until(day, unit.retention_years),
    )


async def submission(entry: Entry, submission_id: str) -> Submission:
    """A submission and its report — the supplier's own only (another's: 404)."""
    supplier = await registered(entry)
    try:
        wanted = str(uuid.UUID(submission_id))
    except ValueError:
        raise errors.not_found() from None  # the same answer as another supplier's
    found = await repo.submission(entry.uow, wanted)
    if found is None:
        raise errors.not_found()
    require_own(entry, supplier if found.supplier_id == supplier.id else None)
    entry.audit.rows += 1
    return found


async def status(entry: Entry, invoice_id: str) -> tuple[Invoice, str | None]:
    """One of the supplier's invoices, and why it was returned if it was."""
    supplier = await registered(entry)
    try:
        wanted = str(uuid.UUID(invoice_id))
    except ValueError:
        raise errors.not_found() from None  # the same answer as another supplier's
    found = await repo.invoice(entry.uow, wanted)
    if found is None:
        raise errors.not_found()
    require_own(entry, supplier if found.supplier_id == supplier.id else None)
    if found.id not in entry.audit.subjects:  # the route may already name it
        entry.audit.subjects.append(found.id)
    entry.audit.rows += 1
    reason = None
    if found.state == "returned":
        returns = [e for e in await repo.history(entry.uow, found.id) if e.kind == "return"]
        reason = returns[-1].reason if returns else None
    return found, reason


async def own_invoices(entry: Entry) -> list[InvoiceStatus]:
    """The supplier's invoices in this town and where each stands."""
    supplier = await registered(entry)
    require_own(entry, supplier)
    found = await repo.statuses_of(entry.uow, supplier.id)
    entry.audit.rows += len(found)
    return found
