"""The town admins' console pages over HTTP (no browser): departments, staff
permissions and suspensions, the explanation, the identity provider's four
eyes — each through the API's gate, with the API's rules and the API's events.

Each test works in a town of this module's own (onboarded by the operator,
as the separation-of-duties tests do), so that suspensions and department
changes never touch the shared towns. The same journeys in Chromium are in
test_browser_admin.py.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from shared_gov.messages import access as ma
from shared_gov.messages import identity as mi
from tests.conftest import KOMATSU, auth
from tests.security.sod_helpers import OwnIdp, manifest_json, town_code

from .flows import csrf_of, sign_in

TOWN = town_code("47971")
IDP_TOWN = town_code("47972")


async def events(db: Database, town: str, action: str, outcome: str | None = None) -> list[Any]:
    """The town's events of ``action`` (oldest first), as the log holds them."""
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT action, outcome, actor, actor_tenant, resource_type, reason, purpose, "
            "subjects FROM audit.events WHERE tenant = $1 AND action = $2 "
            "AND ($3::text IS NULL OR outcome = $3) ORDER BY occurred_at, event_id",
            town,
            action,
            outcome,
        )
    return [dict(r) for r in rows]


async def _onboard(client: Any, tokens: dict[str, str], code: str) -> str:
    r = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert r.status_code in (200, 201), r.text
    return code


@pytest.fixture(scope="module")
async def town(client: Any, tokens: dict[str, str]) -> str:
    return await _onboard(client, tokens, TOWN)


@pytest.fixture(scope="module")
async def idp_town(client: Any, tokens: dict[str, str]) -> str:
    return await _onboard(client, tokens, IDP_TOWN)


def _admin_token(issuer: BuiltinIssuer, town: str, subject: str = "admin-0001") -> str:
    return issuer.mint(subject=subject, tenant=town, department="somu", roles=["admin"], mfa=True)


async def _page(browser: httpx.AsyncClient, path: str) -> httpx.Response:
    r = await browser.get(path)
    assert r.status_code == 200, r.text
    return r


async def test_an_admin_lists_and_changes_a_department(
    browser: httpx.AsyncClient, client: Any, db: Database, issuer: BuiltinIssuer, town: str
) -> None:
    await sign_in(browser, town, "admin-0001")
    listed = await _page(browser, f"/console/towns/{town}/admin/departments/")
    assert "介護保険課" in listed.text
    assert 'for="d-kaigo-name"' in listed.text  # every control labelled
    changed = await browser.post(
        f"/console/towns/{town}/admin/departments/",
        data={
            "_csrf_token": csrf_of(listed.text),
            "department": "kaigo",
            "name": "介護保険課",
            "purposes": ["kaigo.qualification", "kaigo.premium"],
            "active": "1",
        },
    )
    assert changed.status_code == 200, changed.text
    assert 'role="status"' in changed.text
    assert "部署 kaigo を保存しました" in changed.text
    # The API sees the change, and the log holds it as the API's PUT would.
    r = await client.get(
        f"/api/v1/tenants/{town}/departments", headers=auth(_admin_token(issuer, town), None)
    )
    kaigo = next(d for d in r.json() if d["code"] == "kaigo")
    assert kaigo["purposes"] == ["kaigo.premium", "kaigo.qualification"]
    [event] = await events(db, town, "admin.department", "allowed")
    assert event["actor"] == "admin-0001"
    assert event["resource_type"] == "department"
    assert json.loads(event["reason"])["after"]["purposes"] == [
        "kaigo.premium",
        "kaigo.qualification",
    ]


async def test_a_bad_department_form_is_a_422_naming_the_field_and_recorded(
    browser: httpx.AsyncClient, db: Database, town: str
) -> None:
    await sign_in(browser, town, "admin-0001")
    listed = await _page(browser, f"/console/towns/{town}/admin/departments/")
    before = len(await events(db, town, "admin.department", "denied"))
    r = await browser.post(
        f"/console/towns/{town}/admin/departments/",
        data={
            "_csrf_token": csrf_of(listed.text),
            "department": "kaigo",
            "name": "介護保険課",
            "purposes": ["no.such_purpose"],
            "active": "1",
        },
    )
    assert r.status_code == 422, r.text
    assert "/purposes/0" in r.text
    assert len(await events(db, town, "admin.department", "denied")) == before + 1


