"""One person, one key: every "is this the same person?" decision agrees (review M-1, M-2).

The attacks (through HTTP, with the town's own tokens): suspension and "nobody
changes their own permissions" compared staff subjects exactly while four eyes
compared them loosely, so

- a suspended ``e-3`` acting with the subject ``E-3`` (or ``e‐3``, ``ｅ－３``…)
  was not suspended: it read residents, rejected proposals and lifted its own
  suspension (``PUT …/staff/e-3 {"active": true}`` → 200);
- an admin ``a-0001`` granted itself purposes through ``PUT …/staff/A-0001``,
  ``…/staff/ａ-0001`` (full-width) or ``…/staff/a-0001%20``.

Now the permission store, the self-change checks and four eyes all use
``shared_gov.auth.subjects.person_key``, and ``catalog.staff`` holds one
record per key: any spelling of a person reaches that person's record.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.auth.issuers import person_key
from shared_gov.db import Database
from tests.conftest import KAGA, auth
from tests.factories import resident_body
from tests.security.sod_helpers import change_of, events

BASE = f"/api/v1/tenants/{KAGA}"


def admin(issuer: BuiltinIssuer, sub: str) -> dict[str, str]:
    return auth(issuer.mint(subject=sub, tenant=KAGA, department="somu", roles=["admin"]), None)


def clerk(issuer: BuiltinIssuer, sub: str, dept: str = "shimin") -> dict[str, str]:
    token = issuer.mint(subject=sub, tenant=KAGA, department=dept, roles=["staff"], mfa=True)
    return auth(token)


async def staff_record(client: Any, tokens: dict[str, str], staff_id: str) -> Any:
    r = await client.get(f"{BASE}/staff/{quote(staff_id)}", headers=auth(tokens["kaga_admin"]))
    return r.json() if r.status_code == 200 else None


@pytest.fixture
async def resident_url(client: Any, tokens: dict[str, str]) -> str:
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201, r.text
    return str(r.headers["location"])


async def test_a_suspended_person_is_suspended_in_every_spelling(
    client: Any, issuer: BuiltinIssuer, tokens: dict[str, str], db: Database, resident_url: str
) -> None:
    """e-3 is suspended: E-3, ｅ－３, e‐3, e−3, eー3… read nothing and lift nothing."""
    r = await client.put(
        f"{BASE}/staff/e-3", json={"active": False}, headers=auth(tokens["kaga_admin"])
    )
    assert r.status_code == 200, r.text
    variants = ["e-3", "E-3", "e-3 ", "\uff45-3", "\uff25\uff0d\uff13"]
    variants += ["e\u20103", "e\u22123", "e\u30fc3", "e\uff703", "e\u20143", "e\u20113"]
    for sub in variants:
        r = await client.get(resident_url, headers=clerk(issuer, sub))
        assert r.status_code == 403, (sub, r.text)
        assert "suspended" in r.json()["detail"]
        # The suspension lifted by the suspended person itself: refused before any handler.
        r = await client.put(f"{BASE}/staff/e-3", json={"active": True}, headers=admin(issuer, sub))
        assert r.status_code == 403, (sub, r.text)
        r = await client.delete(f"{BASE}/staff/e-3", headers=admin(issuer, sub))
        assert r.status_code == 403, (sub, r.text)
        r = await client.delete(f"{BASE}/issuer/pending/{'0' * 8}", headers=admin(issuer, sub))
        assert r.status_code == 403, (sub, r.text)
    record = await staff_record(client, tokens, "e-3")
    assert record is not None
    assert record["active"] is False
    suspended = await events(db, KAGA, "authenticate", "denied")
    assert {e["actor"] for e in suspended if e["reason"] == "suspended"} >= set(variants)


@pytest.mark.parametrize(
    "path",
    ["A-0001", "\uff41-0001", "a-0001%20", "a\u20100001", "a\u22120001", "a\u30fc0001"],
)
async def test_an_admin_grants_itself_nothing_under_another_spelling(
    client: Any, issuer: BuiltinIssuer, tokens: dict[str, str], db: Database, path: str
) -> None:
    """a-0001 puts purposes on …/staff/A-0001 (ａ-0001, a-0001%20, a‐0001…): 403, recorded."""
    me = admin(issuer, "a-0001")
    url = f"{BASE}/staff/{path if '%' in path else quote(path)}"
    r = await client.put(url, json={"purposes": ["juki.registration"]}, headers=me)
    assert r.status_code == 403, r.text
    assert "own" in r.json()["detail"]
    r = await client.put(url, json={"active": False}, headers=me)
    assert r.status_code == 403, r.text
    r = await client.delete(url, headers=me)
    assert r.status_code == 403, r.text
    denied = await events(db, KAGA, "admin.staff", "denied")
    assert "own" in change_of(denied[-1])["refused"]
    # No record of a-0001 came into being under any spelling.
    listed = await client.get(f"{BASE}/staff", headers=auth(tokens["kaga_admin"]))
    assert not [s for s in listed.json() if person_key(s["staff_id"]) == "a-0001"]


async def test_an_admins_own_department_is_theirs_in_every_spelling(
    client: Any, issuer: BuiltinIssuer, tokens: dict[str, str]
) -> None:
    """b-0001's record pins them to kaigo; as B-0001 (token department somu) they
    still may not change kaigo's purposes."""
    r = await client.put(
        f"{BASE}/staff/b-0001", json={"department": "kaigo"}, headers=auth(tokens["kaga_admin"])
    )
    assert r.status_code == 200, r.text
    r = await client.put(
        f"{BASE}/departments/kaigo",
        json={"name": "介護保険課", "purposes": ["kaigo.qualification", "juki.registration"]},
        headers=admin(issuer, "B-0001"),
    )
    assert r.status_code == 403, r.text


