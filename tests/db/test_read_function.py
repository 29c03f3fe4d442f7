"""The one-round-trip read (tenant migration t0013) keeps what the binding guarantees.

A resident GET at home calls the town's read function ``t_<code>.resident_read``
alone, outside any bound transaction. These tests hold it to the binding's
guarantees: it runs as the town's role, so it reads its own town and nothing
else (PostgreSQL refuses the rest), whatever its owner later does to its
settings; it writes nothing and leaves its transaction read-only; and a read's
unit of work is READ ONLY, bound before any other statement.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from shared_gov.db import Database
from shared_gov.domains.residents import reads, repository
from shared_gov.settings import Settings
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body

FUNCTION = "resident_read(uuid)"


async def _register(client: httpx.AsyncClient, token: str, town: str) -> str:
    r = await client.post(
        f"/api/v1/tenants/{town}/residents", json=resident_body(), headers=auth(token)
    )
    assert r.status_code == 201, r.text
    rid: str = r.json()["id"]
    return rid


@pytest.fixture(scope="module")
async def residents(client: httpx.AsyncClient, tokens: dict[str, str]) -> dict[str, str]:
    """One resident in each town: {town: id}."""
    return {
        KAGA: await _register(client, tokens["kaga"], KAGA),
        KOMATSU: await _register(client, tokens["komatsu"], KOMATSU),
    }


@pytest.fixture
async def admin(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the test cluster's superuser (what the service logs in as here)."""
    assert settings.database_url
    conn = await asyncpg.connect(settings.database_url)
    yield conn
    await conn.close()


def _role(settings: Settings, town: str) -> str:
    return tenant_names(town, settings.role_prefix).role


async def _bind(conn: asyncpg.Connection, settings: Settings, town: str) -> None:
    """What the service's binding does, inside the caller's open transaction."""
    names = tenant_names(town, settings.role_prefix)
    await conn.execute(
        "SELECT set_config('search_path', $1, true), set_config('role', $2, true)",
        names.schema,
        names.role,
    )


async def _read(conn: asyncpg.Connection, town: str, rid: str) -> list[Any]:
    return await conn.fetch(f"SELECT id FROM t_{town}.resident_read($1)", uuid.UUID(rid))


# --- the function is the town role's ---------------------------------------------------


async def test_the_read_function_is_the_town_roles_and_pinned(
    admin: asyncpg.Connection, settings: Settings, db: Database
) -> None:
    for town in (KAGA, KOMATSU):
        row = await admin.fetchrow(
            "SELECT p.proowner::regrole::text AS owner, p.prosecdef, p.provolatile, "
            "p.proconfig, p.proacl::text[] AS acl FROM pg_proc p "
            "WHERE p.oid = $1::regprocedure",
            f"t_{town}.{FUNCTION}",
        )
        assert row is not None
        assert row["owner"] == _role(settings, town)
        assert row["prosecdef"] is True  # runs with the town role's rights
        assert row["provolatile"] == b"s"  # STABLE: PostgreSQL refuses writes inside
        assert row["proconfig"] == [f"search_path=t_{town}, pg_temp"]
        # Nobody but the town role and the login role may call it (no PUBLIC entry).
        grantees = {entry.split("=", 1)[0] for entry in row["acl"]}
        assert "" not in grantees
        assert grantees == {_role(settings, town), await admin.fetchval("SELECT current_user")}
        # The CREATE lent for the ownership change was taken back.
        assert not await admin.fetchval(
            "SELECT has_schema_privilege($1, $2, 'CREATE')", _role(settings, town), f"t_{town}"
        )


# --- it reads its own town only ----------------------------------------------------------


async def test_a_towns_function_finds_only_its_own_residents(
    admin: asyncpg.Connection, residents: dict[str, str]
) -> None:
    assert len(await _read(admin, KAGA, residents[KAGA])) == 1
    # Komatsu's resident through Kaga's function: Kaga's table has no such row.
    assert await _read(admin, KAGA, residents[KOMATSU]) == []
    assert len(await _read(admin, KOMATSU, residents[KOMATSU])) == 1


async def test_a_town_role_cannot_call_another_towns_function(
    admin: asyncpg.Connection, settings: Settings, residents: dict[str, str]
) -> None:
    async with admin.transaction():
        await _bind(admin, settings, KAGA)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _read(admin, KOMATSU, residents[KOMATSU])


