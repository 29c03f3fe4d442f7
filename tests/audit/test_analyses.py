"""Standard analyses on planted events: after hours, weekends, public holidays
and the year-end closure; bulk access in any sliding hour; repeated denials;
individual-number reads. Each finding links to its events."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared_gov.audit.analyses import closed_days
from shared_gov.clock import JST
from shared_gov.db import Database
from tests.audit.planting import plant
from tests.conftest import KAGA, auth

BASE = f"/api/v1/tenants/{KAGA}"
URL = f"{BASE}/audit/analyses"
# Mon 2025-11-17 .. Tue 2025-11-25 (JST); 11-23 勤労感謝の日 (Sun), 11-24 振替休日.
WINDOW = {"from": "2025-11-17", "to": "2025-11-26"}
_subjects = itertools.count(7_000_000)


def at(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2025, month, day, hour, minute, second, tzinfo=JST)


def people(n: int) -> list[int]:
    return [next(_subjects) for _ in range(n)]


def reads(
    actor: str, start: datetime, step: timedelta, subjects: list[int]
) -> list[dict[str, Any]]:
    return [
        {"actor": actor, "occurred_at": start + step * i, "subjects": [s]}
        for i, s in enumerate(subjects)
    ]


@pytest.fixture(scope="module")
async def planted(db: Database) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {}
    late = [
        at(18, 10),  # office hours
        at(18, 8, 30),  # opening time is inside
        at(18, 17, 29, 59),
        at(18, 17, 30),  # closing time is outside
        at(18, 7, 59),
        at(18, 22, 30),
        at(22, 11),  # Saturday
        at(23, 11),  # 勤労感謝の日, a Sunday
        at(24, 11),  # 振替休日
    ]
    ids["late"] = await plant(db, KAGA, [{"actor": "a-late", "occurred_at": t} for t in late])
    ids["bulk"] = await plant(
        db, KAGA, reads("b-bulk", at(19, 10), timedelta(seconds=29), people(101))
    )
    ids["edge"] = await plant(
        db, KAGA, reads("b-edge", at(19, 10), timedelta(seconds=18), people(100))
    )
    ids["spread"] = await plant(
        db, KAGA, reads("b-spread", at(20, 9), timedelta(seconds=72), people(150))
    )
    # 60 residents in 10:40-10:59 and 60 others in 11:00-11:19: no clock hour
    # holds more than 60, but the sliding hour from 10:40 holds 120.
    ids["slide"] = await plant(
        db,
        KAGA,
        reads("b-slide", at(20, 10, 40), timedelta(seconds=19), people(60))
        + reads("b-slide", at(20, 11, 0), timedelta(seconds=19), people(60)),
    )
    same = people(10)
    ids["repeat"] = await plant(
        db, KAGA, reads("b-repeat", at(21, 13), timedelta(seconds=5), same * 30)
    )
    ids["job"] = await plant(
        db,
        KAGA,
        [
            {
                "actor": "os:batch",
                "actor_tenant": None,
                "occurred_at": at(21, 14),
                "action": "residents.import",
                "rows_returned": 500,
            }
        ],
    )
    denial = {"outcome": "denied", "reason": "two-factor authentication required"}
    ids["deny"] = await plant(
        db,
        KAGA,
        [{"actor": "d-deny", "occurred_at": at(21, 10, i), **denial} for i in range(5)],
    )
    ids["few"] = await plant(
        db,
        KAGA,
        [{"actor": "d-few", "occurred_at": at(21, 10, i), **denial} for i in range(4)],
    )
    s1, s2 = people(2)
    number = {"individual_number": True, "fields": ["individual_number"]}
    ids["number"] = await plant(
        db,
        KAGA,
        [
            {"actor": "n-num", "occurred_at": at(21, 11), "subjects": [s1], **number},
            {"actor": "n-num", "occurred_at": at(21, 11, 1), "subjects": [s1], **number},
            {"actor": "n-num", "occurred_at": at(21, 11, 2), "subjects": [s2], **number},
            {
                "actor": "n-num",
                "occurred_at": at(21, 11, 3),
                "subjects": [],
                "outcome": "denied",
                **number,
            },
        ],
    )
    ids["year_end"] = await plant(
        db,
        KAGA,
        [
            {"actor": "a-newyear", "occurred_at": at(30, 10, month=12)},
            {
                "actor": "a-newyear",
                "occurred_at": datetime(2026, 1, 1, 10, 0, tzinfo=JST),
            },
            {"actor": "a-newyear", "occurred_at": datetime(2026, 1, 5, 10, 0, tzinfo=JST)},
        ],
    )
    return ids


async def _report(
    client: Any, tokens: dict[str, str], rid: str | None = None, **params: Any
) -> dict[str, Any]:
    extra = {"X-Request-ID": rid} if rid else {}
    r = await client.get(
        URL,
        params={**WINDOW, **params},
        headers=auth(tokens["kaga_auditor"], purpose=None, **extra),
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_closed_days_know_substitute_holidays_and_the_year_end() -> None:
    days = closed_days(at(1, 0).date(), datetime(2026, 1, 4).date())
    assert days[at(23, 0).date()] == "勤労感謝の日"
    assert days[at(24, 0).date()] == "振替休日"
    assert days[at(29, 0, month=12).date()] == "年末年始（閉庁日）"
    assert days[datetime(2026, 1, 1).date()] == "元日"
    assert datetime(2026, 1, 4).date() not in days


async def test_after_hours_weekends_and_holidays(
    client: Any, tokens: dict[str, str], planted: dict[str, list[str]]
) -> None:
    report = await _report(client, tokens)
    assert report["settings"]["office_hours"] == "08:30-17:30"
    mine = [f for f in report["after_hours"] if f["actor"] == "a-late"]
    assert [(f["day"], f["kind"], f["holiday"], f["events"]) for f in mine] == [
        ("2025-11-18", "after_hours", None, 3),
        ("2025-11-22", "weekend", None, 1),
        ("2025-11-23", "holiday", "勤労感謝の日", 1),
        ("2025-11-24", "holiday", "振替休日", 1),
    ]
    late = planted["late"]
    assert sorted(mine[0]["event_ids"]) == sorted([late[3], late[4], late[5]])
    assert mine[0]["departments"] == ["shimin"]
    # Every other planted actor worked in office hours on weekdays.
    assert {f["actor"] for f in report["after_hours"]} == {"a-late"}


async def test_after_hours_settings_are_parameters(
    client: Any, tokens: dict[str, str], planted: dict[str, list[str]]
) -> None:
    report = await _report(client, tokens, office_start="07:00", weekends="false")
    mine = [(f["day"], f["events"]) for f in report["after_hours"] if f["actor"] == "a-late"]
    # 07:59 is now office time; Saturday is a working day; holidays stay holidays.
    assert mine == [("2025-11-18", 2), ("2025-11-23", 1), ("2025-11-24", 1)]


async def test_year_end_closure_and_new_year(
    client: Any, tokens: dict[str, str], planted: dict[str, list[str]]
) -> None:
    report = await _report(client, tokens, **{"from": "2025-12-28", "to": "2026-01-06"})
    found = [(f["day"], f["holiday"]) for f in report["after_hours"]]
    assert found == [("2025-12-30", "年末年始（閉庁日）"), ("2026-01-01", "元日")]


async def test_bulk_access_in_any_sliding_hour(
    client: Any, tokens: dict[str, str], planted: dict[str, list[str]]
) -> None:
    report = await _report(client, tokens)
    bulk = {f["actor"]: f for f in report["bulk_access"]}
    # Exactly 100 is not more than 100; 150 over three hours is 50 an hour;
    # 300 reads of the same 10 people are 10 people.
    assert set(bulk) == {"b-bulk", "b-slide", "os:batch"}
    assert bulk["b-bulk"]["residents"] == 101
    assert bulk["b-bulk"]["events"] == 101
    assert bulk["b-bulk"]["event_ids"] == planted["bulk"][:100]
    assert bulk["b-bulk"]["more_events"] is True
    assert bulk["b-slide"]["residents"] == 120
    assert bulk["b-slide"]["window_start"].startswith("2025-11-20T10:40:00")
    assert bulk["os:batch"]["residents"] == 500
    assert bulk["os:batch"]["actor_tenant"] is None


async def test_bulk_threshold_is_a_parameter(
    client: Any, tokens: dict[str, str], planted: dict[str, list[str]]
) -> None:
    report = await _report(client, tokens, bulk_threshold=49)
    actors = [f["actor"] for f in report["bulk_access"]]
    # b-spread: 50 in its first hour, then 50 in each later one: three bursts.
    assert actors.count("b-spread") == 3
    assert "b-edge" in actors
    assert "b-repeat" not in actors


async def test_repeated_denials(
    client: Any, tokens: dict[str, str], planted: dict[str, list[str]]
) -> None:
    report = await _report(client, tokens)
    (finding,) = report["repeated_denials"]
    assert finding["actor"] == "d-deny"
    assert finding["denials"] == 5
    assert finding["reasons"] == ["two-factor authentication required"]
    assert finding["event_ids"] == planted["deny"]
    lowered = await _report(client, tokens, denial_threshold=4)
    # n-num's one denial stays below any sensible threshold.
    assert {f["actor"] for f in lowered["repeated_denials"]} == {"d-deny", "d-few"}


async def test_individual_number_reads(
    client: Any, tokens: dict[str, str], planted: dict[str, list[str]]
) -> None:
    report = await _report(client, tokens)
    (finding,) = report["individual_number_reads"]
    assert finding["actor"] == "n-num"
    assert (finding["reads"], finding["residents"]) == (3, 2)
    assert finding["purposes"] == ["juki.registration"]


async def test_findings_link_to_their_events(
    client: Any, tokens: dict[str, str], planted: dict[str, list[str]]
) -> None:
    """Each finding's query URL, followed as is, returns the events behind it."""
    report = await _report(client, tokens)
    headers = auth(tokens["kaga_auditor"], purpose=None)
    findings = [
        next(f for f in report["after_hours"] if f["actor"] == "a-late"),
        next(f for f in report["bulk_access"] if f["actor"] == "b-slide"),
        report["repeated_denials"][0],
    ]
    for finding in findings:
        # Followed as given (a client must not drop its query string).
        r = await client.get(finding["query"] + "&limit=1000", headers=headers)
        assert r.status_code == 200, (finding["query"], r.text)
        returned = [e["event_id"] for e in r.json()["events"]]
        assert set(finding["event_ids"]) <= set(returned)
    slide = findings[1]
    r = await client.get(slide["query"] + "&limit=1000", headers=headers)
    assert sorted(e["event_id"] for e in r.json()["events"]) == sorted(planted["slide"])
    numbers = report["individual_number_reads"][0]["query"]
    r = await client.get(numbers, headers=headers)
    assert len(r.json()["events"]) == 3


async def test_analyses_are_audited_and_checked(
    client: Any, tokens: dict[str, str], db: Database, planted: dict[str, list[str]]
) -> None:
    report = await _report(client, tokens, rid="an-audited")
    async with db.catalog() as conn:
        event = await conn.fetchrow(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = 'an-audited'",
            KAGA,
        )
    assert event is not None
    assert event["action"] == "audit.analyses"
    assert event["resource_type"] == "audit_log"
    total = sum(
        len(report[k])
        for k in ("after_hours", "bulk_access", "repeated_denials", "individual_number_reads")
    )
    assert event["rows_returned"] == total
    headers = auth(tokens["kaga_auditor"], purpose=None)
    for params, pointer in [
        ({"from": "2025-11-20", "to": "2025-11-19"}, "/query/from"),
        ({"from": "2024-01-01", "to": "2025-11-19"}, "/query/from"),
        ({"office_start": "8h30"}, "/query/office_start"),
        ({"office_start": "18:00"}, "/query/office_start"),
    ]:
        r = await client.get(URL, params={**WINDOW, **params}, headers=headers)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["errors"][0]["pointer"] == pointer
    staff = await client.get(URL, params=WINDOW, headers=auth(tokens["kaga"], purpose=None))
    assert staff.status_code == 403
