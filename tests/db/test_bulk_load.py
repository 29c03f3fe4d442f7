"""Loading an empty town with its indexes and foreign keys set aside (shared_gov.db.bulk).

What must hold: the town's tables end with exactly the indexes and
constraints they had (only rebuilt); a row that breaks a foreign key still
fails the load, and then nothing of it stays, even for a caller that goes on
and commits; and where setting aside is not possible or not wise (rows in
the tables, someone else using them, a login role that does not own them)
the load simply runs with its checks in place.
"""

from __future__ import annotations

import asyncio
import io
import uuid

import asyncpg
import pytest

from shared_gov.db import Database, TenantUnitOfWork, bulk
from shared_gov.db.engine import binding_sql
from shared_gov.db.urls import plain_url
from shared_gov.domains.residents import transfer
from shared_gov.domains.residents.transfer import import_csv
from shared_gov.tenancy.names import tenant_names
from tests.domains.residents.import_files import csv_text, file_row, onboard_town, town_counts

FRESH, BROKEN, FILLED, BUSY = "472026", "472034", "472042", "472051"
FAILING, STRANGER = "472069", "472077"
UNVALIDATED, RACING, LOGGING = "472085", "472093", "472107"

_CATALOG = """
SELECT 'constraint ' || c.conname AS name, c.oid::int8 AS oid, pg_get_constraintdef(c.oid) AS def
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1
UNION ALL
SELECT 'index ' || x.relname, x.oid::int8, pg_get_indexdef(x.oid)
FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = x.relnamespace WHERE n.nspname = $1
"""