async def test_an_admin_suspends_and_lifts_a_person_as_the_api_would(
    browser: httpx.AsyncClient, client: Any, db: Database, issuer: BuiltinIssuer, town: str
) -> None:
    await sign_in(browser, town, "admin-0001")
    listed = await _page(browser, f"/console/towns/{town}/admin/staff/")
    token = csrf_of(listed.text)
    suspended = await browser.post(
        f"/console/towns/{town}/admin/staff/suspension",
        data={"_csrf_token": token, "staff_id": "clerk-0042", "active": "0"},
    )
    assert suspended.status_code == 200, suspended.text
    assert "clerk-0042 を利用停止にしました" in suspended.text
    assert "利用停止中" in suspended.text
    # The suspension holds on the API: the person is refused everywhere.
    clerk = issuer.mint(subject="clerk-0042", tenant=town, department="shimin", roles=["staff"])
    missing = f"/api/v1/tenants/{town}/residents/{uuid.uuid4()}"
    r = await client.get(missing, headers=auth(clerk))
    assert r.status_code == 403
    # The same event as the API's PUT …/staff/clerk-0042 with active false.
    [event] = await events(db, town, "admin.staff", "allowed")
    change = json.loads(event["reason"])
    assert (event["actor"], event["resource_type"]) == ("admin-0001", "staff")
    assert change["target"] == "clerk-0042"
    assert change["before"] is None
    assert change["after"] == {"department": None, "active": False, "purposes": []}
    api = await client.put(
        f"/api/v1/tenants/{town}/staff/clerk-0043",
        json={"active": False},
        headers=auth(_admin_token(issuer, town), None),
    )
    assert api.status_code == 200
    by_api = (await events(db, town, "admin.staff", "allowed"))[-1]
    assert json.loads(by_api["reason"])["after"] == change["after"]
    assert by_api["resource_type"] == event["resource_type"]
    lifted = await browser.post(
        f"/console/towns/{town}/admin/staff/suspension",
        data={"_csrf_token": token, "staff_id": "clerk-0042", "active": "1"},
    )
    assert lifted.status_code == 200
    assert "clerk-0042 の利用停止を解除しました" in lifted.text
    assert (await client.get(missing, headers=auth(clerk))).status_code == 404


async def test_an_admin_cannot_change_their_own_permissions_and_is_told_why(
    browser: httpx.AsyncClient, client: Any, db: Database, issuer: BuiltinIssuer, town: str
) -> None:
    await sign_in(browser, town, "admin-0001")
    listed = await _page(browser, f"/console/towns/{town}/admin/staff/")
    token = csrf_of(listed.text)
    own = ma.NOBODY_CHANGES_OWN_PERMISSIONS.render("ja")
    before = len(await events(db, town, "admin.staff", "denied"))
    for path, data in (
        ("suspension", {"staff_id": "admin-0001", "active": "0"}),
        # Another spelling of the same person (docs/separation-of-duties.md).
        ("", {"staff_id": "ADMIN-0001", "purposes": ["juki.registration"]}),
    ):
        r = await browser.post(
            f"/console/towns/{town}/admin/staff/{path}", data={"_csrf_token": token, **data}
        )
        assert r.status_code == 403, r.text
        assert 'role="alert"' in r.text
        assert own in r.text  # the API's reason, in Japanese
    denied = await events(db, town, "admin.staff", "denied")
    assert len(denied) == before + 2
    assert json.loads(denied[-1]["reason"])["requested"]["purposes"] == ["juki.registration"]
    # The API refuses the same change with the same reason in the log.
    api = await client.put(
        f"/api/v1/tenants/{town}/staff/admin-0001",
        json={"purposes": ["juki.registration"]},
        headers=auth(_admin_token(issuer, town), None),
    )
    assert api.status_code == 403
    by_api = (await events(db, town, "admin.staff", "denied"))[-1]
    assert json.loads(by_api["reason"])["refused"] == json.loads(denied[-1]["reason"])["refused"]
    # Nor the purposes of their own department.
    departments = await _page(browser, f"/console/towns/{town}/admin/departments/")
    r = await browser.post(
        f"/console/towns/{town}/admin/departments/",
        data={
            "_csrf_token": csrf_of(departments.text),
            "department": "somu",
            "name": "総務課",
            "purposes": ["juki.registration"],
            "active": "1",
        },
    )
    assert r.status_code == 403
    assert ma.NOBODY_CHANGES_OWN_DEPARTMENT.render("ja") in r.text


