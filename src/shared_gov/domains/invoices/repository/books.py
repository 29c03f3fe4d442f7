"""Search (電子帳簿保存法), the original, and the payment export's rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shared_gov.db import TenantUnitOfWork

from .. import sealing
from ..models import (
    Invoice,
)
from .common import (
    _SELECT_INVOICE,
    INVOICES,
    _invoice,
    _keys,
    append_ledger,
    now,
)

# --- search, download, export -----------------------------------------------------------

_LIST_COLUMNS = (
    "i.id, i.supplier_id, s.supplier_key, i.unit, i.number, i.issue_date, i.transaction_date, "
    "i.currency, i.amount, i.tax, i.specification, i.type_code, i.state, i.version, i.sha256, "
    "i.received_at, i.retain_until, i.corrects"
)


@dataclass(slots=True)
class Listed:
    """An invoice as a search lists it: plain columns only (nothing to decrypt)."""

    id: str
    supplier_id: str
    supplier_key: str
    unit: str
    number: str
    issue_date: date
    transaction_date: date
    currency: str
    amount: Decimal
    tax: Decimal
    specification: str
    type_code: str
    state: str
    version: int
    sha256: str
    received_at: datetime
    retain_until: date
    corrects: str | None


async def search(
    uow: TenantUnitOfWork,
    *,
    today: date,
    date_from: date | None,
    date_to: date | None,
    amount_min: int | None,
    amount_max: int | None,
    supplier_id: str | None,
    supplier_key: str | None,
    state: str | None,
    after: tuple[date, str] | None,
    limit: int,
) -> list[Listed]:
    """電子帳簿保存法's search, within each invoice's retention period; ordered by
    (transaction date, id), ``after`` the last row of the previous page."""
    where = ["i.retain_until >= $1"]
    args: list[Any] = [today]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if date_from is not None:
        where.append(f"i.transaction_date >= {arg(date_from)}")
    if date_to is not None:
        where.append(f"i.transaction_date <= {arg(date_to)}")
    if amount_min is not None:
        where.append(f"i.amount >= {arg(amount_min)}")
    if amount_max is not None:
        where.append(f"i.amount <= {arg(amount_max)}")
    if supplier_id is not None:
        where.append(f"i.supplier_id = {arg(supplier_id)}::uuid")
    if supplier_key is not None:
        where.append(f"s.supplier_key = {arg(supplier_key)}")
    if state is not None:
        where.append(f"i.state = {arg(state)}")
    if after is not None:
        where.append(f"(i.transaction_date, i.id) > ({arg(after[0])}, {arg(after[1])}::uuid)")
    rows = await uow.fetch(
        f"SELECT {_LIST_COLUMNS} FROM invoices i JOIN suppliers s ON s.id = i.supplier_id "  # noqa: S608 - fixed columns, numbered parameters
        f"WHERE {' AND '.join(where)} ORDER BY i.transaction_date, i.id LIMIT {int(limit)}",
        *args,
    )
    return [
        Listed(
            str(r["id"]),
            str(r["supplier_id"]),
            r["supplier_key"],
            r["unit"],
            r["number"],
            r["issue_date"],
            r["transaction_date"],
            r["currency"],
            r["amount"],
            r["tax"],
            r["specification"],
            r["type_code"],
            r["state"],
            r["version"],
            r["sha256"],
            r["received_at"],
            r["retain_until"],
            str(r["corrects"]) if r["corrects"] else None,
        )
        for r in rows
    ]


async def original(uow: TenantUnitOfWork, invoice_id: str) -> tuple[bytes, bytes, str] | None:
    """The original bytes, their recorded SHA-256 and the form (xml/json)."""
    row = await uow.fetchrow(
        "SELECT id, original, sha256, form FROM invoices WHERE id = $1::uuid", invoice_id
    )
    if row is None:
        return None
    text = _keys(uow).decrypt(INVOICES, "original", str(row["id"]), row["original"]) or ""
    return text.encode("utf-8"), bytes.fromhex(row["sha256"]), row["form"]


async def exportable(uow: TenantUnitOfWork, export_id: str | None) -> list[Invoice]:
    """Invoices not yet exported whose payment is due (approved or ordered), or (re-export)
    exactly those of an earlier export; locked against a concurrent export."""
    keys = _keys(uow)
    if export_id is None:
        rows = await uow.fetch(
            _SELECT_INVOICE + " WHERE export_id IS NULL AND state IN ('approved', "
            "'payment_ordered') ORDER BY received_at, id FOR UPDATE"
        )
    else:
        rows = await uow.fetch(
            _SELECT_INVOICE + " WHERE export_id = $1::uuid ORDER BY received_at, id FOR UPDATE",
            export_id,
        )
    return [_invoice(keys, r) for r in rows]


async def export_exists(uow: TenantUnitOfWork, export_id: str) -> bool:
    found = await uow.fetchval(
        "SELECT true FROM invoice_exports WHERE id = $1::uuid AND NOT reexport", export_id
    )
    return bool(found)


async def record_export(
    uow: TenantUnitOfWork,
    *,
    export_id: str,
    actor: str,
    encoding: str,
    reexport: bool,
    invoices: list[Invoice],
    digest: bytes,
) -> None:
    """Store the export, mark its invoices exported (once) and seal that in each ledger."""
    at = now()
    await uow.execute(
        "INSERT INTO invoice_exports (id, created_at, actor, encoding, reexport, invoices, sha256) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        str(uuid.uuid4()) if reexport else export_id,
        at,
        actor,
        encoding,
        reexport,
        len(invoices),
        digest.hex(),
    )
    if not reexport and invoices:
        await uow.execute(
            "UPDATE invoices SET export_id = $1::uuid, exported_at = $2 WHERE id = ANY($3::uuid[])",
            export_id,
            at,
            [i.id for i in invoices],
        )
    for inv in invoices:
        kind = "reexport" if reexport else "export"
        await append_ledger(
            uow,
            invoice_id=inv.id,
            kind=kind,
            state=inv.state,
            digest=sealing.change_digest(kind, export_id),
            actor=actor,
            reason=None,
        )
