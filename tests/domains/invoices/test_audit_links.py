"""An invoice's audit event cannot be deleted unnoticed (hostile review r1 #2).

The invoice tables are the domain's ``audited_tables``: every change of
their rows records its audit event in the same transaction, so ``audit
verify``'s link check finds a row whose writing transaction has no event.
The superuser deletes the intake's event inside a transaction that is
rolled back, and the check runs on that same connection.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from shared_gov.audit.verify import VerifyReport, check_links
from shared_gov.db import Database

from . import factory
from .conftest import TOWN, bearer


async def _links(conn: asyncpg.Connection) -> list[str]:
    incarnation = await conn.fetchval(
        "SELECT incarnation FROM catalog.tenants WHERE code = $1", TOWN
    )
    report = VerifyReport(TOWN, incarnation=incarnation)
    await check_links(conn, report)
    return [f"{p.kind}: {p.detail}" for p in report.problems]


async def test_a_deleted_intake_event_leaves_its_invoice_rows_unmatched(
    api: httpx.AsyncClient, db: Database, people: dict[str, str], registered: dict[str, str]
) -> None:
    doc = factory.document(number="LINK-1", unit="ippan")
    r = await api.post(
        f"/api/v1/tenants/{TOWN}/supplier/invoices",
        content=factory.xml(doc),
        headers=bearer(
            people["a"], **{"Content-Type": "application/xml", "X-Request-ID": "link-1"}
        ),
    )
    assert r.status_code == 201, r.text
    conn = await asyncpg.connect(db.url)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            assert await _links(conn) == [], "every invoice row has its event"
            await conn.execute("SET LOCAL session_replication_role = replica")
            deleted = await conn.execute(
                "DELETE FROM audit.events WHERE tenant = $1 AND client_request_id = 'link-1'",
                TOWN,
            )
            assert deleted == "DELETE 1"
            found: list[Any] = await _links(conn)
        finally:
            await tx.rollback()
    finally:
        await conn.close()
    tables = {f.split(" of ")[1].split(" ")[0] for f in found if f.startswith("row_without_event")}
    assert {"invoices", "invoice_ledger", "invoice_submissions"} <= tables, found