async def test_staff_who_are_not_admins_get_the_403_page_and_are_recorded(
    browser: httpx.AsyncClient, client: Any, db: Database, issuer: BuiltinIssuer, town: str
) -> None:
    await sign_in(browser, town, "staff-0001")
    home = await _page(browser, "/console/home")
    assert "/admin/" not in home.text  # the nav shows admins' pages to admins only
    before = await events(db, town, "admin.staff.list", "denied")
    for path in ("admin/departments/", "admin/staff/", "admin/staff/explain", "admin/issuer/"):
        r = await browser.get(f"/console/towns/{town}/{path}")
        assert r.status_code == 403, path
        assert 'role="alert"' in r.text
    r = await browser.post(
        f"/console/towns/{town}/admin/staff/suspension",
        data={"_csrf_token": csrf_of(home.text), "staff_id": "clerk-0099", "active": "0"},
    )
    assert r.status_code == 403
    assert not await events(db, town, "admin.staff", "allowed") or all(
        json.loads(e["reason"])["target"] != "clerk-0099"
        for e in await events(db, town, "admin.staff", "allowed")
    )
    after = await events(db, town, "admin.staff.list", "denied")
    assert len(after) == len(before) + 1
    # The API's refusal of the same person is the same event.
    staff = issuer.mint(subject="staff-0001", tenant=town, department="shimin", roles=["staff"])
    assert (
        await client.get(f"/api/v1/tenants/{town}/staff", headers=auth(staff, None))
    ).status_code == 403
    api = (await events(db, town, "admin.staff.list", "denied"))[-1]
    assert (api["actor"], api["reason"]) == (after[-1]["actor"], after[-1]["reason"])


async def test_another_towns_admin_gets_the_404_page_and_is_recorded(
    browser: httpx.AsyncClient, db: Database, town: str
) -> None:
    await sign_in(browser, KOMATSU, "admin-0001")
    for path in ("admin/departments/", "admin/staff/", "admin/staff/explain", "admin/issuer/"):
        r = await browser.get(f"/console/towns/{town}/{path}")
        assert r.status_code == 404, path
        assert "見つかりません" in r.text
    denied = await events(db, town, "admin.staff.list", "denied")
    assert denied[-1]["actor_tenant"] == KOMATSU
    assert denied[-1]["reason"] == "caller from another town"


async def test_a_post_without_its_csrf_token_is_refused(
    browser: httpx.AsyncClient, db: Database, town: str
) -> None:
    await sign_in(browser, town, "admin-0001")
    before = len(await events(db, town, "admin.staff"))
    r = await browser.post(
        f"/console/towns/{town}/admin/staff/suspension",
        data={"staff_id": "clerk-0077", "active": "0"},
    )
    assert r.status_code == 403
    assert "content-security-policy" in r.headers
    assert len(await events(db, town, "admin.staff")) == before  # nothing happened


async def test_the_explanation_is_readable(
    browser: httpx.AsyncClient, db: Database, town: str
) -> None:
    await sign_in(browser, town, "admin-0001")
    form = await _page(browser, f"/console/towns/{town}/admin/staff/explain")
    r = await browser.post(
        f"/console/towns/{town}/admin/staff/explain",
        data={
            "_csrf_token": csrf_of(form.text),
            "staff_id": "clerk-0500",
            "purpose": "juki.registration",
            "department": "kaigo",
        },
    )
    assert r.status_code == 200, r.text
    assert "閲覧できない" in r.text
    assert "個人番号（individual_number）" in r.text
    assert "clerk-0500" not in str(r.url)
    bad = await browser.post(
        f"/console/towns/{town}/admin/staff/explain",
        data={"_csrf_token": csrf_of(form.text), "staff_id": "x", "purpose": "no.such"},
    )
    assert bad.status_code == 422
    assert (await events(db, town, "admin.staff.explain", "denied"))[-1]["actor"] == "admin-0001"


