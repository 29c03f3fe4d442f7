"""住所地特例 across towns, end to end through HTTP (issue #17).

A Kaga resident moves into a covered facility in Komatsu (both tenants): Kaga's
determination is "no loss; Kaga stays insurer", Komatsu's is "not enrolled in
Komatsu; 住所地特例者 of Kaga, facility F". Kaga's confirmation tells Komatsu —
the identity link (the one-stop move's transfer id), Kaga's insured number, the
facility — in one transaction over both towns, written in both towns' logs; when
Komatsu's side cannot take it, nothing happens in either. A 地域密着型 facility
gives the ordinary loss and gain.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.domains.kaigo.models import Determination
from tests.conftest import KAGA, KOMATSU, auth
from tests.domains.kaigo.conftest import Register, queue_of, settle

Q = "kaigo.qualification"


def _base(town: str) -> str:
    return f"/api/v1/tenants/{town}/kaigo"


async def _events(db: Database, tenant: str, request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2 "
            "ORDER BY occurred_at",
            tenant,
            request_id,
        )
    return [dict(r) for r in rows]


async def _facility(
    client: httpx.AsyncClient, token: str, kind: str, places: int
) -> dict[str, Any]:
    address = f"石川県小松市施設町{uuid.uuid4().int % 1_000_000}-1"
    r = await client.post(
        f"{_base(KOMATSU)}/facilities",
        json={"name": f"施設{kind}{places}", "address": address, "kind": kind, "places": places},
        headers=auth(token, Q),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _confirm(
    client: httpx.AsyncClient, town: str, token: str, d: Determination, **headers: str
) -> httpx.Response:
    url = f"{_base(town)}/determinations/{d.id}"
    etag = (await client.get(url, headers=auth(token, Q))).headers["ETag"]
    return await client.post(
        url + "/confirm", json={}, headers=auth(token, Q, **{"If-Match": etag, **headers})
    )


async def _insured_kaga_resident(
    db: Database, client: httpx.AsyncClient, register_: Register, tokens: dict[str, str]
) -> dict[str, Any]:
    person = await register_.move_in(birth_date="1940-08-15", move_date="2005-04-01")
    await settle(db)
    (gain,) = await queue_of(db, KAGA, person["id"])
    assert (await _confirm(client, KAGA, tokens["kaga"], gain)).status_code == 200
    return person


async def _move_to(
    db: Database,
    client: httpx.AsyncClient,
    register_: Register,
    tokens: dict[str, str],
    person: dict[str, Any],
    address: str,
) -> tuple[dict[str, Any], str]:
    """Kaga registers the move-out naming Komatsu; Komatsu registers the move-in one-stop."""
    today = today_jst()
    await register_.move(
        person,
        event="move_out_domestic",
        move_date=today.isoformat(),
        notified_on=today.isoformat(),
        forward_address=address,
        to_tenant=KOMATSU,
    )
    await settle(db)
    r = await client.post(
        f"/api/v1/tenants/{KOMATSU}/residents/one-stop-move-in",
        json={
            "from_tenant": KAGA,
            "resident_id": person["id"],
            "address": address,
            "postal_code": "9230000",
            "move_date": today.isoformat(),
            "notified_on": today.isoformat(),
        },
        headers=auth(tokens["komatsu_shimin"]),
    )
    assert r.status_code == 201, r.text
    await settle(db, KAGA)
    await settle(db, KOMATSU)
    arrived: dict[str, Any] = r.json()
    return arrived, r.headers["X-Transfer-ID"]


async def test_tokurei_across_two_towns_with_both_logs(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    tokens = kaigo_tokens
    facility = await _facility(client, tokens["komatsu"], "tokuyo", 80)
    assert facility["covered"] is True
    person = await _insured_kaga_resident(db, client, register_, tokens)
    arrived, transfer = await _move_to(db, client, register_, tokens, person, facility["address"])

    # Kaga: the planned move-out's 住所地特例, superseded by the confirmed one.
    kaga = [d for d in await queue_of(db, KAGA, person["id"]) if d.kind == "tokurei_keep"]
    planned = next(d for d in kaga if d.transfer_id is None)
    actual = next(d for d in kaga if d.transfer_id == transfer)
    assert (planned.status, planned.superseded_by) == ("superseded", actual.id)
    assert actual.status == "open"
    assert actual.facility is not None
    assert actual.facility.facility_id == facility["id"]
    assert actual.proposal.premium_before == actual.proposal.premium_after  # Kaga keeps charging
    assert "第13条" in actual.proposal.legal_basis
    assert actual.notify_town == KOMATSU
    # Komatsu: not enrolled; a 住所地特例者 of Kaga, waiting for Kaga's notice.
    (incoming,) = await queue_of(db, KOMATSU, arrived["id"])
    assert incoming.kind == "tokurei_incoming"
    assert incoming.proposal.insurer_town == KAGA
    assert incoming.proposal.premium_after == 0
    assert incoming.transfer_id == transfer

    rid = f"tokurei-{uuid.uuid4().hex[:10]}"
    r = await _confirm(client, KAGA, tokens["kaga"], actual, **{"X-Request-ID": rid})
    assert r.status_code == 200, r.text

    # Kaga's record: still insured by Kaga, living in Komatsu's facility.
    found = await client.post(
        f"{_base(KAGA)}/insured/search",
        json={"resident_id": person["id"]},
        headers=auth(tokens["kaga"], Q),
    )
    (mine,) = found.json()["insured"]
    assert mine["status"] == "insured"
    assert mine["periods"][-1]["lost"] is None
    assert mine["tokurei"]["insurer_town"] == KAGA
    assert mine["tokurei"]["facility_id"] == facility["id"]
    assert mine["tokurei"]["facility_town"] == KOMATSU
    # Komatsu's view of its determination now shows Kaga's notice.
    shown = await client.get(
        f"{_base(KOMATSU)}/determinations/{incoming.id}", headers=auth(tokens["komatsu"], Q)
    )
    assert shown.json()["notice"] == {
        "insurer_town": KAGA,
        "insurer_number": mine["insured_number"],
    }

    # Both towns' logs, written in the same transaction: who (Kaga's staff), what
    # crossed, each subject hashed under its own town's key, no value.
    (kaga_event,) = await _events(db, KAGA, rid)
    (komatsu_event,) = await _events(db, KOMATSU, rid)
    assert (kaga_event["action"], kaga_event["outcome"]) == (
        "kaigo.determination.confirm",
        "allowed",
    )
    assert kaga_event["reason"].startswith(f"to town {KOMATSU}")
    assert (komatsu_event["action"], komatsu_event["outcome"]) == (
        "kaigo.tokurei.notice",
        "allowed",
    )
    assert komatsu_event["reason"].startswith(f"from town {KAGA}")
    assert (komatsu_event["actor"], komatsu_event["actor_tenant"]) == ("kk-0001", KAGA)
    assert komatsu_event["fields"] == ["Determination.facility", "InsuredPerson.insured_number"]
    komatsu_keys = await db.town_keys(KOMATSU)
    assert komatsu_event["subjects"] == [komatsu_keys.index("audit_subject", arrived["id"])]  # type: ignore[attr-defined]
    for event in (kaga_event, komatsu_event):
        flat = repr(event)
        assert mine["insured_number"] not in flat
        assert facility["address"] not in flat
    # Written by one transaction: the rows carry the same inserting transaction id.
    async with db.catalog() as conn:
        writers = await conn.fetch(
            "SELECT DISTINCT xmin::text FROM audit.events WHERE client_request_id = $1", rid
        )
    assert len(writers) == 1

    # Komatsu confirms its side: a record of a 住所地特例者 of Kaga, never enrolled.
    r = await _confirm(client, KOMATSU, tokens["komatsu"], incoming)
    assert r.status_code == 200, r.text
    theirs = await client.post(
        f"{_base(KOMATSU)}/insured/search",
        json={"resident_id": arrived["id"]},
        headers=auth(tokens["komatsu"], Q),
    )
    (record,) = theirs.json()["insured"]
    assert (record["status"], record["insurer_town"]) == ("tokurei_elsewhere", KAGA)
    assert "insured_number" not in record  # Komatsu gives them none
    assert record["tokurei"]["insurer_number"] == mine["insured_number"]
    assert record["periods"] == []


async def test_when_the_facility_town_cannot_take_the_notice_nothing_happens_anywhere(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    tokens = kaigo_tokens
    facility = await _facility(client, tokens["komatsu"], "roken", 100)
    person = await _insured_kaga_resident(db, client, register_, tokens)
    _arrived, transfer = await _move_to(db, client, register_, tokens, person, facility["address"])
    (actual,) = [d for d in await queue_of(db, KAGA, person["id"]) if d.transfer_id == transfer]
    # Komatsu removes the facility before Kaga confirms: the notice cannot be written.
    url = f"{_base(KOMATSU)}/facilities/{facility['id']}"
    etag = (await client.get(url, headers=auth(tokens["komatsu"], Q))).headers["ETag"]
    gone = await client.delete(url, headers=auth(tokens["komatsu"], Q, **{"If-Match": etag}))
    assert gone.status_code == 204
    rid = f"tokurei-{uuid.uuid4().hex[:10]}"
    r = await _confirm(client, KAGA, tokens["kaga"], actual, **{"X-Request-ID": rid})
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == "the facility is not (any more) in its town's list"
    # Kaga's determination is still open, its record unchanged; Komatsu wrote nothing.
    (still,) = [d for d in await queue_of(db, KAGA, person["id"]) if d.id == actual.id]
    assert still.status == "open"
    found = await client.post(
        f"{_base(KAGA)}/insured/search",
        json={"resident_id": person["id"]},
        headers=auth(tokens["kaga"], Q),
    )
    assert found.json()["insured"][0].get("tokurei") is None
    (kaga_event,) = await _events(db, KAGA, rid)
    assert kaga_event["outcome"] == "denied"
    assert await _events(db, KOMATSU, rid) == []


async def test_a_small_community_facility_gives_the_ordinary_loss_and_gain(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    tokens = kaigo_tokens
    facility = await _facility(client, tokens["komatsu"], "chiiki", 29)
    assert facility["covered"] is False
    person = await _insured_kaga_resident(db, client, register_, tokens)
    arrived, transfer = await _move_to(db, client, register_, tokens, person, facility["address"])
    kaga = {d.kind for d in await queue_of(db, KAGA, person["id"]) if d.status == "open"}
    assert kaga == {"loss"}
    (komatsu,) = await queue_of(db, KOMATSU, arrived["id"])
    assert komatsu.kind == "gain"
    assert komatsu.proposal.date == today_jst()
    assert any("対象外" in n for n in komatsu.proposal.notes)
    del transfer


async def test_a_covered_facility_of_a_town_not_on_the_platform_is_kaga_alone(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    """The move-out names no tenant: the loss is proposed; staff correct it to 住所地特例
    naming the facility; another confirms; nothing goes anywhere."""
    tokens = kaigo_tokens
    person = await _insured_kaga_resident(db, client, register_, tokens)
    today = today_jst()
    await register_.move(
        person,
        event="move_out_domestic",
        move_date=today.isoformat(),
        notified_on=today.isoformat(),
        forward_address="福井県福井市大手3-10-1",
    )
    await settle(db)
    (loss,) = [d for d in await queue_of(db, KAGA, person["id"]) if d.kind == "loss"]
    url = f"{_base(KAGA)}/determinations/{loss.id}"
    etag = (await client.get(url, headers=auth(tokens["kaga"], Q))).headers["ETag"]
    corrected = await client.post(
        url + "/correct",
        json={
            "reason": "住所地特例適用届により特養へ入所を確認",
            "kind": "tokurei_keep",
            "facility": {"name": "特養ふくい", "town": "182010"},
        },
        headers=auth(tokens["kaga"], Q, **{"If-Match": etag}),
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["correction"]["premium_after"] == loss.proposal.premium_before
    ok = await client.post(
        url + "/confirm",
        json={},
        headers=auth(tokens["kaga2"], Q, **{"If-Match": corrected.headers["ETag"]}),
    )
    assert ok.status_code == 200, ok.text
    found = await client.post(
        f"{_base(KAGA)}/insured/search",
        json={"resident_id": person["id"]},
        headers=auth(tokens["kaga"], Q),
    )
    (mine,) = found.json()["insured"]
    assert mine["status"] == "insured"
    assert mine["tokurei"]["facility_town"] == "182010"
    assert mine["tokurei"]["facility_id"] is None


async def test_a_protected_persons_facility_is_withheld_and_nothing_crosses(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    """Rule 1 (支援措置): the facility a protected person moves into is where they live —
    withheld from 介護保険課 too, and never sent to the facility's town."""
    tokens = kaigo_tokens
    facility = await _facility(client, tokens["komatsu"], "yogo", 50)
    person = await _insured_kaga_resident(db, client, register_, tokens)
    r = await client.put(
        f"/api/v1/tenants/{KAGA}/residents/{person['id']}/support-measure",
        json={"active": True},
        headers=auth(tokens["kaga_shimin"], **{"If-Match": person["etag"]}),
    )
    assert r.status_code == 200, r.text
    person["etag"] = r.headers["ETag"]
    _arrived, _transfer = await _move_to(db, client, register_, tokens, person, facility["address"])
    keeps = [
        d
        for d in await queue_of(db, KAGA, person["id"])
        if d.kind == "tokurei_keep" and d.status == "open"
    ]
    (keep,) = keeps
    assert keep.notify_town is None
    assert keep.transfer_id is None
    assert "paper_notice" in {q.code for q in keep.proposal.questions}
    shown = await client.get(
        f"{_base(KAGA)}/determinations/{keep.id}", headers=auth(tokens["kaga"], Q)
    )
    body = shown.json()
    assert "facility" not in body
    assert "Determination.facility" in body["withheld"]
    assert facility["name"] not in shown.text
    assert facility["address"] not in shown.text
    confirmed = await client.post(
        f"{_base(KAGA)}/determinations/{keep.id}/confirm",
        json={},
        headers=auth(tokens["kaga"], Q, **{"If-Match": shown.headers["ETag"]}),
    )
    assert confirmed.status_code == 200, confirmed.text
    assert facility["name"] not in confirmed.text
    found = await client.post(
        f"{_base(KAGA)}/insured/search",
        json={"resident_id": person["id"]},
        headers=auth(tokens["kaga"], Q),
    )
    (mine,) = found.json()["insured"]
    assert "tokurei" not in mine
    assert "InsuredPerson.tokurei" in mine["withheld"]
