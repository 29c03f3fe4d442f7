"""Submissions, invoices, their state changes and history; verification; the
offboarding export."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import msgspec

from shared_gov.crypto.envelope import DecryptError
from shared_gov.db import TenantUnitOfWork

from .. import document as doc_model
from .. import sealing
from ..models import (
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    Submission,
)
from .common import (
    _INVOICE_COLUMNS,
    _SELECT_INVOICE,
    INVOICES,
    _entry,
    _invoice,
    _keys,
    append_ledger,
    seal_key,
)
from .suppliers import suppliers
from .towns import units

# --- submissions ------------------------------------------------------------------------


async def submission(uow: TenantUnitOfWork, submission_id: str) -> Submission | None:
    row = await uow.fetchrow(
        "SELECT id, supplier_id, received_at, form, sha256, accepted, report, invoice_id "
        "FROM invoice_submissions WHERE id = $1::uuid",
        submission_id,
    )
    if row is None:
        return None
    return Submission(
        id=str(row["id"]),
        supplier_id=str(row["supplier_id"]),
        received_at=row["received_at"],
        form=row["form"],
        sha256=bytes.fromhex(row["sha256"]),
        accepted=row["accepted"],
        report=json.loads(row["report"]),
        invoice_id=str(row["invoice_id"]) if row["invoice_id"] else None,
    )


# --- invoices ------------------------------------------------------------------------------


async def insert_invoice(uow: TenantUnitOfWork, inv: Invoice, actor: str) -> LedgerEntry:
    """Store an accepted invoice and seal its receipt (one transaction: the caller's)."""
    keys = _keys(uow)
    document_json = doc_model.encode(inv.document)
    await uow.execute(
        f"INSERT INTO invoices ({_INVOICE_COLUMNS}) VALUES"  # noqa: S608 - fixed columns
        " ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "$10, $11, $12, $13, $14, $15, $16, $17::jsonb, $18, $19, $20, $21, NULL, NULL, NULL)",
        inv.id,
        inv.supplier_id,
        inv.unit,
        inv.number,
        inv.issue_date,
        inv.transaction_date,
        inv.currency,
        inv.amount,
        inv.tax,
        inv.specification,
        inv.type_code,
        inv.corrects,
        inv.form,
        keys.encrypt(INVOICES, "original", inv.id, inv.original.decode("utf-8")),
        inv.sha256.hex(),
        keys.encrypt(INVOICES, "document", inv.id, document_json.decode("utf-8")),
        json.dumps(inv.report, ensure_ascii=False),
        inv.state,
        inv.version,
        inv.received_at,
        inv.retain_until,
    )
    return await append_ledger(
        uow,
        invoice_id=inv.id,
        kind="received",
        state=inv.state,
        digest=sealing.invoice_digest(inv, document_json),
        actor=actor,
        reason=None,
    )


async def invoice(uow: TenantUnitOfWork, invoice_id: str) -> Invoice | None:
    row = await uow.fetchrow(_SELECT_INVOICE + " WHERE id = $1::uuid", invoice_id)
    return None if row is None else _invoice(_keys(uow), row)


async def duplicate_of(
    uow: TenantUnitOfWork, supplier_id: str, number: str, issue_date: date
) -> str | None:
    found = await uow.fetchval(
        "SELECT id FROM invoices WHERE supplier_id = $1 AND number = $2 AND issue_date = $3",
        supplier_id,
        number,
        issue_date,
    )
    return None if found is None else str(found)


async def by_number(uow: TenantUnitOfWork, supplier_id: str, number: str) -> list[Invoice]:
    """A supplier's invoices with this number (what a correction refers to)."""
    keys = _keys(uow)
    rows = await uow.fetch(
        _SELECT_INVOICE + " WHERE supplier_id = $1 AND number = $2 ORDER BY issue_date",
        supplier_id,
        number,
    )
    return [_invoice(keys, r) for r in rows]


