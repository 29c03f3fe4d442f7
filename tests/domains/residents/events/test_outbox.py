"""The outbox itself: late commits, rollbacks, privileges, what emit() refuses, imports
(and the batches an import checks apart: ids taken as checked, never misaligned).

These tests call ``events.emit`` (and an import) directly, without the audit
event the real paths record in the same transaction: ``audit verify`` would
rightly call such outbox rows ``outbox_without_event``. So they write only
in towns of this module's own (羽咋市, 白山市), never in the session's shared
Kaga, whose log other tests verify.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from typing import Any

import asyncpg
import pytest

from shared_gov import errors
from shared_gov.checkdigits import make_individual_number, make_serial
from shared_gov.db import Database
from shared_gov.domains.residents import events, transfer
from shared_gov.domains.residents.transfer import HEADER, import_csv, parse, to_csv_text
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from shared_gov.tenancy.names import TenantNames, tenant_names
from tests.conftest import KAGA

HAKUSAN = "172103"  # 白山市: only this module onboards it (the import)
HAKUI = "172073"  # 羽咋市: only this module onboards it (events emitted directly)


def _names(db: Database, code: str = HAKUI) -> TenantNames:
    return tenant_names(code, db.settings.role_prefix)


def _manifest(code: str, name: str, kana: str, population: int) -> Any:
    return parse_manifest(
        {
            "code": code,
            "name": name,
            "name_kana": kana,
            "prefecture": "石川県",
            "population": population,
            "departments": [{"code": "shimin", "name": "市民課"}],
        }
    )


@pytest.fixture(scope="module")
async def town(db: Database) -> str:
    """This module's town for events written without their audit event."""
    await tenancy.onboard(db, _manifest(HAKUI, "羽咋市", "はくいし", 20_000))
    return HAKUI


async def _read_until(
    db: Database, after: events.Cursor, wanted: set[str], code: str = HAKUI
) -> tuple[list[dict[str, Any]], events.Cursor]:
    """Read the feed as a consumer would until every id in ``wanted`` was served."""
    served: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while True:
        async with db.tenant(_names(db, code)) as uow:
            page = await events.read(uow, after, limit=events.MAX_LIMIT)
        served += page.events
        after = page.next
        if wanted <= {str(e["resident_id"]) for e in served}:
            return served, after
        if time.monotonic() > deadline:
            raise AssertionError("events did not arrive in time")
        await asyncio.sleep(0.05)


async def _end(db: Database) -> events.Cursor:
    """A position past every event committed so far."""
    async with db.pool.acquire() as conn:
        now = int(await conn.fetchval("SELECT pg_current_xact_id()"))
    cursor = events.START
    deadline = time.monotonic() + 30
    while cursor.xid < now:
        async with db.tenant(_names(db)) as uow:
            page = await events.read(uow, cursor, limit=events.MAX_LIMIT)
        cursor = page.next
        if time.monotonic() > deadline:
            raise AssertionError("the watermark did not move in time")
        if not page.more:
            await asyncio.sleep(0.05)
    return cursor


async def test_a_late_commit_is_not_skipped(db: Database, town: str) -> None:
    """The classic outbox bug: B (later id) commits and is read before A (earlier
    id) commits; a reader holding B's position would never see A. Here neither
    is served until A ends, and then both are, A first."""
    cursor = await _end(db)
    early, late = str(uuid.uuid4()), str(uuid.uuid4())
    names = _names(db)
    async with db.tenant(names) as first:
        await events.emit(first, events.CHANGED, early, ["address"])
        # A second transaction writes after the first and commits before it.
        async with db.tenant(names) as second:
            await events.emit(second, events.CHANGED, late, ["address"])
        async with db.tenant(names) as reader:
            page = await events.read(reader, cursor)
        served = {e["resident_id"] for e in page.events}
        assert late not in served
        assert early not in served
        # The cursor handed out now stays behind the open transaction.
        assert page.next.xid < int(await first.fetchval("SELECT pg_current_xact_id()"))
        cursor_while_open = page.next
    served_later, _ = await _read_until(db, cursor_while_open, {early, late})
    order = [e["resident_id"] for e in served_later if e["resident_id"] in (early, late)]
    assert order == [early, late]


async def test_a_rolled_back_event_is_never_served(db: Database, town: str) -> None:
    cursor = await _end(db)
    lost, kept = str(uuid.uuid4()), str(uuid.uuid4())
    with pytest.raises(RuntimeError):
        async with db.tenant(_names(db)) as uow:
            await events.emit(uow, events.DIED, lost, ["state"])
            raise RuntimeError("the change failed")
    async with db.tenant(_names(db)) as uow:
        await events.emit(uow, events.DIED, kept, ["state"])
    served, _ = await _read_until(db, cursor, {kept})
    assert lost not in {e["resident_id"] for e in served}


