"""Hot reads keep one prepared statement, hence one plan, per town.

PostgreSQL discards a prepared statement's plan whenever ``search_path``
differs from the one it was planned under, so a statement shared by all
towns is parsed and planned again on every town switch (the main cost of
serving many towns; bench/README.md). ``TenantUnitOfWork.town_statement``
gives each town its own statement text; these tests check that the hot
reads use it, that interleaving towns on one connection reuses each town's
statement (and its generic plan).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest

from shared_gov.db import Database
from shared_gov.domains.residents import repository
from shared_gov.settings import Settings
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU

READ_BY_ID = "FROM residents WHERE id = $1"


@pytest.fixture
async def one_connection(settings: Settings, db: Database) -> AsyncIterator[Database]:
    """A Database whose pool has exactly one connection: every unit of work shares it."""
    assert settings.database_url
    single = Database(
        settings.database_url, dataclasses.replace(settings, pool_min=1, pool_max=1), db.keyring
    )
    await single.open()
    yield single
    await single.close()


async def _statements(database: Database, town: str) -> dict[str, int]:
    """The session's prepared reads by id: text -> executions (generic + custom plans)."""
    async with database.tenant(tenant_names(town, database.settings.role_prefix)) as uow:
        rows = await uow.fetch(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
        )
    return {
        r["statement"]: r["generic_plans"] + r["custom_plans"]
        for r in rows
        if READ_BY_ID in r["statement"]
    }


async def test_interleaved_towns_each_reuse_their_own_statement(one_connection: Database) -> None:
    rounds = 8
    for _ in range(rounds):
        for town in (KAGA, KOMATSU):
            names = tenant_names(town, one_connection.settings.role_prefix)
            async with one_connection.tenant(names) as uow:
                assert await repository.get(uow, str(uuid.uuid4())) is None
    statements = await _statements(one_connection, KAGA)
    kaga = [s for s in statements if f"/* t_{KAGA} */" in s]
    komatsu = [s for s in statements if f"/* t_{KOMATSU} */" in s]
    assert len(kaga) == 1
    assert len(komatsu) == 1
    assert len(statements) == 2  # no statement shared by both towns
    # Each town's statement ran every round, on this connection, prepared once.
    assert statements[kaga[0]] == rounds
    assert statements[komatsu[0]] == rounds
    async with one_connection.tenant(
        tenant_names(KAGA, one_connection.settings.role_prefix)
    ) as uow:
        generic = await uow.fetchval(
            "SELECT generic_plans FROM pg_prepared_statements WHERE statement = $1", kaga[0]
        )
    # Past PostgreSQL's five custom plans, the town's generic plan is reused.
    assert generic >= rounds - 5


async def _backend_pid(database: Database, town: str) -> int:
    async with database.tenant(tenant_names(town, database.settings.role_prefix)) as uow:
        pid: int = await uow.fetchval("SELECT pg_backend_pid()")
    return pid


async def test_a_connection_is_kept_while_its_towns_fit_and_retired_past_them(
    settings: Settings, db: Database
) -> None:
    """Per-town caches stay warm while a connection serves at most
    ``pool_max_towns`` towns; one more town retires it (its backend's
    per-town memory is bounded), and the pool opens a fresh one."""
    assert settings.database_url
    two = dataclasses.replace(settings, pool_min=1, pool_max=1, pool_max_towns=2)
    database = Database(settings.database_url, two, db.keyring)
    await database.open()
    try:
        first = await _backend_pid(database, KAGA)
        for _ in range(20):  # many requests, two towns: never retired
            for town in (KAGA, KOMATSU):
                assert await _backend_pid(database, town) == first
        one = dataclasses.replace(two, pool_max_towns=1)
        database.settings = one
        # The connection has served two towns, more than one: the next
        # unit of work still runs on it, then it is retired.
        assert await _backend_pid(database, KAGA) == first
        second = await _backend_pid(database, KAGA)
        assert second != first
        # A fresh connection starts counting afresh.
        assert await _backend_pid(database, KAGA) == second
    finally:
        await database.close()