async def test_the_identity_provider_takes_two_admins(
    app: Any, client: Any, db: Database, idp_town: str
) -> None:
    idp = OwnIdp(f"https://idp.t{idp_town}.example")
    transport = httpx.ASGITransport(app=app)
    base = "http://testserver.local"
    async with (
        httpx.AsyncClient(transport=transport, base_url=base) as first,
        httpx.AsyncClient(transport=transport, base_url=base) as second,
    ):
        await sign_in(first, idp_town, "admin-0001")
        await sign_in(second, idp_town, "admin-0002")
        shown = await _page(first, f"/console/towns/{idp_town}/admin/issuer/")
        settings = {
            "url": idp.url,
            "audience": "shared-gov-town",
            "jwks": json.dumps(idp.config()["jwks"]),
            "algorithms": "RS256",
        }
        # Not enrolled and no issuer yet (development): registered at once.
        r = await first.post(
            f"/console/towns/{idp_town}/admin/issuer/propose",
            data={"_csrf_token": csrf_of(shown.text), **settings},
        )
        assert r.status_code == 200, r.text
        assert "認証基盤を登録しました" in r.text
        # A change now is only proposed.
        r = await first.post(
            f"/console/towns/{idp_town}/admin/issuer/propose",
            data={"_csrf_token": csrf_of(r.text), **settings, "audience": "town-2"},
        )
        assert r.status_code == 200, r.text
        assert "別の管理者の承認が必要です" in r.text
        proposal = r.text.split('name="proposal" value="')[1].split('"')[0]
        digest = r.text.split('name="digest" value="')[1].split('"')[0]
        own = await first.post(
            f"/console/towns/{idp_town}/admin/issuer/approve",
            data={"_csrf_token": csrf_of(r.text), "proposal": proposal, "digest": digest},
        )
        assert own.status_code == 403
        assert mi.OWN_APPROVAL.render("ja") in own.text
        other = await _page(second, f"/console/towns/{idp_town}/admin/issuer/")
        assert digest in other.text
        approved = await second.post(
            f"/console/towns/{idp_town}/admin/issuer/approve",
            data={"_csrf_token": csrf_of(other.text), "proposal": proposal, "digest": digest},
        )
        assert approved.status_code == 200, approved.text
        assert "承認しました" in approved.text
        assert "town-2" in approved.text
    assert (await events(db, idp_town, "admin.issuer.approve", "denied"))[-1]["actor"] == (
        "admin-0001"
    )
    done = (await events(db, idp_town, "admin.issuer", "allowed"))[-1]
    assert json.loads(done["reason"])["approved_by"] == "admin-0002"


async def test_the_admins_pages_are_in_english_one_switch_away(
    browser: httpx.AsyncClient, town: str
) -> None:
    await sign_in(browser, town, "admin-0001")
    switched = await browser.get("/console/language", params={"to": "en", "back": "/console/"})
    assert switched.status_code in (302, 303)
    listed = await _page(browser, f"/console/towns/{town}/admin/staff/")
    assert 'lang="en"' in listed.text
    assert "Staff permissions and suspensions" in listed.text
    refused = await browser.post(
        f"/console/towns/{town}/admin/staff/suspension",
        data={"_csrf_token": csrf_of(listed.text), "staff_id": "admin-0001", "active": "0"},
    )
    assert refused.status_code == 403
    assert ma.NOBODY_CHANGES_OWN_PERMISSIONS.render("en") in refused.text


