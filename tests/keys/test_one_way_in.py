"""Key jobs reach a town's tables one way: the town's unit of work, under its role.

Data-key rotation (counts, re-encryption, the last sweep) and blind-index
rotation (every sweep) read and write a town's rows only in units of work
bound to the town (DESIGN.md: one way into tenant tables). The town's role
may not UPDATE its append-only history, so a rotation replaces the history's
envelopes through the town's ``reseal_envelopes`` function (tenant revision
t0012): attacked here as someone running SQL under the town's role would.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
import pytest
from litestar import Litestar

from shared_gov import errors
from shared_gov.audit.verify import verify_tenant
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from shared_gov.db.migrations.runner import head
from shared_gov.keys import envelopes
from shared_gov.keys.index_rotation import rotate_index
from shared_gov.keys.rotation import rotate_dek, status
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from shared_gov.tenancy.names import TenantNames, tenant_names
from tests.conftest import KAGA, auth
from tests.factories import resident_body

KUSHIRO, OBIHIRO = "012084", "012092"
HISTORY = "resident_history.snapshot"
RESEAL = "SELECT reseal_envelopes($1, $2, $3::tid[], $4::bytea[])"


async def _onboard(db: Database, app: Litestar, issuer: BuiltinIssuer, code: str) -> str:
    """A town of this module's own; returns a staff token."""
    await tenancy.onboard(
        db,
        parse_manifest(
            {
                "code": code,
                "name": f"テスト市{code}",
                "name_kana": "てすとし",
                "prefecture": "北海道",
                "population": 160_000,
                "departments": [
                    {"code": "shimin", "name": "市民課", "purposes": ["juki.registration"]}
                ],
            }
        ),
    )
    await app.state.services.registry.refresh()
    return issuer.mint(
        subject=f"s-{code}", tenant=code, department="shimin", roles=["staff"], mfa=True
    )


async def _people(client: Any, code: str, token: str, count: int) -> list[str]:
    """``count`` residents, each moved once: two history entries each."""
    base = f"/api/v1/tenants/{code}/residents"
    ids = []
    for n in range(count):
        r = await client.post(
            base, json=resident_body(phone=f"0154-22-{n:04d}"), headers=auth(token)
        )
        assert r.status_code == 201, r.text
        moved = await client.post(
            f"{base}/{r.json()['id']}/moves",
            json={
                "event": "move_within_town",
                "address": f"北海道釧路市黒金町{n}",
                "move_date": "2020-01-01",
                "notified_on": "2020-01-02",
            },
            headers={**auth(token), "If-Match": r.headers["etag"]},
        )
        assert moved.status_code == 200, moved.text
        ids.append(r.json()["id"])
    return ids


@pytest.fixture(scope="module")
async def kushiro(
    db: Database, app: Litestar, issuer: BuiltinIssuer, client: Any
) -> tuple[str, list[str]]:
    token = await _onboard(db, app, issuer, KUSHIRO)
    return token, await _people(client, KUSHIRO, token, 5)


class _Recording:
    """A catalog connection that notes every statement sent on it."""

    def __init__(self, conn: asyncpg.Connection, seen: list[str]) -> None:
        self._conn = conn
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._conn, name)
        if name not in {"execute", "executemany", "fetch", "fetchrow", "fetchval", "cursor"}:
            return attribute

        def noted(query: str, *args: Any, **kwargs: Any) -> Any:
            self._seen.append(query)
            return attribute(query, *args, **kwargs)

        return noted


def _spying(
    catalog: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]], seen: list[str]
) -> Callable[[], AbstractAsyncContextManager[Any]]:
    @asynccontextmanager
    async def spying() -> AsyncIterator[Any]:
        async with catalog() as conn:
            yield _Recording(conn, seen)

    return spying


_ONLY_THE_TOWN = """
CREATE FUNCTION {schema}.keys_test_only_the_town() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('role') <> '{role}' THEN
        RAISE EXCEPTION 'a town table changed outside the town''s unit of work';
    END IF;
    RETURN NEW;
END $$
"""


