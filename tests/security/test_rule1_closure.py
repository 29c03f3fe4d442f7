"""Rule 1's "linked" is a closure (docs/support-measures.md), attacked through the HTTP API.

The hostile review of the issue #14 fixes (reviewer 1) found that linkage
looked one step away only:

- F1: a protected person splits off (世帯分離) from the household they shared;
  the member who stays became readable with the shared address again, and
  the household they left answered 200.
- F2: a child splits off from a protected parent's household; someone
  registered into the child's new household was readable with the address
  (the parent's), and that household answered with its head — found by
  enumerating the sequential, check-digited household numbers.
- F3: a linked child's one-stop move to another town arrived unlinked.

Also: lifting 支援措置 un-links the component; two writes joining a component
at the same time leave nobody unlinked (and deadlock nobody); the relink
step (t0011's application-side backfill) reads histories the migration
could not.
"""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.checkdigits import make_serial
from shared_gov.cli.main import app
from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.domains import registry as domain_registry
from shared_gov.domains.residents import demo as residents_demo
from shared_gov.domains.residents import linkage
from shared_gov.settings import Settings, get_settings
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body
from tests.security.test_support_measures import (
    BASE,
    HIDEOUT,
    KOMATSU_API,
    WHEREABOUTS,
    _others,
    _protect,
    _register,
    shows,
)

_T0011 = (
    Path(__file__).parents[2]
    / "src/shared_gov/db/migrations/tenant/versions/t0011_protection_linked.py"
)


