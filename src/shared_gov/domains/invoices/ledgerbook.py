"""The books: search (電子帳簿保存法), the original unchanged, and the payment export.

- :func:`search`: by transaction date (取引年月日), amount range and counterparty,
  alone or combined, within each invoice's retention period (its accounting
  unit's ``retention_years`` after the end of the fiscal year of the
  transaction). The values travel in a POST body, never in a URL.
- :func:`original`: the bytes the supplier sent, byte for byte, and their
  SHA-256 (checked again before they leave: a mismatch is a 500-free 409).
- :func:`export`: 支出命令 to financial accounting as CSV (layout:
  :data:`COLUMNS`, documented in docs/invoices.md), UTF-8 or CP932
  (Shift_JIS, which many municipal accounting systems read). Idempotent:
  each invoice is exported once; a re-export names an earlier export and
  returns exactly its invoices again — explicit, audited, sealed in each
  invoice's ledger.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import uuid
from dataclasses import dataclass
from datetime import date

from shared_gov import errors
from shared_gov.clock import today_jst
from shared_gov.db import TenantUnitOfWork
from shared_gov.messages import FieldName
from shared_gov.policy import Access

from . import messages as m
from . import repository as repo
from .models import Invoice, Supplier
from .schemas import ExportIn, SearchIn
from .service import INVOICE, SUPPLIER, parse_id, touched

COLUMNS = (
    "export_id",
    "invoice_id",
    "accounting_unit",
    "supplier_key",
    "supplier_name",
    "registration_number",
    "invoice_number",
    "issue_date",
    "transaction_date",
    "due_date",
    "currency",
    "amount",
    "tax",
    "bank_code",
    "branch_code",
    "account_type",
    "account_number",
    "account_holder",
    "sha256",
)
"""The export's columns, in order (a header row first)."""


