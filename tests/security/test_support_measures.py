"""Rule 1 (支援措置, docs/support-measures.md), attacked through the HTTP API.

A protected person heads a household; their unprotected child lives with
them. Other departments (介護保険課, 市民課 issuing certificates) must not be
able to join the child's address to the protected person by any endpoint;
市民課 registering residents still sees everything. Also: refused attempts
name their resident in the audit log (issue #14 item 7), events record every
field a response disclosed (item 8), and a withheld date appears nowhere in a
history (medium item).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import today_jst
from shared_gov.db import Database
from tests.conftest import KAGA, KOMATSU, auth
from tests.domains.residents.events.conftest import wait_for
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"
KOMATSU_API = f"/api/v1/tenants/{KOMATSU}"
HIDEOUT = "石川県加賀市隠れ家町9-9-9"
WHEREABOUTS = ("address", "postal_code", "previous_address", "phone", "household_no")


def values(document: Any, key: str) -> list[Any]:
    """Every value under ``key`` anywhere in a JSON document."""
    found: list[Any] = []
    if isinstance(document, dict):
        for k, v in document.items():
            if k == key:
                found.append(v)
            found += values(v, key)
    elif isinstance(document, list):
        for item in document:
            found += values(item, key)
    return found


def shows(response: Any, household_no: str) -> bool:
    """The response names this household or the hideout anywhere."""
    return HIDEOUT in response.text or household_no in values(response.json(), "household_no")


async def _register(client: Any, tokens: dict[str, str], **overrides: Any) -> dict[str, Any]:
    r = await client.post(
        f"{BASE}/residents", json=resident_body(**overrides), headers=auth(tokens["kaga"])
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    result["etag"] = r.headers["etag"]
    return result


async def _protect(
    client: Any, base: str, token: str, person: dict[str, Any], active: bool = True
) -> dict[str, Any]:
    r = await client.put(
        f"{base}/residents/{person['id']}/support-measure",
        json={"active": active},
        headers=auth(token, **{"If-Match": person["etag"]}),
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    result["etag"] = r.headers["etag"]
    return result


async def protected_family(client: Any, tokens: dict[str, str], kana: str) -> dict[str, Any]:
    """The issue's case: a protected head of household and their unprotected child."""
    head = await _register(
        client,
        tokens,
        family_name_kana=kana,
        address=HIDEOUT,
        phone="0761-99-0001",
        birth_date="1985-05-05",
    )
    child = await _register(
        client,
        tokens,
        family_name_kana=kana,
        given_name="太郎",
        given_name_kana="タロウ",
        birth_date="2010-06-06",
        sex="male",
        address=HIDEOUT,
        household_no=head["household_no"],
        relationship="子",
    )
    head = await _protect(client, BASE, tokens["kaga"], head)
    return {"head": head, "child": child}


def _others(issuer: BuiltinIssuer) -> dict[str, dict[str, str]]:
    """Callers who may see an ordinary person's address, but not a protected one's."""
    kaigo = issuer.mint(subject="r1-kaigo", tenant=KAGA, department="kaigo", roles=["staff"])
    certificate = issuer.mint(
        subject="r1-cert", tenant=KAGA, department="shimin", roles=["staff"], mfa=True
    )
    zeimu = issuer.mint(subject="r1-zeimu", tenant=KAGA, department="zeimu", roles=["staff"])
    return {
        "kaigo": auth(kaigo, purpose="kaigo.qualification"),
        "certificate": auth(certificate, purpose="juki.certificate"),
        "zeimu": auth(zeimu, purpose="zeimu.assessment"),
    }