@asynccontextmanager
async def _only_the_town_may_write(db: Database, names: TenantNames) -> AsyncIterator[None]:
    """Triggers that refuse any change to the town's tables not made under its role
    (a SECURITY DEFINER function keeps the caller's role setting)."""
    schema = f'"{names.schema}"'
    async with db.catalog() as conn:
        await conn.execute(_ONLY_THE_TOWN.format(schema=schema, role=names.role))
        for table in ("residents", "resident_history"):
            await conn.execute(
                f"CREATE TRIGGER keys_test_only_the_town BEFORE UPDATE OR DELETE "
                f"ON {schema}.{table} FOR EACH ROW "
                f"EXECUTE FUNCTION {schema}.keys_test_only_the_town()"
            )
    try:
        yield
    finally:
        async with db.catalog() as conn:
            for table in ("residents", "resident_history"):
                await conn.execute(f"DROP TRIGGER keys_test_only_the_town ON {schema}.{table}")
            await conn.execute(f"DROP FUNCTION {schema}.keys_test_only_the_town()")


def _rows(statuses: list[Any], name: str) -> dict[int, tuple[str, int | None]]:
    return {s.version: (s.state, s.rows) for s in statuses if s.name == name}


async def test_rotations_and_counts_run_in_the_towns_unit_of_work_only(
    db: Database,
    client: Any,
    kushiro: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every statement the key jobs send on a catalog connection is watched, and
    every change to the town's tables must be made under the town's role: the
    jobs count, re-encrypt (history included) and sweep all the same."""
    token, people = kushiro
    names = tenant_names(KUSHIRO, db.settings.role_prefix)
    seen: list[str] = []
    async with _only_the_town_may_write(db, names):
        monkeypatch.setattr(db, "catalog", _spying(db.catalog, seen))
        before = await status(db, KUSHIRO)
        address = await rotate_dek(db, KUSHIRO, "address", grace_seconds=0)
        history = await rotate_dek(db, KUSHIRO, HISTORY, batch=3, grace_seconds=0)
        phone = await rotate_index(db, KUSHIRO, "phone", grace_seconds=0)
        after = await status(db, KUSHIRO)
        monkeypatch.undo()
    # The catalog connection was used (the keys' states) but never named the town's schema.
    assert any("catalog.data_keys" in q for q in seen)
    assert [q for q in seen if names.schema in q] == []
    assert _rows(before, "residents.address") == {1: ("active", len(people))}
    assert _rows(before, HISTORY) == {1: ("active", 2 * len(people))}
    assert (address.retired, address.reencrypted) == (True, len(people))
    assert (history.retired, history.reencrypted) == (True, 2 * len(people))
    assert (phone.retired, phone.filled, phone.cleared) == (True, len(people), len(people))
    assert _rows(after, "residents.address") == {1: ("retired", 0), 2: ("active", len(people))}
    assert _rows(after, HISTORY) == {1: ("retired", 0), 2: ("active", 2 * len(people))}
    assert _rows(after, "phone") == {1: ("retired", None), 2: ("active", len(people))}
    # The history reads as before, every entry under the new key.
    r = await client.get(
        f"/api/v1/tenants/{KUSHIRO}/residents/{people[0]}/history", headers=auth(token)
    )
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    assert [e["snapshot"]["address"] for e in entries] == [
        "石川県加賀市大聖寺南町1-1",
        "北海道釧路市黒金町0",
    ]
    # Every history row rewritten through reseal_envelopes has the audit event
    # of its batch in the same transaction (audit verify's link check).
    key = (await db.town_keys(KUSHIRO)).audit_mac
    conn = await asyncpg.connect(db.url)
    try:
        report = await verify_tenant(
            conn,
            KUSHIRO,
            public_key=db.keyring.provider.signing_public_key(KUSHIRO),
            mac_key=key,
        )
        batches = await conn.fetchval(
            "SELECT count(*) FROM audit.events WHERE tenant = $1 AND action = 'keys.reencrypt' "
            "AND resource_type = 'resident_history'",
            KUSHIRO,
        )
    finally:
        await conn.close()
    assert batches == 4  # 10 entries, 3 a batch
    kinds = {p.kind for p in report.problems}
    assert not kinds & {"history_without_event", "mac_invalid"}, report.problems


async def test_the_old_way_in_is_what_the_checks_catch(
    db: Database, kushiro: tuple[str, list[str]]
) -> None:
    """The checks above can fail: a change on a catalog connection (the platform's
    role, schema-qualified, as the key jobs once did) is refused by the test's
    triggers, even as the tables' owner."""
    names = tenant_names(KUSHIRO, db.settings.role_prefix)
    async with _only_the_town_may_write(db, names):
        with pytest.raises(asyncpg.RaiseError, match="outside the town's unit of work"):
            async with db.catalog() as conn:
                await conn.execute(
                    f'UPDATE "{names.schema}".resident_history SET snapshot = snapshot'
                )


async def test_the_towns_role_cannot_change_its_history(
    db: Database, kushiro: tuple[str, list[str]]
) -> None:
    names = tenant_names(KUSHIRO, db.settings.role_prefix)
    for statement in (
        "UPDATE resident_history SET snapshot = snapshot",
        "DELETE FROM resident_history",
        "TRUNCATE resident_history",
        # Locking a row for update needs UPDATE too.
        "SELECT 1 FROM resident_history FOR UPDATE",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.tenant(names) as uow:
                await uow.execute(statement)


class _Stop(Exception):
    """Stops a rotation once its new key exists, before any row moves."""


def _stop(_done: int, _total: int) -> None:
    raise _Stop


async def _start_only(db: Database, code: str, column: str) -> None:
    with pytest.raises(_Stop):
        await rotate_dek(db, code, column, grace_seconds=0, on_progress=_stop)


def _envelope(version: int, *, length: int = 60, fmt: int = 1) -> bytes:
    return bytes([fmt]) + version.to_bytes(4, "big") + os.urandom(length - 5)


async def _history_rows(db: Database, names: TenantNames) -> list[asyncpg.Record]:
    async with db.tenant(names) as uow:
        return await uow.fetch(
            f"SELECT ctid, {envelopes.VERSION_SQL.format(col='snapshot')} AS v, "
            "resident_id, history_no FROM resident_history ORDER BY resident_id, history_no"
        )


def _places(rows: list[asyncpg.Record]) -> dict[tuple[str, int], tuple[Any, int]]:
    return {(str(r["resident_id"]), r["history_no"]): (r["ctid"], r["v"]) for r in rows}


async def test_reseal_envelopes_refuses_everything_but_a_rotations_own_writes(
    db: Database, client: Any, kushiro: tuple[str, list[str]]
) -> None:
    """What someone running SQL as the town's role could try with the function."""
    token, _ = kushiro
    names = tenant_names(KUSHIRO, db.settings.role_prefix)

    async def as_town(*args: Any) -> int:
        async with db.tenant(names) as uow:
            written: int = await uow.fetchval(RESEAL, *args)
            return written

    rows = await _history_rows(db, names)
    active = max(r["v"] for r in rows)
    one = [rows[0]["ctid"]]
    # Outside a rotation: nothing at all.
    with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError):
        await as_town("resident_history", "snapshot", one, [_envelope(active + 1)])

    await _start_only(db, KUSHIRO, HISTORY)
    await _start_only(db, KUSHIRO, "given_name")
    new = active + 1
    # A plain column (ids, numbers, dates), or a column that is no envelope: no data key.
    for column in ("history_no", "resident_id", "recorded_at", "no_such_column"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not an encrypted column"):
            await as_town("resident_history", column, one, [_envelope(new)])
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not an encrypted column"):
        await as_town("catalog.data_keys", "wrapped", one, [_envelope(new)])
    # A table the town's role may update itself, even mid-rotation.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="may update this table"):
        await as_town("residents", "given_name", one, [_envelope(2)])
    # Envelopes the job would never write: an old version, a future one, another
    # format, too short to hold a tag; rows and envelopes that do not pair up.
    for bad in (
        _envelope(active),
        _envelope(new + 1),
        _envelope(new, fmt=2),
        _envelope(new, length=32),
        b"",
    ):
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await as_town("resident_history", "snapshot", one, [bad])
    for places, blobs in (
        (one, []),
        (one, [_envelope(new), _envelope(new)]),
        ([None], [_envelope(new)]),
        (one, [None]),
        (one * 10_001, [_envelope(new)] * 10_001),
    ):
        with pytest.raises(asyncpg.InvalidParameterValueError):
            await as_town("resident_history", "snapshot", places, blobs)
    # A row already under the active key is not rewritten: an entry written
    # during the rotation (a move now) keeps what it says.
    person = (
        await client.post(
            f"/api/v1/tenants/{KUSHIRO}/residents", json=resident_body(), headers=auth(token)
        )
    ).json()
    (fresh,) = [r for r in await _history_rows(db, names) if str(r["resident_id"]) == person["id"]]
    assert fresh["v"] == new
    assert await as_town("resident_history", "snapshot", [fresh["ctid"]], [_envelope(new)]) == 0
    # Not from a platform connection (the job runs in the town's unit of work),
    # and not from another town's unit of work (its role cannot see the schema).
    function = f'"{names.schema}".reseal_envelopes($1, $2, $3::tid[], $4::bytea[])'
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="in a town's unit of work"):
        async with db.catalog() as conn:
            await conn.fetchval(f"SELECT {function}", "resident_history", "snapshot", one, [])
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tenant(tenant_names(KAGA, db.settings.role_prefix)) as uow:
            await uow.fetchval(f"SELECT {function}", "resident_history", "snapshot", one, [])
    # None of it changed a row (an UPDATE would have moved it to another ctid).
    assert _places(await _history_rows(db, names)) == _places([*rows, fresh])
    # The rotations then finish as usual.
    assert (await rotate_dek(db, KUSHIRO, HISTORY, grace_seconds=0)).retired
    assert (await rotate_dek(db, KUSHIRO, "given_name", grace_seconds=0)).retired


async def test_the_function_is_the_towns_alone(
    db: Database, kushiro: tuple[str, list[str]]
) -> None:
    names = tenant_names(KUSHIRO, db.settings.role_prefix)
    kaga = tenant_names(KAGA, db.settings.role_prefix)
    async with db.catalog() as conn:
        row = await conn.fetchrow(
            "SELECT p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) AS owner, "
            "pg_get_userbyid(c.relowner) AS tables_owner, "
            "has_function_privilege($2, p.oid, 'EXECUTE') AS town, "
            "has_function_privilege($3, p.oid, 'EXECUTE') AS other_town, "
            "has_function_privilege('public', p.oid, 'EXECUTE') AS anyone "
            "FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace "
            "JOIN pg_class AS c ON c.relnamespace = n.oid AND c.relname = 'resident_history' "
            "WHERE n.nspname = $1 AND p.proname = 'reseal_envelopes'",
            names.schema,
            names.role,
            kaga.role,
        )
    assert row is not None
    assert row["prosecdef"]
    assert row["proconfig"] == ["search_path=pg_catalog, pg_temp"]
    assert row["owner"] == row["tables_owner"]  # the one that may write the history
    assert (row["town"], row["other_town"], row["anyone"]) == (True, False, False)


async def test_an_existing_town_gets_the_function_by_migrate(
    db: Database, app: Litestar, issuer: BuiltinIssuer, client: Any
) -> None:
    """A town migrated to t0011 before this revision: its history cannot be
    rotated (refused before any key changes) until ``tenants migrate``."""
    token = await _onboard(db, app, issuer, OBIHIRO)
    await _people(client, OBIHIRO, token, 2)
    names = tenant_names(OBIHIRO, db.settings.role_prefix)
    schema = f'"{names.schema}"'
    async with db.catalog() as conn:
        # As before t0012 (and t0013, which follows it): only the platform's
        # branch goes back; the domains' heads stay where they are.
        await conn.execute(f"DROP FUNCTION {schema}.{envelopes.RESEAL_FUNCTION}")
        await conn.execute(f"DROP FUNCTION {schema}.resident_read(uuid)")
        await conn.execute(
            f"UPDATE {schema}.alembic_version SET version_num = 't0011' WHERE version_num = $1",
            head("tenant"),
        )
        older = "+".join(
            sorted(
                await conn.fetchval(f"SELECT array_agg(version_num) FROM {schema}.alembic_version")
            )
        )
        await conn.execute(
            "UPDATE catalog.tenants SET schema_revision = $2 WHERE code = $1", OBIHIRO, older
        )
        keys_before = await conn.fetch(
            "SELECT name, version, state FROM catalog.data_keys WHERE tenant_code = $1 "
            "ORDER BY 1, 2",
            OBIHIRO,
        )
    with pytest.raises(errors.Conflict, match="tenants migrate"):
        await rotate_dek(db, OBIHIRO, HISTORY, grace_seconds=0)
    async with db.catalog() as conn:
        assert keys_before == await conn.fetch(
            "SELECT name, version, state FROM catalog.data_keys WHERE tenant_code = $1 "
            "ORDER BY 1, 2",
            OBIHIRO,
        )
    report = await tenancy.migrate_all(db)  # what `shared-gov tenants migrate` runs
    assert OBIHIRO in report.upgraded
    assert OBIHIRO not in report.failed
    async with db.tenant(names) as uow:
        assert await envelopes.can_reseal(uow)
    result = await rotate_dek(db, OBIHIRO, HISTORY, grace_seconds=0)
    assert (result.retired, result.reencrypted) == (True, 4)