async def change_state(
    uow: TenantUnitOfWork,
    invoice_id: str,
    *,
    version: int,
    kind: str,
    state: str,
    actor: str,
    reason: str | None = None,
    inspected_by: str | None = None,
) -> int | None:
    """Move an invoice to ``state`` if it is at ``version``; seal the change. New version."""
    row = await uow.fetchrow(
        "UPDATE invoices SET state = $2, version = version + 1, "
        "inspected_by = coalesce($4, inspected_by) WHERE id = $1::uuid AND version = $3 "
        "RETURNING version",
        invoice_id,
        state,
        version,
        inspected_by,
    )
    if row is None:
        return None
    await append_ledger(
        uow,
        invoice_id=invoice_id,
        kind=kind,
        state=state,
        digest=sealing.change_digest(kind, reason or ""),
        actor=actor,
        reason=reason,
    )
    new_version: int = row["version"]
    return new_version


async def history(uow: TenantUnitOfWork, invoice_id: str) -> list[LedgerEntry]:
    rows = await uow.fetch(
        "SELECT seq, invoice_id, kind, state, digest, actor, at, reason, mac FROM invoice_ledger "
        "WHERE invoice_id = $1::uuid ORDER BY seq",
        invoice_id,
    )
    return [_entry(r) for r in rows]


# --- the ledger ---------------------------------------------------------------------------


async def verify(uow: TenantUnitOfWork) -> sealing.Verification:
    """Check the whole town: every ledger entry and every stored invoice (``sealing.verify``)."""
    keys = _keys(uow)
    entries = [
        _entry(r)
        for r in await uow.fetch(
            "SELECT seq, invoice_id, kind, state, digest, actor, at, reason, mac "
            "FROM invoice_ledger ORDER BY seq"
        )
    ]
    stored: list[tuple[Invoice | None, bytes | None, str]] = []
    for row in await uow.fetch(_SELECT_INVOICE + " ORDER BY id"):
        rid = str(row["id"])
        try:
            inv = _invoice(keys, row)
        except (DecryptError, ValueError, msgspec.DecodeError):
            stored.append((None, None, rid))
            continue
        stored.append((inv, doc_model.encode(inv.document), rid))
    return sealing.verify(seal_key(uow), entries, stored)


async def export_all(uow: TenantUnitOfWork) -> dict[str, list[dict[str, Any]]]:
    """Offboarding: the town's suppliers, units and invoices, decrypted (originals as text)."""
    keys = _keys(uow)
    invoices = [
        _invoice(keys, r) for r in await uow.fetch(_SELECT_INVOICE + " ORDER BY received_at")
    ]
    return {
        "accounting_units": [
            {
                "code": u.code,
                "name": u.name,
                "needs_qualified": u.needs_qualified,
                "retention_years": u.retention_years,
            }
            for u in await units(uow)
        ],
        "suppliers": [
            {
                "id": s.id,
                "supplier_key": s.supplier_key,
                "kind": s.kind,
                "name": s.name,
                "corporate_number": s.corporate_number,
                "t_number": s.t_number,
                "bank_account": s.bank_account,
                "bank_holder": s.bank_holder,
            }
            for s in await suppliers(uow)
        ],
        "invoices": [
            {
                "id": i.id,
                "supplier_id": i.supplier_id,
                "unit": i.unit,
                "number": i.number,
                "issue_date": i.issue_date.isoformat(),
                "amount": str(i.amount),
                "state": i.state,
                "sha256": i.sha256.hex(),
                "form": i.form,
                "original": i.original.decode("utf-8"),
            }
            for i in invoices
        ],
    }


async def statuses_of(uow: TenantUnitOfWork, supplier_id: str) -> list[InvoiceStatus]:
    """A supplier's invoices in this town and where each stands, newest first (no decryption)."""
    rows = await uow.fetch(
        "SELECT id, number, issue_date, amount, currency, state, received_at FROM invoices "
        "WHERE supplier_id = $1 ORDER BY received_at DESC, id LIMIT 1000",
        supplier_id,
    )
    return [InvoiceStatus(str(r["id"]), *list(r.values())[1:]) for r in rows]
