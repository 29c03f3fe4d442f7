"""Fixtures of the 介護保険 tests: residents registered and moved through the residents
API by 市民課 (real tokens, Cedar, PostgreSQL), the consumer driven by hand."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.domains.kaigo import consumer
from shared_gov.domains.kaigo.models import Determination
from shared_gov.domains.kaigo.repository import determinations, register
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body


@pytest.fixture(scope="session")
def kaigo_tokens(issuer: BuiltinIssuer) -> dict[str, str]:
    """介護保険課 staff of Kaga and Komatsu (two in Kaga: a corrector and a confirmer)."""
    return {
        "kaga": issuer.mint(subject="kk-0001", tenant=KAGA, department="kaigo", roles=["staff"]),
        "kaga2": issuer.mint(subject="kk-0002", tenant=KAGA, department="kaigo", roles=["staff"]),
        "komatsu": issuer.mint(
            subject="mk-0001", tenant=KOMATSU, department="kaigo", roles=["staff"]
        ),
        "kaga_shimin": issuer.mint(
            subject="k-0001", tenant=KAGA, department="shimin", roles=["staff"], mfa=True
        ),
        "komatsu_shimin": issuer.mint(
            subject="m-0001", tenant=KOMATSU, department="shimin", roles=["staff"], mfa=True
        ),
    }


class Register:
    """市民課's side: register and move residents over HTTP."""

    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    async def move_in(self, town: str = KAGA, **overrides: Any) -> dict[str, Any]:
        token = self.tokens["kaga_shimin" if town == KAGA else "komatsu_shimin"]
        r = await self.client.post(
            f"/api/v1/tenants/{town}/residents",
            json=resident_body(**overrides),
            headers=auth(token),
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        body["etag"] = r.headers["ETag"]
        return body

    async def move(self, person: dict[str, Any], town: str = KAGA, **change: Any) -> dict[str, Any]:
        token = self.tokens["kaga_shimin" if town == KAGA else "komatsu_shimin"]
        r = await self.client.post(
            f"/api/v1/tenants/{town}/residents/{person['id']}/moves",
            json=change,
            headers=auth(token, **{"If-Match": person["etag"]}),
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        body["etag"] = r.headers["ETag"]
        return body


@pytest.fixture
def register_(client: httpx.AsyncClient, kaigo_tokens: dict[str, str]) -> Register:
    return Register(client, kaigo_tokens)


async def queue_of(db: Database, town: str, resident_id: str) -> list[Determination]:
    """Every determination of one resident, oldest first."""
    async with db.tenant(tenant_names(town, db.settings.role_prefix)) as uow:
        page = await determinations.page(
            uow, determinations.Filters(resident_id=resident_id, limit=100)
        )
    return sorted(page, key=lambda d: (d.created_at or 0, d.id))  # type: ignore[operator]


async def settle(db: Database, town: str = KAGA) -> int:
    """Run the consumer (and the daily job) in ``town`` until every event written so
    far has been read. An event becomes readable only once every transaction older
    than it has ended (the outbox's watermark): another session's transaction may
    hold it back a moment, so wait for it rather than miss it."""
    written = 0
    for _ in range(200):
        written += await consumer.catch_up(db, town, today=today_jst())
        if await consumer.lag(db, town) == 0.0:
            return written
        await asyncio.sleep(0.05)
    raise AssertionError("the consumer did not catch up")


async def visible(db: Database, town: str, resident_ids: list[str]) -> None:
    """Wait until the outbox serves the events of ``resident_ids`` to the consumer."""
    names = tenant_names(town, db.settings.role_prefix)
    for _ in range(200):
        async with db.tenant(names) as uow:
            row = await uow.fetchrow("SELECT xid, seq FROM kaigo_consumer WHERE name = 'outbox'")
            assert row is not None
            position = register.Position(int(row["xid"]), int(row["seq"]))
            page, _ = await register.page(uow, position, 1000)
        if set(resident_ids) <= {e.resident_id for e in page}:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the events did not become readable")


def days(n: int) -> date:
    return today_jst() + timedelta(days=n)


async def planted(uow: Any) -> None:
    """The audit event of a test's own write into a shared town (the session's
    end checks every audited row has one: ``DomainSpec.audited_tables``)."""
    from shared_gov.audit.recorder import AuditEvent, operator_actor, record

    await record(uow, operator_actor("test"), AuditEvent(action="test.plant", rows=1))
