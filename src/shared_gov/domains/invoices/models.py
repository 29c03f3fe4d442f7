"""The domain's records as the service and repository pass them around (plaintext).

Amounts are :class:`~decimal.Decimal`; an invoice's ``document`` is the model
both intake forms give (``document.Document``) and ``original`` the bytes the
supplier sent, unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from shared_gov.checkdigits import is_valid_corporate_number, is_valid_invoice_registration_number

from .document import Document

State = Literal[
    "received", "checked", "inspected", "approved", "payment_ordered", "paid", "returned"
]
"""受付 → 確認 (会計課) → 検収 (発注課) → 決裁 → 支出命令 → 支払; 差し戻し."""

STATES: tuple[State, ...] = (
    "received",
    "checked",
    "inspected",
    "approved",
    "payment_ordered",
    "paid",
    "returned",
)

SUPPLIER_KEY = re.compile(r"^(?:[0-9]{13}|T[0-9]{13}|X-[A-Z0-9]{6,32})\Z")
"""A supplier's platform-wide identity, as its token names it: its 法人番号, its
registration number (T + 13 digits, a sole proprietor's), or an id the platform
assigned (``X-…``, a sole proprietor without either)."""


def valid_supplier_key(key: str) -> bool:
    if not SUPPLIER_KEY.match(key):
        return False
    if key.startswith("T"):
        return is_valid_invoice_registration_number(key)
    if key[0].isdigit():
        return is_valid_corporate_number(key)
    return True


@dataclass(slots=True)
class AccountingUnit:
    """A 会計: whether it files consumption tax (and so needs qualified invoices)."""

    code: str
    name: str
    needs_qualified: bool
    retention_years: int


@dataclass(slots=True)
class Supplier:
    """A supplier as one town registered it (業者登録)."""

    id: str
    supplier_key: str
    kind: Literal["corporation", "sole_proprietor"]
    name: str
    """Personal for a sole proprietor: encrypted at rest either way."""
    corporate_number: str | None = None
    t_number: str | None = None
    bank_account: str | None = None
    """``bank:branch:type:number`` (encrypted at rest)."""
    bank_holder: str | None = None
    active: bool = True
    version: int = 1


@dataclass(slots=True)
class Submission:
    """One submission, accepted or not, and its report (what the supplier fetches)."""

    id: str
    supplier_id: str
    received_at: datetime
    form: str
    sha256: bytes
    accepted: bool
    report: dict[str, Any]
    invoice_id: str | None = None


@dataclass(slots=True)
class Invoice:
    """An accepted invoice."""

    id: str
    supplier_id: str
    unit: str
    number: str
    issue_date: date
    transaction_date: date
    """取引年月日 as searched: the delivery (invoice period end) or the issue date."""
    currency: str
    amount: Decimal
    """Amount due (ibt-115) in the document currency."""
    tax: Decimal
    specification: str
    type_code: str
    form: str
    original: bytes
    sha256: bytes
    document: Document
    report: dict[str, Any]
    state: State
    received_at: datetime
    retain_until: date
    version: int = 1
    corrects: str | None = None
    inspected_by: str | None = None
    exported_at: datetime | None = None
    export_id: str | None = None


@dataclass(slots=True)
class InvoiceStatus:
    """Where an invoice stands: what its supplier may see (plain columns only)."""

    id: str
    number: str
    issue_date: date
    amount: Decimal
    currency: str
    state: str
    received_at: datetime


@dataclass(slots=True)
class LedgerEntry:
    """One link of the sealed ledger (sealing.py)."""

    seq: int
    invoice_id: str
    kind: str
    state: str
    digest: bytes
    actor: str
    at: datetime
    reason: str | None
    mac: bytes = field(repr=False)
