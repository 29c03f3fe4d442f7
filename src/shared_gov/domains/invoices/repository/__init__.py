"""Every SQL statement on the domain's tables: the only package that reads or writes them.

Personal columns are envelopes bound to (town, table, column, row id, key
version): a supplier's name and bank details, an invoice's original and
parsed model. Statements run in a unit of work bound to one town; table
names are unqualified on purpose. Writing an invoice or changing its state
appends to the sealed ledger in the same transaction (:func:`append_ledger`,
``sealing``), under a transaction-scoped advisory lock on the town's chain.
"""

from __future__ import annotations

from . import intake
from .books import (
    Listed,
    export_exists,
    exportable,
    original,
    record_export,
    search,
)
from .common import INVOICES, SUPPLIERS, append_ledger, new_id, now, seal_key, sha256
from .invoices import (
    by_number,
    change_state,
    duplicate_of,
    export_all,
    history,
    insert_invoice,
    invoice,
    statuses_of,
    submission,
    verify,
)
from .suppliers import (
    insert_supplier,
    registration_by_key,
    supplier,
    supplier_by_key,
    suppliers,
    update_supplier,
)
from .towns import (
    TownSettings,
    approval_levels,
    put_unit,
    set_approval_levels,
    settings,
    unit,
    units,
    update_settings,
)

__all__ = [
    "INVOICES",
    "SUPPLIERS",
    "Listed",
    "TownSettings",
    "append_ledger",
    "approval_levels",
    "by_number",
    "change_state",
    "duplicate_of",
    "export_all",
    "export_exists",
    "exportable",
    "history",
    "insert_invoice",
    "insert_supplier",
    "intake",
    "invoice",
    "new_id",
    "now",
    "original",
    "put_unit",
    "record_export",
    "registration_by_key",
    "seal_key",
    "search",
    "set_approval_levels",
    "settings",
    "sha256",
    "statuses_of",
    "submission",
    "supplier",
    "supplier_by_key",
    "suppliers",
    "unit",
    "units",
    "update_settings",
    "update_supplier",
    "verify",
]
