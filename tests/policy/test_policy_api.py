"""Cedar decisions through the HTTP API: per-field responses, reasons, 支援措置,
purposes, and permission changes that take effect on the next request."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.settings import Settings
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"


def mint(
    issuer: BuiltinIssuer,
    dept: str,
    *,
    mfa: bool = False,
    sub: str | None = None,
    role: str = "staff",
    tenant: str = KAGA,
) -> str:
    return issuer.mint(
        subject=sub or f"{dept}-staff", tenant=tenant, department=dept, roles=[role], mfa=mfa
    )


@pytest.fixture(scope="module")
async def person(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    r = await client.post(
        f"{BASE}/residents", json=resident_body(phone="0761-00-0000"), headers=auth(tokens["kaga"])
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_purpose_is_required(
    client: Any, tokens: dict[str, str], person: dict[str, Any]
) -> None:
    """Without X-Purpose, or with an unknown one, personal data requests get 400."""
    url = f"{BASE}/residents/{person['id']}"
    missing = await client.get(url, headers=auth(tokens["kaga"], purpose=None))
    assert missing.status_code == 400
    assert "X-Purpose" in missing.json()["detail"]
    unknown = await client.get(url, headers=auth(tokens["kaga"], purpose="curiosity"))
    assert unknown.status_code == 400
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_care_insurance_sees_its_fields_only(
    client: Any, issuer: BuiltinIssuer, person: dict[str, Any]
) -> None:
    """介護保険課 for kaigo.qualification gets name, kana, birth date, address and
    household, not the individual number without 2FA; withheld fields are listed."""
    r = await client.get(
        f"{BASE}/residents/{person['id']}",
        headers=auth(mint(issuer, "kaigo"), purpose="kaigo.qualification"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    for name in ("family_name", "given_name_kana", "birth_date", "address", "household_no"):
        assert body[name] == person[name]
    assert "individual_number" not in body
    assert person["individual_number"] not in r.text
    assert person["phone"] not in r.text
    assert {"individual_number", "phone", "juminhyo_code", "domicile"} <= set(body["withheld"])
    assert body["withheld_reasons"]["individual_number"] == "two-factor authentication required"
    assert body["withheld_reasons"]["phone"] == "purpose kaigo.qualification does not cover phone"


async def test_individual_number_needs_listed_purpose_and_mfa(
    client: Any, issuer: BuiltinIssuer, person: dict[str, Any]
) -> None:
    """With 2FA, kaigo.qualification (a listed use) shows the number; kaigo.premium does not."""
    url = f"{BASE}/residents/{person['id']}"
    listed = await client.get(
        url, headers=auth(mint(issuer, "kaigo", mfa=True), purpose="kaigo.qualification")
    )
    assert listed.json()["individual_number"] == person["individual_number"]
    premium = await client.get(
        url, headers=auth(mint(issuer, "kaigo", mfa=True), purpose="kaigo.premium")
    )
    assert "individual_number" not in premium.json()
    assert premium.json()["withheld_reasons"]["individual_number"] == (
        "purpose kaigo.premium does not cover individual_number"
    )


async def test_purpose_not_granted_is_403_with_reason(
    client: Any, issuer: BuiltinIssuer, person: dict[str, Any]
) -> None:
    """A purpose the department does not hold: 403 naming the failed condition."""
    r = await client.get(
        f"{BASE}/residents/{person['id']}",
        headers=auth(mint(issuer, "kaigo"), purpose="juki.registration"),
    )
    assert r.status_code == 403
    body = r.json()
    assert body["reason"].startswith("purpose juki.registration is not granted")
    assert person["family_name"] not in r.text


async def test_auditor_gets_no_personal_fields(
    client: Any, tokens: dict[str, str], person: dict[str, Any]
) -> None:
    r = await client.get(
        f"{BASE}/residents/{person['id']}",
        headers=auth(tokens["kaga_auditor"], purpose="kansa.audit"),
    )
    assert r.status_code == 403
    assert r.json()["reason"] == "auditors read the audit log, not personal fields"


async def test_search_by_individual_number_is_a_use_of_it(
    client: Any, issuer: BuiltinIssuer, person: dict[str, Any]
) -> None:
    """Searching by individual number needs 2FA and a listed purpose: 403 otherwise."""
    body = {"individual_number": person["individual_number"]}
    no_mfa = await client.post(
        f"{BASE}/residents/search",
        json=body,
        headers=auth(mint(issuer, "kaigo"), purpose="kaigo.qualification"),
    )
    assert no_mfa.status_code == 403
    assert no_mfa.json()["reason"] == "two-factor authentication required"
    unlisted = await client.post(
        f"{BASE}/residents/search",
        json=body,
        headers=auth(mint(issuer, "kaigo", mfa=True), purpose="kaigo.premium"),
    )
    assert unlisted.status_code == 403
    assert "not a listed use" in unlisted.json()["reason"]
    ok = await client.post(
        f"{BASE}/residents/search",
        json=body,
        headers=auth(mint(issuer, "kaigo", mfa=True), purpose="kaigo.qualification"),
    )
    assert ok.status_code == 200
    assert [r["id"] for r in ok.json()["residents"]] == [person["id"]]


async def test_history_and_household_are_filtered_and_guarded(
    client: Any, issuer: BuiltinIssuer, person: dict[str, Any]
) -> None:
    """History snapshots drop withheld fields; an action the purpose does not cover is 403."""
    premium = auth(mint(issuer, "kaigo"), purpose="kaigo.premium")
    history = await client.get(f"{BASE}/residents/{person['id']}/history", headers=premium)
    assert history.status_code == 403
    assert history.json()["reason"] == "purpose kaigo.premium does not cover history"
    qualification = auth(mint(issuer, "kaigo"), purpose="kaigo.qualification")
    history = await client.get(f"{BASE}/residents/{person['id']}/history", headers=qualification)
    assert history.status_code == 200
    snapshot = history.json()["entries"][0]["snapshot"]
    assert "individual_number" not in snapshot
    assert "phone" not in snapshot
    assert snapshot["family_name"] == person["family_name"]
    household = await client.get(
        f"{BASE}/households/{person['household_no']}",
        headers=auth(mint(issuer, "kaikei"), purpose="kaikei.payment"),
    )
    assert household.status_code == 403


async def test_support_measure_hides_whereabouts(
    client: Any, issuer: BuiltinIssuer, tokens: dict[str, str]
) -> None:
    """Once 市民課 sets 支援措置, the address is withheld from every department and
    purpose except 市民課 doing juki.registration; only 市民課 may set it."""
    created = await client.post(
        f"{BASE}/residents",
        json=resident_body(address="石川県加賀市山中温泉保護町9-9", family_name_kana="ホゴ"),
        headers=auth(tokens["kaga"]),
    )
    rid, etag = created.json()["id"], created.headers["etag"]
    url = f"{BASE}/residents/{rid}"
    denied = await client.put(
        f"{url}/support-measure",
        json={"active": True},
        headers=auth(mint(issuer, "kaigo"), purpose="kaigo.qualification", **{"If-Match": etag}),
    )
    assert denied.status_code == 403
    kaigo_registration = await client.put(
        f"{url}/support-measure",
        json={"active": True},
        headers=auth(
            mint(issuer, "kaigo", sub="kaigo-with-registration"),
            purpose="juki.registration",
            **{"If-Match": etag},
        ),
    )
    assert kaigo_registration.status_code == 403
    missing_etag = await client.put(
        f"{url}/support-measure", json={"active": True}, headers=auth(tokens["kaga"])
    )
    assert missing_etag.status_code == 428
    protected = await client.put(
        f"{url}/support-measure",
        json={"active": True},
        headers=auth(tokens["kaga"], **{"If-Match": etag}),
    )
    assert protected.status_code == 200, protected.text
    assert protected.json()["support_measure"] is True
    address = created.json()["address"]

    kaigo = await client.get(
        url, headers=auth(mint(issuer, "kaigo"), purpose="kaigo.qualification")
    )
    assert kaigo.status_code == 200
    assert "address" not in kaigo.json()
    assert address not in kaigo.text
    assert (
        kaigo.json()["withheld_reasons"]["address"] == "withheld under support measures (支援措置)"
    )
    certificate = await client.get(url, headers=auth(tokens["kaga"], purpose="juki.certificate"))
    assert "address" not in certificate.json()
    registration = await client.get(url, headers=auth(tokens["kaga"]))
    assert registration.json()["address"] == address
    search = await client.post(
        f"{BASE}/residents/search",
        json={
            "family_name_kana": created.json()["family_name_kana"],
            "birth_date": created.json()["birth_date"],
        },
        headers=auth(mint(issuer, "kaigo"), purpose="kaigo.qualification"),
    )
    assert search.status_code == 200
    assert search.json()["count"] == 1
    assert address not in search.text


async def test_permission_changes_apply_on_the_next_request(
    client: Any, issuer: BuiltinIssuer, tokens: dict[str, str], person: dict[str, Any]
) -> None:
    """An admin grants a person a purpose, suspends them, then removes the record;
    each change holds from the very next request, without a restart."""
    admin = issuer.mint(subject="k-admin", tenant=KAGA, department="somu", roles=["admin"])
    url = f"{BASE}/residents/{person['id']}"
    headers = auth(mint(issuer, "kaikei", sub="k-0777"), purpose="kaigo.qualification")
    assert (await client.get(url, headers=headers)).status_code == 403
    put = await client.put(
        f"{BASE}/staff/k-0777",
        json={"purposes": ["kaigo.qualification"]},
        headers=auth(admin, purpose=None),
    )
    assert put.status_code == 200, put.text
    assert (await client.get(url, headers=headers)).status_code == 200
    suspend = await client.put(
        f"{BASE}/staff/k-0777",
        json={"active": False, "purposes": ["kaigo.qualification"]},
        headers=auth(admin, purpose=None),
    )
    assert suspend.status_code == 200
    own_dept = auth(mint(issuer, "kaikei", sub="k-0777"), purpose="kaikei.payment")
    assert (await client.get(url, headers=own_dept)).status_code == 403
    assert (
        await client.delete(f"{BASE}/staff/k-0777", headers=auth(admin, purpose=None))
    ).status_code == 204
    assert (await client.get(url, headers=own_dept)).status_code == 200
    assert (await client.get(url, headers=headers)).status_code == 403


async def test_department_purposes_are_managed_by_admins(
    client: Any, issuer: BuiltinIssuer, tokens: dict[str, str], person: dict[str, Any]
) -> None:
    """Granting a department a purpose lets its staff use it at once; staff, other
    towns' admins and operators cannot manage departments; unknown purposes are 422."""
    admin = issuer.mint(subject="k-admin", tenant=KAGA, department="somu", roles=["admin"])
    headers = auth(admin, purpose=None)
    listing = await client.get(f"{BASE}/departments", headers=headers)
    assert listing.status_code == 200
    kaikei = next(d for d in listing.json() if d["code"] == "kaikei")
    assert kaikei["purposes"] == ["invoices.payment", "kaikei.payment"]  # tenants/kaga.toml
    url = f"{BASE}/residents/{person['id']}"
    reader = auth(mint(issuer, "kaikei"), purpose="bousai.support")
    assert (await client.get(url, headers=reader)).status_code == 403
    grant = await client.put(
        f"{BASE}/departments/kaikei",
        json={"name": "会計課", "purposes": ["kaikei.payment", "bousai.support"]},
        headers=headers,
    )
    assert grant.status_code == 200
    assert (await client.get(url, headers=reader)).status_code == 200
    restore = await client.put(
        f"{BASE}/departments/kaikei",
        json={"name": "会計課", "purposes": ["kaikei.payment"]},
        headers=headers,
    )
    assert restore.status_code == 200
    assert (await client.get(url, headers=reader)).status_code == 403

    bad = await client.put(
        f"{BASE}/departments/kaikei", json={"name": "会計課", "purposes": ["nope"]}, headers=headers
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/purposes/0"
    staff = await client.get(f"{BASE}/departments", headers=auth(tokens["kaga"], purpose=None))
    assert staff.status_code == 403
    assert staff.json()["reason"] == "administering the town needs the admin role"
    other = issuer.mint(subject="m-admin", tenant=KOMATSU, department="somu", roles=["admin"])
    assert (await client.get(f"{BASE}/departments", headers=auth(other))).status_code == 404
    assert (await client.get(f"{BASE}/staff", headers=auth(tokens["operator"]))).status_code == 404


async def test_explain_endpoint_names_each_reason(client: Any, issuer: BuiltinIssuer) -> None:
    """The admin's explain view gives a decision and a reason per field."""
    admin = issuer.mint(subject="k-admin", tenant=KAGA, department="somu", roles=["admin"])
    r = await client.get(
        f"{BASE}/staff/k-0001/explain",
        params={"purpose": "kaigo.premium", "department": "kaigo"},
        headers=auth(admin, purpose=None),
    )
    assert r.status_code == 200, r.text
    fields = {f["field"]: f for f in r.json()["fields"]}
    assert fields["family_name"]["allowed"] is True
    assert fields["individual_number"]["reason"] == (
        "purpose kaigo.premium does not cover individual_number"
    )


async def test_another_worker_sees_a_change_through_notify(
    client: Any, issuer: BuiltinIssuer, settings: Settings, person: dict[str, Any]
) -> None:
    """A permission written by another process (SQL + pg_notify) reaches this one's
    cache through LISTEN/NOTIFY, without anyone calling the local invalidation."""
    url = f"{BASE}/residents/{person['id']}"
    headers = auth(mint(issuer, "zeimu", sub="k-0888"), purpose="bousai.support")
    assert (await client.get(url, headers=headers)).status_code == 403
    assert settings.database_url
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            "INSERT INTO catalog.staff (tenant_code, staff_id, person_key, purposes) "
            "VALUES ($1, 'k-0888', 'k-0888', '{bousai.support}')",
            KAGA,
        )
        await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", KAGA)
    finally:
        await conn.close()
    status = 403
    for _ in range(50):
        status = (await client.get(url, headers=headers)).status_code
        if status == 200:
            break
        await asyncio.sleep(0.05)
    assert status == 200
