"""Every SQL statement on the domain's tables: the only module that reads or writes them.

Personal columns are envelopes bound to (town, table, column, row id, key
version): a supplier's name and bank details, an invoice's original and
parsed model. Statements run in a unit of work bound to one town; table
names are unqualified on purpose. Writing an invoice or changing its state
appends to the sealed ledger in the same transaction (:func:`append_ledger`,
``sealing``), under a transaction-scoped advisory lock on the town's chain.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import msgspec

from shared_gov.crypto.envelope import DecryptError
from shared_gov.crypto.keyring import TownKeys, keys_of
from shared_gov.db import TenantUnitOfWork

from . import document as doc_model
from . import sealing
from .models import (
    AccountingUnit,
    Invoice,
    InvoiceStatus,
    LedgerEntry,
    Submission,
    Supplier,
)

SUPPLIERS = "suppliers"
INVOICES = "invoices"
_LEDGER_LOCK = (
    "SELECT pg_advisory_xact_lock(hashtextextended('invoice_ledger:' || current_schema(), 0))"
)


def _keys(uow: TenantUnitOfWork) -> TownKeys:
    return keys_of(uow)


def seal_key(uow: TenantUnitOfWork) -> bytes:
    """The town's audit MAC key, which seals the invoice ledger too (own prefix)."""
    key = _keys(uow).audit_mac
    if key is None:  # pragma: no cover - every onboarded town has one (catalog c0015)
        raise LookupError("the town has no audit key to seal invoices with")
    return key


def now() -> datetime:
    return datetime.now(UTC)


# --- settings, accounting units, approval levels ----------------------------------------


@dataclass(slots=True)
class TownSettings:
    t_number_severity: str
    default_unit: str | None
    version: int


async def settings(uow: TenantUnitOfWork) -> TownSettings:
    row = await uow.fetchrow(
        "SELECT t_number_severity, default_unit, version FROM invoice_settings"
    )
    if row is None:  # pragma: no cover - the migration inserts the row
        return TownSettings("warning", None, 0)
    return TownSettings(row["t_number_severity"], row["default_unit"], row["version"])


async def update_settings(
    uow: TenantUnitOfWork, t_number_severity: str, default_unit: str | None, version: int
) -> TownSettings | None:
    row = await uow.fetchrow(
        "UPDATE invoice_settings SET t_number_severity = $1, default_unit = $2, "
        "version = version + 1 WHERE version = $3 "
        "RETURNING t_number_severity, default_unit, version",
        t_number_severity,
        default_unit,
        version,
    )
    return None if row is None else TownSettings(*row)


def _unit(row: asyncpg.Record) -> AccountingUnit:
    return AccountingUnit(row["code"], row["name"], row["needs_qualified"], row["retention_years"])


async def put_unit(uow: TenantUnitOfWork, unit: AccountingUnit) -> AccountingUnit:
    row = await uow.fetchrow(
        "INSERT INTO accounting_units (code, name, needs_qualified, retention_years) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO UPDATE SET name = excluded.name, "
        "needs_qualified = excluded.needs_qualified, retention_years = excluded.retention_years "
        "RETURNING code, name, needs_qualified, retention_years",
        unit.code,
        unit.name,
        unit.needs_qualified,
        unit.retention_years,
    )
    assert row is not None  # noqa: S101 - RETURNING always yields the row
    return _unit(row)


async def unit(uow: TenantUnitOfWork, code: str) -> AccountingUnit | None:
    row = await uow.fetchrow(
        "SELECT code, name, needs_qualified, retention_years FROM accounting_units WHERE code = $1",
        code,
    )
    return None if row is None else _unit(row)


async def units(uow: TenantUnitOfWork) -> list[AccountingUnit]:
    rows = await uow.fetch(
        "SELECT code, name, needs_qualified, retention_years FROM accounting_units ORDER BY code"
    )
    return [_unit(r) for r in rows]


