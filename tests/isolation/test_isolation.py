"""Tenant isolation: another town's staff learn nothing, and PostgreSQL itself
refuses cross-schema reads inside a bound unit of work."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from shared_gov.db import Database
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body


async def _register(client: Any, token: str, code: str, **overrides: Any) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/tenants/{code}/residents", json=resident_body(**overrides), headers=auth(token)
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


@pytest.fixture(scope="module")
async def kaga_resident(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    return await _register(client, tokens["kaga"], KAGA, family_name_kana="イソレーション")


def _requests(resident: dict[str, Any]) -> list[tuple[str, str, dict[str, Any] | None]]:
    base = f"/api/v1/tenants/{KAGA}"
    return [
        ("GET", f"{base}/residents/{resident['id']}", None),
        ("GET", f"{base}/residents/{resident['id']}/history", None),
        ("GET", f"{base}/households/{resident['household_no']}", None),
        ("POST", f"{base}/residents/search", {"atena_no": resident["atena_no"]}),
        (
            "POST",
            f"{base}/residents/search",
            {"individual_number": resident["individual_number"]},
        ),
        (
            "POST",
            f"{base}/residents/{resident['id']}/moves",
            {"event": "death", "move_date": "2020-01-01", "notified_on": "2020-01-02"},
        ),
        ("POST", f"{base}/residents", resident_body()),
    ]


@pytest.mark.parametrize("index", range(7))
@pytest.mark.parametrize(
    ("who", "status"), [("komatsu", 404), ("operator", 404), ("kaga_auditor", 403)]
)
async def test_outsiders_get_no_data(
    client: Any,
    tokens: dict[str, str],
    kaga_resident: dict[str, Any],
    index: int,
    who: str,
    status: int,
) -> None:
    """Town B's staff and operators get 404 on every resident endpoint of town A; the
    town's own auditors get 403 with a reason. No body carries anything of the record."""
    method, path, body = _requests(kaga_resident)[index]
    headers = auth(tokens[who], **{"If-Match": '"v1"'})
    r = await client.request(method, path, json=body, headers=headers)
    assert r.status_code == status, (who, path, r.text)
    if status == 403:
        assert r.json()["reason"] == "auditors read the audit log, not personal fields"
    assert r.headers["content-type"].startswith("application/problem+json")
    for value in (kaga_resident["id"], kaga_resident["atena_no"], "イソレーション"):
        assert value not in r.text
    # The record is untouched (the death event above must not have applied).
    again = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/{kaga_resident['id']}", headers=auth(tokens["kaga"])
    )
    assert again.json()["state"] == "active"


async def test_not_found_and_not_allowed_look_the_same(
    client: Any, tokens: dict[str, str], kaga_resident: dict[str, Any]
) -> None:
    """A foreign caller cannot tell an existing resident from a missing one."""
    existing = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/{kaga_resident['id']}", headers=auth(tokens["komatsu"])
    )
    missing = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/00000000-0000-4000-8000-000000000000",
        headers=auth(tokens["komatsu"]),
    )
    assert existing.status_code == missing.status_code == 404
    assert existing.json() == missing.json()


async def test_bound_unit_of_work_cannot_read_another_schema(
    db: Database, kaga_resident: dict[str, Any]
) -> None:
    """Inside Kaga's unit of work, PostgreSQL refuses a raw SELECT on Komatsu's schema
    and on the catalog: the tenant role has privileges on its own schema only."""
    kaga = tenant_names(KAGA, db.settings.role_prefix)
    komatsu = tenant_names(KOMATSU, db.settings.role_prefix)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tenant(kaga) as uow:
            await uow.fetch(f'SELECT * FROM "{komatsu.schema}".residents')
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tenant(kaga) as uow:
            await uow.fetch("SELECT * FROM catalog.tenants")
    # Its own schema works, through search_path.
    async with db.tenant(kaga) as uow:
        assert await uow.fetchval("SELECT count(*) FROM residents") >= 1
        assert await uow.fetchval("SELECT current_user") == kaga.role


async def test_tenant_role_cannot_rewrite_history_or_migrations(
    db: Database, kaga_resident: dict[str, Any]
) -> None:
    """History is append-only and the migration bookkeeping is off-limits to the town role."""
    kaga = tenant_names(KAGA, db.settings.role_prefix)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tenant(kaga) as uow:
            await uow.execute("UPDATE resident_history SET reason = 'death'")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tenant(kaga) as uow:
            await uow.execute("DELETE FROM resident_history")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tenant(kaga) as uow:
            await uow.execute("UPDATE alembic_version SET version_num = 'x'")


async def test_binding_does_not_leak_to_the_next_pool_user(db: Database) -> None:
    """After a unit of work, the pooled connection is back to its own role and path."""
    kaga = tenant_names(KAGA, db.settings.role_prefix)
    for _ in range(db.settings.pool_max * 2):
        async with db.tenant(kaga) as uow:
            await uow.fetchval("SELECT 1")
    conns = [await db.pool.acquire() for _ in range(db.settings.pool_max)]
    try:
        for conn in conns:
            row = await conn.fetchrow("SELECT current_user, current_setting('search_path') AS p")
            assert row is not None
            assert row["current_user"] != kaga.role
            assert kaga.schema not in row["p"]
            assert not conn.is_in_transaction()
    finally:
        for conn in conns:
            await db.pool.release(conn)


async def test_failed_unit_of_work_rolls_back_everything(db: Database) -> None:
    """An error inside a unit of work leaves nothing behind (one transaction per change)."""
    kaga = tenant_names(KAGA, db.settings.role_prefix)
    async with db.tenant(kaga) as uow:
        before = await uow.fetchval("SELECT count(*) FROM households")
    with pytest.raises(RuntimeError):
        async with db.tenant(kaga) as uow:
            await uow.execute("INSERT INTO households (household_no) VALUES ('99999990')")
            raise RuntimeError("boom")
    async with db.tenant(kaga) as uow:
        assert await uow.fetchval("SELECT count(*) FROM households") == before


async def test_concurrent_requests_alternating_towns_see_only_their_own(
    client: Any, tokens: dict[str, str]
) -> None:
    """200 concurrent requests alternating between two towns over one pool: each answer
    belongs to the caller's town, including searches for the same kana and birth date."""
    shared = {"family_name_kana": "コンカレント", "birth_date": "1970-07-07"}
    people = {
        KAGA: [await _register(client, tokens["kaga"], KAGA, **shared) for _ in range(3)],
        KOMATSU: [
            await _register(
                client, tokens["komatsu"], KOMATSU, address="石川県小松市小馬出町1", **shared
            )
            for _ in range(3)
        ],
    }
    token_of = {KAGA: tokens["kaga"], KOMATSU: tokens["komatsu"]}

    async def one(i: int) -> tuple[str, set[str]]:
        code = KAGA if i % 2 == 0 else KOMATSU
        if i % 4 < 2:
            person = people[code][i % 3]
            r = await client.get(
                f"/api/v1/tenants/{code}/residents/{person['id']}", headers=auth(token_of[code])
            )
            assert r.status_code == 200, r.text
            return code, {r.json()["id"]}
        r = await client.post(
            f"/api/v1/tenants/{code}/residents/search", json=shared, headers=auth(token_of[code])
        )
        assert r.status_code == 200, r.text
        return code, {p["id"] for p in r.json()["residents"]}

    results = await asyncio.gather(*(one(i) for i in range(200)))
    own = {code: {p["id"] for p in plist} for code, plist in people.items()}
    for code, ids in results:
        assert ids, code
        assert ids <= own[code], f"{code} saw another town's residents"
