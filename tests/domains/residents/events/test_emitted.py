"""Which operation writes which event, and that events hold ids and field names only."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.domains.residents import events, service
from shared_gov.domains.residents.models import Resident
from tests.conftest import KAGA, auth
from tests.domains.residents.events.conftest import of, start, wait_for
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"
ANY = {"If-Match": "*"}


def _days_ago(n: int) -> str:
    return (today_jst() - timedelta(days=n)).isoformat()


async def _register(client: httpx.AsyncClient, token: str, **overrides: Any) -> dict[str, Any]:
    r = await client.post(f"{BASE}/residents", json=resident_body(**overrides), headers=auth(token))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _move(
    client: httpx.AsyncClient, token: str, resident_id: str, event: str, **fields: Any
) -> dict[str, Any]:
    body = {"event": event, "move_date": _days_ago(2), "notified_on": _days_ago(1), **fields}
    r = await client.post(
        f"{BASE}/residents/{resident_id}/moves", json=body, headers=auth(token, **ANY)
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def _only(found: list[dict[str, Any]], resident_id: str) -> dict[str, Any]:
    mine = of(found, resident_id)
    assert len(mine) == 1, mine
    return mine[0]


async def test_every_operation_writes_its_event(
    client: httpx.AsyncClient, db: Database, tokens: dict[str, str], feed_tokens: dict[str, str]
) -> None:
    staff, reader = tokens["kaga"], feed_tokens["kaga"]
    cursor = await start(client, reader, db)

    # 記載: 転入 is resident.moved_in, 出生 and 職権記載 are resident.registered.
    a = await _register(client, staff, event="move_in_domestic")
    b = await _register(
        client, staff, event="birth", birth_date=_days_ago(5), move_date=_days_ago(5)
    )
    c = await _register(client, staff, event="ex_officio_entry")
    d = await _register(client, staff, event="move_in_from_abroad")
    found, cursor = await wait_for(
        client, reader, cursor, lambda es: all(of(es, x["id"]) for x in (a, b, c, d))
    )
    for person, kind in ((a, "moved_in"), (b, "registered"), (c, "registered"), (d, "moved_in")):
        event = _only(found, person["id"])
        assert event["type"] == "resident." + kind
        assert event["fields"] == []
        assert event["ids"] == {"atena_no": person["atena_no"], "history_no": "1"}

    # 転居, then 氏名変更 of the same person: one event each, with the changed names.
    await _move(client, staff, a["id"], "move_within_town", address="石川県加賀市山代温泉2-2")
    await _move(
        client,
        staff,
        a["id"],
        "name_change",
        family_name="佐藤",
        family_name_kana="サトウ",
    )
    found, cursor = await wait_for(client, reader, cursor, lambda es: len(of(es, a["id"])) == 2)
    moved, renamed = of(found, a["id"])
    assert moved["type"] == "resident.moved_within_town"
    assert {"address", "previous_address", "address_since"} <= set(moved["fields"])
    assert "family_name" not in moved["fields"]
    assert moved["ids"]["history_no"] == "2"
    assert renamed["type"] == "resident.changed"
    assert {"family_name", "family_name_kana"} <= set(renamed["fields"])
    assert "address" not in renamed["fields"]
    assert renamed["ids"]["history_no"] == "3"

    # 世帯分離 of a member; 世帯主変更 writes an event for both people.
    household = a["household_no"]
    e = await _register(client, staff, household_no=household, relationship="子")
    f = await _register(client, staff, household_no=household, relationship="妻")
    await _move(client, staff, e["id"], "household_split")
    await _move(client, staff, f["id"], "head_of_household_change", previous_head_relationship="夫")
    found, cursor = await wait_for(
        client,
        reader,
        cursor,
        lambda es: len(of(es, e["id"])) == 2 and len(of(es, f["id"])) == 2 and of(es, a["id"]),
    )
    split = of(found, e["id"])[1]
    assert split["type"] == "resident.changed"
    assert {"household_no", "relationship"} <= set(split["fields"])
    new_head = of(found, f["id"])[1]
    former_head = _only(found, a["id"])
    for event in (new_head, former_head):
        assert event["type"] == "resident.changed"
        assert "relationship" in event["fields"]
    assert former_head["ids"]["history_no"] == "4"

    # 消除: 転出 (domestic, abroad) and 職権消除 are resident.moved_out; 死亡 is died.
    await _move(client, staff, a["id"], "move_out_domestic", forward_address="東京都千代田区1-1")
    await _move(client, staff, b["id"], "death")
    await _move(client, staff, c["id"], "ex_officio_removal")
    await _move(client, staff, d["id"], "move_out_abroad", forward_address="大韓民国")
    found, cursor = await wait_for(
        client, reader, cursor, lambda es: all(of(es, x["id"]) for x in (a, b, c, d))
    )
    for person, kind in ((a, "moved_out"), (b, "died"), (c, "moved_out"), (d, "moved_out")):
        event = _only(found, person["id"])
        assert event["type"] == "resident." + kind
        assert {"state", "removed_on"} <= set(event["fields"])
    assert "forward_address" in _only(found, a["id"])["fields"]

    # 支援措置 set: resident.changed naming the flag, no history entry.
    r = await client.put(
        f"{BASE}/residents/{e['id']}/support-measure",
        json={"active": True},
        headers=auth(staff, **ANY),
    )
    assert r.status_code == 200, r.text
    found, cursor = await wait_for(client, reader, cursor, lambda es: of(es, e["id"]))
    flagged = _only(found, e["id"])
    assert flagged["type"] == "resident.changed"
    assert flagged["fields"] == ["support_measure"]
    assert flagged["ids"] == {"atena_no": e["atena_no"]}


def _personal_values(body: dict[str, Any]) -> list[str]:
    """Every personal value of a registration body, as it could appear in text."""
    skip = {"event", "sex", "relationship", "resident_type", "household_no"}
    return [str(v) for k, v in body.items() if k not in skip and v is not None]


async def test_stored_events_hold_no_personal_value(
    client: httpx.AsyncClient, db: Database, tokens: dict[str, str], feed_tokens: dict[str, str]
) -> None:
    """The whole stored row, for every event of a person's life, holds none of their values."""
    staff, reader = tokens["kaga"], feed_tokens["kaga"]
    cursor = await start(client, reader, db)
    # Dates far from today so that the event's own timestamp cannot match them.
    body = resident_body(
        family_name="榊原",
        given_name="透",
        family_name_kana="サカキバラ",
        given_name_kana="トオル",
        birth_date="1961-07-23",
        address="石川県加賀市動橋町タ-7",
        postal_code="9220331",
        phone="0761-99-1234",
        former_surname="大河内",
        domicile="石川県金沢市広坂1-1",
        previous_address="富山県高岡市末広町9-9",
        move_date=_days_ago(40),
        notified_on=_days_ago(38),
        resident_since="1999-09-09",
    )
    r = await client.post(f"{BASE}/residents", json=body, headers=auth(staff))
    assert r.status_code == 201, r.text
    person = r.json()
    new_address, new_name = "石川県加賀市山中温泉薬師町ム-3", "御手洗"
    for event, extra in (
        ("move_within_town", {"address": new_address, "postal_code": "9220122"}),
        ("name_change", {"family_name": new_name, "family_name_kana": "ミタライ"}),
        ("death", {}),
    ):
        await client.post(
            f"{BASE}/residents/{person['id']}/moves",
            json={
                "event": event,
                "move_date": _days_ago(30),
                "notified_on": _days_ago(29),
                **extra,
            },
            headers=auth(staff, **ANY),
        )
    await wait_for(client, reader, cursor, lambda es: len(of(es, person["id"])) == 4)

    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT row_to_json(e)::text AS doc FROM t_{KAGA}.events AS e WHERE record_id = $1",
            person["id"],
        )
    assert len(rows) == 4
    values = [
        *_personal_values(body),
        new_address,
        new_name,
        "9220122",
        "ミタライ",
        _days_ago(30),
        _days_ago(29),
    ]
    for row in rows:
        doc = row["doc"]
        leaked = [v for v in values if v in doc]
        assert not leaked, f"personal values in a stored event: {leaked}"
        stored = json.loads(doc)
        assert set(stored["fields"]) <= events.RESIDENT_FIELDS
        assert set(stored["ids"]) <= {"atena_no", "history_no"}