async def test_another_spelling_of_a_person_on_record_is_that_person(
    client: Any, tokens: dict[str, str]
) -> None:
    """PUT …/staff/C-0001 when c-0001 is on record changes c-0001: no second record."""
    boss = auth(tokens["kaga_admin"])
    r = await client.put(f"{BASE}/staff/c-0001", json={"purposes": []}, headers=boss)
    assert r.status_code == 200, r.text
    for spelling in ("C-0001", "\uff43\uff0d0001", "c\u20100001", "c-0001 "):
        r = await client.put(
            f"{BASE}/staff/{quote(spelling)}", json={"purposes": ["juki.certificate"]}, headers=boss
        )
        assert r.status_code == 200, (spelling, r.text)
        assert r.json()["staff_id"] == "c-0001"
        got = await client.get(f"{BASE}/staff/{quote(spelling)}", headers=boss)
        assert got.json()["staff_id"] == "c-0001"
    listed = await client.get(f"{BASE}/staff", headers=boss)
    assert [s["staff_id"] for s in listed.json() if s["staff_id"].lower().startswith("c")] == [
        "c-0001"
    ]
    r = await client.delete(f"{BASE}/staff/C-0001", headers=boss)
    assert r.status_code == 204, r.text
    assert await staff_record(client, tokens, "c-0001") is None


async def test_a_persons_purposes_follow_them_in_every_spelling(
    client: Any, issuer: BuiltinIssuer, tokens: dict[str, str], resident_url: str
) -> None:
    """Purposes granted to d-0001 are D-0001's: one person, one set of permissions
    (and a grant cannot be dodged by a spelling, nor can a suspension)."""
    boss = auth(tokens["kaga_admin"])
    # hoken has no purposes of its own: whatever d-0001 may do is their own grant.
    before = await client.get(resident_url, headers=clerk(issuer, "D-0001", "hoken"))
    assert before.status_code == 403, before.text
    r = await client.put(
        f"{BASE}/staff/d-0001", json={"purposes": ["juki.registration"]}, headers=boss
    )
    assert r.status_code == 200, r.text
    for sub in ("D-0001", "d\u22120001", "\uff44-0001"):
        r = await client.get(resident_url, headers=clerk(issuer, sub, "hoken"))
        assert r.status_code == 200, (sub, r.text)


async def test_a_staff_id_of_blanks_only_is_refused(client: Any, tokens: dict[str, str]) -> None:
    for blanks in ("%E3%80%80", "%20%20"):
        r = await client.put(
            f"{BASE}/staff/{blanks}", json={"purposes": []}, headers=auth(tokens["kaga_admin"])
        )
        assert r.status_code == 422, r.text


async def test_a_token_whose_subject_is_blanks_only_is_refused(
    client: Any, issuer: BuiltinIssuer, resident_url: str
) -> None:
    """A subject of spaces names nobody: nobody could suspend it. 401."""
    for blanks in ("  ", " \t"):
        r = await client.get(resident_url, headers=clerk(issuer, blanks))
        assert r.status_code == 401, r.text
