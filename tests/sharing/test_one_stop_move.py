"""One-stop move: Kaga (B) registers a person moving in from Komatsu (A), citing
Komatsu's record under Komatsu's standing move agreement; both towns change in
one transaction or neither does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import juminhyo_code
from tests.sharing.test_agreements import events, komatsu_resident

KAGA_API = f"/api/v1/tenants/{KAGA}"
KOMATSU_API = f"/api/v1/tenants/{KOMATSU}"
NEW_ADDRESS = "石川県加賀市大聖寺南町2-2"


async def leaving_komatsu(
    client: Any, tokens: dict[str, str], to_tenant: str | None = KAGA, **overrides: Any
) -> dict[str, Any]:
    """A Komatsu resident who registered a planned move-out (転出届) a week ahead,
    to ``to_tenant`` (Kaga unless a test says otherwise; None: not a tenant here)."""
    person = await komatsu_resident(client, tokens, **overrides)
    today = today_jst()
    body = {
        "event": "move_out_domestic",
        "move_date": (today + timedelta(days=7)).isoformat(),
        "notified_on": today.isoformat(),
        "forward_address": NEW_ADDRESS,
    }
    if to_tenant is not None:
        body["to_tenant"] = to_tenant
    r = await client.post(
        f"{KOMATSU_API}/residents/{person['id']}/moves",
        json=body,
        headers=auth(tokens["komatsu"], **{"If-Match": person["etag"]}),
    )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    result["etag"] = r.headers["etag"]
    return result


def move_in(from_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    today = today_jst()
    body: dict[str, Any] = {
        "from_tenant": KOMATSU,
        "address": NEW_ADDRESS,
        "postal_code": "9220000",
        "move_date": today.isoformat(),
        "notified_on": today.isoformat(),
    }
    if from_id is not None:
        body["resident_id"] = from_id
    body.update(overrides)
    return body


async def count(db: Database, town: str, table: str = "residents") -> int:
    schema = tenant_names(town, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        value: int = await conn.fetchval(f'SELECT count(*) FROM "{schema}".{table}')
    return value


async def test_one_stop_move_creates_b_and_confirms_a_together(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    leaving = await leaving_komatsu(client, tokens, family_name="移動", given_name="一郎")
    r = await client.post(
        f"{KAGA_API}/residents/one-stop-move-in",
        json=move_in(leaving["id"]),
        headers=auth(tokens["kaga"], **{"X-Request-ID": "one-stop-1"}),
    )
    assert r.status_code == 201, r.text
    arrived = r.json()
    # B's record: the certificate's fields from A, the counter's from the body.
    for name in (
        "family_name",
        "given_name",
        "birth_date",
        "sex",
        "individual_number",
        "juminhyo_code",
    ):
        assert arrived[name] == leaving[name], name
    assert arrived["address"] == NEW_ADDRESS
    assert arrived["previous_address"] == leaving["address"]
    assert arrived["id"] != leaving["id"]
    assert arrived["state"] == "active"
    # B can read it back (re-encrypted under B's keys).
    back = await client.get(f"{KAGA_API}/residents/{arrived['id']}", headers=auth(tokens["kaga"]))
    assert back.json()["family_name"] == "移動"
    # A's record: moved out on the actual day, with a new history entry.
    after = (
        await client.get(
            f"{KOMATSU_API}/residents/{leaving['id']}", headers=auth(tokens["komatsu"])
        )
    ).json()
    assert after["state"] == "moved_out"
    assert after["removed_on"] == today_jst().isoformat()
    history = (
        await client.get(
            f"{KOMATSU_API}/residents/{leaving['id']}/history", headers=auth(tokens["komatsu"])
        )
    ).json()
    assert history["entries"][-1]["reason"] == "move_out_confirmed"
    # Both audit logs, each about its own record, naming the standing agreement.
    [a_event] = await events(db, KOMATSU, "one-stop-1")
    [b_event] = await events(db, KAGA, "one-stop-1")
    assert a_event["action"] == "resident.move_out_confirmed"
    assert a_event["outcome"] == "allowed"
    assert b_event["action"] == "resident.move_in_from_town"
    assert b_event["outcome"] == "allowed"
    assert a_event["agreement_id"] == b_event["agreement_id"] is not None
    assert a_event["subjects"] == [
        (await db.town_keys(KOMATSU)).index("audit_subject", leaving["id"])
    ]
    assert b_event["subjects"] == [(await db.town_keys(KAGA)).index("audit_subject", arrived["id"])]
    # Both towns' domain events.
    kaga_schema = tenant_names(KAGA, db.settings.role_prefix).schema
    komatsu_schema = tenant_names(KOMATSU, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        b_types = await conn.fetch(
            f'SELECT type, ids FROM "{kaga_schema}".events WHERE record_id = $1', arrived["id"]
        )
        a_types = await conn.fetch(
            f'SELECT type, fields, ids FROM "{komatsu_schema}".events '
            "WHERE record_id = $1 ORDER BY seq",
            leaving["id"],
        )
    assert [e["type"] for e in b_types] == ["resident.moved_in"]
    assert a_types[-1]["type"] == "resident.changed"
    assert list(a_types[-1]["fields"]) == ["removed_on"]
    assert a_types[-1]["ids"]["to_town"] == KAGA
    # Moving the same person twice is refused (A's move-out is already confirmed
    # and B has the 住民票コード).
    again = await client.post(
        f"{KAGA_API}/residents/one-stop-move-in",
        json=move_in(leaving["id"]),
        headers=auth(tokens["kaga"]),
    )
    assert again.status_code in (404, 409)


async def test_citing_the_juminhyo_code(client: Any, tokens: dict[str, str]) -> None:
    code = juminhyo_code()
    leaving = await leaving_komatsu(client, tokens, juminhyo_code=code)
    r = await client.post(
        f"{KAGA_API}/residents/one-stop-move-in",
        json=move_in(juminhyo_code=code),
        headers=auth(tokens["kaga"]),
    )
    assert r.status_code == 201, r.text
    assert r.json()["juminhyo_code"] == code == leaving["juminhyo_code"]


async def test_a_resident_who_did_not_register_a_move_out_is_not_found(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    staying = await komatsu_resident(client, tokens)
    before = await count(db, KAGA)
    r = await client.post(
        f"{KAGA_API}/residents/one-stop-move-in",
        json=move_in(staying["id"]),
        headers=auth(tokens["kaga"]),
    )
    assert r.status_code == 404
    assert staying["family_name"] not in r.text
    assert await count(db, KAGA) == before


async def test_bad_requests(client: Any, tokens: dict[str, str], issuer: BuiltinIssuer) -> None:
    cases = [
        (
            move_in("x", from_tenant="172111"),
            422,
            "/from_tenant",
        ),  # 能美市 is not on this deployment
        (move_in("x", from_tenant=KAGA), 422, "/from_tenant"),
        (move_in(), 422, "/"),  # neither id nor code
        (move_in("x", juminhyo_code="12345678901"), 422, "/"),
    ]
    for body, status, pointer in cases:
        r = await client.post(
            f"{KAGA_API}/residents/one-stop-move-in", json=body, headers=auth(tokens["kaga"])
        )
        assert r.status_code == status, (body, r.text)
        assert pointer in [e["pointer"] for e in r.json()["errors"]]
    # Another town's staff, and B's staff without juki.registration.
    leaving = await leaving_komatsu(client, tokens)
    other = await client.post(
        f"{KAGA_API}/residents/one-stop-move-in",
        json=move_in(leaving["id"]),
        headers=auth(tokens["komatsu"]),
    )
    assert other.status_code == 404
    kaigo = issuer.mint(
        subject="k-kaigo-move", tenant=KAGA, department="kaigo", roles=["staff"], mfa=True
    )
    refused = await client.post(
        f"{KAGA_API}/residents/one-stop-move-in",
        json=move_in(leaving["id"]),
        headers=auth(kaigo, purpose="kaigo.qualification"),
    )
    assert refused.status_code in (403, 404)


async def test_a_failure_half_way_leaves_neither_town_changed(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """B's record is written first; then A's update fails: B's record is gone too."""
    leaving = await leaving_komatsu(client, tokens, family_name="途中")
    komatsu_schema = tenant_names(KOMATSU, db.settings.role_prefix).schema
    kaga_before, kaga_events_before = await count(db, KAGA), await count(db, KAGA, "events")
    async with db.catalog() as conn:
        await conn.execute(
            f'CREATE TRIGGER test_fail_confirm BEFORE UPDATE ON "{komatsu_schema}".residents '
            f"FOR EACH ROW WHEN (OLD.id = '{leaving['id']}') EXECUTE FUNCTION audit.refuse()"
        )
    try:
        r = await client.post(
            f"{KAGA_API}/residents/one-stop-move-in",
            json=move_in(leaving["id"]),
            headers=auth(tokens["kaga"]),
        )
        assert r.status_code >= 500
        assert "途中" not in r.text
    finally:
        async with db.catalog() as conn:
            await conn.execute(f'DROP TRIGGER test_fail_confirm ON "{komatsu_schema}".residents')
    assert await count(db, KAGA) == kaga_before
    assert await count(db, KAGA, "events") == kaga_events_before
    after = (
        await client.get(
            f"{KOMATSU_API}/residents/{leaving['id']}", headers=auth(tokens["komatsu"])
        )
    ).json()
    assert after["version"] == leaving["version"]
    assert after["removed_on"] == leaving["removed_on"]
    # And it works once the fault is gone.
    ok = await client.post(
        f"{KAGA_API}/residents/one-stop-move-in",
        json=move_in(leaving["id"]),
        headers=auth(tokens["kaga"]),
    )
    assert ok.status_code == 201, ok.text


