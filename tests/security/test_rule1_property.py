"""Rule 1 (支援措置) as a property, over generated households (issue #14).

A seeded generator builds households in Kaga — protected and unprotected
heads and members; members split off into households of their own, protected
people too (F1 of the hostile review); newcomers are registered into split
households and split off again (chains, F2); a protection is lifted; a
linked person moves one-stop to Komatsu, where someone joins their new
household (F3). The test keeps its own model of rule 1's components (people
joined by every household any of them was ever filed under; linked when one
of them is protected) and then every (department, purpose) combination calls
every endpoint that returns a resident or a reference to one: read,
history, search by each mode, household, the events feed and the access
report. For every caller except 市民課 under ``juki.registration`` nothing
in any response may:

- give a protected or linked person's address, phone, postal code, household
  number or 続柄;
- name a household of a linked component (by ``household_no``), or a
  protected or linked head (``head_id``);
- contain the address of anyone in a linked component;
- name the town of a protected (or linked) person's move (``*_town``).

And it must not over-withhold: a person in no linked component shows their
address to 介護保険課. Finally the stored flags equal a recomputation from
scratch (``residents relink`` changes nothing).

Deterministic (fixed seed) and bounded (about two thousand requests).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.domains.residents import linkage
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import individual_number, juminhyo_code, resident_body

BASE = f"/api/v1/tenants/{KAGA}"
KOMATSU_API = f"/api/v1/tenants/{KOMATSU}"
SEED = 1414
HOUSEHOLDS = 6
KANA = "アイウエオカキクケコサシスセソ"
CALLERS = (
    ("kaigo", "kaigo.qualification"),
    ("kaigo", "kaigo.premium"),
    ("shimin", "juki.certificate"),
    ("zeimu", "zeimu.assessment"),
    ("bousai", "bousai.support"),
    ("kaikei", "kaikei.payment"),
)
HIDDEN_ON_PROTECTED = (
    "address",
    "postal_code",
    "previous_address",
    "forward_address",
    "phone",
    "household_no",
    "relationship",
)


@dataclass
class Person:
    id: str
    atena_no: str
    household_no: str
    kana: str
    birth_date: str
    phone: str
    number: str
    address: str
    etag: str
    protected: bool = False
    carried: bool = False
    """Linked by a component of another town (one-stop move-in)."""
    households: set[str] = field(default_factory=set)
    """Every household the record was ever filed under (the current one too)."""
    moved_out: bool = False


@dataclass
class Town:
    people: list[Person] = field(default_factory=list)
    households: set[str] = field(default_factory=set)

    def _components(self) -> list[tuple[set[str], set[str]]]:
        """(people ids, household numbers) of each connected component."""
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            parent.setdefault(x, x)
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for p in self.people:
            for h in p.households | {p.household_no}:
                parent[find("p" + p.id)] = find("h" + h)
        groups: dict[str, tuple[set[str], set[str]]] = {}
        for node in list(parent):
            people, households = groups.setdefault(find(node), (set(), set()))
            (people if node[0] == "p" else households).add(node[1:])
        return list(groups.values())

    def linked_people(self) -> set[str]:
        seeds = {p.id for p in self.people if p.protected or p.carried}
        return {i for people, _h in self._components() if people & seeds for i in people}

    def protected_households(self) -> set[str]:
        """Households of a linked component (a 404 for every caller but the exception)."""
        seeds = {p.id for p in self.people if p.protected or p.carried}
        return {h for people, hs in self._components() if people & seeds for h in hs}

    def hidden_addresses(self) -> set[str]:
        """Addresses of anyone in a linked component."""
        linked = self.linked_people()
        return {p.address for p in self.people if p.id in linked}


async def _register(
    client: Any, token: str, rng: random.Random, base: str = BASE, **body: Any
) -> Person:
    kana = "プロ" + "".join(rng.choice(KANA) for _ in range(4))
    birth = f"{rng.randint(1940, 2015)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    phone = f"0761{rng.randint(100000, 999999)}"
    number = individual_number()
    r = await client.post(
        f"{base}/residents",
        json=resident_body(
            family_name_kana=kana,
            birth_date=birth,
            phone=phone,
            individual_number=number,
            juminhyo_code=juminhyo_code(),
            **body,
        ),
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    out = r.json()
    return Person(
        out["id"],
        out["atena_no"],
        out["household_no"],
        kana,
        birth,
        phone,
        number,
        body["address"],
        r.headers["etag"],
        households={out["household_no"]},
    )


async def _set_protection(client: Any, token: str, person: Person, active: bool) -> None:
    r = await client.put(
        f"{BASE}/residents/{person.id}/support-measure",
        json={"active": active},
        headers=auth(token, **{"If-Match": person.etag}),
    )
    assert r.status_code == 200, r.text
    person.protected, person.etag = active, r.headers["etag"]


async def _split(client: Any, token: str, town: Town, person: Person) -> None:
    today = today_jst().isoformat()
    r = await client.post(
        f"{BASE}/residents/{person.id}/moves",
        json={"event": "household_split", "move_date": today, "notified_on": today},
        headers=auth(token, **{"If-Match": person.etag}),
    )
    assert r.status_code == 200, r.text
    person.etag = r.headers["etag"]
    person.household_no = r.json()["household_no"]
    person.households.add(person.household_no)
    town.households.add(person.household_no)


async def _generate(client: Any, token: str, rng: random.Random) -> Town:
    town = Town()
    heads: set[str] = set()
    for i in range(HOUSEHOLDS):
        address = f"石川県加賀市試験町{SEED}-{i}"
        head = await _register(client, token, rng, address=address)
        heads.add(head.id)
        members = [head]
        for _ in range(rng.randint(1, 3) if i < 2 else rng.randint(0, 2)):
            members.append(
                await _register(
                    client,
                    token,
                    rng,
                    address=address,
                    household_no=head.household_no,
                    relationship=rng.choice(["子", "妻", "夫", "父", "母"]),
                )
            )
        # The case first (a protected head, then a protected member),
        # then at random; some households stay unprotected.
        chosen = [head] if i == 0 else [members[-1]] if i == 1 else []
        chosen += [m for m in members if i >= 2 and rng.random() < 0.3]
        for person in chosen:
            await _set_protection(client, token, person, True)
        town.people += members
        town.households.add(head.household_no)
    # Members leave their households (世帯分離): unprotected ones of linked
    # households (their history holds the old one), and protected non-heads
    # (F1: the household they leave stays linked).
    linked = town.linked_people()
    split: list[Person] = []
    for person in list(town.people):
        if person.id in heads:
            continue
        if (person.protected and rng.random() < 0.7) or (
            person.id in linked and rng.random() < 0.5
        ):
            await _split(client, token, town, person)
            split.append(person)
    # Newcomers join split households, and some split off again (F2, chains).
    for person in split:
        if rng.random() < 0.7:
            newcomer = await _register(
                client,
                token,
                rng,
                address=person.address,
                household_no=person.household_no,
                relationship=rng.choice(["妻", "夫", "子", "同居人"]),
            )
            town.people.append(newcomer)
            if rng.random() < 0.5:
                await _split(client, token, town, newcomer)
    # A protection is lifted: the component is linked only while someone in
    # it is still protected.
    lifted = next(p for p in reversed(town.people) if p.protected)
    await _set_protection(client, token, lifted, False)
    return town


async def _move_to_komatsu(
    client: Any, tokens: dict[str, str], town: Town, rng: random.Random
) -> tuple[Person, Person]:
    """A linked (unprotected) person of Kaga moves one-stop to Komatsu (F3); someone
    joins their new household there. Returns (arrived, newcomer), Komatsu's records."""
    linked = town.linked_people()
    leaving = next(p for p in town.people if p.id in linked and not p.protected)
    today = today_jst()
    r = await client.post(
        f"{BASE}/residents/{leaving.id}/moves",
        json={
            "event": "move_out_domestic",
            "move_date": (today + timedelta(days=2)).isoformat(),
            "notified_on": today.isoformat(),
            "to_tenant": KOMATSU,
        },
        headers=auth(tokens["kaga"], **{"If-Match": leaving.etag}),
    )
    assert r.status_code == 200, r.text
    leaving.etag, leaving.moved_out = r.headers["etag"], True
    address = f"石川県小松市試験町{SEED}-9"
    r = await client.post(
        f"{KOMATSU_API}/residents/one-stop-move-in",
        json={
            "from_tenant": KAGA,
            "resident_id": leaving.id,
            "address": address,
            "move_date": today.isoformat(),
            "notified_on": today.isoformat(),
        },
        headers=auth(tokens["komatsu"]),
    )
    assert r.status_code == 201, r.text
    out = r.json()
    arrived = Person(
        out["id"],
        out["atena_no"],
        out["household_no"],
        leaving.kana,
        leaving.birth_date,
        "",
        leaving.number,
        address,
        r.headers["etag"],
        carried=True,
        households={out["household_no"]},
    )
    newcomer = await _register(
        client,
        tokens["komatsu"],
        rng,
        base=KOMATSU_API,
        address=address,
        household_no=arrived.household_no,
        relationship="妻",
    )
    return arrived, newcomer


