"""The town's side: 業者登録, accounting units and settings, reading invoices.

Decide first (the Access the guarded entry hands over), then the repository;
record what was touched in the request's audit event. Never imports another
domain, never queries, never names a town (the Access is bound to it). The
workflow's steps are in ``workflow``; search, retention and export in
``ledgerbook``.
"""

from __future__ import annotations

import uuid

from shared_gov import errors
from shared_gov.checkdigits import is_valid_corporate_number, is_valid_invoice_registration_number
from shared_gov.db import TenantUnitOfWork
from shared_gov.policy import Access, FieldView

from . import messages as m
from . import repository as repo
from .models import AccountingUnit, Invoice, LedgerEntry, Supplier, valid_supplier_key
from .schemas import SettingsIn, SupplierIn, UnitIn

INVOICE = "Invoice"
SUPPLIER = "Supplier"


def touched(access: Access, ids: list[str], view: FieldView | None = None) -> None:
    """The audit event: which records (hashed when written), which fields, how many rows."""
    event = access.audit
    event.subjects.extend(i for i in ids if i not in event.subjects)
    if view is not None:
        event.fields.extend(sorted(set(view.allowed) - set(event.fields)))
    event.rows += len(ids)


_NO_SUCH = {"invoice": m.NO_INVOICE, "supplier": m.NO_SUPPLIER, "export": m.NO_EXPORT}


def parse_id(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise errors.not_found(_NO_SUCH[what]) from None


# --- 業者登録 --------------------------------------------------------------------------


def _checked(data: SupplierIn) -> None:
    problems: list[errors.FieldError] = []
    if not valid_supplier_key(data.supplier_key):
        problems.append(errors.FieldError("/supplier_key", m.CHECK_DIGIT))
    if data.corporate_number and not is_valid_corporate_number(data.corporate_number):
        problems.append(errors.FieldError("/corporate_number", m.CHECK_DIGIT))
    if data.t_number and not is_valid_invoice_registration_number(data.t_number):
        problems.append(errors.FieldError("/t_number", m.CHECK_DIGIT))
    key = data.supplier_key
    if key[0].isdigit() and data.corporate_number not in (None, key):
        problems.append(errors.FieldError("/corporate_number", m.NOT_THE_SUPPLIER_KEY))
    if key.startswith("T") and data.t_number not in (None, key):
        problems.append(errors.FieldError("/t_number", m.NOT_THE_SUPPLIER_KEY))
    if data.kind == "corporation" and not (data.corporate_number or key[0].isdigit()):
        problems.append(errors.FieldError("/corporate_number", m.CORPORATION_HAS_ONE))
    if problems:
        raise errors.invalid(problems)


async def register_supplier(
    uow: TenantUnitOfWork, access: Access, data: SupplierIn
) -> tuple[Supplier, FieldView]:
    access.require("supplier_register", record_type=SUPPLIER)
    view = access.field_view(False, record_type=SUPPLIER)
    _checked(data)
    key = data.supplier_key
    supplier = Supplier(
        id=str(uuid.uuid4()),
        supplier_key=key,
        kind=data.kind,
        name=data.name,
        corporate_number=data.corporate_number or (key if key[0].isdigit() else None),
        t_number=data.t_number or (key if key.startswith("T") else None),
        bank_account=data.bank_account,
        bank_holder=data.bank_holder,
    )
    if not await repo.insert_supplier(uow, supplier):
        raise errors.conflict(m.SUPPLIER_REGISTERED)
    touched(access, [supplier.id], view)
    return supplier, view


async def supplier(
    uow: TenantUnitOfWork, access: Access, supplier_id: str
) -> tuple[Supplier, FieldView]:
    access.require("supplier_register", record_type=SUPPLIER)
    view = access.field_view(False, record_type=SUPPLIER)
    found = await repo.supplier(uow, parse_id(supplier_id, "supplier"))
    if found is None:
        raise errors.not_found(m.NO_SUPPLIER)
    touched(access, [found.id], view)
    return found, view


async def suppliers(uow: TenantUnitOfWork, access: Access) -> tuple[list[Supplier], FieldView]:
    access.require("supplier_register", record_type=SUPPLIER)
    view = access.field_view(False, record_type=SUPPLIER)
    found = await repo.suppliers(uow)
    touched(access, [s.id for s in found], view)
    return found, view


# --- accounting units and settings ---------------------------------------------------------


async def put_unit(
    uow: TenantUnitOfWork, access: Access, code: str, data: UnitIn
) -> AccountingUnit:
    access.require("invoice_configure", record_type=INVOICE)
    return await repo.put_unit(
        uow, AccountingUnit(code, data.name, data.needs_qualified, data.retention_years)
    )


async def units(uow: TenantUnitOfWork, access: Access) -> list[AccountingUnit]:
    access.require("invoice_configure", record_type=INVOICE)
    return await repo.units(uow)


async def settings(
    uow: TenantUnitOfWork, access: Access
) -> tuple[repo.TownSettings, list[int | None]]:
    access.require("invoice_configure", record_type=INVOICE)
    levels = await repo.approval_levels(uow)
    return await repo.settings(uow), [up_to for _, up_to in levels]


def etag(version: int) -> str:
    return f'"v{version}"'


def expected_version(if_match: str | None) -> int:
    """The version an If-Match names (428 without one, 412 when unreadable)."""
    if if_match is None:
        raise errors.precondition_required(m.IF_MATCH_REQUIRED)
    value = if_match.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not value.startswith("v") or not value[1:].isdigit():
        raise errors.precondition_failed(m.IF_MATCH_INVALID)
    return int(value[1:])


async def put_settings(
    uow: TenantUnitOfWork, access: Access, data: SettingsIn, if_match: str | None
) -> tuple[repo.TownSettings, list[int | None]]:
    access.require("invoice_configure", record_type=INVOICE)
    version = expected_version(if_match)
    if data.default_unit is not None and await repo.unit(uow, data.default_unit) is None:
        raise errors.invalid_field("/default_unit", m.NO_UNIT)
    if data.approval_levels is not None:
        levels = data.approval_levels
        limits = list(levels[:-1])
        if any(v is None for v in limits) or limits != sorted(limits):  # type: ignore[type-var]
            raise errors.invalid_field("/approval_levels", m.LEVELS_ASCENDING)
        await repo.set_approval_levels(uow, list(enumerate(levels, start=1)))
    changed = await repo.update_settings(uow, data.t_number_severity, data.default_unit, version)
    if changed is None:
        raise errors.precondition_failed(m.SETTINGS_CHANGED)
    levels_now = await repo.approval_levels(uow)
    return changed, [up_to for _, up_to in levels_now]


# --- reading invoices ---------------------------------------------------------------------


async def invoice(
    uow: TenantUnitOfWork, access: Access, invoice_id: str
) -> tuple[Invoice, FieldView, list[LedgerEntry]]:
    access.require("invoice_search", record_type=INVOICE)
    view = access.field_view(False, record_type=INVOICE)
    found = await repo.invoice(uow, parse_id(invoice_id, "invoice"))
    if found is None:
        raise errors.not_found(m.NO_INVOICE)
    touched(access, [found.id], view)
    return found, view, await repo.history(uow, found.id)
