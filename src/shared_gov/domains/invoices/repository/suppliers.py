"""業者登録: the ``suppliers`` table (name and bank details are envelopes)."""

from __future__ import annotations

import asyncpg

from shared_gov.crypto.keyring import TownKeys
from shared_gov.db import TenantUnitOfWork

from ..models import (
    Supplier,
)
from .common import (
    SUPPLIERS,
    _keys,
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


async def registration_by_key(uow: TenantUnitOfWork, key: str) -> Supplier | None:
    """The supplier's registration for its own requests: identity columns only.

    Name and bank details are left encrypted and empty here (``name == ""``):
    a supplier's request never needs them, and every intake skips three
    decryptions.
    """
    row = await uow.fetchrow(
        "SELECT id, supplier_key, kind, corporate_number, t_number, active, version "
        "FROM suppliers WHERE supplier_key = $1",
        key,
    )
    if row is None:
        return None
    return Supplier(
        id=str(row["id"]),
        supplier_key=row["supplier_key"],
        kind=row["kind"],
        name="",
        corporate_number=row["corporate_number"],
        t_number=row["t_number"],
        active=row["active"],
        version=row["version"],
    )