def _walk(document: Any, town: Town, where: str) -> None:
    protected = town.linked_people()
    households = town.protected_households()
    if isinstance(document, dict):
        if document.get("id") in protected:
            for name in HIDDEN_ON_PROTECTED:
                assert name not in document, (where, "protected or linked person's", name)
        no = document.get("household_no")
        assert no not in households, (where, "a protected household's number")
        assert document.get("head_id") not in protected, (where, "a protected or linked head")
        for value in document.values():
            _walk(value, town, where)
    elif isinstance(document, list):
        for item in document:
            _walk(item, town, where)


def _check(response: Any, town: Town, where: str) -> None:
    assert response.status_code < 500, (where, response.text)
    for address in town.hidden_addresses():
        assert address not in response.text, (where, "a protected household's address")
    if response.headers.get("content-type", "").startswith("application/json"):
        _walk(response.json(), town, where)


async def test_rule_1_holds_for_every_caller_and_endpoint(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    rng = random.Random(SEED)  # noqa: S311 - a reproducible test case, not a secret
    town = await _generate(client, tokens["kaga"], rng)
    arrived, newcomer = await _move_to_komatsu(client, tokens, town, rng)
    assert town.protected_households()
    linked = town.linked_people()
    # The generator made every case: protected people who split off, linked
    # newcomers who never shared a household with a protected person, chains.
    assert any(p.protected and len(p.households) > 1 for p in town.people)
    assert any(len(p.households) > 1 and p.id in linked and not p.protected for p in town.people)
    assert any(p.id not in linked for p in town.people)
    checked = 0
    for department, purpose in CALLERS:
        token = issuer.mint(
            subject=f"prop-{department}",
            tenant=KAGA,
            department=department,
            roles=["staff"],
            mfa=True,
        )
        h = auth(token, purpose=purpose)
        for person in town.people:
            for url in (f"{BASE}/residents/{person.id}", f"{BASE}/residents/{person.id}/history"):
                _check(await client.get(url, headers=h), town, f"{purpose} {url}")
                checked += 1
            for query in (
                {"atena_no": person.atena_no},
                {"family_name_kana": person.kana, "birth_date": person.birth_date},
                {"phone": person.phone},
                {"individual_number": person.number},
            ):
                r = await client.post(f"{BASE}/residents/search", json=query, headers=h)
                _check(r, town, f"{purpose} search {sorted(query)}")
                checked += 1
                if r.status_code == 200 and person.id in linked and "phone" in query:
                    # A hidden phone number confirms nobody.
                    assert r.json()["count"] == 0, (purpose, "found by a hidden phone")
        for household_no in sorted(town.households):
            r = await client.get(f"{BASE}/households/{household_no}", headers=h)
            _check(r, town, f"{purpose} household")
            checked += 1
            if household_no in town.protected_households():
                assert r.status_code in (403, 404), (purpose, "a protected household")
    # The events feed (integrations) names no town of a protected person's move.
    sync = issuer.mint(
        subject="prop-sync", tenant=KAGA, department="kaigo", roles=["staff", "integration"]
    )
    after: str | None = None
    while True:
        page = await client.get(
            f"{BASE}/events",
            params={"limit": 1000, **({"after": after} if after else {})},
            headers=auth(sync, purpose=None),
        )
        _check(page, town, "events")
        for event in page.json()["events"]:
            if event["resident_id"] in linked:
                assert not any(k.endswith("_town") for k in event["ids"]), event
        after = page.json()["next"]
        if not page.json()["more"]:
            break
    # The access report of each protected person names no other town.
    discloser = issuer.mint(subject="prop-disc", tenant=KAGA, department="shimin", roles=["staff"])
    for person in town.people:
        if person.protected:
            r = await client.get(
                f"{BASE}/residents/{person.id}/access-log",
                headers=auth(discloser, purpose="juki.disclosure"),
            )
            _check(r, town, "access report")
            assert r.status_code == 200, r.text
            for entry in r.json()["entries"]:
                assert entry["town"] is None or entry["town"]["code"] == KAGA
    assert checked > 100
    # Not over-withheld: whoever is in no linked component shows their address.
    kaigo = issuer.mint(subject="prop-kaigo", tenant=KAGA, department="kaigo", roles=["staff"])
    for person in town.people:
        if person.id not in linked and not person.moved_out:
            r = await client.get(
                f"{BASE}/residents/{person.id}", headers=auth(kaigo, purpose="kaigo.qualification")
            )
            assert r.json().get("address") == person.address, "over-withheld"
    # 市民課 registering residents: the one exception, sees every household whole.
    for household_no in sorted(town.protected_households()):
        r = await client.get(f"{BASE}/households/{household_no}", headers=auth(tokens["kaga"]))
        assert r.status_code == 200
        listed = {m["id"] for m in r.json()["members"]}
        assert {
            p.id for p in town.people if p.household_no == household_no and not p.moved_out
        } <= listed
    # F3: in Komatsu, the linked arrival and whoever joined them.
    there = Town(people=[arrived, newcomer], households={arrived.household_no})
    for department, purpose in CALLERS[:4]:
        token = issuer.mint(
            subject=f"prop-m-{department}",
            tenant=KOMATSU,
            department=department,
            roles=["staff"],
            mfa=True,
        )
        h = auth(token, purpose=purpose)
        for person in there.people:
            r = await client.get(f"{KOMATSU_API}/residents/{person.id}", headers=h)
            _check(r, there, f"komatsu {purpose} resident")
            r = await client.post(
                f"{KOMATSU_API}/residents/search",
                json={"family_name_kana": person.kana, "birth_date": person.birth_date},
                headers=h,
            )
            _check(r, there, f"komatsu {purpose} search")
        r = await client.get(f"{KOMATSU_API}/households/{arrived.household_no}", headers=h)
        _check(r, there, f"komatsu {purpose} household")
        assert r.status_code in (403, 404), (purpose, "a linked household")
    # The stored flags are what a recomputation from scratch gives.
    for code in (KAGA, KOMATSU):
        async with db.tenant(tenant_names(code, db.settings.role_prefix)) as uow:
            assert (await linkage.relink(uow)).flags_changed == 0, code
