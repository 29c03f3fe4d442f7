"""Separation of duties (issue #14 items 2, 6, 10): attacks through the HTTP API.

The operator creates towns but never becomes their staff; a town's identity
comes from its own enrolment; nobody changes their own permissions; suspended
means refused for every role; every administrative change and every refused
attempt is in the town's audit log; an offboarded town's tokens authenticate
nobody. See docs/separation-of-duties.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar

from shared_gov.app import create_app
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.auth.registry import FetchPolicy, JwksSource, internal_address_problem
from shared_gov.db import Database
from shared_gov.errors import DomainError
from shared_gov.settings import Settings
from shared_gov.tenancy import enrolment
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import Department, load_manifest
from tests.conftest import KAGA, TENANTS_DIR, auth
from tests.factories import resident_body
from tests.security.sod_helpers import (
    OwnIdp,
    change_of,
    events,
    manifest,
    manifest_json,
    town_code,
)


def tenant_url(code: str, tail: str = "") -> str:
    return f"/api/v1/tenants/{code}{tail}"


# --- item 2: the operator cannot become a town's staff ----------------------


async def test_operator_resending_a_manifest_with_own_issuer_and_department_gets_409(
    client: Any, db: Database, tokens: dict[str, str]
) -> None:
    """The attack of the issue: re-send Kaga's manifest with an [issuer] of the
    operator's own keys and a new department holding juki.registration. Refused with
    409 saying why; nothing changed; the operator's tokens authenticate nobody; the
    attempt is a denied event in Kaga's log."""
    idp = OwnIdp("https://idp.operator.example/kaga")
    document = load_manifest(TENANTS_DIR / "kaga.toml").to_json()
    document["issuer"] = idp.config()
    document["departments"].append(
        {"code": "ops", "name": "運用課", "purposes": ["juki.registration"]}
    )
    before = len(await events(db, KAGA, "tenant.update", "denied"))
    r = await client.post("/api/v1/tenants", json=document, headers=auth(tokens["operator"]))
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    detail = r.json()["detail"]
    assert "identity provider" in detail
    assert "departments" in detail
    denied = await events(db, KAGA, "tenant.update", "denied")
    assert len(denied) == before + 1
    assert denied[-1]["actor"] == "op-1"
    assert change_of(denied[-1])["requested"]["issuer"] == {"url": idp.url}
    token = idp.mint("op-1", "ops", ["staff"])
    read = await client.get(tenant_url(KAGA, f"/residents/{uuid.uuid4()}"), headers=auth(token))
    assert read.status_code == 401
    departments = await client.get(
        tenant_url(KAGA, "/departments"), headers=auth(tokens["kaga_admin"], None)
    )
    assert "ops" not in {d["code"] for d in departments.json()}
    # Each half of the attack alone is refused too.
    only_issuer = load_manifest(TENANTS_DIR / "kaga.toml").to_json()
    only_issuer["issuer"] = idp.config()
    r = await client.post("/api/v1/tenants", json=only_issuer, headers=auth(tokens["operator"]))
    assert r.status_code == 409
    regranted = load_manifest(TENANTS_DIR / "kaga.toml").to_json()
    regranted["departments"][1]["purposes"] = ["juki.registration"]  # kaigo
    r = await client.post("/api/v1/tenants", json=regranted, headers=auth(tokens["operator"]))
    assert r.status_code == 409
    # The identical manifest stays an idempotent 200.
    same = load_manifest(TENANTS_DIR / "kaga.toml").to_json()
    r = await client.post("/api/v1/tenants", json=same, headers=auth(tokens["operator"]))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "unchanged"