async def test_a_faulty_query_as_a_town_role_is_refused(
    admin: asyncpg.Connection, settings: Settings
) -> None:
    """What the read function relies on: a function owned by Kaga's role that
    reaches for Komatsu's table is refused by PostgreSQL, like a bound query."""
    tx = admin.transaction()
    await tx.start()
    try:
        await admin.execute(
            f"CREATE FUNCTION t_{KAGA}.wrong_town() RETURNS bigint LANGUAGE sql "
            f"SECURITY DEFINER SET search_path = t_{KAGA}, pg_temp "
            f"AS 'SELECT count(*) FROM t_{KOMATSU}.residents'"
        )
        await admin.execute(
            f'ALTER FUNCTION t_{KAGA}.wrong_town() OWNER TO "{_role(settings, KAGA)}"'
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await admin.fetchval(f"SELECT t_{KAGA}.wrong_town()")
    finally:
        await tx.rollback()


async def test_its_owner_cannot_point_it_at_another_town(
    admin: asyncpg.Connection, settings: Settings, residents: dict[str, str]
) -> None:
    """The owner (the town role, in any bound transaction) may alter the function's
    settings: re-pointed ``search_path`` changes nothing (the body names its
    table), ``SECURITY INVOKER`` makes it refuse to run, and its body cannot
    be replaced (no CREATE on the schema)."""
    tx = admin.transaction()
    await tx.start()
    try:
        await _bind(admin, settings, KAGA)
        await admin.execute(
            f"ALTER FUNCTION t_{KAGA}.{FUNCTION} SET search_path = t_{KOMATSU}, pg_temp"
        )
        assert await _read(admin, KAGA, residents[KOMATSU]) == []
        assert len(await _read(admin, KAGA, residents[KAGA])) == 1
    finally:
        await tx.rollback()
    tx = admin.transaction()
    await tx.start()
    try:
        await _bind(admin, settings, KAGA)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await admin.execute(
                f"CREATE OR REPLACE FUNCTION t_{KAGA}.resident_read(p_id uuid) "
                f"RETURNS SETOF t_{KAGA}.residents LANGUAGE sql "
                f"AS 'SELECT * FROM t_{KOMATSU}.residents'"
            )
    finally:
        await tx.rollback()
    tx = admin.transaction()
    await tx.start()
    try:
        await _bind(admin, settings, KAGA)
        await admin.execute(f"ALTER FUNCTION t_{KAGA}.{FUNCTION} SECURITY INVOKER")
        await admin.execute("SELECT set_config('role', 'none', true)")
        # Called by the login role now, it would run with the login role's rights.
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="town's role only"):
            await _read(admin, KAGA, residents[KAGA])
    finally:
        await tx.rollback()


# --- it writes nothing -----------------------------------------------------------------


async def test_the_read_functions_transaction_is_read_only(
    admin: asyncpg.Connection, residents: dict[str, str]
) -> None:
    async with admin.transaction():
        assert len(await _read(admin, KAGA, residents[KAGA])) == 1
        assert await admin.fetchval("SHOW transaction_read_only") == "on"
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await admin.execute(
                f"UPDATE t_{KAGA}.residents SET updated_at = now() WHERE id = $1",
                uuid.UUID(residents[KAGA]),
            )


async def test_a_read_unit_of_work_cannot_write(
    db: Database, settings: Settings, residents: dict[str, str]
) -> None:
    names = tenant_names(KAGA, settings.role_prefix)
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        async with db.tenant(names, read_only=True) as uow:
            await uow.execute(
                "UPDATE residents SET updated_at = now() WHERE id = $1", residents[KAGA]
            )
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        async with db.tenant(names, read_only=True) as uow:
            await uow.fetchval("SELECT nextval('atena_seq')")


async def test_a_read_unit_of_work_is_bound_before_any_other_statement(
    db: Database, settings: Settings
) -> None:
    names = tenant_names(KAGA, settings.role_prefix)
    async with db.tenant(names, read_only=True) as uow:
        assert not uow.bound  # nothing sent yet
        row = await uow.fetchrow(
            "SELECT current_user AS role, current_setting('search_path') AS path, "
            "current_setting('transaction_read_only') AS ro"
        )
        assert uow.bound
    assert row is not None
    assert (row["role"], row["path"], row["ro"]) == (names.role, names.schema, "on")


async def test_a_resident_get_at_home_is_one_call_without_binding(
    db: Database, settings: Settings, residents: dict[str, str]
) -> None:
    names = tenant_names(KAGA, settings.role_prefix)
    async with db.tenant(names, read_only=True) as uow:
        resident = await reads.get(uow, residents[KAGA])
        assert resident is not None
        assert resident.id == residents[KAGA]
        assert not uow.bound  # the call was its own transaction: no BEGIN, no COMMIT
        assert await reads.get(uow, residents[KOMATSU]) is None
        # The same record and rule-1 flag as the bound SELECT reads.
        bound = await repository.get(uow, residents[KAGA])
        assert uow.bound
    assert bound == resident
    assert repository._read_flag(bound) == repository._read_flag(resident)


async def test_the_read_columns_are_the_repositorys(db: Database, settings: Settings) -> None:
    """``reads.COLUMNS`` picks from the function's row what the bound SELECT reads."""
    assert reads.COLUMNS.removesuffix(", protection_linked") == ", ".join(
        repository.PLAIN + repository.ENCRYPTED
    )
    names = tenant_names(KAGA, settings.role_prefix)
    async with db.tenant(names, read_only=True) as uow:
        assert await uow.call_read(reads.READ_FUNCTION, reads.COLUMNS, str(uuid.uuid4())) == []


async def test_outside_a_read_only_unit_of_work_the_get_is_the_bound_select(
    db: Database, settings: Settings, residents: dict[str, str]
) -> None:
    names = tenant_names(KAGA, settings.role_prefix)
    async with db.tenant(names) as uow:
        with pytest.raises(RuntimeError):
            await uow.call_read(reads.READ_FUNCTION, reads.COLUMNS, residents[KAGA])
        resident = await reads.get(uow, residents[KAGA])
    assert resident is not None


async def test_the_get_use_case_answers_the_same_either_way(
    client: httpx.AsyncClient, tokens: dict[str, str], residents: dict[str, str]
) -> None:
    r = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/{residents[KAGA]}", headers=auth(tokens["kaga"])
    )
    assert r.status_code == 200
    assert r.json()["id"] == residents[KAGA]
    # Another town's resident id in Kaga: the same 404 as a missing record.
    r = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/{residents[KOMATSU]}", headers=auth(tokens["kaga"])
    )
    assert r.status_code == 404