async def approval_levels(uow: TenantUnitOfWork) -> list[tuple[int, int | None]]:
    rows = await uow.fetch("SELECT level, up_to FROM approval_levels ORDER BY level")
    return [(r["level"], r["up_to"]) for r in rows]


async def set_approval_levels(
    uow: TenantUnitOfWork, levels: Sequence[tuple[int, int | None]]
) -> None:
    await uow.execute("DELETE FROM approval_levels")
    await uow.executemany(
        "INSERT INTO approval_levels (level, up_to) VALUES ($1, $2)", list(levels)
    )


# --- suppliers ------------------------------------------------------------------------

_SUPPLIER_COLUMNS = (
    "id, supplier_key, kind, corporate_number, t_number, name, bank_account, bank_holder, "
    "active, version"
)

_SELECT_SUPPLIER = f"SELECT {_SUPPLIER_COLUMNS} FROM suppliers"  # noqa: S608 - fixed columns


def _supplier(keys: TownKeys, row: asyncpg.Record) -> Supplier:
    rid = str(row["id"])
    return Supplier(
        id=rid,
        supplier_key=row["supplier_key"],
        kind=row["kind"],
        name=keys.decrypt(SUPPLIERS, "name", rid, row["name"]) or "",
        corporate_number=row["corporate_number"],
        t_number=row["t_number"],
        bank_account=keys.decrypt(SUPPLIERS, "bank_account", rid, row["bank_account"]),
        bank_holder=keys.decrypt(SUPPLIERS, "bank_holder", rid, row["bank_holder"]),
        active=row["active"],
        version=row["version"],
    )


async def insert_supplier(uow: TenantUnitOfWork, s: Supplier) -> bool:
    """Register a supplier; False when its key is already registered in this town."""
    keys = _keys(uow)
    status = await uow.execute(
        f"INSERT INTO suppliers ({_SUPPLIER_COLUMNS}) "  # noqa: S608 - fixed columns
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1) ON CONFLICT (supplier_key) DO NOTHING",
        s.id,
        s.supplier_key,
        s.kind,
        s.corporate_number,
        s.t_number,
        keys.encrypt(SUPPLIERS, "name", s.id, s.name),
        keys.encrypt(SUPPLIERS, "bank_account", s.id, s.bank_account),
        keys.encrypt(SUPPLIERS, "bank_holder", s.id, s.bank_holder),
        s.active,
    )
    return status.endswith(" 1")


async def update_supplier(uow: TenantUnitOfWork, s: Supplier, version: int) -> Supplier | None:
    """Change a supplier's registration if it is still at ``version`` (If-Match)."""
    keys = _keys(uow)
    row = await uow.fetchrow(
        "UPDATE suppliers SET kind = $2, corporate_number = $3, t_number = $4, name = $5, "  # noqa: S608
        "bank_account = $6, bank_holder = $7, active = $8, version = version + 1 "
        f"WHERE id = $1 AND version = $9 RETURNING {_SUPPLIER_COLUMNS}",
        s.id,
        s.kind,
        s.corporate_number,
        s.t_number,
        keys.encrypt(SUPPLIERS, "name", s.id, s.name),
        keys.encrypt(SUPPLIERS, "bank_account", s.id, s.bank_account),
        keys.encrypt(SUPPLIERS, "bank_holder", s.id, s.bank_holder),
        s.active,
        version,
    )
    return None if row is None else _supplier(keys, row)


async def supplier(uow: TenantUnitOfWork, supplier_id: str) -> Supplier | None:
    row = await uow.fetchrow(_SELECT_SUPPLIER + " WHERE id = $1::uuid", supplier_id)
    return None if row is None else _supplier(_keys(uow), row)


async def supplier_by_key(uow: TenantUnitOfWork, key: str) -> Supplier | None:
    row = await uow.fetchrow(_SELECT_SUPPLIER + " WHERE supplier_key = $1", key)
    return None if row is None else _supplier(_keys(uow), row)


async def suppliers(uow: TenantUnitOfWork) -> list[Supplier]:
    keys = _keys(uow)
    rows = await uow.fetch(_SELECT_SUPPLIER + " ORDER BY supplier_key")
    return [_supplier(keys, r) for r in rows]


