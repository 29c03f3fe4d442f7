"""A resident's access report (juki.disclosure): which town, department and
purpose touched the record and when, never which staff member; auditors'
own queries are not listed; suppressed entries are withheld until a date."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import today_jst
from shared_gov.db import Database
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"
DISCLOSURE = "juki.disclosure"


@pytest.fixture(scope="module")
async def discloser(client: Any, issuer: BuiltinIssuer) -> str:
    """A 市民課 clerk granted juki.disclosure by the town's admin."""
    admin = issuer.mint(subject="k-admin", tenant=KAGA, department="somu", roles=["admin"])
    r = await client.put(
        f"{BASE}/staff/k-disc",
        json={"department": "shimin", "purposes": [DISCLOSURE]},
        headers=auth(admin, purpose=None),
    )
    assert r.status_code == 200, r.text
    return issuer.mint(subject="k-disc", tenant=KAGA, department="shimin", roles=["staff"])


@pytest.fixture(scope="module")
async def person(client: Any, tokens: dict[str, str], issuer: BuiltinIssuer) -> dict[str, Any]:
    """Registered and read by 市民課, read by 介護保険課, looked up by an auditor."""
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201
    result: dict[str, Any] = r.json()
    url = f"{BASE}/residents/{result['id']}"
    assert (await client.get(url, headers=auth(tokens["kaga"]))).status_code == 200
    kaigo = issuer.mint(subject="k-kaigo-al", tenant=KAGA, department="kaigo", roles=["staff"])
    read = await client.get(url, headers=auth(kaigo, purpose="kaigo.qualification"))
    assert read.status_code == 200
    looked_up = await client.get(
        f"{BASE}/audit/events",
        params={"subject": result["id"]},
        headers=auth(tokens["kaga_auditor"], purpose=None),
    )
    assert looked_up.status_code == 200
    return result


async def _report(client: Any, token: str, resident_id: str, **extra: str) -> Any:
    return await client.get(
        f"{BASE}/residents/{resident_id}/access-log",
        headers=auth(token, purpose=DISCLOSURE, **extra),
    )


