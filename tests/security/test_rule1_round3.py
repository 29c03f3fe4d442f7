"""Rule 1 across towns: the round-3 hostile review (N1–N4), attacked through the HTTP API.

Komatsu is the old town (A), Kaga the new one (B) unless a test says
otherwise. The review's scenarios come first in each test.

- N2: a protected person who moved one-stop from A to B was found by A's
  kaigo in B under a B→A agreement (active, support_measure true,
  resident_since = A's removal date: the destination). Rule 1 says "never
  another town, whatever an agreement says": a protected or linked record is
  not found by another town's search and is the same 404 as a missing one.
- N1: Z (unlinked in A) moves one-stop into a protected person's household
  in B; A's record of Z kept forward_address = the protected person's
  address, visible to A's kaigo and to B's kaigo under an A→B agreement, and
  A's feed kept ``to_town``.
- N3: a linked record's withheld reason named 支援措置.
- N4: the same instant in both towns' feeds and histories matched a
  protected person's move-out in A with their move-in in B.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import JST, today_jst
from shared_gov.db import Database
from shared_gov.policy import agreements
from tests.conftest import KAGA, KOMATSU, auth
from tests.domains.residents.events.conftest import wait_for
from tests.factories import resident_body
from tests.security.test_support_measures import BASE, HIDEOUT, KOMATSU_API, _protect

FIELDS = ["family_name", "given_name", "family_name_kana", "birth_date", "address"]
FIELDS += ["forward_address", "previous_address", "resident_since", "removed_on"]


def _now() -> datetime:
    return datetime.now(JST).replace(microsecond=0)


async def _agreement(client: Any, tokens: dict[str, str], provider: str, recipient: str) -> str:
    """A bilateral kaigo agreement (read and search), proposed by the provider, in force."""
    admins = {KAGA: tokens["kaga_admin"], KOMATSU: tokens["komatsu_admin"]}
    r = await client.post(
        "/api/v1/agreements",
        json={
            "provider": provider,
            "recipient": recipient,
            "recipient_departments": ["kaigo"],
            "purposes": ["kaigo.qualification"],
            "fields": FIELDS,
            "actions": ["read", "search"],
            "legal_basis": "介護保険法 第203条 (資料の提供等)",
            "valid_from": (_now() - timedelta(hours=1)).isoformat(),
            "valid_until": (_now() + timedelta(days=30)).isoformat(),
        },
        headers=auth(admins[provider], purpose=None),
    )
    assert r.status_code == 201, r.text
    aid: str = r.json()["id"]
    accepted = await client.post(
        f"/api/v1/agreements/{aid}/accept", headers=auth(admins[recipient], purpose=None)
    )
    assert accepted.status_code == 200, accepted.text
    return aid


def _kaigo(issuer: BuiltinIssuer, town: str, sub: str) -> str:
    return issuer.mint(subject=sub, tenant=town, department="kaigo", roles=["staff"], mfa=True)


def _shared(token: str, aid: str, purpose: str = "kaigo.qualification") -> dict[str, str]:
    return {**auth(token, purpose=purpose), "X-Agreement": aid}


async def _create(client: Any, api: str, token: str, **overrides: Any) -> dict[str, Any]:
    r = await client.post(f"{api}/residents", json=resident_body(**overrides), headers=auth(token))
    assert r.status_code == 201, r.text
    return {**r.json(), "etag": r.headers["etag"]}


async def _leave(
    client: Any, token: str, person: dict[str, Any], forward: str | None = None
) -> dict[str, Any]:
    today = today_jst()
    body: dict[str, Any] = {
        "event": "move_out_domestic",
        "move_date": (today + timedelta(days=2)).isoformat(),
        "notified_on": today.isoformat(),
        "to_tenant": KAGA,
    }
    if forward is not None:
        body["forward_address"] = forward
    r = await client.post(
        f"{KOMATSU_API}/residents/{person['id']}/moves",
        json=body,
        headers=auth(token, **{"If-Match": person["etag"]}),
    )
    assert r.status_code == 200, r.text
    return {**r.json(), "etag": r.headers["etag"]}


async def _arrive(client: Any, token: str, person: dict[str, Any], **extra: Any) -> Any:
    today = today_jst().isoformat()
    r = await client.post(
        f"{BASE}/residents/one-stop-move-in",
        json={
            "from_tenant": KOMATSU,
            "resident_id": person["id"],
            "address": HIDEOUT,
            "move_date": today,
            "notified_on": today,
            **extra,
        },
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    return r


async def _missing(client: Any, url: str, headers: dict[str, str]) -> dict[str, Any]:
    base = url.rsplit("/", 1)[0]
    r = await client.get(f"{base}/00000000-0000-4000-8000-000000000000", headers=headers)
    assert r.status_code == 404
    body: dict[str, Any] = r.json()
    return body


def _midnight(stamp: str) -> bool:
    moment = datetime.fromisoformat(stamp).astimezone(JST)
    return (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0)


# -- N2 -------------------------------------------------------------------------------


async def test_n2_another_town_never_finds_a_protected_person_under_an_agreement(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    """The review's scenario: P protected in Komatsu moves one-stop to Kaga; Komatsu's
    kaigo, under a Kaga→Komatsu agreement, searches Kaga by P's kana + birth date."""
    komatsu, kaga = tokens["komatsu"], tokens["kaga"]
    p = await _create(
        client, KOMATSU_API, komatsu, family_name_kana="エヌニ", birth_date="1981-01-21"
    )
    p = await _protect(client, KOMATSU_API, komatsu, p)
    p = await _leave(client, komatsu, p)
    # The standing move agreement: the destination's staff reading (not
    # registering) a protected leaver get the 404 of a missing record too.
    standing = str(await agreements.standing_agreement(db, KOMATSU))
    as_destination = _shared(kaga, standing, purpose="juki.registration")
    url = f"{KOMATSU_API}/residents/{p['id']}"
    r = await client.get(url, headers=as_destination)
    assert r.status_code == 404, r.text
    assert r.json() == await _missing(client, url, as_destination)
    found = await client.post(
        f"{KOMATSU_API}/residents/search",
        json={"family_name_kana": "エヌニ", "birth_date": "1981-01-21"},
        headers=as_destination,
    )
    assert found.status_code == 200, found.text
    assert found.json()["count"] == 0
    # ... while the one-stop move itself still takes them over, protection carried.
    arrived = await _arrive(client, kaga, p)
    p_b = arrived.json()
    assert p_b["support_measure"] is True
    # Komatsu's kaigo under Kaga→Komatsu: not found, and the same 404 as nobody.
    aid = await _agreement(client, tokens, KAGA, KOMATSU)
    h = _shared(_kaigo(issuer, KOMATSU, "n2-m-kaigo"), aid)
    for query in (
        {"family_name_kana": "エヌニ", "birth_date": "1981-01-21"},
        {"atena_no": p_b["atena_no"]},
    ):
        r = await client.post(f"{BASE}/residents/search", json=query, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["count"] == 0, query
        assert p_b["id"] not in r.text
    url = f"{BASE}/residents/{p_b['id']}"
    r = await client.get(url, headers=h)
    assert r.status_code == 404, r.text
    assert r.json() == await _missing(client, url, h)
    # An unprotected Kaga resident is still shared under the same agreement.
    plain = await _create(client, BASE, kaga, family_name_kana="エヌニ", birth_date="1982-02-22")
    r = await client.get(f"{BASE}/residents/{plain['id']}", headers=h)
    assert r.status_code == 200, r.text
    # Nor history or household under an agreement (own-town routes): 404.
    for path in (f"{url}/history", f"{BASE}/households/{p_b.get('household_no', '0')}"):
        r = await client.get(path, headers=h)
        assert r.status_code == 404, (path, r.text)


async def test_n2_a_linked_record_is_not_found_by_another_town(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """A child in a protected parent's household (Komatsu): Kaga's kaigo under a
    Komatsu→Kaga agreement neither finds nor reads the child."""
    komatsu = tokens["komatsu"]
    parent = await _create(
        client, KOMATSU_API, komatsu, family_name_kana="エヌニリンク", address="小松市隠れ家1"
    )
    child = await _create(
        client,
        KOMATSU_API,
        komatsu,
        family_name_kana="エヌニリンク",
        birth_date="2012-12-12",
        address="小松市隠れ家1",
        household_no=parent["household_no"],
        relationship="子",
    )
    await _protect(client, KOMATSU_API, komatsu, parent)
    aid = await _agreement(client, tokens, KOMATSU, KAGA)
    h = _shared(_kaigo(issuer, KAGA, "n2-k-kaigo"), aid)
    r = await client.post(
        f"{KOMATSU_API}/residents/search",
        json={"family_name_kana": "エヌニリンク", "birth_date": "2012-12-12"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 0
    url = f"{KOMATSU_API}/residents/{child['id']}"
    r = await client.get(url, headers=h)
    assert r.status_code == 404
    assert r.json() == await _missing(client, url, h)


# -- N1 (and N3, N4 on the same scenario) ---------------------------------------------------


async def test_n1_a_link_made_in_the_new_town_reaches_the_old_town(
    client: Any,
    tokens: dict[str, str],
    issuer: BuiltinIssuer,
) -> None:
    """The review's scenario: Z (unlinked in Komatsu) moves one-stop into P's protected
    household in Kaga; Komatsu's record of Z names P's address as forward_address."""
    komatsu, kaga = tokens["komatsu"], tokens["kaga"]
    feed_tokens = {
        town: issuer.mint(
            subject=f"n1-sync-{town}", tenant=code, department="kaigo", roles=["integration"]
        )
        for town, code in (("kaga", KAGA), ("komatsu", KOMATSU))
    }
    p = await _create(client, BASE, kaga, family_name_kana="エヌイチ", address=HIDEOUT)
    p = await _protect(client, BASE, kaga, p)
    z = await _create(
        client, KOMATSU_API, komatsu, family_name_kana="ゼット", birth_date="1979-09-19"
    )
    sibling = await _create(
        client,
        KOMATSU_API,
        komatsu,
        family_name_kana="ゼット",
        birth_date="2001-01-01",
        household_no=z["household_no"],
        relationship="子",
    )
    z = await _leave(client, komatsu, z, forward=HIDEOUT)
    arrived = await _arrive(client, kaga, z, household_no=p["household_no"], relationship="同居人")
    transfer = arrived.headers["x-transfer-id"]
    z_b = arrived.json()
    # B's kaigo under a Komatsu→Kaga agreement: Z's old record is not found (N2),
    # and not read.
    aid = await _agreement(client, tokens, KOMATSU, KAGA)
    h = _shared(_kaigo(issuer, KAGA, "n1-k-kaigo"), aid)
    r = await client.post(
        f"{KOMATSU_API}/residents/search",
        json={"family_name_kana": "ゼット", "birth_date": "1979-09-19"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["count"] == 0
    assert HIDEOUT not in r.text
    r = await client.get(f"{KOMATSU_API}/residents/{z['id']}", headers=h)
    assert r.status_code == 404
    # Komatsu's own kaigo: Z's forward address (P's address) is withheld, and so
    # is the household Z left (its component is linked now).
    kaigo = auth(_kaigo(issuer, KOMATSU, "n1-m-kaigo"), purpose="kaigo.qualification")
    for person in (z, sibling):
        r = await client.get(f"{KOMATSU_API}/residents/{person['id']}", headers=kaigo)
        assert r.status_code == 200, r.text
        assert HIDEOUT not in r.text
        assert "forward_address" not in r.json()
        assert "address" not in r.json()
        # N3: a linked record's reason does not name 支援措置.
        assert r.json()["support_measure"] is False
        assert all("支援措置" not in why for why in r.json()["withheld_reasons"].values())
        r = await client.get(f"{KOMATSU_API}/residents/{person['id']}/history", headers=kaigo)
        if r.status_code == 200:
            assert HIDEOUT not in r.text
            # N4: the day only.
            assert all(_midnight(e["recorded_at"]) for e in r.json()["entries"])
    r = await client.get(f"{KOMATSU_API}/households/{z['household_no']}", headers=kaigo)
    assert r.status_code == 404
    # Komatsu's 市民課 registering residents still sees it all, to the microsecond.
    full = await client.get(f"{KOMATSU_API}/residents/{z['id']}", headers=auth(komatsu))
    assert full.json()["forward_address"] == HIDEOUT
    history = await client.get(f"{KOMATSU_API}/residents/{z['id']}/history", headers=auth(komatsu))
    assert not all(_midnight(e["recorded_at"]) for e in history.json()["entries"])
    # Kaga's kaigo on Z in Kaga (linked): no 支援措置 in the reasons either.
    kaga_kaigo = auth(_kaigo(issuer, KAGA, "n1-k-kaigo2"), purpose="kaigo.qualification")
    r = await client.get(f"{BASE}/residents/{z_b['id']}", headers=kaga_kaigo)
    assert r.status_code == 200
    assert "address" not in r.json()
    assert set(r.json()["withheld_reasons"].values()) >= {"withheld"}
    assert all("支援措置" not in why for why in r.json()["withheld_reasons"].values())
    # Komatsu's feed: no to_town for Z, and the day only (N4) — in both towns.
    seen, _cursor = await wait_for(
        client,
        feed_tokens["komatsu"],
        None,
        # The confirmation of the move-out (its transfer_id is withheld too).
        lambda got: any(e["resident_id"] == z["id"] and "removed_on" in e["fields"] for e in got),
        code=KOMATSU,
        limit=1000,
    )
    mine = [e for e in seen if e["resident_id"] == z["id"]]
    assert mine
    for event in mine:
        assert not any(key.endswith("_town") for key in event["ids"]), event
        assert "transfer_id" not in event["ids"], event
        assert transfer not in str(event), event
        assert _midnight(event["occurred_at"]), event
    seen, _cursor = await wait_for(
        client,
        feed_tokens["kaga"],
        None,
        lambda got: any(e["resident_id"] == z_b["id"] for e in got),
        limit=1000,
    )
    for event in seen:
        if event["resident_id"] in (z_b["id"], p["id"]):
            assert _midnight(event["occurred_at"]), event
    # A's 市民課 lifts the carried link for its register: Z's family is visible again.
    current = await client.get(f"{KOMATSU_API}/residents/{z['id']}", headers=auth(komatsu))
    lifted = await _protect(
        client, KOMATSU_API, komatsu, {**current.json(), "etag": current.headers["etag"]}, False
    )
    assert lifted["support_measure"] is False
    r = await client.get(f"{KOMATSU_API}/residents/{sibling['id']}", headers=kaigo)
    assert "address" in r.json()


async def test_n1_an_unlinked_move_carries_nothing_back(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """Control: a one-stop move into an ordinary household links nobody in the old town."""
    komatsu, kaga = tokens["komatsu"], tokens["kaga"]
    host = await _create(client, BASE, kaga, family_name_kana="フツウ", address="加賀市普通町1")
    z = await _create(client, KOMATSU_API, komatsu, family_name_kana="フツウゼット")
    z = await _leave(client, komatsu, z, forward="加賀市普通町1")
    await _arrive(client, kaga, z, household_no=host["household_no"], relationship="同居人")
    kaigo = auth(_kaigo(issuer, KOMATSU, "n1c-m-kaigo"), purpose="kaigo.qualification")
    r = await client.get(f"{KOMATSU_API}/residents/{z['id']}", headers=kaigo)
    assert r.status_code == 200
    assert "address" in r.json()


# -- N4: the access report ------------------------------------------------------------


async def test_n4_the_access_report_gives_another_towns_access_to_the_day(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """A protected person's report in the old town: Kaga's one-stop move is another
    town's access, dated, with neither town nor department."""
    komatsu, kaga = tokens["komatsu"], tokens["kaga"]
    p = await _create(client, KOMATSU_API, komatsu, family_name_kana="エヌヨン")
    p = await _protect(client, KOMATSU_API, komatsu, p)
    p = await _leave(client, komatsu, p)
    await _arrive(client, kaga, p)
    admin = issuer.mint(subject="n4-m-admin", tenant=KOMATSU, department="somu", roles=["admin"])
    grant = await client.put(
        f"{KOMATSU_API}/staff/n4-m-disc",
        json={"department": "shimin", "purposes": ["juki.disclosure"]},
        headers=auth(admin, purpose=None),
    )
    assert grant.status_code == 200, grant.text
    discloser = issuer.mint(
        subject="n4-m-disc", tenant=KOMATSU, department="shimin", roles=["staff"]
    )
    report = await client.get(
        f"{KOMATSU_API}/residents/{p['id']}/access-log",
        headers=auth(discloser, purpose="juki.disclosure"),
    )
    assert report.status_code == 200, report.text
    others = [e for e in report.json()["entries"] if e["withheld"] == ["town", "department"]]
    assert others
    assert all(_midnight(e["occurred_at"]) for e in others)
    assert KAGA not in report.text