# --- submissions ------------------------------------------------------------------------


async def insert_submission(uow: TenantUnitOfWork, s: Submission) -> None:
    await uow.execute(
        "INSERT INTO invoice_submissions (id, supplier_id, received_at, form, sha256, accepted, "
        "report, invoice_id) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)",
        s.id,
        s.supplier_id,
        s.received_at,
        s.form,
        s.sha256.hex(),
        s.accepted,
        json.dumps(s.report, ensure_ascii=False),
        s.invoice_id,
    )


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

_INVOICE_COLUMNS = (
    "id, supplier_id, unit, number, issue_date, transaction_date, currency, amount, tax, "
    "specification, type_code, corrects, form, original, sha256, document, report, state, "
    "version, received_at, retain_until, inspected_by, exported_at, export_id"
)

_SELECT_INVOICE = f"SELECT {_INVOICE_COLUMNS} FROM invoices"  # noqa: S608 - fixed columns


def _invoice(keys: TownKeys, row: asyncpg.Record) -> Invoice:
    rid = str(row["id"])
    original = keys.decrypt(INVOICES, "original", rid, row["original"]) or ""
    document_json = keys.decrypt(INVOICES, "document", rid, row["document"]) or ""
    return Invoice(
        id=rid,
        supplier_id=str(row["supplier_id"]),
        unit=row["unit"],
        number=row["number"],
        issue_date=row["issue_date"],
        transaction_date=row["transaction_date"],
        currency=row["currency"],
        amount=row["amount"],
        tax=row["tax"],
        specification=row["specification"],
        type_code=row["type_code"],
        corrects=str(row["corrects"]) if row["corrects"] else None,
        form=row["form"],
        original=original.encode("utf-8"),
        sha256=bytes.fromhex(row["sha256"]),
        document=doc_model.decode(document_json),
        report=json.loads(row["report"]),
        state=row["state"],
        version=row["version"],
        received_at=row["received_at"],
        retain_until=row["retain_until"],
        inspected_by=row["inspected_by"],
        exported_at=row["exported_at"],
        export_id=str(row["export_id"]) if row["export_id"] else None,
    )


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


def _entry(row: asyncpg.Record) -> LedgerEntry:
    return LedgerEntry(
        seq=row["seq"],
        invoice_id=str(row["invoice_id"]),
        kind=row["kind"],
        state=row["state"],
        digest=bytes.fromhex(row["digest"]),
        actor=row["actor"],
        at=row["at"],
        reason=row["reason"],
        mac=bytes.fromhex(row["mac"]),
    )


async def append_ledger(
    uow: TenantUnitOfWork,
    *,
    invoice_id: str,
    kind: str,
    state: str,
    digest: bytes,
    actor: str,
    reason: str | None,
) -> LedgerEntry:
    """Append one entry to the town's chain (serialised by a transaction lock)."""
    await uow.execute(_LEDGER_LOCK)
    head = await uow.fetchrow("SELECT seq, mac FROM invoice_ledger ORDER BY seq DESC LIMIT 1")
    seq = 1 if head is None else head["seq"] + 1
    prev = b"" if head is None else bytes.fromhex(head["mac"])
    at = now()
    mac = sealing.entry_mac(
        seal_key(uow),
        seq=seq,
        invoice_id=invoice_id,
        kind=kind,
        state=state,
        digest=digest,
        actor=actor,
        at=at,
        reason=reason,
        prev_mac=prev,
    )
    await uow.execute(
        "INSERT INTO invoice_ledger (seq, invoice_id, kind, state, digest, actor, at, reason, "
        "mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        seq,
        invoice_id,
        kind,
        state,
        digest.hex(),
        actor,
        at,
        reason,
        mac.hex(),
    )
    return LedgerEntry(seq, invoice_id, kind, state, digest, actor, at, reason, mac)


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


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def new_id() -> str:
    return str(uuid.uuid4())


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