async def _catalog(db: Database, code: str) -> dict[str, tuple[int, str]]:
    """Every constraint and index of the town's schema: name -> (oid, definition)."""
    schema = tenant_names(code, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        rows = await conn.fetch(_CATALOG, schema)
    return {r["name"]: (r["oid"], r["def"]) for r in rows}


def _definitions(catalog: dict[str, tuple[int, str]]) -> dict[str, str]:
    return {name: definition for name, (_, definition) in catalog.items()}


async def _assert_bound(uow: TenantUnitOfWork) -> None:
    """The transaction is the town's again, with the lock timeout it had (none)."""
    assert await uow.fetchval("SELECT current_user") == uow.names.role
    assert await uow.fetchval("SELECT current_setting('lock_timeout')") == "0"
    assert await uow.fetchval("SELECT current_setting('search_path')") == uow.names.schema


def _rebuilt(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> set[str]:
    return {name for name, (oid, _) in before.items() if after[name][0] != oid}


async def test_an_empty_towns_import_ends_with_every_index_and_foreign_key(db: Database) -> None:
    """The import of a town joining the platform sets aside the secondary indexes and
    foreign keys of the tables it fills and puts exactly the same ones back."""
    await onboard_town(db, FRESH)
    before = await _catalog(db, FRESH)
    rows = [file_row(700 + n) for n in range(30)]
    async with db.tenant(tenant_names(FRESH, db.settings.role_prefix)) as uow:
        assert await import_csv(uow, io.StringIO(csv_text(rows)), workers=0) == 30
        await _assert_bound(uow)
        # The rebuilt indexes serve the searches (a blind index, a household).
        assert (
            await uow.fetchval(
                "SELECT count(*) FROM residents WHERE household_no = $1", rows[3]["household_no"]
            )
            == 3
        )
    after = await _catalog(db, FRESH)
    assert _definitions(after) == _definitions(before)
    rebuilt = _rebuilt(before, after)
    # The foreign keys and the residents' secondary indexes were dropped and made
    # again (new oids); primary keys and UNIQUE constraints were kept as they were.
    assert {
        "constraint residents_household_no_fkey",
        "constraint resident_history_resident_id_fkey",
        "index residents_household",
        "index residents_bidx_individual_number",
        "index residents_bidx_kana_birth_alt",
    } <= rebuilt
    assert not {n for n in rebuilt if n.endswith(("_pkey", "_key"))}
    assert (await town_counts(db, FRESH))[:3] == (30, 30, 11)


async def test_a_row_breaking_a_foreign_key_still_fails_and_leaves_nothing(db: Database) -> None:
    """With the foreign keys set aside, a history entry of no resident is caught when
    they are added again: the load fails, and a caller that catches the error and
    commits keeps neither the row nor a table without its checks."""
    await onboard_town(db, BROKEN)
    before = await _catalog(db, BROKEN)
    names = tenant_names(BROKEN, db.settings.role_prefix)
    async with db.tenant(names) as uow:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with uow.load_into_empty(transfer.LOADED_TABLES) as aside:
                assert aside
                await uow.execute(
                    "INSERT INTO resident_history (resident_id, history_no, reason, move_date, "
                    "notified_on, processed_on, snapshot) "
                    "VALUES ($1, 1, '\\x00', '\\x00', '\\x00', current_date, '\\x00')",
                    uuid.uuid4(),
                )
        assert await uow.fetchval("SELECT count(*) FROM resident_history") == 0
        await _assert_bound(uow)
        # The transaction is usable and commits (the error was swallowed).
    after = await _catalog(db, BROKEN)
    assert after == before  # the very same objects: the drop was rolled back
    assert await town_counts(db, BROKEN) == (0, 0, 0, 0)


async def test_an_error_in_the_load_rolls_back_the_setting_aside(db: Database) -> None:
    await onboard_town(db, FAILING)
    before = await _catalog(db, FAILING)
    async with db.tenant(tenant_names(FAILING, db.settings.role_prefix)) as uow:
        with pytest.raises(RuntimeError, match="stop"):
            async with uow.load_into_empty(transfer.LOADED_TABLES) as aside:
                assert aside
                await uow.execute("INSERT INTO households (household_no) VALUES ('10000009')")
                raise RuntimeError("stop")
        assert await uow.fetchval("SELECT count(*) FROM households") == 0
        await _assert_bound(uow)
    assert await _catalog(db, FAILING) == before


async def test_tables_with_rows_keep_their_checks(db: Database) -> None:
    """A town that already has records is loaded with every check in place (setting
    aside would lock its staff out of its register for the whole load)."""
    await onboard_town(db, FILLED)
    names = tenant_names(FILLED, db.settings.role_prefix)
    async with db.tenant(names) as uow:
        await import_csv(uow, io.StringIO(csv_text([file_row(800)])), workers=0)
    before = await _catalog(db, FILLED)
    async with db.tenant(names) as uow:
        async with uow.load_into_empty(transfer.LOADED_TABLES) as aside:
            assert not aside
        await _assert_bound(uow)
        assert await import_csv(uow, io.StringIO(csv_text([file_row(803)])), workers=0) == 1
    assert await _catalog(db, FILLED) == before


async def test_tables_in_use_elsewhere_keep_their_checks(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone reading the town's residents in an open transaction: the load does not
    wait for them beyond LOCK_WAIT, it loads with its checks in place."""
    await onboard_town(db, BUSY)
    names = tenant_names(BUSY, db.settings.role_prefix)
    monkeypatch.setattr(bulk, "LOCK_WAIT", "200ms")
    before = await _catalog(db, BUSY)
    assert db.settings.database_url
    reader = await asyncpg.connect(plain_url(db.settings.database_url))
    try:
        await reader.execute(f"BEGIN; SELECT FROM {names.schema}.residents LIMIT 1")
        async with db.tenant(names) as uow:
            started = asyncio.get_running_loop().time()
            async with uow.load_into_empty(transfer.LOADED_TABLES) as aside:
                assert not aside
            assert asyncio.get_running_loop().time() - started < 5
            await _assert_bound(uow)
            assert await import_csv(uow, io.StringIO(csv_text([file_row(810)])), workers=0) == 1
    finally:
        await reader.close()
    assert await _catalog(db, BUSY) == before
    assert (await town_counts(db, BUSY))[0] == 1


async def test_a_login_role_that_does_not_own_the_tables_keeps_the_checks(db: Database) -> None:
    """A deployment whose login role is not the schemas' owner: setting aside is refused
    by PostgreSQL, and the transaction goes on as if it had not been tried."""
    await onboard_town(db, STRANGER)
    names = tenant_names(STRANGER, db.settings.role_prefix)
    stranger = f"{db.settings.role_prefix}_bulk_stranger"
    assert db.settings.database_url
    url = plain_url(db.settings.database_url)
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'CREATE ROLE "{stranger}" LOGIN')
        await admin.execute(f'GRANT "{names.role}" TO "{stranger}"')
        database = await admin.fetchval("SELECT current_database()")
        await admin.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{stranger}"')
        conn = await asyncpg.connect(url, user=stranger)
        try:
            await conn.execute(binding_sql(names))
            async with bulk.empty_tables_load(conn, names, transfer.LOADED_TABLES) as aside:
                assert not aside
                await conn.execute("INSERT INTO households (household_no) VALUES ('10000009')")
            assert await conn.fetchval("SELECT count(*) FROM households") == 1
            assert await conn.fetchval("SELECT current_user") == names.role
            await conn.execute("ROLLBACK")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP OWNED BY "{stranger}"')
        await admin.execute(f'DROP ROLE "{stranger}"')
        await admin.close()


async def test_a_foreign_key_not_validated_keeps_its_row_checks(db: Database) -> None:
    """A NOT VALID foreign key (as a migration may add one) would come back NOT VALID,
    leaving the loaded rows unchecked: it is not set aside, and still checks each row."""
    await onboard_town(db, UNVALIDATED)
    names = tenant_names(UNVALIDATED, db.settings.role_prefix)
    key = "resident_history_resident_id_fkey"
    assert db.settings.database_url
    admin = await asyncpg.connect(plain_url(db.settings.database_url))
    try:
        await admin.execute(
            f"ALTER TABLE {names.schema}.resident_history DROP CONSTRAINT {key}; "
            f"ALTER TABLE {names.schema}.resident_history ADD CONSTRAINT {key} "
            f"FOREIGN KEY (resident_id) REFERENCES {names.schema}.residents (id) NOT VALID"
        )
    finally:
        await admin.close()
    before = await _catalog(db, UNVALIDATED)
    async with db.tenant(names) as uow:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with uow.load_into_empty(transfer.LOADED_TABLES) as aside:
                assert aside  # the other key and the indexes were set aside
                await uow.execute(
                    "INSERT INTO resident_history (resident_id, history_no, reason, move_date, "
                    "notified_on, processed_on, snapshot) "
                    "VALUES ($1, 1, '\\x00', '\\x00', '\\x00', current_date, '\\x00')",
                    uuid.uuid4(),
                )
    assert await _catalog(db, UNVALIDATED) == before


async def test_a_registration_waiting_on_the_import_is_not_failed(db: Database) -> None:
    """A registration holding a lock on households while it waits for the registration
    lock the import holds: the import gives up setting aside (LOCK_WAIT is below
    PostgreSQL's deadlock_timeout), loads with its checks, and the registration goes on
    once the import commits, instead of being failed as a deadlock."""
    await onboard_town(db, RACING)
    names = tenant_names(RACING, db.settings.role_prefix)
    assert db.settings.database_url
    registration = await asyncpg.connect(plain_url(db.settings.database_url))
    try:
        # What a registration does: its household first, then the shared lock.
        await registration.execute(binding_sql(names))
        await registration.execute("INSERT INTO households (household_no) VALUES ('10000009')")
        async with db.tenant(names) as uow:
            assert await transfer._town_is_empty(uow)  # the import's registration lock
            waiting = asyncio.ensure_future(
                registration.execute(
                    "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))",
                    f"{RACING}:registration",
                )
            )
            await asyncio.sleep(0.1)
            assert not waiting.done()
            async with uow.load_into_empty(transfer.LOADED_TABLES) as aside:
                assert not aside
            await _assert_bound(uow)
        await asyncio.wait_for(waiting, 10)  # no DeadlockDetectedError
        await registration.execute("COMMIT")
    finally:
        await registration.close()
    assert (await town_counts(db, RACING))[2] == 1


async def test_a_failure_right_after_setting_aside_rolls_it_back(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even the log line after the drops failing (a closed stderr) leaves the tables
    with all their indexes and keys for a caller that goes on and commits."""
    await onboard_town(db, LOGGING)
    names = tenant_names(LOGGING, db.settings.role_prefix)
    before = await _catalog(db, LOGGING)

    class ClosedStderr:
        def info(self, event: str, **values: object) -> None:
            raise BrokenPipeError(event)

    monkeypatch.setattr(bulk, "log", ClosedStderr())
    async with db.tenant(names) as uow:
        with pytest.raises(BrokenPipeError):
            async with uow.load_into_empty(transfer.LOADED_TABLES):
                pytest.fail("the body must not run")  # pragma: no cover
        await _assert_bound(uow)
    assert await _catalog(db, LOGGING) == before
