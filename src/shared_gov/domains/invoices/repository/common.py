"""What every part of the repository shares: the keys, the seal's key, the invoice
row, and appending to the sealed ledger."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

import asyncpg

from shared_gov.crypto.keyring import TownKeys, keys_of
from shared_gov.db import TenantUnitOfWork

from .. import document as doc_model
from .. import sealing
from ..models import (
    Invoice,
    LedgerEntry,
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


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def new_id() -> str:
    return str(uuid.uuid4())
