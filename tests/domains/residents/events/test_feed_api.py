"""GET …/events: pages and cursors, type filter, who may read, bad input, audit."""

from __future__ import annotations

from typing import Any

import httpx

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from tests.conftest import KAGA, KOMATSU, auth
from tests.domains.residents.events.conftest import drain, of, read_feed, start, wait_for
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"


async def _register_many(client: httpx.AsyncClient, token: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(token))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def test_pages_follow_the_cursor_in_order(
    client: httpx.AsyncClient, db: Database, tokens: dict[str, str], feed_tokens: dict[str, str]
) -> None:
    reader = feed_tokens["kaga"]
    cursor = await start(client, reader, db)
    ids = await _register_many(client, tokens["kaga"], 5)
    await wait_for(client, reader, cursor, lambda es: all(of(es, i) for i in ids))

    seen: list[str] = []
    after = cursor
    pages = 0
    while True:
        r = await read_feed(client, reader, after=after, limit=2)
        body = r.json()
        pages += 1
        assert body["count"] == len(body["events"]) <= 2
        assert body["more"] is (body["count"] == 2)
        seen += [e["resident_id"] for e in body["events"]]
        after = body["next"]
        if not body["more"]:
            break
    assert seen == ids
    assert pages == 3
    # Every event's own cursor resumes right after it.
    first = (await read_feed(client, reader, after=cursor, limit=1)).json()["events"][0]
    rest = (await read_feed(client, reader, after=first["cursor"], limit=10)).json()
    assert [e["resident_id"] for e in rest["events"]] == ids[1:]
    # At the end: an empty page, and `next` is still a cursor to poll with.
    end = (await read_feed(client, reader, after=after)).json()
    assert end["events"] == []
    assert end["more"] is False
    assert (await read_feed(client, reader, after=end["next"])).status_code == 200


async def test_type_filter(
    client: httpx.AsyncClient, db: Database, tokens: dict[str, str], feed_tokens: dict[str, str]
) -> None:
    reader = feed_tokens["kaga"]
    cursor = await start(client, reader, db)
    born = await client.post(
        f"{BASE}/residents",
        json=resident_body(event="birth", birth_date="2024-01-02", move_date="2024-01-02"),
        headers=auth(tokens["kaga"]),
    )
    moved_in = await _register_many(client, tokens["kaga"], 1)
    await wait_for(client, reader, cursor, lambda es: bool(of(es, moved_in[0])))
    births, _ = await drain(client, reader, cursor, type="resident.registered")
    assert [e["resident_id"] for e in births] == [born.json()["id"]]
    both, _ = await drain(client, reader, cursor, type=["resident.registered", "resident.moved_in"])
    assert [e["resident_id"] for e in both] == [born.json()["id"], moved_in[0]]
    # A filtered reader's cursor moves past what did not match: the next poll
    # does not rescan it (and returns nothing new).
    _, past = await drain(client, reader, cursor, type="resident.died")
    assert (await read_feed(client, reader, after=past, type="resident.moved_in")).json()[
        "events"
    ] == []


async def test_who_may_read(
    client: httpx.AsyncClient,
    issuer: BuiltinIssuer,
    tokens: dict[str, str],
    feed_tokens: dict[str, str],
) -> None:
    assert (await read_feed(client, feed_tokens["kaga"])).status_code == 200
    assert (await read_feed(client, tokens["kaga_admin"])).status_code == 200
    both = issuer.mint(
        subject="kaigo-sync", tenant=KAGA, department="kaigo", roles=["staff", "integration"]
    )
    assert (await read_feed(client, both)).status_code == 200
    # The town's desk staff and auditors: 403 with the reason and the policy.
    for token in (tokens["kaga"], tokens["kaga_auditor"]):
        r = await read_feed(client, token)
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["reason"] == (
            "reading the town's events needs the integration or admin role"
        )
    # Other towns (integration or admin) and operators: the 404 of a missing town.
    missing = await read_feed(client, feed_tokens["komatsu"], code="172014")
    for token in (feed_tokens["komatsu"], tokens["komatsu_admin"], tokens["operator"]):
        r = await read_feed(client, token)
        assert r.status_code == 404
        assert r.content == missing.content


