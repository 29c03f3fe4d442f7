"""The e-invoice domain's registration: what the pillars know of it.

Two record types. ``Invoice``: its original and its parsed model are
personal (they carry the seller's name — a sole proprietor's is personal —
and bank details) and encrypted; number, dates, amounts and state are not.
``Supplier`` (業者登録): name and bank details encrypted. Each record action
is named for this domain (``invoice_…``, ``supplier_…``): an action belongs
to one record type across all domains.

Hooks import the rest of the domain only when called, so importing this
module imports nothing else of it (the registry imports every installed spec).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared_gov.domains.registry import (
    Console,
    ConsoleLink,
    ConsoleStaff,
    DemoData,
    DomainSpec,
    EncryptedTable,
    Exporter,
    Field,
    Label,
    RecordType,
)
from shared_gov.messages.core import Catalogue

HERE = Path(__file__).resolve().parent
INVOICES = "invoices"
SUPPLIERS = "suppliers"

INVOICE = RecordType(
    name="Invoice",
    label=Label("請求書", "invoice"),
    actions=(
        "invoice_submit",  # a supplier sends an invoice, reads its own invoices and reports
        "invoice_check",  # 会計課: content check, or 差し戻し at check
        "invoice_inspect",  # the ordering department: 検収, or 差し戻し at 検収
        "invoice_approve",  # 決裁 (the level the amount needs)
        "invoice_order",  # 支出命令
        "invoice_pay",  # 支払 recorded
        "invoice_search",  # search, read, download the original (電子帳簿保存法)
        "invoice_export",  # payment export to financial accounting
        "invoice_configure",  # accounting units, thresholds, the town's rule choices
    ),
    fields=(
        Field(
            "original",
            Label("請求書原本", "original invoice"),
            encrypted=(INVOICES, "original"),
        ),
        Field(
            "document",
            Label("請求内容（売り手名を含む）", "invoice content (seller)"),
            encrypted=(INVOICES, "document"),
        ),
        # The payee's bank account the invoice names (its PaymentMeans): the
        # supplier's bank details, which only 支出事務 needs. Stored inside
        # the document and the original; a purpose without it gets the
        # document without its payment lines, and no original.
        Field(
            "payee_account",
            Label("振込先口座（請求書記載）", "payee bank account (on the invoice)"),
            redacted=True,
        ),
        Field("number", Label("請求書番号", "invoice number"), personal=False),
        Field("amount", Label("請求金額", "amount"), personal=False),
        Field("state", Label("状態", "state"), personal=False),
    ),
)

SUPPLIER = RecordType(
    name="Supplier",
    label=Label("登録業者", "registered supplier"),
    actions=("supplier_register",),
    fields=(
        Field("name", Label("名称・氏名", "name"), encrypted=(SUPPLIERS, "name")),
        Field(
            "bank_account",
            Label("振込先口座", "bank account"),
            encrypted=(SUPPLIERS, "bank_account"),
            redacted=True,
        ),
        Field(
            "bank_holder",
            Label("口座名義", "account holder"),
            encrypted=(SUPPLIERS, "bank_holder"),
            redacted=True,
        ),
        Field("supplier_key", Label("業者番号", "supplier identity"), personal=False),
        Field("t_number", Label("登録番号", "registration number"), personal=False),
    ),
)


def _cli_groups() -> Sequence[tuple[str, Any]]:
    from shared_gov.domains.invoices.cli import invoices_app

    return (("invoices", invoices_app),)


def _routers() -> Sequence[Any]:
    from shared_gov.domains.invoices.controllers import SupplierController, TownInvoiceController

    return (SupplierController, TownInvoiceController)


def _demo() -> DemoData:
    from shared_gov.domains.invoices import demo

    return DemoData(
        seed=demo.seed_town, records=demo.count, sample=demo.sample, department="kaikei"
    )


def _messages() -> Catalogue:
    from shared_gov.domains.invoices.messages import CATALOGUE

    return CATALOGUE


def _console_pages() -> Sequence[Any]:
    from shared_gov.domains.invoices.web.pages import InvoicePages

    return (InvoicePages,)


CONSOLE = Console(
    controllers=_console_pages,
    templates=HERE / "web" / "templates",
    links=(
        ConsoleLink("invoices/", Label("電子請求: 受信箱", "E-invoices: inbox")),
        ConsoleLink("invoices/search", Label("電子請求: 検索", "E-invoices: search")),
        ConsoleLink("invoices/export", Label("電子請求: 支払データの出力", "E-invoices: export")),
    ),
    # The ordering department's people (the demo grants 土木課 検収 and 決裁 level 1,
    # 副市長室 level 3): 検収 by one, 決裁 by another (separation of duties).
    staff=(
        ConsoleStaff("doboku-0001", "doboku", Label("土木課 職員（検収）", "Public works: clerk")),
        ConsoleStaff(
            "doboku-0002",
            "doboku",
            Label("土木課長（決裁 第1段階）", "Public works: head (approves level 1)"),
            mfa=True,
        ),
        ConsoleStaff(
            "fukushicho-0001",
            "fukushicho",
            Label("副市長（決裁 第3段階）", "Deputy mayor (approves level 3)"),
            mfa=True,
        ),
    ),
)


def _exporter() -> Exporter:
    from shared_gov.domains.invoices.repository import export_all

    return export_all


SPEC = DomainSpec(
    name="invoices",
    label=Label("電子請求", "supplier e-invoices"),
    record_types=(INVOICE, SUPPLIER),
    encrypted_tables=(
        EncryptedTable(INVOICES, ("original", "document"), row_id_sql="id::text"),
        EncryptedTable(SUPPLIERS, ("name", "bank_account", "bank_holder"), row_id_sql="id::text"),
    ),
    exporter=_exporter,
    routers=_routers,
    demo=_demo,
    cli_groups=_cli_groups,
    messages=_messages,
    console=CONSOLE,
    # Every change of these rows records its event in its transaction: a
    # deleted event is found by audit verify's link check (docs/audit.md).
    audited_tables=(
        "invoices",
        "invoice_ledger",
        "invoice_submissions",
    ),
    # Reads: group-committed and chained by the audit writer (docs/audit.md).
    read_actions=(
        "invoice.original",
        "invoice.read",
        "invoice.report",
        "invoice.search",
        "invoice.settings",
        "invoice.status",
        "invoice.status_list",
        "invoice.units",
        "supplier.list",
        "supplier.read",
    ),
    migrations=HERE / "migrations",
    purposes=HERE / "purposes.toml",
    policies=HERE / "policies",
)
