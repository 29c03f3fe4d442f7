"""Regressions found in review: each test tries the attack or odd input that used
to succeed (or crash) and asserts it no longer does."""

from __future__ import annotations

from typing import Any

from shared_gov.auth.issuer import BuiltinIssuer
from tests.conftest import KAGA, auth
from tests.factories import juminhyo_code, resident_body

BASE = f"/api/v1/tenants/{KAGA}"


async def _protected_household(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    """A head of household and a protected (支援措置) member living with them."""
    h = auth(tokens["kaga"])
    head = await client.post(
        f"{BASE}/residents", json=resident_body(address="石川県加賀市隠れ家町1-2-3"), headers=h
    )
    assert head.status_code == 201
    member = await client.post(
        f"{BASE}/residents",
        json=resident_body(
            household_no=head.json()["household_no"],
            relationship="妻",
            address="石川県加賀市隠れ家町1-2-3",
            phone="0761-55-1234",
        ),
        headers=h,
    )
    assert member.status_code == 201, member.text
    protect = await client.put(
        f"{BASE}/residents/{member.json()['id']}/support-measure",
        json={"active": True},
        headers={**h, "If-Match": member.headers["etag"]},
    )
    assert protect.status_code == 200
    return {"head": head.json(), "member": member.json()}


async def test_protected_person_is_not_found_through_the_household(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """Care-insurance staff see neither the protected person's household number nor
    their membership of the head's household (which would give away the address)."""
    people = await _protected_household(client, tokens)
    kaigo = issuer.mint(subject="kg", tenant=KAGA, department="kaigo", roles=["staff"])
    h = auth(kaigo, purpose="kaigo.qualification")
    member = await client.get(f"{BASE}/residents/{people['member']['id']}", headers=h)
    assert member.status_code == 200
    assert "household_no" not in member.json()
    household = await client.get(f"{BASE}/households/{people['head']['household_no']}", headers=h)
    # Rule 1 (docs/support-measures.md): a household holding a protected person
    # does not exist for this caller (listing the others would show where the
    # protected person lives), and the head shares the protected whereabouts.
    assert household.status_code == 404
    assert people["member"]["id"] not in household.text
    head = await client.get(f"{BASE}/residents/{people['head']['id']}", headers=h)
    assert head.status_code == 200
    assert "household_no" not in head.json()
    assert "address" not in head.json()
    # 市民課 doing registration work still sees the whole household.
    full = await client.get(
        f"{BASE}/households/{people['head']['household_no']}", headers=auth(tokens["kaga"])
    )
    assert people["member"]["id"] in full.text


async def test_protected_phone_cannot_be_confirmed_by_search(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """Searching by a protected person's phone finds nobody for a department that may
    not see it; 市民課 registration work still finds them."""
    people = await _protected_household(client, tokens)
    bousai = issuer.mint(subject="bs", tenant=KAGA, department="bousai", roles=["staff"])
    r = await client.post(
        f"{BASE}/residents/search",
        json={"phone": "0761551234"},
        headers=auth(bousai, purpose="bousai.support"),
    )
    assert r.status_code == 200
    assert people["member"]["id"] not in r.text
    shimin = await client.post(
        f"{BASE}/residents/search", json={"phone": "0761551234"}, headers=auth(tokens["kaga"])
    )
    assert people["member"]["id"] in shimin.text


async def test_registering_an_individual_number_needs_mfa(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """Without 2FA a registration carrying an individual number is refused (so a
    duplicate cannot confirm that a number exists); without the number it works."""
    no_mfa = issuer.mint(subject="s1", tenant=KAGA, department="shimin", roles=["staff"])
    existing = await client.post(
        f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"])
    )
    dup = resident_body(individual_number=existing.json()["individual_number"])
    r = await client.post(f"{BASE}/residents", json=dup, headers=auth(no_mfa))
    assert r.status_code == 403
    assert r.json()["reason"] == "two-factor authentication required"
    body = resident_body()
    del body["individual_number"]
    assert (
        await client.post(f"{BASE}/residents", json=body, headers=auth(no_mfa))
    ).status_code == 201


async def test_odd_if_match_values_are_412_not_500(client: Any, tokens: dict[str, str]) -> None:
    created = await client.post(
        f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"])
    )
    url = f"{BASE}/residents/{created.json()['id']}/moves"
    move = {"event": "death", "move_date": "2024-01-01", "notified_on": "2024-01-02"}
    for value in (
        '"v²"'.encode("latin-1"),
        ('"v' + "9" * 5000 + '"').encode(),
        '"v٣"'.encode(),
        b'"v"',
        b"v1",
        b'"v-1"',
    ):
        headers: dict[str, Any] = {**auth(tokens["kaga"]), "If-Match": value}
        r = await client.post(url, json=move, headers=headers)
        assert r.status_code == 412, (value[:10], r.status_code)


async def test_deeply_nested_json_is_400(client: Any, tokens: dict[str, str]) -> None:
    r = await client.post(
        f"{BASE}/residents",
        content="[" * 5000,
        headers={**auth(tokens["kaga"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 400


async def test_trailing_newline_does_not_dodge_formats(client: Any, tokens: dict[str, str]) -> None:
    """ "12345678901\\n" is not an 11-digit 住民票コード (Python's $ matches before \\n)."""
    code = juminhyo_code()
    r = await client.post(
        f"{BASE}/residents",
        json=resident_body(juminhyo_code=code + "\n"),
        headers=auth(tokens["kaga"]),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "/juminhyo_code"
    r = await client.post(
        f"{BASE}/residents",
        json=resident_body(postal_code="9220000\n"),
        headers=auth(tokens["kaga"]),
    )
    assert r.status_code == 422
