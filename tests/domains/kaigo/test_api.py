"""The 介護保険 API through the guarded entry: real tokens, real Cedar, real PostgreSQL.

Insured persons read and found (POST), the queue filtered, confirmed with If-Match
(the record changes in the same transaction), corrected by one person and confirmed
by another (never the same), rejected; refusals as problem+json with Japanese
reasons, every request in the town's audit log."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.domains.kaigo.models import Determination, Proposal
from shared_gov.domains.kaigo.repository import determinations
from shared_gov.domains.kaigo.repository.determinations import determination_id
from shared_gov.domains.kaigo.rules import fiscal_year
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, auth
from tests.domains.kaigo.conftest import Register, planted, queue_of, settle

Q = "kaigo.qualification"
BASE = f"/api/v1/tenants/{KAGA}/kaigo"


async def _events(db: Database, tenant: str, request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2 "
            "ORDER BY occurred_at",
            tenant,
            request_id,
        )
    return [dict(r) for r in rows]


def _rid() -> str:
    return f"kaigo-{uuid.uuid4().hex[:12]}"


async def _gain(
    db: Database, register_: Register, **body: Any
) -> tuple[dict[str, Any], Determination]:
    person = await register_.move_in(birth_date="1950-10-10", **body)
    await settle(db)
    (d,) = await queue_of(db, KAGA, person["id"])
    return person, d


async def _get(client: httpx.AsyncClient, token: str, d_id: str) -> httpx.Response:
    r = await client.get(f"{BASE}/determinations/{d_id}", headers=auth(token, Q))
    assert r.status_code == 200, r.text
    return r


async def test_confirming_a_gain_enrols_the_person_with_an_insured_number(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    person, d = await _gain(db, register_)
    url = f"{BASE}/determinations/{d.id}/confirm"
    token = kaigo_tokens["kaga"]
    # Without If-Match: 428; stale: 412 — nothing changes.
    r = await client.post(url, json={}, headers=auth(token, Q))
    assert r.status_code == 428
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "If-Match" in r.json()["detail"]
    r = await client.post(url, json={}, headers=auth(token, Q, **{"If-Match": '"v9"'}))
    assert r.status_code == 412
    etag = (await _get(client, token, d.id)).headers["ETag"]
    rid = _rid()
    r = await client.post(
        url,
        json={"answers": {"certificate": "提出なし（要介護認定なし）"}},
        headers=auth(token, Q, **{"If-Match": etag, "X-Request-ID": rid}),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["decided_by"]) == ("confirmed", "kk-0001")
    assert body["answers"] == {"certificate": "提出なし（要介護認定なし）"}
    found = await client.post(
        f"{BASE}/insured/search", json={"resident_id": person["id"]}, headers=auth(token, Q)
    )
    (insured,) = found.json()["insured"]
    assert insured["status"] == "insured"
    assert insured["category"] == "1"
    assert len(insured["insured_number"]) == 10
    assert insured["periods"][0]["gained"] == d.proposal.date.isoformat()
    assert insured["card"]["issued_on"] == today_jst().isoformat()
    # Found again by the number, in a body.
    by_number = await client.post(
        f"{BASE}/insured/search",
        json={"insured_number": insured["insured_number"]},
        headers=auth(token, Q),
    )
    assert [p["id"] for p in by_number.json()["insured"]] == [insured["id"]]
    (event,) = await _events(db, KAGA, rid)
    assert (event["action"], event["resource_type"], event["outcome"]) == (
        "kaigo.determination.confirm",
        "determination",
        "allowed",
    )
    assert event["purpose"] == Q
    assert "InsuredPerson.periods" in event["fields"]
    assert insured["insured_number"] not in repr(event)
    # Twice: 409.
    again = await client.post(
        url, json={}, headers=auth(token, Q, **{"If-Match": body and r.headers["ETag"]})
    )
    assert again.status_code == 409
    assert again.json()["detail"] == "the determination is confirmed already"
    in_japanese = await client.post(
        url,
        json={},
        headers=auth(token, Q, **{"If-Match": r.headers["ETag"], "Accept-Language": "ja"}),
    )
    assert in_japanese.json()["detail"] == "判定は処理済みです（confirmed）"


async def test_who_corrected_cannot_confirm_and_someone_else_does(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    _person, d = await _gain(db, register_)
    corrector, confirmer = kaigo_tokens["kaga"], kaigo_tokens["kaga2"]
    etag = (await _get(client, corrector, d.id)).headers["ETag"]
    corrected_day = d.proposal.date - timedelta(days=1)
    r = await client.post(
        f"{BASE}/determinations/{d.id}/correct",
        json={"reason": "転入日を届出書で確認した", "date": corrected_day.isoformat()},
        headers=auth(corrector, Q, **{"If-Match": etag}),
    )
    assert r.status_code == 200, r.text
    assert r.json()["corrected_by"] == "kk-0001"
    assert r.json()["correction"]["date"] == corrected_day.isoformat()
    etag = r.headers["ETag"]
    rid = _rid()
    refused = await client.post(
        f"{BASE}/determinations/{d.id}/confirm",
        json={},
        headers=auth(corrector, Q, **{"If-Match": etag, "X-Request-ID": rid}),
    )
    assert refused.status_code == 403
    assert refused.json()["reason"] == (
        "whoever corrected a determination cannot confirm it (separation of duties)"
    )
    (event,) = await _events(db, KAGA, rid)
    assert (event["action"], event["outcome"]) == ("kaigo.determination.confirm", "denied")
    assert "separation of duties" in event["reason"]  # the log keeps the English text
    in_japanese = await client.post(
        f"{BASE}/determinations/{d.id}/confirm",
        json={},
        headers=auth(corrector, Q, **{"If-Match": etag, "Accept-Language": "ja"}),
    )
    assert in_japanese.status_code == 403
    assert in_japanese.json()["reason"] == "訂正した職員は同じ判定を確定できません（職務の分離）"
    ok = await client.post(
        f"{BASE}/determinations/{d.id}/confirm",
        json={},
        headers=auth(confirmer, Q, **{"If-Match": etag}),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["decided_by"] == "kk-0002"
    found = await client.post(
        f"{BASE}/insured/search", json={"resident_id": d.resident_id}, headers=auth(confirmer, Q)
    )
    assert found.json()["insured"][0]["periods"][0]["gained"] == corrected_day.isoformat()


async def test_reject_changes_nothing_and_keeps_the_reason(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    _person, d = await _gain(db, register_)
    token = kaigo_tokens["kaga"]
    etag = (await _get(client, token, d.id)).headers["ETag"]
    r = await client.post(
        f"{BASE}/determinations/{d.id}/reject",
        json={"reason": "誤登録（市民課で訂正予定）"},
        headers=auth(token, Q, **{"If-Match": etag}),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    assert r.json()["answers"] == {"rejected": "誤登録（市民課で訂正予定）"}
    found = await client.post(
        f"{BASE}/insured/search", json={"resident_id": d.resident_id}, headers=auth(token, Q)
    )
    assert found.json()["insured"] == []


async def _overdue(db: Database, resident_id: str) -> Determination:
    """A determination proposed 20 days ago and never worked: its deadline has passed."""
    names = tenant_names(KAGA, db.settings.role_prefix)
    day = today_jst() - timedelta(days=20)
    key = f"test:{uuid.uuid4()}"
    d = Determination(
        id=determination_id(KAGA, key),
        resident_id=resident_id,
        kind="loss",
        status="open",
        source_key=key,
        proposed_on=day,
        deadline=day + timedelta(days=14),
        proposal=Proposal(day, "move_out_abroad", "介護保険法 第11条第1項", "国外転出"),
    )
    async with db.tenant(names) as uow:
        assert await determinations.insert(uow, d)
        await planted(uow)
    return d


async def test_the_queue_filters_by_kind_status_and_overdue(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    token = kaigo_tokens["kaga"]
    late = await _overdue(db, str(uuid.uuid4()))
    r = await client.get(f"{BASE}/determinations?overdue=true&limit=200", headers=auth(token, Q))
    assert r.status_code == 200, r.text
    items = r.json()["determinations"]
    assert late.id in {i["id"] for i in items}
    assert all(i["overdue"] and i["status"] == "open" for i in items)
    gains = await client.get(
        f"{BASE}/determinations?kind=gain&status=open&limit=200", headers=auth(token, Q)
    )
    assert {i["kind"] for i in gains.json()["determinations"]} <= {"gain"}
    # Pages follow deadline then id, and end.
    first = await client.get(f"{BASE}/determinations?limit=1", headers=auth(token, Q))
    nxt = first.json()["next"]
    second = await client.get(f"{BASE}/determinations?limit=1&after={nxt}", headers=auth(token, Q))
    assert second.json()["determinations"][0]["id"] != first.json()["determinations"][0]["id"]
    bad = await client.get(f"{BASE}/determinations?kind=nonsense", headers=auth(token, Q))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/query/kind"
    unknown = await client.get(f"{BASE}/determinations?resident=x", headers=auth(token, Q))
    assert unknown.status_code == 400
    cursor = await client.get(f"{BASE}/determinations?after=zzz", headers=auth(token, Q))
    assert cursor.status_code == 422


async def test_purposes_scope_the_fields_and_others_are_refused(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    _person, d = await _gain(db, register_)
    token = kaigo_tokens["kaga"]
    premium = await client.get(
        f"{BASE}/determinations/{d.id}", headers=auth(token, "kaigo.premium")
    )
    assert premium.status_code == 403  # the premium purpose names no determination field
    assert premium.json()["reason"] == "purpose kaigo.premium does not cover Determination.proposal"
    rid = _rid()
    shimin = await client.get(
        f"{BASE}/determinations/{d.id}",
        headers=auth(kaigo_tokens["kaga_shimin"], Q, **{"X-Request-ID": rid}),
    )
    assert shimin.status_code == 403
    assert "not granted" in shimin.json()["reason"]
    (event,) = await _events(db, KAGA, rid)
    assert (event["action"], event["outcome"]) == ("kaigo.determination.read", "denied")
    other = await client.get(
        f"{BASE}/determinations/{d.id}", headers=auth(kaigo_tokens["komatsu"], Q)
    )
    assert other.status_code == 404
    missing = await client.get(f"{BASE}/determinations/{uuid.uuid4()}", headers=auth(token, Q))
    assert missing.status_code == 404
    no_purpose = await client.get(f"{BASE}/determinations/{d.id}", headers=auth(token, None))
    assert no_purpose.status_code == 400
    both = await client.post(f"{BASE}/insured/search", json={}, headers=auth(token, Q))
    assert both.status_code == 422
    stray = await client.post(
        f"{BASE}/insured/search", json={"insured_number": "12"}, headers=auth(token, Q)
    )
    assert stray.status_code == 422
    assert "12" not in stray.text.replace("422", "")


async def test_premium_months_and_the_monthly_change_report(
    db: Database, client: httpx.AsyncClient, register_: Register, kaigo_tokens: dict[str, str]
) -> None:
    _person, d = await _gain(db, register_)
    token = kaigo_tokens["kaga"]
    etag = (await _get(client, token, d.id)).headers["ETag"]
    ok = await client.post(
        f"{BASE}/determinations/{d.id}/confirm",
        json={},
        headers=auth(token, Q, **{"If-Match": etag}),
    )
    assert ok.status_code == 200
    found = await client.post(
        f"{BASE}/insured/search", json={"resident_id": d.resident_id}, headers=auth(token, Q)
    )
    insured = found.json()["insured"][0]
    year = fiscal_year(d.proposal.date)
    one = await client.get(
        f"{BASE}/insured/{insured['id']}/premium-months?fiscal_year={year}",
        headers=auth(token, "kaigo.premium"),
    )
    assert one.status_code == 200, one.text
    assert one.json()["count"] == d.proposal.premium_after
    every = await client.get(
        f"{BASE}/premium-months?fiscal_year={year}&limit=5000", headers=auth(token, "kaigo.premium")
    )
    assert every.status_code == 200, every.text
    mine = [p for p in every.json()["people"] if p["insured_id"] == insured["id"]]
    assert mine[0]["months"] == one.json()["months"]
    month = today_jst().strftime("%Y-%m")
    report = await client.get(f"{BASE}/reports/changes?month={month}", headers=auth(token, Q))
    assert report.status_code == 200, report.text
    assert report.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(report.text)))
    assert rows[0][:3] == ["保険者番号", "被保険者番号", "異動区分"]
    (row,) = [r for r in rows[1:] if r[-1] == d.id]
    assert row[:4] == [KAGA, insured["insured_number"], "資格取得", d.proposal.date.isoformat()]
    # The premium purpose may not export the changes (no determination field).
    refused = await client.get(
        f"{BASE}/reports/changes?month={month}", headers=auth(token, "kaigo.premium")
    )
    assert refused.status_code == 403
    bad = await client.get(f"{BASE}/reports/changes?month=2026-13", headers=auth(token, Q))
    assert bad.status_code in (400, 422)


FACILITY = {"name": "特別養護老人ホーム テスト", "kind": "tokuyo", "places": 80}


async def test_facilities_are_the_towns_own_and_everyone_reads_all(
    db: Database, client: httpx.AsyncClient, kaigo_tokens: dict[str, str]
) -> None:
    token = kaigo_tokens["kaga"]
    address = f"石川県加賀市テスト町{uuid.uuid4().int % 100_000}-1"
    made = await client.post(
        f"{BASE}/facilities", json={**FACILITY, "address": address}, headers=auth(token, Q)
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["covered"] is True
    assert "第13条" in body["covered_reason"]
    again = await client.post(
        f"{BASE}/facilities",
        json={**FACILITY, "address": address.replace("-1", "－１")},
        headers=auth(token, Q),
    )
    assert again.status_code == 409
    small = await client.put(
        f"{BASE}/facilities/{body['id']}",
        json={**FACILITY, "address": address, "places": 29},
        headers=auth(token, Q, **{"If-Match": made.headers["ETag"]}),
    )
    assert small.status_code == 200, small.text
    assert small.json()["covered"] is False  # 29 places: 地域密着型
    stale = await client.put(
        f"{BASE}/facilities/{body['id']}",
        json={**FACILITY, "address": address},
        headers=auth(token, Q, **{"If-Match": made.headers["ETag"]}),
    )
    assert stale.status_code == 412
    # 市民課 may not manage them; Komatsu's staff may not touch Kaga's.
    shimin = await client.post(
        f"{BASE}/facilities",
        json={**FACILITY, "address": address + "別"},
        headers=auth(kaigo_tokens["kaga_shimin"], "juki.registration"),
    )
    assert shimin.status_code == 403
    other = await client.post(
        f"{BASE}/facilities",
        json={**FACILITY, "address": address + "別"},
        headers=auth(kaigo_tokens["komatsu"], Q),
    )
    assert other.status_code == 404
    # Komatsu's facility, created by Komatsu, is in everyone's directory.
    komatsu_address = f"石川県小松市テスト町{uuid.uuid4().int % 100_000}-2"
    theirs = await client.post(
        f"/api/v1/tenants/{KOMATSU}/kaigo/facilities",
        json={**FACILITY, "address": komatsu_address},
        headers=auth(kaigo_tokens["komatsu"], Q),
    )
    assert theirs.status_code == 201
    listing = await client.get(f"{BASE}/facility-directory", headers=auth(token, "kaigo.premium"))
    assert listing.status_code == 200
    towns = {(f["town"], f["address"]) for f in listing.json()["facilities"]}
    assert {(KAGA, address), (KOMATSU, komatsu_address)} <= towns
    gone = await client.delete(
        f"{BASE}/facilities/{body['id']}",
        headers=auth(token, Q, **{"If-Match": small.headers["ETag"]}),
    )
    assert gone.status_code == 204


async def test_facilities_import_from_csv_all_or_nothing(
    client: httpx.AsyncClient, kaigo_tokens: dict[str, str]
) -> None:
    token = kaigo_tokens["kaga"]
    n = uuid.uuid4().int % 100_000
    good = (
        "name,address,kind,places\r\n"
        f"老健かが{n},石川県加賀市インポート町{n}-1,roken,100\r\n"
        f"GHかが{n},石川県加賀市インポート町{n}-2,group_home,18\r\n"
    )
    headers = {**auth(token, Q), "Content-Type": "text/csv"}
    r = await client.post(f"{BASE}/facilities/import", content=good.encode(), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 2, "skipped": 0}
    r = await client.post(f"{BASE}/facilities/import", content=good.encode(), headers=headers)
    assert r.json() == {"created": 0, "skipped": 2}
    bad = good + f"壊れた{n},石川県加賀市インポート町{n}-3,castle,0\r\n"
    r = await client.post(f"{BASE}/facilities/import", content=bad.encode(), headers=headers)
    assert r.status_code == 422
    pointers = {e["pointer"] for e in r.json()["errors"]}
    assert pointers == {"/rows/3/kind", "/rows/3/places"}
    header = await client.post(f"{BASE}/facilities/import", content=b"a,b\r\n", headers=headers)
    assert header.status_code == 422


@pytest.mark.parametrize("purpose", ["kaigo.qualification", "kaigo.premium"])
async def test_an_insured_person_read_is_audited_with_hashed_subjects(
    db: Database,
    client: httpx.AsyncClient,
    register_: Register,
    kaigo_tokens: dict[str, str],
    purpose: str,
) -> None:
    _person, d = await _gain(db, register_)
    token = kaigo_tokens["kaga"]
    etag = (await _get(client, token, d.id)).headers["ETag"]
    await client.post(
        f"{BASE}/determinations/{d.id}/confirm",
        json={},
        headers=auth(token, Q, **{"If-Match": etag}),
    )
    found = await client.post(
        f"{BASE}/insured/search", json={"resident_id": d.resident_id}, headers=auth(token, Q)
    )
    insured_id = found.json()["insured"][0]["id"]
    rid = _rid()
    r = await client.get(
        f"{BASE}/insured/{insured_id}", headers=auth(token, purpose, **{"X-Request-ID": rid})
    )
    assert r.status_code == 200
    if purpose == "kaigo.premium":
        assert "notes" not in r.json()
        assert "InsuredPerson.notes" in r.json()["withheld"]
    (event,) = await _events(db, KAGA, rid)
    assert event["action"] == "kaigo.insured.read"
    keys = await db.town_keys(KAGA)
    # The record the path names and the resident it is about, both hashed.
    assert event["subjects"] == [
        keys.index("audit_subject", insured_id),  # type: ignore[attr-defined]
        keys.index("audit_subject", d.resident_id),  # type: ignore[attr-defined]
    ]
    assert d.resident_id not in repr(event)