async def test_the_town_role_may_not_rewrite_events(db: Database, town: str) -> None:
    rid = str(uuid.uuid4())
    async with db.tenant(_names(db)) as uow:
        await events.emit(uow, events.CHANGED, rid, ["address"])
    for statement in (
        "UPDATE events SET type = 'resident.died' WHERE record_id = $1",
        "DELETE FROM events WHERE record_id = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.tenant(_names(db)) as uow:
                await uow.execute(statement, rid)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.tenant(_names(db)) as uow:
            await uow.execute("TRUNCATE events")


@pytest.mark.parametrize(
    ("fields", "ids", "problem"),
    [
        (["ヤマダ"], {}, "not fields of a resident record: \\(not names\\)"),
        (["address", "123456789018"], {}, "not fields of a resident record"),
        ([], {"individual_number": "123456789018"}, "a field of the record"),
        ([], {"household_no": make_serial(12)}, "withheld with the address"),
        ([], {"transfer_id": "石川県加賀市1-1"}, "shape"),
        ([], {"atena_no": "12345678"}, "shape"),
        ([], {"history_no": "0"}, "shape"),
        ([], {"to_town": "172066"}, "shape"),
        ([], {"note": "anything"}, "not a known kind of id"),
        ([], {"Transfer-Id": str(uuid.uuid4())}, "not an identifier"),
    ],
)
async def test_emit_refuses_values(
    db: Database, town: str, fields: list[str], ids: dict[str, str], problem: str
) -> None:
    async with db.tenant(_names(db)) as uow:
        with pytest.raises(ValueError, match=problem) as caught:
            await events.emit(uow, events.CHANGED, str(uuid.uuid4()), fields, **ids)
    # The message names the problem, never the value.
    for value in [*fields, *ids.values()]:
        if value not in events.RESIDENT_FIELDS:
            assert value not in str(caught.value)


async def test_emit_refuses_unknown_types_and_ids(db: Database, town: str) -> None:
    async with db.tenant(_names(db)) as uow:
        with pytest.raises(ValueError, match="unknown event type"):
            await events.emit(uow, "resident.exploded", str(uuid.uuid4()))
        with pytest.raises(ValueError, match="resident_id must be a UUID"):
            await events.emit(uow, events.CHANGED, "山田花子")


async def test_emit_accepts_ids_a_flow_needs(db: Database, town: str) -> None:
    """What a one-stop move between towns would attach."""
    rid, transfer = str(uuid.uuid4()), uuid.uuid4()
    cursor = await _end(db)
    async with db.tenant(_names(db)) as uow:
        await events.emit(
            uow,
            events.MOVED_OUT,
            rid,
            ["state", "removed_on", "forward_address"],
            transfer_id=str(transfer).upper(),
            to_town="172031",
            history_no="7",
        )
    served, _ = await _read_until(db, cursor, {rid})
    event = next(e for e in served if e["resident_id"] == rid)
    assert event["ids"] == {"transfer_id": str(transfer), "to_town": "172031", "history_no": "7"}
    assert event["fields"] == ["forward_address", "removed_on", "state"]


async def test_the_table_refuses_what_emit_would(db: Database, town: str) -> None:
    """CHECK constraints repeat emit()'s shape rules for any other writer."""
    for columns, values in (
        ("type, record_type, record_id", "'山田', 'Resident', gen_random_uuid()"),
        (
            "type, record_type, record_id, fields",
            "'resident.changed', 'Resident', gen_random_uuid(), '{石川県}'",
        ),
        (
            "type, record_type, record_id, fields",
            "'resident.changed', 'Resident', gen_random_uuid(), '{0761-1234}'",
        ),
        (
            "type, record_type, record_id, ids",
            "'resident.changed', 'Resident', gen_random_uuid(), '\"x\"'",
        ),
        # The record type is an identifier too: no value can be stored in its place.
        ("type, record_type, record_id", "'resident.changed', '石川県', gen_random_uuid()"),
    ):
        with pytest.raises(asyncpg.CheckViolationError):
            async with db.tenant(_names(db)) as uow:
                await uow.execute(f"INSERT INTO events ({columns}) VALUES ({values})")


def test_cursors_are_opaque_and_bound_to_their_town() -> None:
    cursor = events.Cursor(123456, 7)
    token = cursor.encode(KAGA)
    assert "123456" not in token
    assert events.Cursor.decode(token, KAGA) == cursor
    for bad in (token[:-2], token + "A", "", "%%%", events.Cursor(1, 1).encode("172031")):
        with pytest.raises(errors.DomainError) as caught:
            events.Cursor.decode(bad, KAGA)
        assert caught.value.status == 422


def _csv_row(n: int) -> list[str]:
    values = {
        "id": str(uuid.uuid4()),
        "atena_no": make_serial(8000 + n),
        "household_no": make_serial(9000 + n),
        "relationship": "世帯主",
        "family_name": "白山",
        "given_name": f"次郎{n}",
        "family_name_kana": "ハクサン",
        "given_name_kana": "ジロウ",
        "birth_date": "1948-03-03",
        "sex": "1",
        "address": f"石川県白山市倉光{n}丁目",
        "postal_code": "9240000",
        "individual_number": make_individual_number(f"{57_000_000_000 + n:011d}"),
        "juminhyo_code": f"{68_000_000_000 + n:011d}",
        "resident_type": "1",
        "state": "active" if n % 5 else "moved_out",
        "resident_since": "1980-04-01",
        "address_since": "1990-05-01",
        "notified_on": "1990-05-02",
        "removed_on": "" if n % 5 else "2020-01-01",
    }
    return [values.get(c, "") for c in HEADER]


async def test_an_import_writes_one_event_per_record(db: Database) -> None:
    await tenancy.onboard(db, _manifest(HAKUSAN, "白山市", "はくさんし", 110_000))
    rows = [_csv_row(n) for n in range(1, 251)]
    async with db.tenant(_names(db, HAKUSAN)) as uow:
        assert await import_csv(uow, io.StringIO(to_csv_text(rows))) == 250
    ids = {r[0] for r in rows}
    served, _ = await _read_until(db, events.START, ids, HAKUSAN)
    assert [e["resident_id"] for e in served] == [r[0] for r in rows]
    assert {e["type"] for e in served} == {events.REGISTERED}
    assert len({e["ids"]["import_id"] for e in served}) == 1
    assert [e["ids"]["atena_no"] for e in served] == [r[1] for r in rows]
    assert all(e["fields"] == [] and e["ids"]["history_no"] == "1" for e in served)


async def test_emit_many_checks_like_emit(db: Database, town: str) -> None:
    rids = [str(uuid.uuid4()), str(uuid.uuid4())]
    async with db.tenant(_names(db)) as uow:
        with pytest.raises(ValueError, match="one value per resident"):
            await events.emit_many(uow, events.REGISTERED, rids, each={"atena_no": ["00000019"]})
        with pytest.raises(ValueError, match="overlap"):
            await events.emit_many(
                uow,
                events.REGISTERED,
                rids,
                each={"history_no": ["1", "1"]},
                history_no="1",
            )
        with pytest.raises(ValueError, match="shape"):
            await events.emit_many(
                uow, events.REGISTERED, rids, each={"atena_no": ["00000019", "123456789018"]}
            )
        with pytest.raises(ValueError, match="withheld"):
            await events.emit_many(
                uow, events.REGISTERED, rids, each={"household_no": ["00000019", "00000027"]}
            )
        with pytest.raises(ValueError, match="resident_id"):
            await events.emit_many(uow, events.REGISTERED, ["山田花子"])


def test_an_import_refuses_other_atena_lengths() -> None:
    """Events (and search, and the sequences) rely on 8-digit 宛名番号."""
    row = _csv_row(1)
    row[HEADER.index("atena_no")] = make_serial(1)[:-1] + "0" + make_serial(1)[-1]
    residents, problems = parse(io.StringIO(to_csv_text([row])))
    assert residents == []
    assert ("atena_no", "must be 8 digits") in {(p.column, p.reason) for p in problems}


# --- bulk batches (imports) -----------------------------------------------------------


def test_events_take_checked_atena_numbers_as_they_are() -> None:
    """batch() checks ``each`` values and takes ``checked_each`` ones (the import's
    宛名番号, checked by the events' own rule when the file is read) as they are."""
    rids = [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]
    atena = [make_serial(1), make_serial(2)]
    check = events.id_check("atena_no")
    assert [check(a) for a in atena] == atena
    assert check("1234567") is None
    assert check(make_serial(1)[:-1] + "0") is None
    assert all(transfer._EVENT_ATENA(a) for a in atena)
    trusted = events.batch(
        events.REGISTERED, rids, checked_each={"atena_no": atena}, import_id=rids[0]
    )
    checked = events.batch(events.REGISTERED, rids, each={"atena_no": atena}, import_id=rids[0])
    assert trusted == checked
    with pytest.raises(ValueError, match="shape"):
        events.batch(events.REGISTERED, rids, each={"atena_no": ["00000018", atena[1]]})
    with pytest.raises(ValueError, match="overlap"):
        events.batch(
            events.REGISTERED, rids, each={"atena_no": atena}, checked_each={"atena_no": atena}
        )
    with pytest.raises(ValueError, match="one value per resident"):
        events.batch(events.REGISTERED, rids, checked_each={"atena_no": atena[:1]})
    with pytest.raises(ValueError, match=r"is a field"):
        events.batch(events.REGISTERED, rids, checked_each={"phone": ["x", "y"]})


async def test_event_ids_never_misalign() -> None:
    """Id lists travel as comma-separated texts: a value with a comma (which no
    checked id has) is refused before anything is sent."""
    rids = [str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]
    bad = events.batch(events.REGISTERED, rids, checked_each={"atena_no": ["1,2", "3"]})
    with pytest.raises(ValueError, match="comma"):
        await events.emit_batch(None, bad)  # type: ignore[arg-type]  # refused before any SQL