@pytest.mark.parametrize(
    ("page", "api", "action"),
    [
        ("admin/departments/", "/departments", "admin.department.list"),
        ("admin/staff/", "/staff", "admin.staff.list"),
        ("admin/staff/explain", "/staff/clerk-1/explain?purpose=juki.registration", ""),
        ("admin/issuer/", "/issuer", "admin.issuer.read"),
    ],
)
async def test_each_page_refuses_as_the_api_does(
    browser: httpx.AsyncClient,
    client: Any,
    db: Database,
    issuer: BuiltinIssuer,
    town: str,
    page: str,
    api: str,
    action: str,
) -> None:
    """A non-admin's refusal on a page is the event the API's refusal is: same
    action, outcome, actor and reason."""
    action = action or "admin.staff.explain"
    await sign_in(browser, town, "staff-0001")
    before = len(await events(db, town, action, "denied"))
    assert (await browser.get(f"/console/towns/{town}/{page}")).status_code == 403
    denied = await events(db, town, action, "denied")
    assert len(denied) == before + 1
    by_page = denied[-1]
    staff = issuer.mint(subject="staff-0001", tenant=town, department="shimin", roles=["staff"])
    r = await client.get(f"/api/v1/tenants/{town}{api}", headers=auth(staff, None))
    assert r.status_code == 403
    denied = await events(db, town, action, "denied")
    assert len(denied) == before + 2
    by_api = denied[-1]
    for key in ("action", "outcome", "actor", "resource_type", "reason", "purpose"):
        assert by_page[key] == by_api[key], key


async def test_bad_input_is_a_page_never_a_500(
    browser: httpx.AsyncClient, db: Database, town: str
) -> None:
    """Malformed forms on every admin page: a 4xx page with the reason, nothing changed."""
    await sign_in(browser, town, "admin-0001")
    listed = await _page(browser, f"/console/towns/{town}/admin/staff/")
    token = csrf_of(listed.text)
    changes = len(await events(db, town, "admin.staff", "allowed"))
    nul, long = "a\x00b", "x" * 5000
    cases: list[tuple[str, dict[str, Any]]] = [
        ("admin/staff/", {"staff_id": nul}),
        ("admin/staff/", {"staff_id": long}),
        ("admin/staff/", {"staff_id": "clerk-1", "department": "NOPE!"}),
        ("admin/staff/", {"staff_id": "clerk-1", "note": long}),
        ("admin/staff/", {"staff_id": "\u200b"}),
        ("admin/staff/suspension", {"staff_id": "\u200b\u200b", "active": "0"}),
        ("admin/staff/suspension", {}),
        ("admin/staff/edit", {"staff_id": "nobody-on-record"}),
        ("admin/staff/forget", {"staff_id": "nobody-on-record"}),
        ("admin/staff/explain", {"staff_id": "clerk-1", "purpose": nul}),
        ("admin/departments/", {"department": "Bad Code", "name": "x"}),
        ("admin/departments/", {"department": "newdept", "name": nul}),
        ("admin/departments/", {"department": "newdept", "name": ""}),
        ("admin/issuer/propose", {"url": "not a url", "audience": "a"}),
        ("admin/issuer/propose", {"url": "https://idp.example", "audience": "a", "jwks": "{"}),
        ("admin/issuer/propose", {"url": "https://idp.example", "audience": "a", "jwks": "[1]"}),
        ("admin/issuer/approve", {"proposal": "x", "digest": "not-hex"}),
        ("admin/issuer/cancel", {"proposal": long}),
    ]
    for path, data in cases:
        r = await browser.post(f"/console/towns/{town}/{path}", data={"_csrf_token": token, **data})
        assert 400 <= r.status_code < 500, (path, data.keys(), r.status_code)
        assert 'role="alert"' in r.text or "見つかりません" in r.text, path
    assert len(await events(db, town, "admin.staff", "allowed")) == changes
    assert not [d for d in await _departments(db, town) if d == "newdept"]


async def _departments(db: Database, town: str) -> list[str]:
    async with db.catalog() as conn:
        rows = await conn.fetch("SELECT code FROM catalog.departments WHERE tenant_code = $1", town)
    return [r["code"] for r in rows]
