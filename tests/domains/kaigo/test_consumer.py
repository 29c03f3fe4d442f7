"""Determinations from resident events: the consumer reads the town's outbox (real
events written by the residents API), decides, writes each determination once,
supersedes what a later event changes, resumes after a crash, and the daily job
finds who reaches 65 tomorrow through the watch's index."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from shared_gov.clock import today_jst
from shared_gov.crypto.keyring import TownKeys
from shared_gov.db import Database
from shared_gov.domains.kaigo import consumer, job65
from shared_gov.domains.kaigo.models import InsuredPerson
from shared_gov.domains.kaigo.repository import determinations, insured, watch
from shared_gov.domains.kaigo.rules import (
    Category,
    Period,
    fiscal_year,
    premium_months,
    reaches_65_on,
)
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, auth
from tests.domains.kaigo.conftest import Register, days, queue_of, settle, visible


def _names(db: Database) -> Any:
    return tenant_names(KAGA, db.settings.role_prefix)


async def _insure(db: Database, resident_id: str, since: date = date(2015, 4, 1)) -> InsuredPerson:
    """The person is already in the town's 被保険者台帳 (as a confirmed gain leaves them)."""
    async with db.tenant(_names(db)) as uow:
        person = InsuredPerson(
            id=str(uuid.uuid4()),
            resident_id=resident_id,
            status="insured",
            category=Category.FIRST,
            insurer_town=KAGA,
            insured_number=await insured.next_number(uow),
            periods=[Period(KAGA, since, "move_in")],
        )
        await insured.insert(uow, person)
    return person


async def test_a_move_in_at_70_proposes_the_gain_on_the_move_in_day(
    db: Database, register_: Register
) -> None:
    moved = days(-3)
    person = await register_.move_in(birth_date="1955-05-05", move_date=moved.isoformat())
    await settle(db)
    (d,) = await queue_of(db, KAGA, person["id"])
    assert (d.kind, d.status) == ("gain", "open")
    assert d.proposal.date == moved
    assert d.proposal.reason == "move_in"
    assert "第10条" in d.proposal.legal_basis
    assert {q.code for q in d.proposal.questions} >= {"certificate", "income"}
    assert d.proposal.fiscal_year == fiscal_year(moved)
    assert d.proposal.premium_before == 0
    assert d.proposal.premium_after > 0
    assert d.deadline == max(moved, d.proposed_on) + timedelta(days=14)


async def test_a_move_in_under_65_proposes_nothing_but_is_watched(
    db: Database, register_: Register
) -> None:
    born = date(today_jst().year - 50, 6, 1)
    person = await register_.move_in(birth_date=born.isoformat())
    await settle(db)
    assert await queue_of(db, KAGA, person["id"]) == []
    async with db.tenant(_names(db)) as uow:
        assert person["id"] in await watch.reaching(uow, reaches_65_on(born))


async def test_replaying_the_outbox_writes_nothing_twice(db: Database, register_: Register) -> None:
    person = await register_.move_in(birth_date="1950-01-01")
    await settle(db)
    before = await queue_of(db, KAGA, person["id"])
    async with db.tenant(_names(db)) as uow:
        total = await determinations.count(uow)
        await watch.rewind(uow)
    assert await settle(db) == 0
    async with db.tenant(_names(db)) as uow:
        assert await determinations.count(uow) == total
    assert await queue_of(db, KAGA, person["id"]) == before


async def test_a_planned_move_out_proposes_a_provisional_loss_on_that_day(
    db: Database, register_: Register
) -> None:
    person = await register_.move_in(birth_date="1948-03-03", move_date="2015-04-01")
    await _insure(db, person["id"])
    await settle(db)
    planned = days(10)
    await register_.move(
        person,
        event="move_out_domestic",
        move_date=planned.isoformat(),
        notified_on=today_jst().isoformat(),
        forward_address="東京都千代田区千代田1-1",
    )
    await settle(db)
    (loss,) = [d for d in await queue_of(db, KAGA, person["id"]) if d.kind == "loss"]
    assert loss.proposal.date == planned  # domestic: the day itself (第11条第1項 ただし書)
    codes = [q.code for q in loss.proposal.questions]
    assert codes[:2] == ["actual_move_out_date", "covered_facility"]
    assert loss.deadline == planned + timedelta(days=14)


