"""Records (migration ``invoices_0001``): suppliers, units, invoices, and the sealed ledger.

On a real PostgreSQL through the town's unit of work: personal values are
envelopes at rest; an invoice's original comes back byte for byte with its
SHA-256; the ledger verifies, and a superuser's change to an amount, a state,
a ledger entry or an original is found by ``verify``.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from shared_gov.db import Database
from shared_gov.db.migrations.runner import head
from shared_gov.domains.invoices import repository as repo
from shared_gov.domains.invoices.models import AccountingUnit, Invoice, Supplier, valid_supplier_key
from shared_gov.tenancy import service as tenancy

from . import factory
from .conftest import TOWN, names_of


def _invoice(supplier_id: str, number: str, original: bytes) -> Invoice:
    doc = factory.document(number=number)
    return Invoice(
        id=repo.new_id(),
        supplier_id=supplier_id,
        unit="suido",
        number=number,
        issue_date=doc.issue_date,
        transaction_date=doc.period_end or doc.issue_date,
        currency="JPY",
        amount=doc.totals.payable,
        tax=doc.tax_amount,
        specification="jp",
        type_code="380",
        form="xml",
        original=original,
        sha256=hashlib.sha256(original).digest(),
        document=doc,
        report={"findings": []},
        state="received",
        received_at=datetime.now(UTC),
        retain_until=date(2034, 3, 31),
    )


@pytest.fixture(scope="module")
async def stored(db: Database, towns: list[str]) -> dict[str, Any]:
    async with db.tenant(names_of(db, TOWN)) as uow:
        await repo.put_unit(uow, AccountingUnit("suido", "水道事業会計", True, 10))
        supplier = Supplier(
            id=repo.new_id(),
            supplier_key="T4011001098993",
            kind="sole_proprietor",
            name="山田 太郎",
            t_number="T4011001098993",
            bank_account="0001:001:1:7654321",
            bank_holder="ﾔﾏﾀﾞ ﾀﾛｳ",
        )
        assert await repo.insert_supplier(uow, supplier)
        assert not await repo.insert_supplier(uow, supplier)  # its key is registered once
        first = _invoice(supplier.id, "A-1", "\ufeff<Invoice>請求 1</Invoice>\r\n".encode())
        second = _invoice(supplier.id, "A-2", factory.xml(factory.document(number="A-2")))
        await repo.insert_invoice(uow, first, actor="supplier:T4011001098993")
        await repo.insert_invoice(uow, second, actor="supplier:T4011001098993")
    return {"supplier": supplier, "first": first, "second": second}


async def _raw(db: Database, table: str, row_id: str) -> Any:
    schema = names_of(db, TOWN).schema
    async with db.pool.acquire() as conn:
        return await conn.fetchrow(f'SELECT * FROM "{schema}".{table} WHERE id = $1::uuid', row_id)


async def _sql(db: Database, statement: str, *args: Any) -> None:
    schema = names_of(db, TOWN).schema
    async with db.pool.acquire() as conn:
        await conn.execute(statement.replace("{s}", f'"{schema}"'), *args)


async def _verify(db: Database) -> list[str]:
    async with db.tenant(names_of(db, TOWN)) as uow:
        return (await repo.verify(uow)).problems


def test_supplier_keys_are_checked() -> None:
    assert valid_supplier_key("7123456789012")  # 法人番号, check digit 7
    assert not valid_supplier_key("7123456789013")
    assert valid_supplier_key("T4011001098993")
    assert not valid_supplier_key("T4011001098994")
    assert valid_supplier_key("X-SOLE0001")
    assert not valid_supplier_key("x-sole0001")
    assert not valid_supplier_key("12345")


async def test_the_towns_schema_has_the_domains_branch(db: Database, towns: list[str]) -> None:
    schema = names_of(db, TOWN).schema
    async with db.pool.acquire() as conn:
        versions = {
            r[0] for r in await conn.fetch(f'SELECT version_num FROM "{schema}".alembic_version')
        }
        revision = await conn.fetchval(
            "SELECT schema_revision FROM catalog.tenants WHERE code = $1", TOWN
        )
    assert any(v.startswith("invoices_") for v in versions)  # the domain's branch head
    assert head("tenant") in versions
    assert revision == tenancy.tenant_head()
    assert "invoices_" in revision


async def test_personal_values_are_envelopes_at_rest(db: Database, stored: dict[str, Any]) -> None:
    supplier = await _raw(db, "suppliers", stored["supplier"].id)
    for column, value in (("name", "山田"), ("bank_account", "7654321"), ("bank_holder", "ﾔﾏﾀﾞ")):
        assert value.encode() not in bytes(supplier[column]), column
    invoice = await _raw(db, "invoices", stored["second"].id)
    assert b"<Invoice" not in bytes(invoice["original"])
    assert "株式会社テスト商事".encode() not in bytes(invoice["document"])
    assert "ﾃｽﾄｼﾖｳｼﾞ".encode() not in bytes(invoice["document"])
    # Searched and paid by: plain.
    assert invoice["amount"] == Decimal(622)
    assert invoice["number"] == "A-2"


async def test_the_original_comes_back_byte_for_byte_with_its_hash(
    db: Database, stored: dict[str, Any]
) -> None:
    async with db.tenant(names_of(db, TOWN)) as uow:
        back = await repo.invoice(uow, stored["first"].id)
        supplier = await repo.supplier_by_key(uow, "T4011001098993")
    assert back is not None
    assert back.original == stored["first"].original  # BOM and CRLF included
    assert back.sha256 == hashlib.sha256(back.original).digest()
    assert back.document == stored["first"].document
    assert supplier is not None
    assert supplier.name == "山田 太郎"
    assert supplier.bank_account == "0001:001:1:7654321"


async def test_the_ledger_verifies_and_records_each_change(
    db: Database, stored: dict[str, Any]
) -> None:
    async with db.tenant(names_of(db, TOWN)) as uow:
        version = await repo.change_state(
            uow, stored["second"].id, version=1, kind="check", state="checked", actor="staff:k-1"
        )
        assert version == 2
        stale = await repo.change_state(
            uow, stored["second"].id, version=1, kind="check", state="checked", actor="staff:k-1"
        )
        assert stale is None  # If-Match: a stale version changes nothing
        entries = await repo.history(uow, stored["second"].id)
    assert [(e.kind, e.state) for e in entries] == [("received", "received"), ("check", "checked")]
    assert await _verify(db) == []


async def test_an_altered_amount_is_found(db: Database, stored: dict[str, Any]) -> None:
    invoice_id = stored["first"].id
    await _sql(db, "UPDATE {s}.invoices SET amount = amount - 1 WHERE id = $1::uuid", invoice_id)
    try:
        assert await _verify(db) == [
            f"invoice {invoice_id}: content differs from its sealed receipt"
        ]
    finally:
        await _sql(
            db, "UPDATE {s}.invoices SET amount = amount + 1 WHERE id = $1::uuid", invoice_id
        )
    assert await _verify(db) == []


async def test_a_state_set_behind_the_ledgers_back_is_found(
    db: Database, stored: dict[str, Any]
) -> None:
    invoice_id = stored["first"].id
    await _sql(db, "UPDATE {s}.invoices SET state = 'approved' WHERE id = $1::uuid", invoice_id)
    try:
        assert await _verify(db) == [f"invoice {invoice_id}: state is not the ledger's last"]
    finally:
        await _sql(db, "UPDATE {s}.invoices SET state = 'received' WHERE id = $1::uuid", invoice_id)


async def test_swapped_originals_and_a_forged_or_deleted_entry_are_found(
    db: Database, stored: dict[str, Any]
) -> None:
    a, b = stored["first"].id, stored["second"].id
    swap = (
        "UPDATE {s}.invoices AS x SET original = y.original FROM {s}.invoices AS y "
        "WHERE x.id = $1::uuid AND y.id = $2::uuid"
    )
    raw_a = bytes((await _raw(db, "invoices", a))["original"])
    await _sql(db, swap, a, b)
    try:
        assert await _verify(db) == [f"invoice {a}: its original or model does not decrypt"]
    finally:
        await _sql(db, "UPDATE {s}.invoices SET original = $2 WHERE id = $1::uuid", a, raw_a)
    await _sql(db, "UPDATE {s}.invoice_ledger SET state = 'paid' WHERE seq = 1")
    try:
        problems = await _verify(db)
        assert "ledger: entry 1 does not verify" in problems
    finally:
        await _sql(db, "UPDATE {s}.invoice_ledger SET state = 'received' WHERE seq = 1")
    assert await _verify(db) == []
    schema = names_of(db, TOWN).schema
    async with db.pool.acquire() as conn:
        kept = await conn.fetchrow(f'SELECT * FROM "{schema}".invoice_ledger WHERE seq = 2')
        await conn.execute(f'DELETE FROM "{schema}".invoice_ledger WHERE seq = 2')
        try:
            problems = await _verify(db)
            assert "ledger: entry 2 is missing (next is 3)" in problems
            assert "ledger: entry 3 does not verify" in problems  # its predecessor changed
        finally:
            await conn.execute(
                f'INSERT INTO "{schema}".invoice_ledger '
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                *kept.values(),
            )
    assert await _verify(db) == []