async def test_operator_changes_platform_settings_audited(
    client: Any, db: Database, tokens: dict[str, str]
) -> None:
    """Names and population are the operator's: 200 "updated", with a tenant.update
    event (before/after) in the town's log."""
    code = town_code("47911")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert created.status_code == 201, created.text
    assert (await events(db, code, "tenant.create", "allowed"))[-1]["actor"] == "op-1"
    r = await client.post(
        "/api/v1/tenants",
        json=manifest_json(code, population=12345, name="改名市"),
        headers=auth(tokens["operator"]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "updated"
    change = change_of((await events(db, code, "tenant.update", "allowed"))[-1])
    assert change["before"]["population"] == 10000
    assert change["after"]["population"] == 12345
    assert change["after"]["name"] == "改名市"


async def test_operator_gets_404_for_a_towns_issuer_departments_and_staff(
    client: Any, db: Database, tokens: dict[str, str]
) -> None:
    """The admin API is not the operator's: 404, and a denied event each."""
    idp = OwnIdp("https://idp.operator.example/api")
    op = auth(tokens["operator"], None)
    before = len(await events(db, KAGA, outcome="denied"))
    calls = [
        client.put(tenant_url(KAGA, "/issuer"), json=idp.config(), headers=op),
        client.put(
            tenant_url(KAGA, "/departments/ops"),
            json={"name": "運用課", "purposes": ["juki.registration"]},
            headers=op,
        ),
        client.put(
            tenant_url(KAGA, "/staff/op-1"), json={"purposes": ["juki.registration"]}, headers=op
        ),
    ]
    for call in calls:
        assert (await call).status_code == 404
    after = await events(db, KAGA, outcome="denied")
    assert len(after) == before + 3
    assert {e["action"] for e in after[-3:]} == {"admin.issuer", "admin.department", "admin.staff"}
    # The plain reason: what an operator asked for is not theirs to write into the log.
    assert {e["reason"] for e in after[-3:]} == {
        "operators never change a town's identity or permissions"
    }


# --- the bootstrap: enrolment -------------------------------------------------


async def test_enrolment_bootstrap_through_http(
    client: Any, db: Database, tokens: dict[str, str]
) -> None:
    """Create → code (once) → wrong code 403 → redeem 201 → the town's own IdP's admin
    works → the code cannot be used again (409) → the operator can issue no new code
    and cannot re-send the manifest with another issuer."""
    code = town_code("47912")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["enrolment_code"]
    assert secret
    assert body["enrolment_expires_at"]
    assert created.headers["cache-control"] == "no-store"
    async with db.catalog() as conn:
        stored = await conn.fetchrow(
            "SELECT code_hash, enrolled_at FROM catalog.enrolments WHERE tenant_code = $1", code
        )
    assert stored["enrolled_at"] is None
    assert secret.encode() not in bytes(stored["code_hash"])
    idp = OwnIdp(f"https://idp.town{code}.example")
    url = tenant_url(code, "/enrolment")
    wrong = await client.post(
        url, json={"code": "x" * 32, "first_admin": "j-1", "issuer": idp.config()}
    )
    assert wrong.status_code == 403, wrong.text
    assert (await events(db, code, "tenant.enrol", "denied"))[-1]["reason"]
    ok = await client.post(url, json={"code": secret, "first_admin": "j-1", "issuer": idp.config()})
    assert ok.status_code == 201, ok.text
    enrolled = change_of((await events(db, code, "tenant.enrol", "allowed"))[-1])
    assert enrolled["after"]["first_admin"] == "j-1"
    assert enrolled["after"]["issuer"]["url"] == idp.url
    admin = idp.mint("j-1", "somu", ["admin"])
    r = await client.get(tenant_url(code, "/issuer"), headers=auth(admin, None))
    assert r.status_code == 200, r.text
    again = await client.post(
        url, json={"code": secret, "first_admin": "evil", "issuer": OwnIdp("https://e.x").config()}
    )
    assert again.status_code == 409
    with pytest.raises(DomainError) as refused:
        await enrolment.issue(db, code, _operator())
    assert refused.value.status == 409
    other = OwnIdp("https://idp.operator.example/late")
    r = await client.post(
        "/api/v1/tenants",
        json={**manifest_json(code), "issuer": other.config()},
        headers=auth(tokens["operator"]),
    )
    assert r.status_code == 409


async def test_enrolment_code_expires_and_can_be_reissued_until_enrolled(
    client: Any, db: Database, tokens: dict[str, str]
) -> None:
    """An expired code is refused (403); the operator's re-issue replaces the old code."""
    code = town_code("47913")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    first = created.json()["enrolment_code"]
    async with db.catalog() as conn:
        await conn.execute(
            "UPDATE catalog.enrolments SET expires_at = now() - interval '1 second' "
            "WHERE tenant_code = $1",
            code,
        )
    idp = OwnIdp(f"https://idp.town{code}.example")
    body = {"code": first, "first_admin": "j-1", "issuer": idp.config()}
    expired = await client.post(tenant_url(code, "/enrolment"), json=body)
    assert expired.status_code == 403
    assert "expired" in expired.json()["detail"]
    reissued = await enrolment.issue(db, code, _operator())
    assert (await events(db, code, "tenant.enrolment_code", "allowed"))[-1]
    stale = await client.post(tenant_url(code, "/enrolment"), json=body)
    assert stale.status_code == 403
    fresh = await client.post(tenant_url(code, "/enrolment"), json={**body, "code": reissued.code})
    assert fresh.status_code == 201, fresh.text


async def test_manifest_issuer_is_refused_outside_development(
    db: Database, settings: Settings
) -> None:
    """In production a new town's manifest cannot name its issuer (the enrolment does)."""
    prod = Database(db.url, dataclasses.replace(settings, env="prod"), keyring=db.keyring)
    await prod.open()
    try:
        idp = OwnIdp("https://idp.operator.example/new")
        from shared_gov.tenancy.manifest import IssuerConfig

        config = IssuerConfig(url=idp.url, audience=idp.audience, jwks=idp.config()["jwks"])
        with pytest.raises(DomainError) as refused:
            await tenancy.onboard(prod, manifest(town_code("47914"), issuer=config))
        assert refused.value.status == 409
    finally:
        await prod.close()


def _operator() -> Any:
    from shared_gov.audit.recorder import operator_actor

    return operator_actor("test")


# --- items 6 and 10: own permissions, suspension, audit -----------------------


@pytest.fixture(scope="module")
async def town(client: Any, tokens: dict[str, str]) -> str:
    code = town_code("47915")
    r = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert r.status_code in (200, 201), r.text
    return code


def _mint(issuer: BuiltinIssuer, town: str, sub: str, dept: str | None, roles: list[str]) -> str:
    return issuer.mint(subject=sub, tenant=town, department=dept, roles=roles, mfa=True)


async def test_nobody_changes_their_own_permissions(
    client: Any, db: Database, issuer: BuiltinIssuer, town: str
) -> None:
    """An admin granting themselves juki.registration, or their own department, or
    lifting their own record: 403, each a denied event; nothing changed."""
    admin = auth(_mint(issuer, town, "adm-self", "somu", ["admin", "staff"]), None)
    before = len(await events(db, town, outcome="denied"))
    r = await client.put(
        tenant_url(town, "/staff/adm-self"), json={"purposes": ["juki.registration"]}, headers=admin
    )
    assert r.status_code == 403, r.text
    assert "own" in r.json()["detail"]
    r = await client.put(
        tenant_url(town, "/departments/somu"),
        json={"name": "総務課", "purposes": ["juki.registration"]},
        headers=admin,
    )
    assert r.status_code == 403
    r = await client.delete(tenant_url(town, "/staff/adm-self"), headers=admin)
    assert r.status_code == 403
    denied = await events(db, town, outcome="denied")
    assert len(denied) == before + 3
    assert change_of(denied[-3])["requested"]["purposes"] == ["juki.registration"]


async def test_admin_role_alone_reads_no_resident(
    client: Any, issuer: BuiltinIssuer, town: str
) -> None:
    """An admin-only token, even of 市民課 whose department holds juki.registration,
    reads no resident: personal data needs the staff role and a purpose grant."""
    staff = _mint(issuer, town, "shimin-1", "shimin", ["staff"])
    created = await client.post(
        tenant_url(town, "/residents"), json=resident_body(), headers=auth(staff)
    )
    assert created.status_code == 201, created.text
    admin = _mint(issuer, town, "adm-shimin", "shimin", ["admin"])
    r = await client.get(created.headers["location"], headers=auth(admin))
    assert r.status_code == 403, r.text
    assert "only staff" in r.json()["detail"]


async def test_changes_are_audited_with_before_and_after(
    client: Any, db: Database, issuer: BuiltinIssuer, town: str
) -> None:
    """Another admin's grant is recorded in the town's log, in the change's transaction,
    with the permission before and after (and never the free-text note)."""
    admin = auth(_mint(issuer, town, "adm-a", "somu", ["admin"]), None)
    url = tenant_url(town, "/staff/clerk-1")
    r = await client.put(url, json={"purposes": ["kaigo.qualification"]}, headers=admin)
    assert r.status_code == 200, r.text
    r = await client.put(
        url,
        json={"purposes": ["juki.registration"], "department": "shimin", "note": "田中 秘密"},
        headers=admin,
    )
    assert r.status_code == 200
    last = (await events(db, town, "admin.staff", "allowed"))[-1]
    change = change_of(last)
    assert change["target"] == "clerk-1"
    assert change["before"] == {
        "department": None,
        "active": True,
        "purposes": ["kaigo.qualification"],
    }
    assert change["after"] == {
        "department": "shimin",
        "active": True,
        "purposes": ["juki.registration"],
    }
    assert "田中" not in last["reason"]
    r = await client.put(
        tenant_url(town, "/departments/kaigo"),
        json={"name": "介護保険課", "purposes": []},
        headers=admin,
    )
    assert r.status_code == 200
    dept = change_of((await events(db, town, "admin.department", "allowed"))[-1])
    assert dept["before"]["purposes"] == ["kaigo.qualification"]
    assert dept["after"]["purposes"] == []


@pytest.mark.parametrize("roles", [["admin"], ["auditor"], ["integration"], ["staff"]])
async def test_suspended_means_refused_for_every_role(
    client: Any, db: Database, issuer: BuiltinIssuer, town: str, roles: list[str]
) -> None:
    """Once suspended (by another admin), a person is refused for every role on every
    endpoint (403, a denied authenticate event), and cannot lift the suspension."""
    other = auth(_mint(issuer, town, "adm-b", "somu", ["admin"]), None)
    who = f"susp-{roles[0]}"
    token = _mint(issuer, town, who, "shimin", roles)
    r = await client.put(tenant_url(town, f"/staff/{who}"), json={"active": False}, headers=other)
    assert r.status_code == 200, r.text
    change = change_of((await events(db, town, "admin.staff", "allowed"))[-1])
    assert change["after"]["active"] is False
    before = len(await events(db, town, "authenticate", "denied"))
    paths = [
        ("GET", "/departments"),
        ("GET", "/staff"),
        ("GET", "/issuer"),
        ("GET", "/events"),
        ("GET", "/audit/events"),
        ("GET", f"/residents/{uuid.uuid4()}"),
        ("PUT", f"/staff/{who}"),
    ]
    for method, path in paths:
        r = await client.request(
            method,
            tenant_url(town, path),
            headers=auth(token),
            json={"active": True} if method == "PUT" else None,
        )
        assert r.status_code == 403, (path, r.status_code, r.text)
    r = await client.get(f"/api/v1/agreements?tenant={town}", headers=auth(token, None))
    assert r.status_code == 403
    denied = await events(db, town, "authenticate", "denied")
    assert len(denied) == before + len(paths) + 1
    assert {e["actor"] for e in denied[before:]} == {who}
    lifted = await client.put(
        tenant_url(town, f"/staff/{who}"), json={"active": True}, headers=other
    )
    assert lifted.status_code == 200
    r = await client.get(tenant_url(town, "/departments"), headers=auth(token, None))
    assert r.status_code != 403 or "suspended" not in r.text


# --- medium: offboarded towns, internal jwks_uri --------------------------------


async def test_offboarded_towns_tokens_are_refused_and_list_no_agreements(
    client: Any, db: Database, issuer: BuiltinIssuer, tokens: dict[str, str], tmp_path: Path
) -> None:
    """An offboarded town's admin token: 401 for the agreements list and everything
    else, from the moment the town stops being active."""
    code = town_code("47916")
    await client.post("/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"]))
    admin = auth(_mint(issuer, code, "adm-x", "somu", ["admin"]), None)
    listing = f"/api/v1/agreements?tenant={code}"
    assert (await client.get(listing, headers=admin)).status_code == 200
    await tenancy.offboard(db, code, tmp_path)
    for _ in range(50):  # the NOTIFY reaches the app's listener asynchronously
        r = await client.get(listing, headers=admin)
        if r.status_code == 401:
            break
        await asyncio.sleep(0.05)
    assert r.status_code == 401, r.text
    r = await client.get(tenant_url(code, "/departments"), headers=admin)
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("uri", "internal"),
    [
        ("https://127.0.0.1/jwks", True),
        ("https://localhost/jwks", True),
        ("https://169.254.169.254/latest/meta-data", True),
        ("https://10.1.2.3/jwks", True),
        ("https://192.168.0.10/jwks", True),
        ("https://172.16.5.5/jwks", True),
        ("https://[::1]/jwks", True),
        ("https://[fd12:3456::1]/jwks", True),
        ("https://[fe80::1]/jwks", True),
        ("https://[ff02::1]/jwks", True),
        ("https://0.0.0.0/jwks", True),
        ("https://[::ffff:127.0.0.1]/jwks", True),
        ("https://224.0.0.1/jwks", True),
        ("https://no-such-host.invalid/jwks", True),
        ("https://8.8.8.8/jwks", False),
        ("https://[2001:4860:4860::8888]/jwks", False),
    ],
)
async def test_internal_jwks_uri_hosts(uri: str, internal: bool) -> None:
    assert (await internal_address_problem(uri) is not None) is internal


