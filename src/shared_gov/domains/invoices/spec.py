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
            Label("請求内容（売り手名・振込先を含む）", "invoice content (seller, bank details)"),
            encrypted=(INVOICES, "document"),
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


def _exporter() -> Exporter:
    from shared_gov.domains.invoices.repository import export_all

    return export_all


def _messages() -> Catalogue:
    from shared_gov.domains.invoices.messages import CATALOGUE

    return CATALOGUE


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
    migrations=HERE / "migrations",
    purposes=HERE / "purposes.toml",
    policies=HERE / "policies",
)