async def test_the_actual_move_out_date_supersedes_the_planned_one_across_a_month(
    db: Database, register_: Register, client: httpx.AsyncClient, kaigo_tokens: dict[str, str]
) -> None:
    """Planned for a few days ahead; the new town (Komatsu, one-stop) registers the
    move-in on the last day of last month: the old town's loss moves a month
    earlier, the open determination of the planned date is superseded and the new
    one says so."""
    person = await register_.move_in(birth_date="1947-06-06", move_date="2011-04-01")
    await _insure(db, person["id"], since=date(2011, 4, 1))
    await settle(db)
    today = today_jst()
    planned = today + timedelta(days=3)
    actual = today.replace(day=1) - timedelta(days=1)
    await register_.move(
        person,
        event="move_out_domestic",
        move_date=planned.isoformat(),
        notified_on=today.isoformat(),
        forward_address="石川県小松市小馬出町1-1",
        to_tenant=KOMATSU,
    )
    await settle(db)
    (first,) = [d for d in await queue_of(db, KAGA, person["id"]) if d.kind == "loss"]
    r = await client.post(
        f"/api/v1/tenants/{KOMATSU}/residents/one-stop-move-in",
        json={
            "from_tenant": KAGA,
            "resident_id": person["id"],
            "address": "石川県小松市小馬出町1-1",
            "postal_code": "9230000",
            "move_date": actual.isoformat(),
            "notified_on": today.isoformat(),
        },
        headers=auth(kaigo_tokens["komatsu_shimin"]),
    )
    assert r.status_code == 201, r.text
    await settle(db)
    losses = [d for d in await queue_of(db, KAGA, person["id"]) if d.kind == "loss"]
    old = next(d for d in losses if d.id == first.id)
    new = next(d for d in losses if d.id != first.id)
    assert (old.status, old.superseded_by) == ("superseded", new.id)
    assert (new.status, new.supersedes, new.proposal.date) == ("open", first.id, actual)
    year = fiscal_year(actual)
    assert new.proposal.premium_after == len(premium_months(date(2011, 4, 1), actual, year))
    assert first.proposal.premium_after == len(
        premium_months(date(2011, 4, 1), planned, fiscal_year(planned))
    )
    assert any("転入通知" in n for n in new.proposal.notes)
    assert "actual_move_out_date" not in {q.code for q in new.proposal.questions}
    assert new.transfer_id == r.headers["X-Transfer-ID"]
    # The new town: 第1号 from the same day.
    await settle(db, KOMATSU)
    (gain,) = await queue_of(db, KOMATSU, r.json()["id"])
    assert (gain.kind, gain.proposal.date) == ("gain", actual)


async def test_a_move_within_town_then_death(db: Database, register_: Register) -> None:
    person = await register_.move_in(birth_date="1945-12-24", move_date="2010-04-01")
    await _insure(db, person["id"], since=date(2010, 4, 1))
    await settle(db)
    person = await register_.move(
        person,
        event="move_within_town",
        address="石川県加賀市大聖寺南町9-9",
        move_date=days(-2).isoformat(),
        notified_on=days(-1).isoformat(),
    )
    await settle(db)
    kinds = [(d.kind, d.status) for d in await queue_of(db, KAGA, person["id"])]
    assert ("record_update", "open") in kinds
    died = days(-1)
    await register_.move(
        person, event="death", move_date=died.isoformat(), notified_on=today_jst().isoformat()
    )
    await settle(db)
    (loss,) = [d for d in await queue_of(db, KAGA, person["id"]) if d.kind == "loss"]
    assert loss.proposal.date == died + timedelta(days=1)  # the next day (第11条第1項)
    assert loss.proposal.reason == "death"