async def test_the_household_does_not_give_away_a_protected_head(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    family = await protected_family(client, tokens, "シエンイチ")
    head, child = family["head"], family["child"]
    household_no = child["household_no"]
    for name, h in _others(issuer).items():
        # The child: readable, but neither where they live nor which household.
        r = await client.get(f"{BASE}/residents/{child['id']}", headers=h)
        assert r.status_code == 200, (name, r.text)
        body = r.json()
        for field in (*WHEREABOUTS, "relationship"):
            assert field not in body, (name, field)
        assert not shows(r, household_no)
        # The household: the same 404 as a number never issued.
        r = await client.get(f"{BASE}/households/{household_no}", headers=h)
        assert r.status_code == 404, (name, r.text)
        assert head["id"] not in r.text
        assert child["id"] not in r.text
        # The protected head: no whereabouts, no household, no 続柄.
        r = await client.get(f"{BASE}/residents/{head['id']}", headers=h)
        assert r.status_code == 200
        for field in (*WHEREABOUTS, "relationship"):
            assert field not in r.json(), (name, field)
        # Searches find both by name, with nothing that joins them to a place.
        r = await client.post(
            f"{BASE}/residents/search",
            json={"family_name_kana": "シエンイチ", "birth_date": "2010-06-06"},
            headers=h,
        )
        assert r.status_code == 200
        assert [x["id"] for x in r.json()["residents"]] == [child["id"]]
        assert not shows(r, household_no)
        # History: neither person's snapshots show the address or the household.
        for person in (head, child):
            r = await client.get(f"{BASE}/residents/{person['id']}/history", headers=h)
            if r.status_code == 403:  # a purpose without the history action
                continue
            assert r.status_code == 200, (name, r.text)
            assert not shows(r, household_no), name
    # Searching by the protected head's phone confirms nothing.
    r = await client.post(
        f"{BASE}/residents/search",
        json={"phone": "0761990001"},
        headers=auth(
            issuer.mint(subject="r1-bousai", tenant=KAGA, department="bousai", roles=["staff"]),
            purpose="bousai.support",
        ),
    )
    assert r.status_code == 200
    assert r.json()["count"] == 0
    # 市民課 registering residents sees the whole household.
    full = await client.get(f"{BASE}/households/{household_no}", headers=auth(tokens["kaga"]))
    assert full.status_code == 200
    assert full.json()["head_id"] == head["id"]
    assert {m["id"] for m in full.json()["members"]} == {head["id"], child["id"]}
    r = await client.get(f"{BASE}/residents/{child['id']}", headers=auth(tokens["kaga"]))
    assert r.json()["address"] == HIDEOUT
    assert r.json()["household_no"] == household_no


async def test_leaving_the_household_does_not_show_the_old_one(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """A child who split off (世帯分離) still lives at the protected household's
    address, and their history holds its number: they stay linked."""
    family = await protected_family(client, tokens, "シエンニ")
    child, household_no = family["child"], family["child"]["household_no"]
    today = today_jst().isoformat()
    split = await client.post(
        f"{BASE}/residents/{child['id']}/moves",
        json={"event": "household_split", "move_date": today, "notified_on": today},
        headers=auth(tokens["kaga"], **{"If-Match": child["etag"]}),
    )
    assert split.status_code == 200, split.text
    h = _others(issuer)["kaigo"]
    now = await client.get(f"{BASE}/residents/{child['id']}", headers=h)
    assert now.status_code == 200
    assert not shows(now, household_no)
    assert "household_no" not in now.json()
    # 市民課 registering residents: a household of their own.
    full = await client.get(f"{BASE}/residents/{child['id']}", headers=auth(tokens["kaga"]))
    assert full.json()["household_no"] != household_no
    history = await client.get(f"{BASE}/residents/{child['id']}/history", headers=h)
    assert history.status_code == 200
    assert not shows(history, household_no)


async def test_a_protected_persons_destination_stays_home(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    """Item 5: after a one-stop move of a protected person (and their child), the old
    town's events feed and access report do not name the new town."""
    komatsu = tokens["komatsu"]
    r = await client.post(
        f"{KOMATSU_API}/residents",
        json=resident_body(address="石川県小松市小馬出町91", family_name_kana="シエンサン"),
        headers=auth(komatsu),
    )
    assert r.status_code == 201
    person = {**r.json(), "etag": r.headers["etag"]}
    person = await _protect(client, KOMATSU_API, komatsu, person)
    today = today_jst()
    moved = await client.post(
        f"{KOMATSU_API}/residents/{person['id']}/moves",
        json={
            "event": "move_out_domestic",
            "move_date": (today + timedelta(days=3)).isoformat(),
            "notified_on": today.isoformat(),
            "to_tenant": KAGA,
        },
        headers=auth(komatsu, **{"If-Match": person["etag"]}),
    )
    assert moved.status_code == 200, moved.text
    arrived = await client.post(
        f"{BASE}/residents/one-stop-move-in",
        json={
            "from_tenant": KOMATSU,
            "resident_id": person["id"],
            "address": HIDEOUT,
            "move_date": today.isoformat(),
            "notified_on": today.isoformat(),
        },
        headers=auth(tokens["kaga"]),
    )
    assert arrived.status_code == 201, arrived.text
    # Komatsu's department systems: the move is news, its destination is not.
    sync = issuer.mint(
        subject="r1-sync", tenant=KOMATSU, department="kaigo", roles=["staff", "integration"]
    )
    transfer = arrived.headers["x-transfer-id"]
    seen, _cursor = await wait_for(
        client,
        sync,
        None,
        # The confirmation of the move-out (its transfer_id is withheld too).
        lambda got: any(
            e["resident_id"] == person["id"] and "removed_on" in e["fields"] for e in got
        ),
        code=KOMATSU,
        limit=1000,
    )
    mine = [e for e in seen if e["resident_id"] == person["id"]]
    for event in mine:
        assert not any(key.endswith("_town") for key in event["ids"]), event
        assert "transfer_id" not in event["ids"], event
        assert transfer not in str(event), event
        assert KAGA not in str(event["ids"])
    # Komatsu's access report for the person: another town acted, not which.
    admin = issuer.mint(subject="r1-m-admin", tenant=KOMATSU, department="somu", roles=["admin"])
    grant = await client.put(
        f"{KOMATSU_API}/staff/r1-m-disc",
        json={"department": "shimin", "purposes": ["juki.disclosure"]},
        headers=auth(admin, purpose=None),
    )
    assert grant.status_code == 200, grant.text
    discloser = issuer.mint(
        subject="r1-m-disc", tenant=KOMATSU, department="shimin", roles=["staff"]
    )
    report = await client.get(
        f"{KOMATSU_API}/residents/{person['id']}/access-log",
        headers=auth(discloser, purpose="juki.disclosure"),
    )
    assert report.status_code == 200, report.text
    entries = report.json()["entries"]
    assert any(e["withheld"] == ["town", "department"] for e in entries)
    assert KAGA not in report.text
    assert "加賀" not in report.text
    # A masked entry (its time cut to the day) stands at the start of its day,
    # not at its true place among the town's own entries (review r2 M3).
    times = [datetime.fromisoformat(e["occurred_at"]) for e in entries]
    assert times == sorted(times)


async def _audit(
    client: Any, tokens: dict[str, str], resident_id: str, **params: str
) -> list[dict[str, Any]]:
    r = await client.get(
        f"{BASE}/audit/events",
        params={"subject": resident_id, **params},
        headers=auth(tokens["kaga_auditor"], purpose=None),
    )
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


async def test_refused_attempts_name_their_resident(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """Item 7: an auditor's search by resident shows refused and failed attempts."""
    person = await _register(client, tokens, family_name_kana="キョヒ")
    rid = person["id"]
    kaikei = issuer.mint(subject="r1-kaikei", tenant=KAGA, department="kaikei", roles=["staff"])
    today = today_jst().isoformat()
    attempts = [
        # history: the purpose does not cover the action
        ("GET", f"{BASE}/residents/{rid}/history", auth(kaikei, purpose="kaikei.payment"), None),
        # a move by a department without the purpose
        (
            "POST",
            f"{BASE}/residents/{rid}/moves",
            auth(kaikei, purpose="kaikei.payment", **{"If-Match": person["etag"]}),
            {"event": "death", "move_date": today, "notified_on": today},
        ),
        # 支援措置 set by another department
        (
            "PUT",
            f"{BASE}/residents/{rid}/support-measure",
            auth(kaikei, purpose="kaikei.payment", **{"If-Match": person["etag"]}),
            {"active": True},
        ),
        # a read without a purpose (refused before any service runs)
        ("GET", f"{BASE}/residents/{rid}", auth(kaikei, purpose=None), None),
        # another town's staff (404)
        ("GET", f"{BASE}/residents/{rid}", auth(tokens["komatsu"]), None),
        # a stale version (412)
        (
            "POST",
            f"{BASE}/residents/{rid}/moves",
            auth(tokens["kaga"], **{"If-Match": '"v99"'}),
            {"event": "death", "move_date": today, "notified_on": today},
        ),
    ]
    for method, url, headers, body in attempts:
        r = await client.request(method, url, headers=headers, json=body)
        assert r.status_code in (400, 403, 404, 412), (url, r.status_code, r.text)
    refused = [e for e in await _audit(client, tokens, rid) if e["outcome"] != "success"]
    assert {e["action"] for e in refused} >= {
        "resident.history",
        "resident.move",
        "resident.protect",
        "resident.read",
    }
    assert len(refused) >= len(attempts)


async def test_events_record_every_field_the_response_disclosed(
    client: Any, tokens: dict[str, str]
) -> None:
    """Item 8: a move and a support-measure change return the whole record
    (個人番号 included); their audit events say so."""
    person = await _register(client, tokens, family_name_kana="ジュウショ")
    today = today_jst().isoformat()
    moved = await client.post(
        f"{BASE}/residents/{person['id']}/moves",
        json={
            "event": "move_within_town",
            "move_date": today,
            "notified_on": today,
            "address": "石川県加賀市大聖寺南町5-5",
            "postal_code": "9220001",
        },
        headers=auth(tokens["kaga"], **{"If-Match": person["etag"]}),
    )
    assert moved.status_code == 200, moved.text
    assert "individual_number" in moved.json()
    protected = await client.put(
        f"{BASE}/residents/{person['id']}/support-measure",
        json={"active": True},
        headers=auth(tokens["kaga"], **{"If-Match": moved.headers["etag"]}),
    )
    assert protected.status_code == 200
    shown = {"move": moved.json(), "protect": protected.json()}
    for action, body in shown.items():
        (event,) = await _audit(client, tokens, person["id"], action=f"resident.{action}")
        disclosed = {k for k in body if k not in ("withheld", "withheld_reasons")}
        personal = disclosed - {"id", "atena_no", "state", "version", "history_no"}
        personal.discard("support_measure")
        assert personal <= set(event["fields"]), (action, personal - set(event["fields"]))
        assert event["individual_number"] is True


async def test_history_shows_no_withheld_date(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """介護保険課 may not see 届出日 (notified_on): no history entry carries it."""
    person = await _register(client, tokens, family_name_kana="リレキ")
    h = _others(issuer)["kaigo"]
    r = await client.get(f"{BASE}/residents/{person['id']}/history", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "notified_on" in body["withheld"]
    for entry in body["entries"]:
        assert "notified_on" not in entry
        assert not set(body["withheld"]) & set(entry["snapshot"])
        for field in body["withheld"]:
            assert field not in entry


async def test_a_linked_childs_old_address_does_not_cross_towns(
    client: Any, tokens: dict[str, str]
) -> None:
    """The child of a protected head in Komatsu moves to Kaga one-stop: Kaga does not
    get the address the child shared with the protected parent (B's 前住所 stays empty)."""
    komatsu = tokens["komatsu"]
    shared_home = "石川県小松市隠れ家町7-7"
    r = await client.post(
        f"{KOMATSU_API}/residents",
        json=resident_body(address=shared_home, family_name_kana="シエンヨン"),
        headers=auth(komatsu),
    )
    assert r.status_code == 201
    parent = {**r.json(), "etag": r.headers["etag"]}
    r = await client.post(
        f"{KOMATSU_API}/residents",
        json=resident_body(
            address=shared_home,
            family_name_kana="シエンヨン",
            birth_date="2008-08-08",
            household_no=parent["household_no"],
            relationship="子",
        ),
        headers=auth(komatsu),
    )
    assert r.status_code == 201
    child = {**r.json(), "etag": r.headers["etag"]}
    await _protect(client, KOMATSU_API, komatsu, parent)
    today = today_jst()
    moved = await client.post(
        f"{KOMATSU_API}/residents/{child['id']}/moves",
        json={
            "event": "move_out_domestic",
            "move_date": (today + timedelta(days=3)).isoformat(),
            "notified_on": today.isoformat(),
            "to_tenant": KAGA,
        },
        headers=auth(komatsu, **{"If-Match": child["etag"]}),
    )
    assert moved.status_code == 200, moved.text
    arrived = await client.post(
        f"{BASE}/residents/one-stop-move-in",
        json={
            "from_tenant": KOMATSU,
            "resident_id": child["id"],
            "address": "石川県加賀市大聖寺南町8-8",
            "move_date": today.isoformat(),
            "notified_on": today.isoformat(),
        },
        headers=auth(tokens["kaga"]),
    )
    assert arrived.status_code == 201, arrived.text
    assert arrived.json()["previous_address"] is None
    assert shared_home not in arrived.text
