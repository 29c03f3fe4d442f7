"""Request and response bodies of the e-invoice API (msgspec).

Free text is ``validation.Text`` (no control, format or bidi characters);
request bodies forbid unknown fields. The invoice itself is posted as UBL
XML or as the JSON form (``document.Document``), read by the check pipeline,
not by these.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from shared_gov.validation import Text

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200), Text]
UnitCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{0,31}\Z")]
SupplierKey = Annotated[str, msgspec.Meta(pattern=r"^(?:[0-9]{13}|T[0-9]{13}|X-[A-Z0-9]{6,32})\Z")]
CorporateNumber = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{13}\Z")]
TNumber = Annotated[str, msgspec.Meta(pattern=r"^T[0-9]{13}\Z")]
BankAccount = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}:[0-9]{3}:[1-9]:[0-9]{7}\Z")]
"""``bank:branch:type:number`` (金融機関コード, 支店コード, 預金種目, 口座番号): ibt-084."""
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500), Text]


class SupplierIn(msgspec.Struct, forbid_unknown_fields=True):
    """業者登録: one supplier the town buys from."""

    supplier_key: SupplierKey
    kind: Literal["corporation", "sole_proprietor"]
    name: Name
    corporate_number: CorporateNumber | None = None
    t_number: TNumber | None = None
    bank_account: BankAccount | None = None
    bank_holder: Name | None = None


class SupplierOut(msgspec.Struct):
    id: str
    supplier_key: str
    kind: str
    corporate_number: str | None
    t_number: str | None
    active: bool
    name: str | None = None
    bank_account: str | None = None
    bank_holder: str | None = None
    withheld: list[str] = msgspec.field(default_factory=list)


class UnitIn(msgspec.Struct, forbid_unknown_fields=True):
    """A 会計 and what it needs."""

    name: Name
    needs_qualified: bool
    """It files consumption tax (公営企業会計): only qualified invoices (sg-jp-05)."""
    retention_years: Annotated[int, msgspec.Meta(ge=1, le=30)] = 7


class UnitOut(msgspec.Struct):
    code: str
    name: str
    needs_qualified: bool
    retention_years: int


class SettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    t_number_severity: Literal["warning", "fatal"]
    default_unit: UnitCode | None = None
    approval_levels: (
        Annotated[
            list[Annotated[int, msgspec.Meta(gt=0)] | None],
            msgspec.Meta(min_length=1, max_length=9),
        ]
        | None
    ) = None
    """Amount (yen) up to which each level approves, level 1 first; the last may be
    null (no limit). Omitted: unchanged."""


class SettingsOut(msgspec.Struct):
    t_number_severity: str
    default_unit: str | None
    approval_levels: list[int | None]


class Submitted(msgspec.Struct):
    """What a supplier gets back for an accepted invoice."""

    submission_id: str
    invoice_id: str
    state: str
    report: dict[str, Any]


class SubmissionOut(msgspec.Struct):
    id: str
    received_at: datetime
    form: str
    sha256: str
    accepted: bool
    report: dict[str, Any]
    invoice_id: str | None


class StatusOut(msgspec.Struct):
    """An invoice as its supplier sees it: where it stands, nothing of the town's."""

    id: str
    number: str
    issue_date: date
    amount: str
    currency: str
    state: str
    received_at: datetime
    reason: str | None = None
    """Why it was returned (差し戻し), when it was."""


class StatusList(msgspec.Struct):
    invoices: list[StatusOut]


class Transition(msgspec.Struct, forbid_unknown_fields=True):
    """A step of the workflow; ``reason`` is required to return (差し戻し)."""

    reason: Reason | None = None


class InvoiceOut(msgspec.Struct):
    """An invoice as staff see it."""

    id: str
    supplier_id: str
    unit: str
    number: str
    issue_date: date
    transaction_date: date
    currency: str
    amount: str
    tax: str
    specification: str
    type_code: str
    state: str
    version: int
    sha256: str
    received_at: datetime
    retain_until: date
    corrects: str | None = None
    document: dict[str, Any] | None = None
    """The parsed model, when the purpose covers ``Invoice.document``."""
    report: dict[str, Any] | None = None
    history: list[dict[str, Any]] = msgspec.field(default_factory=list)
    withheld: list[str] = msgspec.field(default_factory=list)


class SearchIn(msgspec.Struct, forbid_unknown_fields=True):
    """電子帳簿保存法's search: transaction date, amount range, counterparty — alone or combined."""

    date_from: date | None = None
    date_to: date | None = None
    amount_min: Annotated[int, msgspec.Meta(ge=-(10**15), le=10**15)] | None = None
    amount_max: Annotated[int, msgspec.Meta(ge=-(10**15), le=10**15)] | None = None
    supplier_id: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f-]{36}\Z")] | None = None
    supplier_key: SupplierKey | None = None
    state: (
        Literal[
            "received", "checked", "inspected", "approved", "payment_ordered", "paid", "returned"
        ]
        | None
    ) = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=500)] = 100
    after: (
        Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2},[0-9a-f-]{36}\Z")] | None
    ) = None
    """The ``next`` of the previous page."""


class ListedOut(msgspec.Struct):
    """An invoice as a search lists it (plain values: nothing personal)."""

    id: str
    supplier_id: str
    supplier_key: str
    unit: str
    number: str
    issue_date: date
    transaction_date: date
    currency: str
    amount: str
    tax: str
    state: str
    version: int
    sha256: str
    received_at: datetime
    retain_until: date
    corrects: str | None = None


class InvoiceList(msgspec.Struct):
    invoices: list[ListedOut]
    next: str | None = None
    """Pass as ``after`` for the next page; null on the last."""


class ExportIn(msgspec.Struct, forbid_unknown_fields=True):
    encoding: Literal["utf-8", "cp932"] = "utf-8"
    reexport: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f-]{36}\Z")] | None = None
    """An earlier export's id: export exactly its invoices again (explicit, audited)."""