async def test_a_crash_mid_batch_leaves_nothing_and_the_next_pass_resumes(
    db: Database, register_: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = [await register_.move_in(birth_date="1951-07-07") for _ in range(3)]
    await settle(db)  # whatever came before is consumed
    more = [await register_.move_in(birth_date="1952-08-08") for _ in range(3)]
    calls = 0
    real = determinations.insert

    async def failing(uow: Any, d: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("crash")
        return await real(uow, d)

    await visible(db, KAGA, [p["id"] for p in more])
    monkeypatch.setattr(determinations, "insert", failing)
    with pytest.raises(RuntimeError, match="crash"):
        await consumer.consume(db, KAGA)
    monkeypatch.setattr(determinations, "insert", real)
    for p in more:  # the batch rolled back: nothing of it, the position unmoved
        assert await queue_of(db, KAGA, p["id"]) == []
    await settle(db)
    for p in [*people, *more]:
        assert [d.kind for d in await queue_of(db, KAGA, p["id"])] == ["gain"]


async def test_the_daily_job_finds_who_reaches_65_tomorrow_without_decrypting_everyone(
    db: Database, register_: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    tomorrow = days(1)
    born = tomorrow.replace(year=tomorrow.year - 65) + timedelta(days=1)
    assert reaches_65_on(born) == tomorrow
    person = await register_.move_in(birth_date=born.isoformat())
    # Others watched, reaching 65 on other days.
    for n in range(5):
        await register_.move_in(birth_date=born.replace(year=born.year + 1 + n).isoformat())
    await settle(db)  # the job ran up to tomorrow: it found the person
    (d,) = await queue_of(db, KAGA, person["id"])
    assert (d.kind, d.proposal.date, d.proposal.reason) == ("gain", tomorrow, "reached_65")
    assert d.source_key == f"reach65:{person['id']}:{tomorrow.isoformat()}"
    # The next day's run: one index lookup, a handful of decryptions, never the watch.
    decrypted: list[str] = []
    real = TownKeys.decrypt

    def counting(self: TownKeys, table: str, column: str, row_id: str, blob: Any) -> Any:
        if column == "turns_65_on":
            decrypted.append(row_id)
        return real(self, table, column, row_id, blob)

    monkeypatch.setattr(TownKeys, "decrypt", counting)
    async with db.tenant(_names(db)) as uow:
        total = await watch.watched(uow)
    await job65.run(db, KAGA, today=tomorrow)
    assert total >= 5
    assert len(decrypted) < total
    assert await job65.run(db, KAGA, today=tomorrow) == 0  # covered already


async def test_the_lag_is_on_metrics(
    db: Database, register_: Register, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register_.move_in(birth_date="1949-09-09")
    monkeypatch.setenv("SHARED_GOV_KAIGO_CONSUMER", "on")
    monkeypatch.setenv("SHARED_GOV_KAIGO_INTERVAL", "0.05")
    stop = asyncio.Event()
    loop = asyncio.create_task(consumer.run(db, stop))
    try:
        for _ in range(200):
            text = (await client.get("/metrics")).text
            found = re.search(
                r"^shared_gov_kaigo_consumer_last_pass_timestamp_seconds (\S+)$", text, re.M
            )
            if found and float(found.group(1)) > 0:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await loop
    kaigo = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("shared_gov_kaigo")
    )
    # Seconds behind the oldest unread event at the last pass: caught up, so a moment.
    assert 0.0 <= float(kaigo["shared_gov_kaigo_outbox_lag_seconds"]) < 5.0, kaigo
    assert float(kaigo["shared_gov_kaigo_event_lag_seconds_count"]) >= 1
    await settle(db)
    assert await consumer.lag(db, KAGA) == 0.0