async def test_the_report_names_offices_not_people(
    client: Any, discloser: str, person: dict[str, Any]
) -> None:
    r = await _report(client, discloser, person["id"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["withheld"] is None
    summary = [
        (e["action"], e["department"]["code"], e["purpose"]["code"], e["outcome"])
        for e in body["entries"]
    ]
    assert summary == [
        ("resident.register", "shimin", "juki.registration", "allowed"),
        ("resident.read", "shimin", "juki.registration", "allowed"),
        ("resident.read", "kaigo", "kaigo.qualification", "allowed"),
    ]
    first = body["entries"][0]
    assert first["town"] == {"code": KAGA, "name": "加賀市"}
    assert first["department"]["name"] == "市民課"
    assert first["purpose"]["name"] == "住民基本台帳事務（届出の受理・記録）"
    assert first["action_ja"] == "住民記録の記載"
    assert "individual_number" in first["fields"]
    assert body["entries"][2]["individual_number"] is False
    # Who, from where, on which request: for auditors only.
    for hidden in ("k-0001", "k-kaigo-al", "k-9001", "127.0.0.1", "request_id", "actor"):
        assert hidden not in r.text


async def test_the_report_is_itself_an_access(
    client: Any, discloser: str, person: dict[str, Any], db: Database
) -> None:
    r = await _report(client, discloser, person["id"], **{"X-Request-ID": "al-recorded"})
    assert r.status_code == 200
    async with db.catalog() as conn:
        event = await conn.fetchrow(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = 'al-recorded'",
            KAGA,
        )
    assert event is not None
    assert event["action"] == "resident.access_log"
    assert event["purpose"] == DISCLOSURE
    assert event["fields"] == []
    assert event["rows_returned"] == len(r.json()["entries"])
    assert event["subjects"] == [(await db.town_keys(KAGA)).index("audit_subject", person["id"])]
    again = await _report(client, discloser, person["id"])
    assert again.json()["entries"][-1]["action"] == "resident.access_log"


async def test_only_disclosure_staff_of_the_town_get_it(
    client: Any,
    tokens: dict[str, str],
    discloser: str,
    person: dict[str, Any],
    issuer: BuiltinIssuer,
) -> None:
    url = f"{BASE}/residents/{person['id']}/access-log"
    wrong_purpose = await client.get(url, headers=auth(discloser, purpose="juki.registration"))
    assert wrong_purpose.status_code == 403
    registration = await client.get(url, headers=auth(tokens["kaga"]))
    assert registration.status_code == 403
    assert registration.json()["reason"] == (
        "the access report is given only for purpose juki.disclosure"
    )
    # 会計課 is never granted it (市民課 may be, department-wide).
    kaikei = issuer.mint(subject="k-kaikei-al", tenant=KAGA, department="kaikei", roles=["staff"])
    not_granted = await client.get(url, headers=auth(kaikei, purpose=DISCLOSURE))
    assert not_granted.status_code == 403
    assert "not granted" in not_granted.json()["reason"]
    auditor = await client.get(url, headers=auth(tokens["kaga_auditor"], purpose=DISCLOSURE))
    assert auditor.status_code == 403
    komatsu = issuer.mint(subject="k-disc", tenant=KOMATSU, department="shimin", roles=["staff"])
    assert (await client.get(url, headers=auth(komatsu, purpose=DISCLOSURE))).status_code == 404
    for missing in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        r = await _report(client, discloser, missing)
        assert r.status_code == 404


async def _kaigo_event(client: Any, tokens: dict[str, str], person: dict[str, Any]) -> str:
    r = await client.get(
        f"{BASE}/audit/events",
        params={"subject": person["id"], "department": "kaigo"},
        headers=auth(tokens["kaga_auditor"], purpose=None),
    )
    (event,) = r.json()["events"]
    event_id: str = event["event_id"]
    return event_id


async def _suppress(client: Any, token: str, ids: list[str], days: int, **extra: str) -> Any:
    return await client.post(
        f"{BASE}/audit/suppressions",
        json={
            "event_ids": ids,
            "until": (today_jst() + timedelta(days=days)).isoformat(),
            "reason": "case 2026-17",
        },
        headers=auth(token, purpose=None, **extra),
    )


async def test_suppressed_entries_are_withheld_until_their_date(
    client: Any,
    tokens: dict[str, str],
    discloser: str,
    person: dict[str, Any],
    db: Database,
) -> None:
    event_id = await _kaigo_event(client, tokens, person)
    auditor = tokens["kaga_auditor"]
    r = await _suppress(client, auditor, [event_id], 30, **{"X-Request-ID": "al-suppress"})
    assert r.status_code == 201, r.text
    release = (today_jst() + timedelta(days=30)).isoformat()
    assert r.json() == {"suppressed": 1, "until": release}

    report = await _report(client, discloser, person["id"])
    body = report.json()
    assert [e["department"]["code"] for e in body["entries"]].count("kaigo") == 0
    assert body["withheld"]["until"] == release
    assert event_id not in report.text
    assert "case 2026-17" not in report.text

    async with db.catalog() as conn:
        recorded = await conn.fetchrow(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = 'al-suppress'",
            KAGA,
        )
    assert recorded is not None
    assert (recorded["action"], recorded["rows_returned"]) == ("audit.suppress", 1)

    listed = await client.get(f"{BASE}/audit/suppressions", headers=auth(auditor, purpose=None))
    mine = [s for s in listed.json()["suppressions"] if s["event_id"] == event_id]
    assert [(s["until"], s["active"], s["created_by"]) for s in mine] == [(release, True, "k-9001")]

    # Released early: a later suppression dated today wins.
    lifted = await _suppress(client, auditor, [event_id], 0)
    assert lifted.status_code == 201
    body = (await _report(client, discloser, person["id"])).json()
    assert body["withheld"] is None
    assert [e["department"]["code"] for e in body["entries"]].count("kaigo") == 1


async def test_suppressions_are_for_auditors_and_real_events(
    client: Any, tokens: dict[str, str], person: dict[str, Any], db: Database
) -> None:
    event_id = await _kaigo_event(client, tokens, person)
    staff = await _suppress(client, tokens["kaga"], [event_id], 10)
    assert staff.status_code == 403
    komatsu = await _suppress(client, tokens["komatsu"], [event_id], 10)
    assert komatsu.status_code == 404
    unknown = "00000000-0000-4000-8000-000000000001"
    bad = await _suppress(client, tokens["kaga_auditor"], [event_id, unknown], 10)
    assert bad.status_code == 422
    assert [e["pointer"] for e in bad.json()["errors"]] == ["/event_ids/1"]
    async with db.catalog() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM audit.suppressions WHERE event_id = $1 AND until = $2",
            event_id,
            today_jst() + timedelta(days=10),
        )
    assert stored == 0


async def test_suppressions_are_append_only(db: Database) -> None:
    """Row triggers fire only on rows that exist: one is planted first."""
    async with db.catalog() as conn:
        await conn.execute(
            "INSERT INTO audit.suppressions (tenant, event_id, until, reason, created_by) "
            "VALUES ($1, gen_random_uuid(), current_date, 'probe', 'test')",
            KAGA,
        )
        for statement in (
            "UPDATE audit.suppressions SET until = '2000-01-01'",
            "DELETE FROM audit.suppressions",
            "TRUNCATE audit.suppressions",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                async with conn.transaction():
                    await conn.execute(statement)