async def _split(client: Any, base: str, token: str, person: dict[str, Any]) -> dict[str, Any]:
    today = today_jst().isoformat()
    r = await client.post(
        f"{base}/residents/{person['id']}/moves",
        json={"event": "household_split", "move_date": today, "notified_on": today},
        headers=auth(token, **{"If-Match": person["etag"]}),
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    result["etag"] = r.headers["etag"]
    return result


async def _assert_hidden(
    client: Any,
    callers: dict[str, dict[str, str]],
    person: dict[str, Any],
    households: list[str],
    base: str = BASE,
) -> None:
    """Every caller: the person's whereabouts and household links are withheld,
    no household of the component is named, and each of them is a 404."""
    for name, h in callers.items():
        r = await client.get(f"{base}/residents/{person['id']}", headers=h)
        assert r.status_code == 200, (name, r.text)
        for field in (*WHEREABOUTS, "relationship"):
            assert field not in r.json(), (name, field)
        assert HIDEOUT not in r.text, name
        for number in households:
            assert not shows(r, number), (name, number)
            r = await client.get(f"{base}/households/{number}", headers=h)
            assert r.status_code == 404, (name, number, r.text)


async def _visible(client: Any, h: dict[str, str], person: dict[str, Any]) -> bool:
    r = await client.get(f"{BASE}/residents/{person['id']}", headers=h)
    assert r.status_code == 200, r.text
    return "address" in r.json()


async def test_f1_a_protected_person_who_splits_off_leaves_the_household_linked(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """M heads H; P (protected) splits off from H and stays at the address.
    M's address and household number stay withheld; H and P's new household are 404."""
    kaga = tokens["kaga"]
    m = await _register(client, tokens, family_name_kana="エフイチ", address=HIDEOUT)
    p = await _register(
        client,
        tokens,
        family_name_kana="エフイチ",
        given_name_kana="ハナコ",
        birth_date="1988-08-08",
        address=HIDEOUT,
        household_no=m["household_no"],
        relationship="妻",
    )
    p = await _protect(client, BASE, kaga, p)
    p = await _split(client, BASE, kaga, p)
    assert p["household_no"] != m["household_no"]
    households = [m["household_no"], p["household_no"]]
    await _assert_hidden(client, _others(issuer), m, households)
    await _assert_hidden(client, _others(issuer), p, households)
    # 市民課 registering residents sees both households whole.
    for number in households:
        r = await client.get(f"{BASE}/households/{number}", headers=auth(kaga))
        assert r.status_code == 200, r.text


async def test_f1_the_order_does_not_matter(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """P splits off first and is protected afterwards: the same."""
    kaga = tokens["kaga"]
    m = await _register(client, tokens, family_name_kana="エフイチビ", address=HIDEOUT)
    p = await _register(
        client,
        tokens,
        family_name_kana="エフイチビ",
        birth_date="1989-09-09",
        address=HIDEOUT,
        household_no=m["household_no"],
        relationship="妻",
    )
    p = await _split(client, BASE, kaga, p)
    assert await _visible(client, _others(issuer)["kaigo"], m)  # nobody protected yet
    p = await _protect(client, BASE, kaga, p)
    await _assert_hidden(client, _others(issuer), m, [m["household_no"], p["household_no"]])


async def test_f2_linkage_propagates_through_split_households_and_newcomers(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """P (protected) heads H with child Q; Q splits into Hq; R is registered into
    Hq; then S into a household split off from Hq. All linked; enumerating the
    household numbers around the sequence finds none of the component."""
    kaga = tokens["kaga"]
    p = await _register(client, tokens, family_name_kana="エフニ", address=HIDEOUT)
    q = await _register(
        client,
        tokens,
        family_name_kana="エフニ",
        birth_date="2004-04-04",
        address=HIDEOUT,
        household_no=p["household_no"],
        relationship="子",
    )
    p = await _protect(client, BASE, kaga, p)
    q = await _split(client, BASE, kaga, q)
    r = await _register(
        client,
        tokens,
        family_name_kana="エフニ",
        birth_date="2003-03-03",
        address=HIDEOUT,
        household_no=q["household_no"],
        relationship="妻",
    )
    r = await _split(client, BASE, kaga, r)  # a chain: R leaves Hq too
    s = await _register(
        client,
        tokens,
        family_name_kana="エフニ",
        birth_date="2024-02-02",
        address=HIDEOUT,
        household_no=r["household_no"],
        relationship="子",
    )
    component = [p["household_no"], q["household_no"], r["household_no"]]
    callers = _others(issuer)
    for person in (q, r, s):
        await _assert_hidden(client, callers, person, component)
    # The enumeration of F2: every number near the sequence; none of the
    # component answers, and no answer names anyone of it.
    ids = {p["id"], q["id"], r["id"], s["id"]}
    serial = int(q["household_no"][:7])
    for h in callers.values():
        for n in range(max(serial - 8, 1), serial + 9):
            number = make_serial(n)
            answer = await client.get(f"{BASE}/households/{number}", headers=h)
            assert answer.status_code in (200, 404), answer.text
            if number in component:
                assert answer.status_code == 404, number
            assert not any(i in answer.text for i in ids), number
            assert HIDEOUT not in answer.text


async def test_f3_a_linked_person_arrives_linked_in_the_new_town(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """A protected parent's child in Komatsu moves one-stop to Kaga: Kaga's other
    departments see neither the new address nor the new household, and whoever
    Kaga files with the child later is linked too."""
    komatsu = tokens["komatsu"]
    shared_home = "石川県小松市隠れ家町3-3"
    r = await client.post(
        f"{KOMATSU_API}/residents",
        json=resident_body(address=shared_home, family_name_kana="エフサン"),
        headers=auth(komatsu),
    )
    assert r.status_code == 201
    parent = {**r.json(), "etag": r.headers["etag"]}
    r = await client.post(
        f"{KOMATSU_API}/residents",
        json=resident_body(
            address=shared_home,
            family_name_kana="エフサン",
            birth_date="2007-07-07",
            household_no=parent["household_no"],
            relationship="子",
        ),
        headers=auth(komatsu),
    )
    assert r.status_code == 201
    child = {**r.json(), "etag": r.headers["etag"]}
    await _protect(client, KOMATSU_API, komatsu, parent)
    child = await _split(client, KOMATSU_API, komatsu, child)  # linked through the past household
    today = today_jst()
    moved = await client.post(
        f"{KOMATSU_API}/residents/{child['id']}/moves",
        json={
            "event": "move_out_domestic",
            "move_date": (today + timedelta(days=2)).isoformat(),
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
            "address": HIDEOUT,
            "move_date": today.isoformat(),
            "notified_on": today.isoformat(),
        },
        headers=auth(tokens["kaga"]),
    )
    assert arrived.status_code == 201, arrived.text
    q_b = {**arrived.json(), "etag": arrived.headers["etag"]}
    assert q_b["support_measure"] is False  # linked, not protected
    partner = await _register(
        client,
        tokens,
        family_name_kana="エフサン",
        birth_date="2006-06-06",
        address=HIDEOUT,
        household_no=q_b["household_no"],
        relationship="妻",
    )
    callers = _others(issuer)
    await _assert_hidden(client, callers, q_b, [q_b["household_no"]])
    await _assert_hidden(client, callers, partner, [q_b["household_no"]])
    # Kaga's 市民課 lifts it for its own register (支援措置 is per town).
    lifted = await _protect(client, BASE, tokens["kaga"], q_b, active=False)
    assert lifted["support_measure"] is False
    assert await _visible(client, callers["kaigo"], partner)


async def test_lifting_protection_unlinks_the_component(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    kaga = tokens["kaga"]
    p = await _register(client, tokens, family_name_kana="カイジョ", address=HIDEOUT)
    q = await _register(
        client,
        tokens,
        family_name_kana="カイジョ",
        birth_date="2005-05-05",
        address=HIDEOUT,
        household_no=p["household_no"],
        relationship="子",
    )
    p = await _protect(client, BASE, kaga, p)
    q = await _split(client, BASE, kaga, q)
    kaigo = _others(issuer)["kaigo"]
    assert not await _visible(client, kaigo, q)
    p = await _protect(client, BASE, kaga, p, active=False)
    assert await _visible(client, kaigo, q)
    assert await _visible(client, kaigo, p)
    for number in (p["household_no"], q["household_no"]):
        r = await client.get(f"{BASE}/households/{number}", headers=kaigo)
        assert r.status_code == 200, r.text
    # Two protected people: lifting one keeps the component linked.
    p = await _protect(client, BASE, kaga, p)
    q = await _protect(client, BASE, kaga, q)
    q = await _protect(client, BASE, kaga, q, active=False)
    assert not await _visible(client, kaigo, q)


async def test_concurrent_writes_joining_a_component_leave_nobody_unlinked(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """Protecting P while others are registered into households of P's component
    (and a member is made head, which locks two records): serialised by the
    town's linkage lock, so whoever joined is linked, and nothing deadlocks."""
    kaga = tokens["kaga"]
    kaigo = _others(issuer)["kaigo"]
    for round_no in range(3):
        kana = "ドウジ" + "アイウ"[round_no]
        p = await _register(client, tokens, family_name_kana=kana, address=HIDEOUT)
        q = await _register(
            client,
            tokens,
            family_name_kana=kana,
            birth_date="2001-01-01",
            address=HIDEOUT,
            household_no=p["household_no"],
            relationship="子",
        )
        q = await _split(client, BASE, kaga, q)
        o = await _register(
            client,
            tokens,
            family_name_kana=kana,
            birth_date="1960-01-01",
            address=HIDEOUT,
            household_no=p["household_no"],
            relationship="父",
        )
        today = today_jst().isoformat()

        def joiner(household_no: str, birth: str, kana: str = kana) -> Any:
            return client.post(
                f"{BASE}/residents",
                json=resident_body(
                    family_name_kana=kana,
                    birth_date=birth,
                    address=HIDEOUT,
                    household_no=household_no,
                    relationship="同居人",
                ),
                headers=auth(kaga),
            )

        results = await asyncio.gather(
            client.put(
                f"{BASE}/residents/{p['id']}/support-measure",
                json={"active": True},
                # The head change below may demote P first (a new version).
                headers=auth(kaga, **{"If-Match": "*"}),
            ),
            joiner(q["household_no"], "1999-09-09"),
            joiner(p["household_no"], "1998-08-08"),
            joiner(q["household_no"], "1997-07-07"),
            client.post(
                f"{BASE}/residents/{o['id']}/moves",
                json={
                    "event": "head_of_household_change",
                    "move_date": today,
                    "notified_on": today,
                    "previous_head_relationship": "子",
                },
                headers=auth(kaga, **{"If-Match": o["etag"]}),
            ),
        )
        for result in results:
            assert result.status_code in (200, 201), result.text
        for person in (q, o, *(r.json() for r in results[1:4])):
            assert not await _visible(client, kaigo, person), (round_no, person["id"])


async def test_relink_reads_what_the_migration_could_not(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    """t0011 cannot decrypt histories: a record whose household changed is
    withheld as linked until ``residents relink`` has read its snapshots,
    after which exactly the component of a protected person is linked."""
    spec = importlib.util.spec_from_file_location("t0011", _T0011)
    assert spec is not None
    assert spec.loader is not None
    t0011 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t0011)
    kaga = tokens["kaga"]
    p = await _register(client, tokens, family_name_kana="リンク", address=HIDEOUT)
    q = await _register(
        client,
        tokens,
        family_name_kana="リンク",
        birth_date="2002-02-02",
        address=HIDEOUT,
        household_no=p["household_no"],
        relationship="子",
    )
    q = await _split(client, BASE, kaga, q)
    r = await _register(
        client,
        tokens,
        family_name_kana="リンク",
        birth_date="2000-10-10",
        address=HIDEOUT,
        household_no=q["household_no"],
        relationship="妻",
    )
    loner = await _register(client, tokens, family_name_kana="リンク", birth_date="1977-07-07")
    loner = await _split(
        client,
        BASE,
        kaga,
        await _register(
            client,
            tokens,
            family_name_kana="リンク",
            birth_date="1978-08-08",
            household_no=loner["household_no"],
            relationship="同居人",
        ),
    )
    p = await _protect(client, BASE, kaga, p)
    kaigo = _others(issuer)["kaigo"]
    assert not await _visible(client, kaigo, r)
    names = tenant_names(KAGA, db.settings.role_prefix)
    async with db.tenant(names) as uow:
        # As just after t0011 on a town whose splits happened before it: no
        # membership known, the backfill run.
        await uow.execute(
            "DELETE FROM household_memberships WHERE resident_id = ANY($1::uuid[])",
            [q["id"], loner["id"]],
        )
        await uow.execute(t0011.BACKFILL_UNKNOWN)
        await uow.execute(t0011.BACKFILL_LINKED)
    # Conservative meanwhile: the whole components of unknown pasts are withheld.
    assert not await _visible(client, kaigo, r)
    assert not await _visible(client, kaigo, loner)
    async with db.tenant(names) as uow:
        done = await linkage.relink(uow)
        assert done.residents_read >= 2
        assert done.memberships_added >= 2
        again = await linkage.relink(uow)
        assert again.residents_read == 0
        assert again.flags_changed == 0
    assert not await _visible(client, kaigo, r)  # the split was read back: still linked
    assert await _visible(client, kaigo, loner)  # nobody protected in its component


def test_relink_is_a_cli_step_and_part_of_the_demo(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, db: Database
) -> None:
    """``shared-gov residents relink --tenant CODE`` runs and prints counts only;
    ``make run`` (the demo preparation) runs the same step for every town."""
    assert settings.database_url
    # The test database and the data directory holding its towns' keys.
    monkeypatch.setenv("SHARED_GOV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHARED_GOV_ROLE_PREFIX", settings.role_prefix)
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["residents", "relink", "--tenant", KAGA])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"{KAGA}: histories of" in result.output
    assert "links" in result.output
    assert "changed" in result.output
    upgrades = [demo.upgrade for _name, demo in domain_registry.demo_data()]
    assert residents_demo.upgrade in upgrades