async def test_a_failure_after_the_change_leaves_neither_change_nor_event(
    client: httpx.AsyncClient,
    db: Database,
    tokens: dict[str, str],
    feed_tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    staff, reader = tokens["kaga"], feed_tokens["kaga"]
    person = await _register(client, staff)
    cursor = await start(client, reader, db)
    before = await _count(db, "residents")

    def boom(*_args: Any, **_kwargs: Any) -> None:
        # Runs after the record, its history and its event were written.
        raise RuntimeError("failure after the change")

    monkeypatch.setattr(service, "_touched", boom)
    body = resident_body()
    r = await client.post(f"{BASE}/residents", json=body, headers=auth(staff))
    assert r.status_code == 500
    r = await client.post(
        f"{BASE}/residents/{person['id']}/moves",
        json={
            "event": "move_within_town",
            "address": "石川県加賀市大聖寺東町9-9",
            "move_date": _days_ago(1),
            "notified_on": _days_ago(1),
        },
        headers=auth(staff, **ANY),
    )
    assert r.status_code == 500
    monkeypatch.undo()

    assert await _count(db, "residents") == before
    current = await client.get(f"{BASE}/residents/{person['id']}", headers=auth(staff))
    assert current.json()["version"] == 1
    # A marker event committed afterwards: once it is served, anything the
    # failed requests had left would have been served before it.
    marker = await _register(client, staff)
    found, _ = await wait_for(client, reader, cursor, lambda es: of(es, marker["id"]))
    assert [e["resident_id"] for e in found] == [marker["id"]]


async def _count(db: Database, table: str) -> int:
    async with db.pool.acquire() as conn:
        value: int = await conn.fetchval(f"SELECT count(*) FROM t_{KAGA}.{table}")
    return value


def test_changed_fields_leave_bookkeeping_out() -> None:
    person = Resident(
        id="7d1f7f7e-1111-4111-8111-111111111111",
        atena_no="00000019",
        version=1,
        state="active",
        resident_type="japanese",
        household_no="00000019",
        relationship="世帯主",
        family_name="山田",
        given_name="花子",
        family_name_kana="ヤマダ",
        given_name_kana="ハナコ",
        birth_date=date(1980, 4, 1),
        sex="female",
        address="石川県加賀市1-1",
        postal_code=None,
        individual_number=None,
        juminhyo_code=None,
        phone=None,
        former_surname=None,
        domicile=None,
        previous_address=None,
        forward_address=None,
        resident_since=date(2020, 1, 1),
        address_since=date(2020, 1, 1),
        notified_on=date(2020, 1, 2),
        removed_on=None,
        history_no=1,
    )
    after = replace(person, address="石川県加賀市2-2", version=2, history_no=2)
    assert events.changed_fields(person, after) == ["address"]
