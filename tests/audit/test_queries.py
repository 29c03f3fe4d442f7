"""Auditors' search of the audit log: each filter narrows, keyset pages return
every event once, exports parse and carry no personal value, only the town's
auditors get in, and every auditor query is itself an audit event."""

from __future__ import annotations

import base64
import csv
import io
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared_gov.audit.queries import EventFilter, Export
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import JST
from shared_gov.db import Database
from tests.audit.planting import plant
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"
EVENTS = f"{BASE}/audit/events"
# A past window of its own: nothing else writes here.
T0 = datetime(2021, 3, 1, 9, 0, tzinfo=JST)
WINDOW = {"from": T0.isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}


def auditor(tokens: dict[str, str], **extra: str) -> dict[str, str]:
    return auth(tokens["kaga_auditor"], purpose=None, **extra)


async def _log(db: Database, request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2",
            KAGA,
            request_id,
        )
    return [dict(r) for r in rows]


async def _hash(db: Database, resident_id: str) -> int:
    return (await db.town_keys(KAGA)).index("audit_subject", resident_id)


@pytest.fixture(scope="module")
async def planted(db: Database) -> dict[str, Any]:
    """Sixteen events in 2021 varying every filtered attribute."""
    people = [str(uuid.uuid4()) for _ in range(3)]
    hashes = [await _hash(db, p) for p in people]
    specs: list[dict[str, Any]] = []
    for i in range(16):
        specs.append(
            {
                "occurred_at": T0 + timedelta(minutes=i),
                "actor": ("k-q1", "k-q2")[i % 2],
                "department": ("shimin", "kaigo", "zeimu")[i % 3],
                "purpose": ("juki.registration", "kaigo.qualification")[i % 2],
                "action": ("resident.read", "resident.search", "household.read")[i % 3],
                "outcome": ("allowed", "allowed", "denied", "not_found")[i % 4],
                "individual_number": i % 5 == 0,
                "subjects": [hashes[i % 3]] if i % 4 != 3 else [],
                "fields": ["individual_number"] if i % 5 == 0 else ["family_name"],
            }
        )
    # One event of the neighbour town, in the same minute: never visible here.
    await plant(db, KOMATSU, [{**specs[0], "actor": "k-q1"}])
    ids = await plant(db, KAGA, specs)
    return {"ids": ids, "specs": specs, "people": people, "hashes": hashes}


async def _ids(client: Any, tokens: dict[str, str], **params: Any) -> list[str]:
    r = await client.get(EVENTS, params={**WINDOW, **params}, headers=auditor(tokens))
    assert r.status_code == 200, r.text
    return [e["event_id"] for e in r.json()["events"]]


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({}, lambda i, s: True),
        ({"actor": "k-q1"}, lambda i, s: s["actor"] == "k-q1"),
        ({"department": "kaigo"}, lambda i, s: s["department"] == "kaigo"),
        ({"purpose": "kaigo.qualification"}, lambda i, s: s["purpose"] == "kaigo.qualification"),
        ({"action": "resident.search"}, lambda i, s: s["action"] == "resident.search"),
        ({"action": "resident.*"}, lambda i, s: s["action"].startswith("resident.")),
        ({"outcome": "denied"}, lambda i, s: s["outcome"] == "denied"),
        ({"individual_number": "true"}, lambda i, s: s["individual_number"]),
        ({"individual_number": "false"}, lambda i, s: not s["individual_number"]),
        (
            {"actor": "k-q2", "outcome": "allowed"},
            lambda i, s: s["actor"] == "k-q2" and s["outcome"] == "allowed",
        ),
    ],
)
async def test_each_filter_narrows(
    client: Any,
    tokens: dict[str, str],
    planted: dict[str, Any],
    params: dict[str, str],
    keep: Any,
) -> None:
    expected = [planted["ids"][i] for i, s in enumerate(planted["specs"]) if keep(i, s)]
    assert await _ids(client, tokens, **params) == expected
    assert expected  # every case selects something


async def test_subject_and_time_filters(
    client: Any, tokens: dict[str, str], planted: dict[str, Any]
) -> None:
    """The server hashes the resident id; from is inclusive, to exclusive, and a
    time without an offset is Japan time."""
    who = planted["people"][1]
    expected = [
        planted["ids"][i]
        for i, s in enumerate(planted["specs"])
        if planted["hashes"][1] in s["subjects"]
    ]
    assert await _ids(client, tokens, subject=who) == expected
    assert await _ids(client, tokens, subject=str(uuid.uuid4())) == []
    r = await client.get(
        EVENTS,
        params={"from": "2021-03-01T09:03:00", "to": "2021-03-01T09:05:00+09:00"},
        headers=auditor(tokens),
    )
    assert [e["event_id"] for e in r.json()["events"]] == planted["ids"][3:5]
    # A "+" left unencoded in a URL arrives as a space: still understood.
    r = await client.get(
        f"{EVENTS}?from=2021-03-01T00:03:00%2000:00&to=2021-03-01T00:04:00Z",
        headers=auditor(tokens),
    )
    assert [e["event_id"] for e in r.json()["events"]] == planted["ids"][3:4]