@pytest.fixture
async def prod_client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The app with production settings (env=prod) on the test database."""
    assert settings.database_url
    app: Litestar = create_app(dataclasses.replace(settings, env="prod"), settings.database_url)
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    await started.wait()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver.local") as c:
        yield c
    stop.set()
    await task


async def test_production_refuses_internal_jwks_uri_at_enrolment(
    prod_client: httpx.AsyncClient, db: Database, tokens: dict[str, str], client: Any
) -> None:
    """Production: a town's issuer whose jwks_uri points inward is refused (422 at
    /jwks_uri) with a valid enrolment code, and the code stays usable."""
    code = town_code("47917")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    secret = created.json()["enrolment_code"]
    for uri in (
        "https://127.0.0.1/jwks",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/jwks",
        "https://[fd00::5]/jwks",
        "https://localhost:8443/jwks",
    ):
        body = {
            "code": secret,
            "first_admin": "j-1",
            "issuer": {"url": f"https://idp.town{code}.example", "audience": "a", "jwks_uri": uri},
        }
        r = await prod_client.post(tenant_url(code, "/enrolment"), json=body)
        assert r.status_code == 422, (uri, r.text)
        assert r.json()["errors"][0]["pointer"] == "/jwks_uri"
    idp = OwnIdp(f"https://idp.town{code}.example")
    ok = await prod_client.post(
        tenant_url(code, "/enrolment"),
        json={"code": secret, "first_admin": "j-1", "issuer": idp.config()},
    )
    assert ok.status_code == 201, ok.text


async def test_fetch_refused_when_a_registered_name_points_inward() -> None:
    """A jwks_uri host re-pointed at an internal address after registration: no fetch."""
    fetched: list[str] = []

    async def fetch(uri: str, seconds: float) -> object:
        fetched.append(uri)
        return {"keys": []}

    source = JwksSource(
        "000000",
        uri="https://127.0.0.1/jwks",
        inline=None,
        policy=FetchPolicy(fetch=fetch, public_only=True),
    )
    keys, reason = await source.keys_for("k")
    assert keys is None
    assert reason == "jwks_unavailable"
    assert fetched == []


async def test_recreated_town_forgets_the_old_identity(
    client: Any, db: Database, tokens: dict[str, str], tmp_path: Path
) -> None:
    """A new incarnation of an offboarded town starts with no issuer, no staff
    records and a fresh enrolment code."""
    code = town_code("47918")
    first = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    idp = OwnIdp(f"https://idp.town{code}.example")
    body = {"code": first.json()["enrolment_code"], "first_admin": "j-1", "issuer": idp.config()}
    assert (await client.post(tenant_url(code, "/enrolment"), json=body)).status_code == 201
    await tenancy.offboard(db, code, tmp_path)
    again = await client.post(
        "/api/v1/tenants",
        json=manifest_json(code, departments=[Department(code="shimin", name="市民課")]),
        headers=auth(tokens["operator"]),
    )
    assert again.status_code == 201, again.text
    assert again.json()["enrolment_code"]
    async with db.catalog() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM catalog.issuers WHERE tenant_code = $1", code)
            == 0
        )
        assert (
            await conn.fetchval("SELECT count(*) FROM catalog.staff WHERE tenant_code = $1", code)
            == 0
        )


async def test_cli_enrolment_code_until_enrolled(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    client: Any,
    db: Database,
    tokens: dict[str, str],
) -> None:
    """`shared-gov tenant enrolment-code CODE` prints a new code while the town is not
    enrolled (the previous one stops working) and refuses once it is."""
    from typer.testing import CliRunner

    from shared_gov.cli.main import app as cli
    from shared_gov.settings import get_settings

    code = town_code("47919")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    old = created.json()["enrolment_code"]
    assert settings.database_url
    monkeypatch.setenv("SHARED_GOV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHARED_GOV_ROLE_PREFIX", settings.role_prefix)
    # The service's key provider (its local KEK files): the command records
    # the change in the town's log, MACed with the town's audit key.
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        result = await asyncio.to_thread(runner.invoke, cli, ["tenant", "enrolment-code", code])
        assert result.exit_code == 0, result.output
        new = result.stdout.strip().splitlines()[-1].strip()
        assert len(new) >= 32
        assert new != old
        idp = OwnIdp(f"https://idp.town{code}.example")
        body = {"code": old, "first_admin": "j-1", "issuer": idp.config()}
        assert (await client.post(tenant_url(code, "/enrolment"), json=body)).status_code == 403
        body["code"] = new
        assert (await client.post(tenant_url(code, "/enrolment"), json=body)).status_code == 201
        refused = await asyncio.to_thread(runner.invoke, cli, ["tenants", "enrolment-code", code])
        assert refused.exit_code != 0
        assert "enrolled" in refused.output
    finally:
        get_settings.cache_clear()