async def test_support_measures_travel_but_whereabouts_stay_home(
    client: Any, tokens: dict[str, str]
) -> None:
    person = await komatsu_resident(client, tokens)
    protected = await client.put(
        f"{KOMATSU_API}/residents/{person['id']}/support-measure",
        json={"active": True},
        headers=auth(tokens["komatsu"], **{"If-Match": person["etag"]}),
    )
    assert protected.status_code == 200
    today = today_jst()
    moved = await client.post(
        f"{KOMATSU_API}/residents/{person['id']}/moves",
        json={
            "event": "move_out_domestic",
            "move_date": today.isoformat(),
            "notified_on": today.isoformat(),
            "to_tenant": KAGA,
        },
        headers=auth(tokens["komatsu"], **{"If-Match": protected.headers["etag"]}),
    )
    assert moved.status_code == 200, moved.text
    r = await client.post(
        f"{KAGA_API}/residents/one-stop-move-in",
        json=move_in(person["id"]),
        headers=auth(tokens["kaga"]),
    )
    assert r.status_code == 201, r.text
    arrived = r.json()
    assert arrived["support_measure"] is True
    assert arrived["previous_address"] is None  # A's address stayed in A
    assert arrived["family_name"] == person["family_name"]


async def test_a_revoked_standing_agreement_stops_one_stop_moves(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """Revocation takes effect on the next request (then restored for other tests)."""
    from shared_gov.policy import agreements

    standing = await agreements.standing_agreement(db, KOMATSU)
    leaving = await leaving_komatsu(client, tokens)
    revoked = await client.post(
        f"/api/v1/agreements/{standing}/revoke", headers=auth(tokens["komatsu_admin"], purpose=None)
    )
    assert revoked.status_code == 200
    try:
        r = await client.post(
            f"{KAGA_API}/residents/one-stop-move-in",
            json=move_in(leaving["id"]),
            headers=auth(tokens["kaga"]),
        )
        assert r.status_code == 404
    finally:
        # Restore it for the rest of the session (a new version, like any change).
        await _reset_standing(db, standing)


async def _reset_standing(db: Database, standing: Any) -> None:
    """Tests only: re-activate the standing agreement as a new version."""
    async with db.catalog() as conn:
        current = await conn.fetchrow(
            "SELECT * FROM catalog.agreement_versions WHERE agreement_id = $1 "
            "ORDER BY version DESC LIMIT 1",
            standing,
        )
        values = dict(current)
        values["version"] += 1
        values["status"] = "active"
        values.pop("changed_at")
        columns = list(values)
        await conn.execute(
            f"INSERT INTO catalog.agreement_versions ({', '.join(columns)}) VALUES "
            f"({', '.join(f'${i}' for i in range(1, len(columns) + 1))})",
            *values.values(),
        )