async def test_an_integration_role_reads_no_record(
    client: httpx.AsyncClient, tokens: dict[str, str], feed_tokens: dict[str, str]
) -> None:
    """The feed role alone grants nothing on residents: a system that reads
    records needs the staff role and its department's purposes too."""
    ids = await _register_many(client, tokens["kaga"], 1)
    r = await client.get(
        f"{BASE}/residents/{ids[0]}", headers=auth(feed_tokens["kaga"], "kaigo.qualification")
    )
    assert r.status_code == 403


async def test_bad_input_is_a_problem_not_a_crash(
    client: httpx.AsyncClient, db: Database, feed_tokens: dict[str, str]
) -> None:
    reader = feed_tokens["kaga"]
    komatsu_cursor = await start(client, feed_tokens["komatsu"], db, code=KOMATSU)
    for params in (
        {"after": "not-a-cursor"},
        {"after": "AAAA"},
        {"after": komatsu_cursor},
        {"type": "resident.exploded"},
    ):
        r = await read_feed(client, reader, **params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        pointer = "/query/after" if "after" in params else "/query/type"
        assert r.json()["errors"][0]["pointer"] == pointer
        assert "exploded" not in r.text
    bad: list[dict[str, Any]] = [{"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"after": "A" * 65}]
    for wrong in bad:
        r = await read_feed(client, reader, **wrong)
        assert r.status_code == 422, (wrong, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["pointer"] == "/query/" + next(iter(wrong))


async def test_reads_and_refusals_are_audited(
    client: httpx.AsyncClient,
    db: Database,
    issuer: BuiltinIssuer,
    tokens: dict[str, str],
    feed_tokens: dict[str, str],
) -> None:
    reader = feed_tokens["kaga"]
    cursor = await start(client, reader, db)
    ids = await _register_many(client, tokens["kaga"], 2)
    await wait_for(client, reader, cursor, lambda es: all(of(es, i) for i in ids))
    await read_feed(client, feed_tokens["komatsu"])
    await read_feed(client, tokens["kaga"])
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT actor, actor_tenant, outcome, reason, rows_returned, cardinality(subjects) "
            "AS subjects, fields, resource_type FROM audit.events "
            "WHERE tenant = $1 AND action = 'events.read' ORDER BY occurred_at",
            KAGA,
        )
    reads: list[Any] = [r for r in rows if r["outcome"] == "allowed"]
    assert reads, "a read that returned events is in the log"
    assert all(r["rows_returned"] == r["subjects"] > 0 for r in reads)
    assert all(r["fields"] == [] and r["resource_type"] == "event_feed" for r in reads)
    denied = {(r["actor_tenant"], r["reason"]) for r in rows if r["outcome"] == "denied"}
    assert (KOMATSU, "caller from another town") in denied
    assert (KAGA, "reading the town's events needs the integration or admin role") in denied

    # The resident's access report says which office's system was told.
    admin = issuer.mint(subject="k-admin", tenant=KAGA, department="somu", roles=["admin"])
    granted = await client.put(
        f"{BASE}/staff/k-disc-ev",
        json={"department": "shimin", "purposes": ["juki.disclosure"]},
        headers=auth(admin, None),
    )
    assert granted.status_code == 200, granted.text
    discloser = issuer.mint(subject="k-disc-ev", tenant=KAGA, department="shimin", roles=["staff"])
    report = await client.get(
        f"{BASE}/residents/{ids[0]}/access-log", headers=auth(discloser, "juki.disclosure")
    )
    assert report.status_code == 200, report.text
    told = [e for e in report.json()["entries"] if e["action"] == "events.read"]
    assert told
    assert told[0]["department"]["code"] == "kaigo"
    assert told[0]["action_ja"] == "異動の通知（庁内システム連携）"
    assert told[0]["fields"] == []