async def test_a_real_access_is_found_by_resident_id(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    person = r.json()
    await client.get(
        f"{BASE}/residents/{person['id']}",
        headers=auth(tokens["kaga"], **{"X-Request-ID": "q-real-read"}),
    )
    r = await client.get(EVENTS, params={"subject": person["id"]}, headers=auditor(tokens))
    events = r.json()["events"]
    assert [e["action"] for e in events] == ["resident.register", "resident.read"]
    assert events[1]["client_request_id"] == "q-real-read"
    assert events[1]["subjects"] == [str(await _hash(db, person["id"]))]


async def test_pages_return_every_event_once(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """57 events, 40 of them in the same microsecond: pages of 10 in both orders
    visit each exactly once, in order, and the last page has no next link."""
    t = datetime(2021, 4, 1, 12, 0, tzinfo=JST)
    same = [{"occurred_at": t, "actor": "k-page"} for _ in range(40)]
    spread = [{"occurred_at": t + timedelta(seconds=s), "actor": "k-page"} for s in range(-9, 8)]
    ids = await plant(db, KAGA, same + spread)
    window = {"from": "2021-04-01", "to": "2021-04-02", "actor": "k-page"}
    for order in ("asc", "desc"):
        seen: list[dict[str, Any]] = []
        url: str | None = EVENTS
        params: dict[str, Any] | None = {**window, "limit": 10, "order": order}
        pages = 0
        while url:
            r = await client.get(url, params=params, headers=auditor(tokens))
            assert r.status_code == 200, r.text
            body = r.json()
            seen += body["events"]
            assert body["count"] == len(body["events"]) <= 10
            if body["next"]:
                assert r.headers["link"] == f'<{body["next"]}>; rel="next"'
            url, params = body["next"], None
            pages += 1
        assert pages == 6
        got = [e["event_id"] for e in seen]
        assert sorted(got) == sorted(ids)
        assert len(set(got)) == len(ids)
        keys = [(datetime.fromisoformat(e["occurred_at"]), uuid.UUID(e["event_id"])) for e in seen]
        assert keys == sorted(keys, reverse=order == "desc")


def _cursor(stamp: str) -> str:
    """A cursor in the server's format around ``stamp`` (never issued by it)."""
    raw = f"{stamp}|00000000-0000-0000-0000-000000000000".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_bad_parameters_are_422_without_values(client: Any, tokens: dict[str, str]) -> None:
    cases = [
        ({"limit": 1001}, "/query/limit"),
        ({"after": "bm90LWEtY3Vyc29y"}, "/query/after"),
        ({"from": "yesterday"}, "/query/from"),
        ({"subject": "not-a-uuid"}, "/query/subject"),
        # Dates and cursors whose instant leaves datetime's range in UTC (500s before).
        ({"from": "0001-01-01"}, "/query/from"),
        ({"to": "0001-01-01"}, "/query/to"),
        ({"after": _cursor("0001-01-01T00:00:00+14:00")}, "/query/after"),
        ({"after": _cursor("9999-12-31T23:59:59-14:00")}, "/query/after"),
    ]
    for params, pointer in cases:
        r = await client.get(EVENTS, params=params, headers=auditor(tokens))
        assert r.status_code == 422, (params, r.text)
        assert [e["pointer"] for e in r.json()["errors"]] == [pointer]
        for value in params.values():
            assert str(value) not in r.text


@pytest.fixture(scope="module")
async def marked(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    """A resident with marker values, registered and read: its events are exported."""
    body = resident_body(family_name="監査マーカー", given_name="輸出", phone="0761-99-1234")
    r = await client.post(f"{BASE}/residents", json=body, headers=auth(tokens["kaga"]))
    assert r.status_code == 201
    person: dict[str, Any] = r.json()
    await client.get(f"{BASE}/residents/{person['id']}", headers=auth(tokens["kaga"]))
    await client.post(
        f"{BASE}/residents/search",
        json={"individual_number": person["individual_number"]},
        headers=auth(tokens["kaga"]),
    )
    return person


def _markers(person: dict[str, Any]) -> list[str]:
    return [
        person["id"],
        person["family_name"],
        person["given_name"],
        person["individual_number"],
        person["juminhyo_code"],
        person["address"],
        "0761-99-1234",
    ]


async def test_csv_export_parses_and_names_nobody(
    client: Any, tokens: dict[str, str], db: Database, marked: dict[str, Any]
) -> None:
    r = await client.get(
        EVENTS,
        params={"format": "csv", "subject": marked["id"]},
        headers=auditor(tokens, **{"X-Request-ID": "q-export-csv"}),
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["action"] for row in rows] == [
        "resident.register",
        "resident.read",
        "resident.search",
    ]
    assert int(r.headers["x-total-count"]) == len(rows)
    assert rows[2]["individual_number"] == "true"
    assert rows[0]["subjects"] == str(await _hash(db, marked["id"]))
    for value in _markers(marked):
        assert value not in r.text
    (event,) = await _log(db, "q-export-csv")
    assert event["action"] == "audit.export"
    assert event["rows_returned"] == 3


async def test_jsonl_export_of_a_large_range(
    client: Any, tokens: dict[str, str], db: Database, marked: dict[str, Any]
) -> None:
    """Everything since yesterday (more than one cursor batch is not needed for
    correctness, but every line must be one event): parses line by line."""
    since = (datetime.now(JST) - timedelta(days=1)).isoformat()
    r = await client.get(
        EVENTS,
        params={"format": "jsonl", "from": since},
        headers=auditor(tokens, **{"X-Request-ID": "q-export-jsonl"}),
    )
    assert r.status_code == 200
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == int(r.headers["x-total-count"]) > 3
    assert len({e["event_id"] for e in lines}) == len(lines)
    assert {"event_id", "occurred_at", "actor", "subjects", "outcome"} <= set(lines[0])
    for value in _markers(marked):
        assert value not in r.text
    (event,) = await _log(db, "q-export-jsonl")
    assert event["rows_returned"] == len(lines)


async def test_empty_exports_are_empty_not_errors(client: Any, tokens: dict[str, str]) -> None:
    for export, lines in (("csv", 1), ("jsonl", 0)):
        r = await client.get(
            EVENTS,
            params={"format": export, "from": "2001-01-01", "to": "2001-01-02"},
            headers=auditor(tokens),
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-total-count"] == "0"
        assert len(r.text.splitlines()) == lines  # the CSV keeps its header


async def test_an_abandoned_export_closes_its_connection(db: Database) -> None:
    """A client that goes away mid-stream cancels the iteration: the export's
    own connection (outside the pool) closes with it."""
    t = datetime(2021, 6, 1, 10, 0, tzinfo=JST)
    await plant(db, KAGA, [{"occurred_at": t, "actor": "k-abandon"} for _ in range(3)])
    export = await Export.open(db, KAGA, EventFilter(actor="k-abandon"))
    assert export.count == 3
    rows = export.rows()
    await anext(rows)
    assert not export.closed
    await rows.aclose()
    assert export.closed


async def test_csv_cells_cannot_become_formulas(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """A client-chosen user agent starting with '=' is exported as text."""
    t = datetime(2021, 5, 1, 10, 0, tzinfo=JST)
    await plant(db, KAGA, [{"occurred_at": t, "user_agent": '=HYPERLINK("x")', "actor": "k-f"}])
    r = await client.get(
        EVENTS,
        params={"format": "csv", "actor": "k-f", "from": "2021-05-01", "to": "2021-05-02"},
        headers=auditor(tokens),
    )
    (row,) = list(csv.DictReader(io.StringIO(r.text)))
    assert row["user_agent"] == '\'=HYPERLINK("x")'


async def test_only_the_towns_auditors_get_in(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    """Town staff: 403 with the reason; other towns (their auditors too) and
    operators: 404. Each refusal is recorded in this town's log."""
    komatsu_auditor = issuer.mint(
        subject="m-9001", tenant=KOMATSU, department="kansa", roles=["auditor"]
    )
    cases = [
        (tokens["kaga"], 403),
        (tokens["komatsu"], 404),
        (komatsu_auditor, 404),
        (tokens["operator"], 404),
    ]
    for n, (token, status) in enumerate(cases):
        for url in (EVENTS, f"{BASE}/audit/analyses", f"{BASE}/audit/suppressions"):
            rid = f"q-deny-{n}-{url.rsplit('/', 1)[1]}"
            r = await client.get(url, headers=auth(token, purpose=None, **{"X-Request-ID": rid}))
            assert r.status_code == status, (n, url, r.text)
            if status == 403:
                assert r.json()["reason"] == "reading the audit log needs the auditor role"
            (event,) = await _log(db, rid)
            assert event["outcome"] == "denied"
            assert event["resource_type"] == "audit_log"
    r = await client.get("/api/v1/tenants/999999/audit/events", headers=auditor(tokens))
    assert r.status_code == 404


async def test_auditor_queries_are_audited(
    client: Any, tokens: dict[str, str], db: Database, planted: dict[str, Any]
) -> None:
    """Who searched, for whom (the subject, hashed), how many rows."""
    who = planted["people"][0]
    r = await client.get(
        EVENTS,
        params={**WINDOW, "subject": who},
        headers=auditor(tokens, **{"X-Request-ID": "q-audited"}),
    )
    assert r.status_code == 200
    (event,) = await _log(db, "q-audited")
    assert event["action"] == "audit.query"
    assert event["resource_type"] == "audit_log"
    assert event["actor"] == "k-9001"
    assert event["department"] == "kansa"
    assert event["purpose"] == "kansa.audit"
    assert event["outcome"] == "allowed"
    assert event["rows_returned"] == r.json()["count"] > 0
    assert event["subjects"] == [planted["hashes"][0]]
    assert who not in repr(event)