def _geta(error: UnicodeError) -> tuple[str, int]:
    """A character CP932 lacks becomes 〓 (ゲタ), as municipal systems print it."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    return "〓", error.end


codecs.register_error("shared_gov_geta", _geta)


# --- search --------------------------------------------------------------------------------


def _cursor(value: str | None) -> tuple[date, str] | None:
    if value is None:
        return None
    day, _, ident = value.partition(",")
    try:
        return date.fromisoformat(day), str(uuid.UUID(ident))
    except ValueError:
        raise errors.invalid_field("/after", m.NOT_A_CURSOR) from None


async def search(
    uow: TenantUnitOfWork, access: Access, query: SearchIn
) -> tuple[list[repo.Listed], str | None]:
    access.require("invoice_search", record_type=INVOICE)
    if query.date_from and query.date_to and query.date_from > query.date_to:
        raise errors.invalid_field("/date_to", m.BEFORE_DATE_FROM)
    if (
        query.amount_min is not None
        and query.amount_max is not None
        and query.amount_min > query.amount_max
    ):
        raise errors.invalid_field("/amount_max", m.BELOW_AMOUNT_MIN)
    found = await repo.search(
        uow,
        today=today_jst(),
        date_from=query.date_from,
        date_to=query.date_to,
        amount_min=query.amount_min,
        amount_max=query.amount_max,
        supplier_id=query.supplier_id,
        supplier_key=query.supplier_key,
        state=query.state,
        after=_cursor(query.after),
        limit=query.limit + 1,
    )
    more = len(found) > query.limit
    page = found[: query.limit]
    touched(access, [i.id for i in page])
    last = page[-1] if page else None
    cursor = f"{last.transaction_date.isoformat()},{last.id}" if more and last else None
    return page, cursor


# --- the original ---------------------------------------------------------------------------


async def original(
    uow: TenantUnitOfWork, access: Access, invoice_id: str
) -> tuple[bytes, str, str]:
    """(bytes, SHA-256 hex, media type) of the original as received."""
    access.require("invoice_search", record_type=INVOICE)
    view = access.readable(False, record_type=INVOICE)
    if "Invoice.original" not in view.allowed:
        raise errors.forbidden(view.reasons.get("Invoice.original", m.ORIGINAL_WITHHELD))
    found = await repo.original(uow, parse_id(invoice_id, "invoice"))
    if found is None:
        raise errors.not_found(m.NO_INVOICE)
    data, recorded, form = found
    touched(access, [parse_id(invoice_id, "invoice")], view)
    if hashlib.sha256(data).digest() != recorded:
        # The seal says otherwise: never hand out an altered original as the original.
        raise errors.conflict(m.ORIGINAL_ALTERED)
    return data, recorded.hex(), "application/xml" if form == "xml" else "application/json"


# --- the payment export ------------------------------------------------------------------------


@dataclass
class Export:
    export_id: str
    body: bytes
    sha256: str
    invoices: int
    encoding: str
    reexport: bool


def _safe(text: str | None) -> str:
    """A text cell that a spreadsheet would run as a formula is made inert."""
    value = text or ""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _account(supplier: Supplier | None, inv: Invoice) -> tuple[str, str, str, str, str]:
    account = supplier.bank_account if supplier and supplier.bank_account else None
    holder = supplier.bank_holder if supplier and supplier.bank_holder else None
    if account is None:
        # The invoice's own payment instructions (ibt-084), when the town holds none.
        pay = next((p for p in inv.document.payment if p.account), None)
        account = pay.account if pay else None
        holder = holder or (pay.account_name if pay else None)
    parts = (account or ":::").split(":")
    bank, branch, kind, number = [*parts, "", "", "", ""][:4]
    return bank, branch, kind, number, holder or ""


def render_csv(export_id: str, rows: list[tuple[Invoice, Supplier | None]], encoding: str) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for inv, supplier in rows:
        bank, branch, kind, number, holder = _account(supplier, inv)
        writer.writerow(
            (
                export_id,
                inv.id,
                inv.unit,
                supplier.supplier_key if supplier else "",
                _safe(supplier.name if supplier else inv.document.seller.name),
                _safe(supplier.t_number if supplier else inv.document.seller.tax_id),
                _safe(inv.number),
                inv.issue_date.isoformat(),
                inv.transaction_date.isoformat(),
                inv.document.due_date.isoformat() if inv.document.due_date else "",
                inv.currency,
                format(inv.amount, "f"),
                format(inv.tax, "f"),
                bank,
                branch,
                kind,
                number,
                _safe(holder),
                inv.sha256.hex(),
            )
        )
    text = out.getvalue()
    if encoding == "cp932":
        return text.encode("cp932", errors="shared_gov_geta")
    return text.encode("utf-8")


async def export(uow: TenantUnitOfWork, access: Access, request: ExportIn) -> Export:
    access.require("invoice_export", record_type=INVOICE)
    view = access.field_view(False, record_type=SUPPLIER)
    for needed in ("Supplier.name", "Supplier.bank_account", "Supplier.bank_holder"):
        if needed not in view.allowed:
            raise errors.forbidden(
                view.reasons.get(needed, m.FIELD_WITHHELD(field=FieldName(needed)))
            )
    if request.reexport is not None:
        export_id = parse_id(request.reexport, "export")
        if not await repo.export_exists(uow, export_id):
            raise errors.not_found(m.NO_EXPORT)
    else:
        export_id = str(uuid.uuid4())
    invoices = await repo.exportable(uow, request.reexport and export_id)
    suppliers: dict[str, Supplier | None] = {}
    for inv in invoices:
        if inv.supplier_id not in suppliers:
            suppliers[inv.supplier_id] = await repo.supplier(uow, inv.supplier_id)
    body = render_csv(
        export_id, [(i, suppliers[i.supplier_id]) for i in invoices], request.encoding
    )
    digest = hashlib.sha256(body).digest()
    await repo.record_export(
        uow,
        export_id=export_id,
        actor=f"staff:{access.principal.subject}",
        encoding=request.encoding,
        reexport=request.reexport is not None,
        invoices=invoices,
        digest=digest,
    )
    touched(access, [i.id for i in invoices], view)
    if request.reexport is not None:
        access.audit.reason = f"re-export of {export_id}"
    return Export(
        export_id, body, digest.hex(), len(invoices), request.encoding, request.reexport is not None
    )
