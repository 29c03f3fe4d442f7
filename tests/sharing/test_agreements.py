"""Sharing agreements: lifecycle, validation, and cross-town reads under them.

Komatsu (provider) shares with Kaga (recipient) unless a test says otherwise.
Every decision is Cedar's, on a real PostgreSQL; both towns' audit logs are
read back from ``audit.events``.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body

KOMATSU_API = f"/api/v1/tenants/{KOMATSU}"
KAIGO_FIELDS = ["family_name", "given_name", "birth_date", "address", "individual_number"]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def proposal(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": KOMATSU,
        "recipient": KAGA,
        "recipient_departments": ["kaigo"],
        "purposes": ["kaigo.qualification"],
        "fields": KAIGO_FIELDS,
        "actions": ["read", "search"],
        "legal_basis": "介護保険法 第203条 (資料の提供等)",
        "valid_from": (_now() - timedelta(hours=1)).isoformat(),
        "valid_until": (_now() + timedelta(days=30)).isoformat(),
    }
    body.update(overrides)
    return body


async def make_agreement(client: Any, tokens: dict[str, str], **overrides: Any) -> str:
    """Proposed by Komatsu's admin, accepted by Kaga's: in force."""
    r = await client.post(
        "/api/v1/agreements",
        json=proposal(**overrides),
        headers=auth(tokens["komatsu_admin"], purpose=None),
    )
    assert r.status_code == 201, r.text
    agreement_id: str = r.json()["id"]
    accepted = await client.post(
        f"/api/v1/agreements/{agreement_id}/accept",
        headers=auth(tokens["kaga_admin"], purpose=None),
    )
    assert accepted.status_code == 200, accepted.text
    return agreement_id


def kaga_staff(
    issuer: BuiltinIssuer, department: str = "kaigo", *, mfa: bool = True, sub: str = "k-kaigo-1"
) -> str:
    return issuer.mint(subject=sub, tenant=KAGA, department=department, roles=["staff"], mfa=mfa)


async def komatsu_resident(client: Any, tokens: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = resident_body(address="石川県小松市小馬出町91", **overrides)
    r = await client.post(f"{KOMATSU_API}/residents", json=body, headers=auth(tokens["komatsu"]))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    result["etag"] = r.headers["etag"]
    return result


def shared_headers(
    token: str, agreement_id: str | None, purpose: str = "kaigo.qualification", **extra: str
) -> dict[str, str]:
    headers = auth(token, purpose=purpose, **extra)
    if agreement_id is not None:
        headers["X-Agreement"] = agreement_id
    return headers


async def events(db: Database, tenant: str, request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2",
            tenant,
            request_id,
        )
    return [dict(r) for r in rows]


# -- lifecycle ------------------------------------------------------------------


async def test_lifecycle_propose_accept_revoke_with_immutable_versions(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    admin_komatsu = auth(tokens["komatsu_admin"], purpose=None)
    admin_kaga = auth(tokens["kaga_admin"], purpose=None)
    r = await client.post("/api/v1/agreements", json=proposal(), headers=admin_komatsu)
    assert r.status_code == 201, r.text
    proposed = r.json()
    assert (proposed["version"], proposed["status"], proposed["in_force"]) == (1, "proposed", False)
    aid = proposed["id"]
    person = await komatsu_resident(client, tokens)
    url = f"{KOMATSU_API}/residents/{person['id']}"
    token = kaga_staff(issuer)
    # Proposed is not in force.
    assert (await client.get(url, headers=shared_headers(token, aid))).status_code == 404
    # Only the recipient accepts.
    wrong = await client.post(f"/api/v1/agreements/{aid}/accept", headers=admin_komatsu)
    assert wrong.status_code == 403
    not_admin = await client.post(
        f"/api/v1/agreements/{aid}/accept", headers=auth(token, purpose=None)
    )
    assert not_admin.status_code == 403
    accepted = await client.post(f"/api/v1/agreements/{aid}/accept", headers=admin_kaga)
    assert accepted.status_code == 200
    assert (accepted.json()["version"], accepted.json()["status"]) == (2, "active")
    assert accepted.json()["in_force"] is True
    assert (await client.get(url, headers=shared_headers(token, aid))).status_code == 200
    again = await client.post(f"/api/v1/agreements/{aid}/accept", headers=admin_kaga)
    assert again.status_code == 409
    # Both parties list it; each sees the same current version.
    for headers, town in ((admin_kaga, KAGA), (admin_komatsu, KOMATSU)):
        listed = await client.get(
            f"/api/v1/agreements?tenant={town}&kind=bilateral", headers=headers
        )
        assert listed.status_code == 200
        assert aid in {a["id"] for a in listed.json()}
    # Staff of a party town may read it (they need the id); nobody else.
    shown = await client.get(f"/api/v1/agreements/{aid}", headers=auth(token, purpose=None))
    assert shown.status_code == 200
    assert [v["status"] for v in shown.json()["versions"]] == ["proposed", "active"]
    for outsider in (tokens["operator"],):
        assert (
            await client.get(f"/api/v1/agreements/{aid}", headers=auth(outsider, purpose=None))
        ).status_code == 404
    other_town = await client.get(f"/api/v1/agreements?tenant={KOMATSU}", headers=admin_kaga)
    assert other_town.status_code == 404
    # Either side revokes; the next request is refused.
    revoked = await client.post(f"/api/v1/agreements/{aid}/revoke", headers=admin_kaga)
    assert (revoked.json()["version"], revoked.json()["status"]) == (3, "revoked")
    assert (await client.get(url, headers=shared_headers(token, aid))).status_code == 404
    assert (
        await client.post(f"/api/v1/agreements/{aid}/accept", headers=admin_kaga)
    ).status_code == 409
    assert (
        await client.post(f"/api/v1/agreements/{aid}/revoke", headers=admin_komatsu)
    ).status_code == 409
    history = (await client.get(f"/api/v1/agreements/{aid}", headers=admin_komatsu)).json()
    assert [(v["version"], v["status"], v["changed_by_tenant"]) for v in history["versions"]] == [
        (1, "proposed", KOMATSU),
        (2, "active", KAGA),
        (3, "revoked", KAGA),
    ]


async def test_versions_cannot_be_rewritten_even_by_the_platform_role(db: Database) -> None:
    async with db.catalog() as conn:
        for statement in (
            "UPDATE catalog.agreement_versions SET status = 'active'",
            "DELETE FROM catalog.agreement_versions",
            "TRUNCATE catalog.agreement_versions CASCADE",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="immutable"):
                async with conn.transaction():
                    await conn.execute(statement)


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        ({"recipient": "172111"}, "/recipient"),  # 能美市: valid code, not a tenant here
        ({"recipient": "172060"}, "/recipient"),  # bad check digit
        ({"recipient": KOMATSU}, "/recipient"),  # with itself
        ({"fields": ["address", "shoe_size"]}, "/fields/1"),
        ({"purposes": ["kaigo.fortune-telling"]}, "/purposes/0"),
        ({"recipient_departments": ["kaigo", "nosuch"]}, "/recipient_departments/1"),
        ({"actions": ["delete"]}, "/actions/0"),
        ({"fields": []}, "/fields"),
        (
            {
                "valid_from": (_now() + timedelta(days=2)).isoformat(),
                "valid_until": (_now() + timedelta(days=1)).isoformat(),
            },
            "/valid_until",
        ),
        ({"valid_from": "2026-01-01T00:00:00"}, "/valid_from"),
    ],
)
async def test_bad_proposals_get_422_naming_the_field(
    client: Any, tokens: dict[str, str], overrides: dict[str, Any], pointer: str
) -> None:
    r = await client.post(
        "/api/v1/agreements",
        json=proposal(**overrides),
        headers=auth(tokens["komatsu_admin"], purpose=None),
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert pointer in [e["pointer"] for e in r.json()["errors"]]


async def test_only_the_providers_admin_proposes(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    # Kaga's admin cannot make Komatsu share.
    r = await client.post(
        "/api/v1/agreements", json=proposal(), headers=auth(tokens["kaga_admin"], purpose=None)
    )
    assert r.status_code == 403
    staff = await client.post(
        "/api/v1/agreements", json=proposal(), headers=auth(tokens["komatsu"], purpose=None)
    )
    assert staff.status_code == 403
    operator = await client.post(
        "/api/v1/agreements", json=proposal(), headers=auth(tokens["operator"], purpose=None)
    )
    assert operator.status_code == 404


# -- cross-town reads ---------------------------------------------------------------


async def test_cross_town_read_returns_agreement_fields_within_own_permissions(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    aid = await make_agreement(client, tokens, fields=[*KAIGO_FIELDS, "phone"])
    person = await komatsu_resident(client, tokens, phone="0761-22-0000")
    url = f"{KOMATSU_API}/residents/{person['id']}"
    r = await client.get(url, headers=shared_headers(kaga_staff(issuer), aid))
    assert r.status_code == 200, r.text
    body = r.json()
    # kaigo.qualification covers names, birth date, address, individual number,
    # not phone: the agreement's phone is not enough.
    assert {
        "family_name",
        "given_name",
        "birth_date",
        "address",
        "individual_number",
    } <= body.keys()
    assert "phone" not in body
    assert "phone" in body["withheld"]
    for absent in ("given_name_kana", "sex", "juminhyo_code", "postal_code"):
        assert absent not in body  # the purpose covers them, the agreement does not
    # Without two-factor authentication the individual number stays home.
    single = await client.get(
        url, headers=shared_headers(kaga_staff(issuer, mfa=False, sub="k-kaigo-2"), aid)
    )
    assert single.status_code == 200
    assert "individual_number" not in single.json()


async def test_without_a_valid_agreement_it_is_404_as_if_nobody_existed(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    aid = await make_agreement(client, tokens)
    person = await komatsu_resident(client, tokens)
    url = f"{KOMATSU_API}/residents/{person['id']}"
    missing = await client.get(
        f"{KOMATSU_API}/residents/{uuid.uuid4()}", headers=shared_headers(kaga_staff(issuer), aid)
    )
    cases = {
        "no agreement header": shared_headers(kaga_staff(issuer), None),
        "unknown agreement": shared_headers(kaga_staff(issuer), str(uuid.uuid4())),
        "department not covered": shared_headers(
            kaga_staff(issuer, "zeimu", sub="k-zeimu"), aid, purpose="zeimu.assessment"
        ),
        "purpose not covered": shared_headers(kaga_staff(issuer), aid, purpose="kaigo.premium"),
        "purpose not granted": shared_headers(kaga_staff(issuer, "kaikei", sub="k-kaikei"), aid),
    }
    assert missing.status_code == 404
    for label, headers in cases.items():
        r = await client.get(url, headers=headers)
        assert r.status_code == 404, label
        assert r.json()["detail"] == missing.json()["detail"], label
        assert "reason" not in r.json(), label
    # A malformed X-Agreement is a plain 400.
    bad = await client.get(url, headers=shared_headers(kaga_staff(issuer), "not-a-uuid"))
    assert bad.status_code == 400
    # Komatsu's own staff ignore X-Agreement (their own town).
    own = await client.get(url, headers=auth(tokens["komatsu"], **{"X-Agreement": aid}))
    assert own.status_code == 200
    # Another recipient (Komatsu shares with Kaga, not the other way round).
    reverse = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/{uuid.uuid4()}",
        headers=shared_headers(
            issuer.mint(
                subject="m-kaigo", tenant=KOMATSU, department="kaigo", roles=["staff"], mfa=True
            ),
            aid,
        ),
    )
    assert reverse.status_code == 404


async def test_cross_town_search_and_other_endpoints(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    birth = "1944-02-29"
    person = await komatsu_resident(client, tokens, family_name_kana="サガシ", birth_date=birth)
    searchable = await make_agreement(client, tokens)
    read_only = await make_agreement(client, tokens, actions=["read"])
    token = kaga_staff(issuer)
    query = {"family_name_kana": "サガシ", "birth_date": birth}
    # family_name_kana is not in KAIGO_FIELDS: searching by it is refused.
    refused = await client.post(
        f"{KOMATSU_API}/residents/search", json=query, headers=shared_headers(token, searchable)
    )
    assert refused.status_code == 404
    by_kana = await make_agreement(client, tokens, fields=[*KAIGO_FIELDS, "family_name_kana"])
    found = await client.post(
        f"{KOMATSU_API}/residents/search", json=query, headers=shared_headers(token, by_kana)
    )
    assert found.status_code == 200, found.text
    assert [p["id"] for p in found.json()["residents"]] == [person["id"]]
    no_search = await client.post(
        f"{KOMATSU_API}/residents/search", json=query, headers=shared_headers(token, read_only)
    )
    assert no_search.status_code == 404
    # History, households, moves: never under an agreement.
    history = await client.get(
        f"{KOMATSU_API}/residents/{person['id']}/history", headers=shared_headers(token, by_kana)
    )
    assert history.status_code == 404


async def test_both_towns_log_the_read_and_the_refusal(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    aid = await make_agreement(client, tokens)
    person = await komatsu_resident(client, tokens)
    url = f"{KOMATSU_API}/residents/{person['id']}"
    token = kaga_staff(issuer, sub="k-kaigo-audited")
    r = await client.get(
        url, headers=shared_headers(token, aid, **{"X-Request-ID": "share-read-1"})
    )
    assert r.status_code == 200
    [provider] = await events(db, KOMATSU, "share-read-1")
    [recipient] = await events(db, KAGA, "share-read-1")
    for e in (provider, recipient):
        assert (e["action"], e["outcome"], e["agreement_id"]) == ("resident.read", "allowed", aid)
        assert (e["actor"], e["actor_tenant"], e["department"]) == (
            "k-kaigo-audited",
            KAGA,
            "kaigo",
        )
        assert e["purpose"] == "kaigo.qualification"
        assert set(e["fields"]) == set(KAIGO_FIELDS)
    # Each log hashes the resident with its own town's key.
    assert provider["subjects"] == [
        (await db.town_keys(KOMATSU)).index("audit_subject", person["id"])
    ]
    assert recipient["subjects"] == [
        (await db.town_keys(KAGA)).index("audit_subject", person["id"])
    ]
    assert recipient["reason"].startswith(f"from town {KOMATSU} under agreement")
    # A refusal (purpose not covered) lands in both logs with the reason.
    denied = await client.get(
        url,
        headers=shared_headers(
            token, aid, purpose="kaigo.premium", **{"X-Request-ID": "share-read-2"}
        ),
    )
    assert denied.status_code == 404
    [p2] = await events(db, KOMATSU, "share-read-2")
    [r2] = await events(db, KAGA, "share-read-2")
    assert p2["outcome"] == r2["outcome"] == "denied"
    assert "does not cover purpose kaigo.premium" in p2["reason"]


async def test_both_logs_or_neither(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    """The recipient's audit write fails: no data, and the provider's event is gone too."""
    aid = await make_agreement(client, tokens)
    person = await komatsu_resident(client, tokens, family_name="両方")
    async with db.catalog() as conn:
        await conn.execute(
            "CREATE TRIGGER test_fail_recipient BEFORE INSERT ON audit.events FOR EACH ROW "
            f"WHEN (NEW.tenant = '{KAGA}' AND NEW.agreement_id = '{aid}') "
            "EXECUTE FUNCTION audit.refuse()"
        )
    try:
        r = await client.get(
            f"{KOMATSU_API}/residents/{person['id']}",
            headers=shared_headers(kaga_staff(issuer), aid, **{"X-Request-ID": "share-atomic"}),
        )
        assert r.status_code >= 500
        assert "両方" not in r.text
        assert await events(db, KOMATSU, "share-atomic") == []
    finally:
        async with db.catalog() as conn:
            await conn.execute("DROP TRIGGER test_fail_recipient ON audit.events")


async def test_support_measures_win_over_any_agreement(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    # Even Kaga's 市民課 doing registration work, under an agreement covering the address.
    aid = await make_agreement(
        client,
        tokens,
        recipient_departments=["shimin"],
        purposes=["juki.registration"],
        fields=["family_name", "address", "postal_code", "household_no"],
    )
    person = await komatsu_resident(client, tokens)
    url = f"{KOMATSU_API}/residents/{person['id']}"
    protect = await client.put(
        f"{url}/support-measure",
        json={"active": True},
        headers=auth(tokens["komatsu"], **{"If-Match": person["etag"]}),
    )
    assert protect.status_code == 200, protect.text
    headers = shared_headers(tokens["kaga"], aid, purpose="juki.registration")
    # Rule 1: never another town, whatever an agreement says — the protected
    # record does not exist for Kaga (the same 404 as a missing one), and a
    # search neither finds nor counts it.
    r = await client.get(url, headers=headers)
    assert r.status_code == 404
    missing = await client.get(f"{KOMATSU_API}/residents/{uuid.uuid4()}", headers=headers)
    assert r.json() == missing.json()
    assert person["family_name"] not in r.text
    # Komatsu's own 市民課 still sees it.
    own = await client.get(url, headers=auth(tokens["komatsu"]))
    assert own.json()["address"] == person["address"]


# -- time and revocation --------------------------------------------------------------


async def test_valid_until_the_second_and_denied_one_second_later(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = _now() + timedelta(days=1)
    until = start + timedelta(hours=2)
    aid = await make_agreement(
        client, tokens, valid_from=start.isoformat(), valid_until=until.isoformat()
    )
    person = await komatsu_resident(client, tokens)
    url = f"{KOMATSU_API}/residents/{person['id']}"
    token = kaga_staff(issuer)
    import shared_gov.api.entry.scope

    expected = {
        start.timestamp() - 1: 404,
        start.timestamp(): 200,
        until.timestamp(): 200,
        until.timestamp() + 1: 404,
    }
    for moment, status in expected.items():
        monkeypatch.setattr(shared_gov.api.entry.scope.time, "time", lambda m=moment: m)
        r = await client.get(url, headers=shared_headers(token, aid))
        assert r.status_code == status, datetime.fromtimestamp(moment, UTC)


async def test_expiry_in_real_time(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    until = _now() + timedelta(seconds=2)
    aid = await make_agreement(client, tokens, valid_until=until.isoformat())
    person = await komatsu_resident(client, tokens)
    url = f"{KOMATSU_API}/residents/{person['id']}"
    token = kaga_staff(issuer)
    assert (await client.get(url, headers=shared_headers(token, aid))).status_code == 200
    await asyncio.sleep(max(0.0, until.timestamp() + 1.1 - datetime.now(UTC).timestamp()))
    assert (await client.get(url, headers=shared_headers(token, aid))).status_code == 404


async def test_revocation_waits_for_reads_in_flight_and_refuses_the_next(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    """A read holding the agreement (its shared lock) finishes under it; the
    revocation commits after it; every request after the commit is refused."""
    aid = await make_agreement(client, tokens)
    person = await komatsu_resident(client, tokens)
    url = f"{KOMATSU_API}/residents/{person['id']}"
    token = kaga_staff(issuer)
    assert db.settings.database_url
    reader = await asyncpg.connect(db.url)
    try:
        # Stand-in for a read in flight: the same shared lock a cross-town read takes.
        await reader.execute("BEGIN")
        await reader.execute(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))",
            f"shared_gov.agreement.{aid}",
        )
        revoke = asyncio.create_task(
            client.post(
                f"/api/v1/agreements/{aid}/revoke",
                headers=auth(tokens["komatsu_admin"], purpose=None),
            )
        )
        await asyncio.sleep(0.5)
        assert not revoke.done()
        # A read arriving now queues behind the waiting revocation (PostgreSQL
        # does not let a shared lock jump an exclusive one already waiting)...
        late_read = asyncio.create_task(client.get(url, headers=shared_headers(token, aid)))
        await asyncio.sleep(0.3)
        assert not late_read.done()
        await reader.execute("COMMIT")
        revoked = await asyncio.wait_for(revoke, 10)
        assert revoked.status_code == 200
        # ... and so sees the revocation.
        assert (await asyncio.wait_for(late_read, 10)).status_code == 404
    finally:
        await reader.close()
    assert (await client.get(url, headers=shared_headers(token, aid))).status_code == 404


async def test_racing_reads_never_succeed_after_the_revocation_committed(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    aid = await make_agreement(client, tokens)
    person = await komatsu_resident(client, tokens)
    url = f"{KOMATSU_API}/residents/{person['id']}"
    token = kaga_staff(issuer)
    committed_at: list[float] = []

    async def revoke() -> None:
        await asyncio.sleep(0.05)
        r = await client.post(
            f"/api/v1/agreements/{aid}/revoke", headers=auth(tokens["kaga_admin"], purpose=None)
        )
        assert r.status_code == 200
        committed_at.append(asyncio.get_running_loop().time())

    async def read() -> tuple[float, int]:
        started = asyncio.get_running_loop().time()
        r = await client.get(url, headers=shared_headers(token, aid))
        return started, r.status_code

    async def reads() -> list[tuple[float, int]]:
        out = []
        for _ in range(30):
            out.append(await read())
        return out

    results = await asyncio.gather(revoke(), reads(), reads())
    outcomes = [x for batch in results[1:] for x in batch]  # type: ignore[union-attr]
    assert {s for _, s in outcomes} <= {200, 404}
    assert any(s == 404 for _, s in outcomes)
    late = [s for started, s in outcomes if started > committed_at[0]]
    assert late
    assert all(s == 404 for s in late)


# -- the standing move agreement ---------------------------------------------------------


async def test_standing_move_agreement_covers_only_moved_out_residents(
    client: Any, tokens: dict[str, str]
) -> None:
    listed = await client.get(
        f"/api/v1/agreements?tenant={KAGA}&kind=standing_move",
        headers=auth(tokens["kaga"], purpose=None),
    )
    standing = {a["provider"]: a for a in listed.json()}
    assert {KAGA, KOMATSU} <= standing.keys()
    komatsu_standing = standing[KOMATSU]
    assert komatsu_standing["recipient"] == "*"
    assert komatsu_standing["in_force"]
    assert komatsu_standing["recipient_departments"] == ["shimin"]
    staying = await komatsu_resident(client, tokens)
    leaving = await komatsu_resident(client, tokens)
    today = datetime.now(UTC).date()
    moved = await client.post(
        f"{KOMATSU_API}/residents/{leaving['id']}/moves",
        json={
            "event": "move_out_domestic",
            "move_date": (today + timedelta(days=7)).isoformat(),
            "notified_on": today.isoformat(),
            "forward_address": "石川県加賀市大聖寺地方町1-1",
            "to_tenant": KAGA,
        },
        headers=auth(tokens["komatsu"], **{"If-Match": leaving["etag"]}),
    )
    assert moved.status_code == 200, moved.text
    headers = shared_headers(tokens["kaga"], komatsu_standing["id"], purpose="juki.registration")
    r = await client.get(f"{KOMATSU_API}/residents/{leaving['id']}", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["forward_address"] == "石川県加賀市大聖寺地方町1-1"
    assert "phone" not in r.json()  # not on a 転出証明書
    assert (
        await client.get(f"{KOMATSU_API}/residents/{staying['id']}", headers=headers)
    ).status_code == 404
