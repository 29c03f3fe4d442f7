"""A move binds what crosses between towns (issue #14, items 3 and 4).

Komatsu (A) records the new town with a move-out (``to_tenant``). Only that
town may register the move-in one-stop — once, while the move is pending —
and only that town reads the 転出証明書 under Komatsu's standing move
agreement, until the move is confirmed. Nonoichi (C, 野々市市 172120, onboarded
here) is the unrelated third town that tries anyway. Every attack goes through
the HTTP API; Cedar and PostgreSQL are real.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.policy import agreements
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import load_manifest
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, TENANTS_DIR, auth
from tests.factories import resident_body
from tests.sharing.test_agreements import komatsu_resident, shared_headers
from tests.sharing.test_one_stop_move import (
    KAGA_API,
    KOMATSU_API,
    count,
    leaving_komatsu,
    move_in,
)

NONOICHI = "172120"
NONOICHI_API = f"/api/v1/tenants/{NONOICHI}"
ONE_STOP = "/residents/one-stop-move-in"


@pytest.fixture(scope="module")
async def nonoichi(db: Database, issuer: BuiltinIssuer) -> str:
    """A third town on the deployment, and a token of its 市民課 (2FA)."""
    manifest = load_manifest(TENANTS_DIR / "nomi.toml")
    town = msgspec.structs.replace(manifest, code=NONOICHI, name="野々市市", name_kana="ののいちし")
    await tenancy.onboard(db, town)
    return issuer.mint(
        subject="n-0001", tenant=NONOICHI, department="shimin", roles=["staff"], mfa=True
    )


async def standing_id(db: Database) -> str:
    return str(await agreements.standing_agreement(db, KOMATSU))


async def pending_to(db: Database, town: str) -> set[str]:
    """Ids of Komatsu residents whose pending move-out goes to ``town`` (read as the platform)."""
    schema = tenant_names(KOMATSU, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        rows = await conn.fetch(
            f'SELECT resident_id FROM "{schema}".move_outs '
            "WHERE status = 'pending' AND to_town = $1",
            town,
        )
    return {str(r["resident_id"]) for r in rows}


async def komatsu_state(client: Any, tokens: dict[str, str], rid: str) -> dict[str, Any]:
    r = await client.get(f"{KOMATSU_API}/residents/{rid}", headers=auth(tokens["komatsu"]))
    assert r.status_code == 200
    result: dict[str, Any] = r.json()
    return result


async def missing_body(client: Any, token: str, db: Database) -> dict[str, Any]:
    """What a town gets under the standing agreement for a resident that does not exist."""
    r = await client.get(
        f"{KOMATSU_API}/residents/{uuid.uuid4()}",
        headers=shared_headers(token, await standing_id(db), purpose="juki.registration"),
    )
    assert r.status_code == 404
    result: dict[str, Any] = r.json()
    return result


# -- item 3: one-stop move-in only by the destination, once, while pending ---------------


async def test_a_second_town_repeating_a_confirmed_move_in_is_refused_and_writes_nothing(
    client: Any, tokens: dict[str, str], db: Database, nonoichi: str
) -> None:
    leaving = await leaving_komatsu(client, tokens)
    ok = await client.post(
        f"{KAGA_API}{ONE_STOP}", json=move_in(leaving["id"]), headers=auth(tokens["kaga"])
    )
    assert ok.status_code == 201, ok.text
    confirmed = await komatsu_state(client, tokens, leaving["id"])
    before = (await count(db, NONOICHI), await count(db, NONOICHI, "events"))
    for body in (move_in(leaving["id"]), move_in(juminhyo_code=leaving["juminhyo_code"])):
        r = await client.post(f"{NONOICHI_API}{ONE_STOP}", json=body, headers=auth(nonoichi))
        assert r.status_code in (404, 409), r.text
        assert leaving["family_name"] not in r.text
    # And the destination itself cannot do it twice.
    again = await client.post(
        f"{KAGA_API}{ONE_STOP}", json=move_in(leaving["id"]), headers=auth(tokens["kaga"])
    )
    assert again.status_code in (404, 409)
    assert (await count(db, NONOICHI), await count(db, NONOICHI, "events")) == before
    assert (await komatsu_state(client, tokens, leaving["id"]))["version"] == confirmed["version"]
    # The person is active in exactly one town with that 個人番号.
    found = await client.post(
        f"{NONOICHI_API}/residents/search",
        json={"individual_number": leaving["individual_number"]},
        headers=auth(nonoichi),
    )
    assert found.status_code == 200
    assert found.json()["count"] == 0


async def test_an_unrelated_town_citing_a_pending_move_to_another_town_gets_404(
    client: Any, tokens: dict[str, str], db: Database, nonoichi: str
) -> None:
    leaving = await leaving_komatsu(client, tokens, family_name="縛付")
    before = (await count(db, NONOICHI), await count(db, NONOICHI, "events"))
    komatsu_events = await count(db, KOMATSU, "events")
    missing = await client.post(
        f"{NONOICHI_API}{ONE_STOP}", json=move_in(str(uuid.uuid4())), headers=auth(nonoichi)
    )
    for body in (move_in(leaving["id"]), move_in(juminhyo_code=leaving["juminhyo_code"])):
        r = await client.post(f"{NONOICHI_API}{ONE_STOP}", json=body, headers=auth(nonoichi))
        assert r.status_code == 404, r.text
        assert r.json() == missing.json()  # the same 404 as a resident that does not exist
    assert (await count(db, NONOICHI), await count(db, NONOICHI, "events")) == before
    assert await count(db, KOMATSU, "events") == komatsu_events
    assert (await komatsu_state(client, tokens, leaving["id"]))["version"] == leaving["version"]
    # C's audit log records the refusal without learning anything about A's resident.
    async with db.catalog() as conn:
        reasons = await conn.fetch(
            "SELECT reason FROM audit.events WHERE tenant = $1 "
            "AND action = 'resident.move_in_from_town'",
            NONOICHI,
        )
    assert reasons
    assert all("another town" not in (r["reason"] or "") for r in reasons)
    # The destination still can.
    ok = await client.post(
        f"{KAGA_API}{ONE_STOP}", json=move_in(leaving["id"]), headers=auth(tokens["kaga"])
    )
    assert ok.status_code == 201, ok.text


async def test_a_move_out_to_a_town_not_on_the_deployment_is_never_confirmed_one_stop(
    client: Any, tokens: dict[str, str], db: Database, nonoichi: str
) -> None:
    leaving = await leaving_komatsu(client, tokens, to_tenant=None)
    for token, api in ((tokens["kaga"], KAGA_API), (nonoichi, NONOICHI_API)):
        r = await client.post(f"{api}{ONE_STOP}", json=move_in(leaving["id"]), headers=auth(token))
        assert r.status_code == 404, r.text
    # Nor read under the standing agreement.
    r = await client.get(
        f"{KOMATSU_API}/residents/{leaving['id']}",
        headers=shared_headers(tokens["kaga"], await standing_id(db), purpose="juki.registration"),
    )
    assert r.status_code == 404


async def test_concurrent_attempts_exactly_one_wins(
    client: Any, tokens: dict[str, str], db: Database, nonoichi: str
) -> None:
    leaving = await leaving_komatsu(client, tokens, family_name="競合")
    kaga_before, nonoichi_before = await count(db, KAGA), await count(db, NONOICHI)

    async def attempt(api: str, token: str, body: dict[str, Any]) -> int:
        r = await client.post(f"{api}{ONE_STOP}", json=body, headers=auth(token))
        assert r.status_code < 500, r.text
        return int(r.status_code)

    by_id, by_code = move_in(leaving["id"]), move_in(juminhyo_code=leaving["juminhyo_code"])
    calls = [
        attempt(KAGA_API, tokens["kaga"], by_id),
        attempt(NONOICHI_API, nonoichi, by_id),
        attempt(KAGA_API, tokens["kaga"], by_code),
        attempt(NONOICHI_API, nonoichi, by_code),
        attempt(KAGA_API, tokens["kaga"], by_id),
        attempt(NONOICHI_API, nonoichi, by_id),
    ]
    statuses = await asyncio.gather(*calls)
    assert statuses.count(201) == 1, statuses
    assert set(statuses) <= {201, 404, 409}
    # Only one of the destination's attempts can have won; the other town wrote nothing.
    assert [s for i, s in enumerate(statuses) if i % 2 == 1 and s == 201] == []
    assert await count(db, KAGA) == kaga_before + 1
    assert await count(db, NONOICHI) == nonoichi_before


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"to_tenant": "172032"}, "check digit"),  # 小松市 with a wrong check digit
        ({"to_tenant": KOMATSU}, "own town"),
        ({"event": "move_out_abroad", "to_tenant": KAGA}, "abroad"),
        ({"event": "move_within_town", "address": "石川県小松市1-1", "to_tenant": KAGA}, "within"),
    ],
)
async def test_a_bad_destination_is_a_422_on_to_tenant(
    client: Any, tokens: dict[str, str], overrides: dict[str, Any], reason: str
) -> None:
    person = await komatsu_resident(client, tokens)
    today = today_jst().isoformat()
    body = {"event": "move_out_domestic", "move_date": today, "notified_on": today}
    body.update(overrides)
    r = await client.post(
        f"{KOMATSU_API}/residents/{person['id']}/moves",
        json=body,
        headers=auth(tokens["komatsu"], **{"If-Match": person["etag"]}),
    )
    assert r.status_code == 422, (reason, r.text)
    assert "/to_tenant" in [e["pointer"] for e in r.json()["errors"]]
    assert (await komatsu_state(client, tokens, person["id"]))["state"] == "active"


# -- item 4: the standing move agreement serves the destination of a pending move only ----


async def test_only_the_destination_reads_or_finds_a_moved_out_resident_while_pending(
    client: Any, tokens: dict[str, str], db: Database, nonoichi: str
) -> None:
    leaving = await leaving_komatsu(client, tokens, family_name="転出")
    other = await leaving_komatsu(client, tokens, to_tenant=NONOICHI)
    standing = await standing_id(db)
    url = f"{KOMATSU_API}/residents/{leaving['id']}"
    search = f"{KOMATSU_API}/residents/search"

    def headers(token: str) -> dict[str, str]:
        return shared_headers(token, standing, purpose="juki.registration")

    queries = [
        {"individual_number": leaving["individual_number"]},
        {"family_name_kana": leaving["family_name_kana"], "birth_date": leaving["birth_date"]},
        {"atena_no": leaving["atena_no"]},
    ]
    # Nonoichi is not where this person is moving: 404, the same as a missing resident.
    missing = await missing_body(client, nonoichi, db)
    r = await client.get(url, headers=headers(nonoichi))
    assert r.status_code == 404
    assert r.json() == missing
    for query in queries:
        found = await client.post(search, json=query, headers=headers(nonoichi))
        assert found.status_code in (200, 404), found.text
        assert leaving["id"] not in found.text
        assert "転出" not in found.text
    # Kaga is: the 転出証明書's fields, the new address included.
    mine = await client.get(url, headers=headers(tokens["kaga"]))
    assert mine.status_code == 200, mine.text
    assert mine.json()["forward_address"] == leaving["forward_address"]
    assert mine.json()["individual_number"] == leaving["individual_number"]
    assert "phone" not in mine.json()
    for query in queries:
        found = await client.post(search, json=query, headers=headers(tokens["kaga"]))
        assert found.status_code == 200, found.text
        ids = [x["id"] for x in found.json()["residents"]]
        assert leaving["id"] in ids
        assert other["id"] not in ids
        assert set(ids) <= await pending_to(db, KAGA)
    # ... but not the one moving to Nonoichi.
    r = await client.get(f"{KOMATSU_API}/residents/{other['id']}", headers=headers(tokens["kaga"]))
    assert r.status_code == 404
    assert r.json() == await missing_body(client, tokens["kaga"], db)
    found = await client.post(
        search,
        json={"individual_number": other["individual_number"]},
        headers=headers(tokens["kaga"]),
    )
    assert found.status_code == 200
    assert found.json()["count"] == 0
    # After the move is confirmed, the destination too gets 404.
    ok = await client.post(
        f"{KAGA_API}{ONE_STOP}", json=move_in(leaving["id"]), headers=auth(tokens["kaga"])
    )
    assert ok.status_code == 201, ok.text
    after = await client.get(url, headers=headers(tokens["kaga"]))
    assert after.status_code == 404
    assert after.json() == missing
    found = await client.post(search, json=queries[0], headers=headers(tokens["kaga"]))
    assert found.status_code in (200, 404)
    assert leaving["id"] not in found.text


async def test_the_destination_never_reads_an_active_resident(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    staying = await komatsu_resident(client, tokens)
    r = await client.get(
        f"{KOMATSU_API}/residents/{staying['id']}",
        headers=shared_headers(tokens["kaga"], await standing_id(db), purpose="juki.registration"),
    )
    assert r.status_code == 404


# -- rule 1: a protected person's whereabouts stay in the old town ---------------------------


async def test_a_protected_persons_old_address_crosses_nowhere(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    created = await client.post(
        f"{KOMATSU_API}/residents",
        json=resident_body(address="石川県小松市秘匿町9-9"),
        headers=auth(tokens["komatsu"]),
    )
    assert created.status_code == 201, created.text
    person = created.json() | {"etag": created.headers["etag"]}
    protected = await client.put(
        f"{KOMATSU_API}/residents/{person['id']}/support-measure",
        json={"active": True},
        headers=auth(tokens["komatsu"], **{"If-Match": person["etag"]}),
    )
    assert protected.status_code == 200
    today = today_jst().isoformat()
    moved = await client.post(
        f"{KOMATSU_API}/residents/{person['id']}/moves",
        json={
            "event": "move_out_domestic",
            "move_date": today,
            "notified_on": today,
            "forward_address": "石川県加賀市転居先1-1",
            "to_tenant": KAGA,
        },
        headers=auth(tokens["komatsu"], **{"If-Match": protected.headers["etag"]}),
    )
    assert moved.status_code == 200, moved.text
    # Under the standing agreement the destination does not read the protected
    # leaver at all (rule 1: never another town): the 404 of a missing record.
    read = await client.get(
        f"{KOMATSU_API}/residents/{person['id']}",
        headers=shared_headers(tokens["kaga"], await standing_id(db), purpose="juki.registration"),
    )
    assert read.status_code == 404, read.text
    assert read.json() == await missing_body(client, tokens["kaga"], db)
    assert "秘匿町" not in read.text
    assert "転居先" not in read.text
    r = await client.post(
        f"{KAGA_API}{ONE_STOP}",
        json=move_in(person["id"]),
        headers=auth(tokens["kaga"]),
    )
    assert r.status_code == 201, r.text
    assert "秘匿町" not in r.text
    assert "小松市" not in r.text
    assert r.json()["previous_address"] is None
    history = await client.get(
        f"{KAGA_API}/residents/{r.json()['id']}/history", headers=auth(tokens["kaga"])
    )
    assert "秘匿町" not in history.text
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND occurred_at >= $2", KAGA, start
        )
    assert rows
    assert all("秘匿町" not in str(dict(row)) for row in rows)


# -- item 6: agreement changes are audit events in both towns' logs -------------------------


async def test_propose_accept_revoke_are_audited_in_both_logs_with_before_and_after(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    from tests.sharing.test_agreements import proposal

    admin_komatsu = auth(tokens["komatsu_admin"], purpose=None)
    admin_kaga = auth(tokens["kaga_admin"], purpose=None)
    r = await client.post("/api/v1/agreements", json=proposal(), headers=admin_komatsu)
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    refused = await client.post(f"/api/v1/agreements/{aid}/accept", headers=admin_komatsu)
    assert refused.status_code == 403
    assert (await client.post(f"/api/v1/agreements/{aid}/accept", headers=admin_kaga)).is_success
    assert (await client.post(f"/api/v1/agreements/{aid}/revoke", headers=admin_kaga)).is_success
    twice = await client.post(f"/api/v1/agreements/{aid}/revoke", headers=admin_komatsu)
    assert twice.status_code == 409
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT tenant, action, outcome, reason, actor, actor_tenant, subjects, fields "
            "FROM audit.events WHERE agreement_id = $1 ORDER BY occurred_at",
            aid,
        )
    allowed = [r for r in rows if r["outcome"] == "allowed"]
    steps = {(r["tenant"], r["action"]) for r in allowed}
    for town in (KOMATSU, KAGA):
        for step in ("propose", "accept", "revoke"):
            assert (town, f"agreement.{step}") in steps
    changes = {
        (r["tenant"], r["action"]): msgspec.json.decode(r["reason"].encode()) for r in allowed
    }
    propose = changes[(KAGA, "agreement.propose")]
    assert propose["before"] is None
    assert propose["after"]["status"] == "proposed"
    accept = changes[(KOMATSU, "agreement.accept")]
    assert (accept["before"]["status"], accept["after"]["status"]) == ("proposed", "active")
    assert accept["after"]["fields"] == sorted(proposal()["fields"])
    revoke = changes[(KOMATSU, "agreement.revoke")]
    assert (revoke["before"]["status"], revoke["after"]["status"]) == ("active", "revoked")
    assert all(list(r["subjects"]) == [] and list(r["fields"]) == [] for r in rows)
    assert next(r for r in allowed if r["action"] == "agreement.accept")["actor"] == "k-admin"
    # The refusals are in the acting town's log.
    denied = {(r["tenant"], r["action"], r["outcome"]) for r in rows if r["outcome"] != "allowed"}
    assert (KOMATSU, "agreement.accept", "denied") in denied
    # Revoking twice is a conflict (409): a refusal like every 4xx (errors.audit_outcome).
    assert (KOMATSU, "agreement.revoke", "denied") in denied


async def test_a_failed_audit_write_leaves_the_agreement_unchanged(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """No record, no change: the step and its audit events share one transaction."""
    from tests.sharing.test_agreements import proposal

    r = await client.post(
        "/api/v1/agreements", json=proposal(), headers=auth(tokens["komatsu_admin"], purpose=None)
    )
    aid = r.json()["id"]
    async with db.catalog() as conn:
        await conn.execute(
            "CREATE OR REPLACE FUNCTION audit.test_fail_agreement() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN IF NEW.action = 'agreement.accept' THEN "
            "RAISE EXCEPTION 'test'; END IF; RETURN NEW; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER test_fail_agreement BEFORE INSERT ON audit.events "
            "FOR EACH ROW EXECUTE FUNCTION audit.test_fail_agreement()"
        )
    try:
        failed = await client.post(
            f"/api/v1/agreements/{aid}/accept", headers=auth(tokens["kaga_admin"], purpose=None)
        )
        assert failed.status_code >= 500
    finally:
        async with db.catalog() as conn:
            await conn.execute("DROP TRIGGER test_fail_agreement ON audit.events")
            await conn.execute("DROP FUNCTION audit.test_fail_agreement()")
    shown = await client.get(
        f"/api/v1/agreements/{aid}", headers=auth(tokens["kaga"], purpose=None)
    )
    assert shown.json()["status"] == "proposed"
    assert len(shown.json()["versions"]) == 1
