"""Audit pipeline v2 against a database superuser (issue #16, review finding M2).

The superuser steps around the triggers (``SET session_replication_role =
replica``, as the hostile review did) inside a transaction that is rolled
back at the end, and holds the sealer's pass lock meanwhile, so that events
written during the test stay unsealed: the cases the Merkle tree alone
cannot see. Each tampering must show in ``audit verify`` (with the town's
audit key: MACs, writer chains, history/outbox links) and be located by
event id."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from shared_gov.audit.sealer import SEAL_LOCK
from shared_gov.audit.verify import Problem, VerifyReport, verify_tenant
from shared_gov.db import Database
from tests.conftest import KAGA, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"


@asynccontextmanager
async def superuser(db: Database) -> AsyncIterator[asyncpg.Connection]:
    """Triggers off, the sealer held back; everything rolled back at the end."""
    conn = await asyncpg.connect(db.url)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", SEAL_LOCK)
            await conn.execute("SET LOCAL session_replication_role = replica")
            yield conn
        finally:
            await tx.rollback()
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def person(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201
    result: dict[str, Any] = r.json()
    return result


@pytest.fixture
async def mac_key(db: Database) -> bytes:
    key = (await db.town_keys(KAGA)).audit_mac
    assert key is not None
    return key


async def _read(client: Any, tokens: dict[str, str], person: dict[str, Any], label: str) -> None:
    r = await client.get(
        f"{BASE}/residents/{person['id']}",
        headers=auth(tokens["kaga"], **{"X-Request-ID": label}),
    )
    assert r.status_code == 200, r.text


async def _event(conn: asyncpg.Connection, label: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM audit.events WHERE tenant = $1 AND client_request_id = $2", KAGA, label
    )
    assert row is not None
    return row


async def _verify(conn: asyncpg.Connection, db: Database, key: bytes) -> VerifyReport:
    return await verify_tenant(
        conn, KAGA, public_key=db.keyring.provider.signing_public_key(KAGA), mac_key=key
    )


def _new(before: VerifyReport, after: VerifyReport) -> list[Problem]:
    seen = {(p.kind, p.detail) for p in before.problems}
    return [p for p in after.problems if (p.kind, p.detail) not in seen]


async def test_reads_are_macd_and_chained(
    client: Any, tokens: dict[str, str], person: dict[str, Any], db: Database, mac_key: bytes
) -> None:
    labels = [f"chain-{uuid.uuid4()}" for _ in range(3)]
    for label in labels:
        await _read(client, tokens, person, label)
    async with db.catalog() as conn:
        rows = [await _event(conn, label) for label in labels]
        report = await _verify(conn, db, mac_key)
    assert all(r["mac"] is not None and r["writer"] is not None for r in rows)
    assert len({r["writer"] for r in rows}) == 1
    assert [r["wseq"] for r in rows] == [rows[0]["wseq"] + i for i in range(3)]
    assert bytes(rows[1]["prev_mac"]) == bytes(rows[0]["mac"])
    assert not {"mac_invalid", "chain_gap", "chain_broken", "chain_order"} & set(report.counts)
    # The write's event is MACed too, without a chain.
    async with db.catalog() as conn:
        writes = await conn.fetch(
            "SELECT mac, writer FROM audit.events WHERE tenant = $1 AND action = "
            "'resident.register' AND $2 = ANY(subjects)",
            KAGA,
            (await db.town_keys(KAGA)).index("audit_subject", person["id"]),
        )
    assert writes
    assert all(w["mac"] is not None and w["writer"] is None for w in writes)


async def test_a_forged_event_is_detected_by_its_id(
    client: Any, tokens: dict[str, str], person: dict[str, Any], db: Database, mac_key: bytes
) -> None:
    label = f"forge-{uuid.uuid4()}"
    await _read(client, tokens, person, label)
    async with superuser(db) as conn:
        before = await _verify(conn, db, mac_key)
        real = await _event(conn, label)
        forged_copy, forged_bare = uuid.uuid4(), uuid.uuid4()
        # A copy of a real event with another actor and a back-dated time,
        # keeping its MAC and chain fields; and one with no MAC at all.
        for event_id, mac in ((forged_copy, real["mac"]), (forged_bare, None)):
            await conn.execute(
                "INSERT INTO audit.events (event_id, tenant, occurred_at, actor, action, "
                "resource_type, outcome, incarnation, mac, writer, wseq, prev_mac) "
                "VALUES ($1, $2, now() - interval '3 days', 'someone-else', 'resident.read', "
                "'resident', 'allowed', $3, $4, NULL, NULL, NULL)",
                event_id,
                KAGA,
                real["incarnation"],
                mac,
            )
        after = await _verify(conn, db, mac_key)
    new = _new(before, after)
    assert any(p.kind == "mac_invalid" and str(forged_copy) in p.detail for p in new), new
    assert any(p.kind == "mac_missing" and str(forged_bare) in p.detail for p in new), new


async def test_a_deleted_unsealed_read_event_breaks_its_chain(
    client: Any, tokens: dict[str, str], person: dict[str, Any], db: Database, mac_key: bytes
) -> None:
    labels = [f"drop-{uuid.uuid4()}" for _ in range(3)]
    async with superuser(db) as conn:
        for label in labels:
            await _read(client, tokens, person, label)
        before = await _verify(conn, db, mac_key)
        first, victim, last = [await _event(conn, label) for label in labels]
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM audit.leaves WHERE event_id = $1", victim["event_id"]
            )
            == 0
        ), "the victim must still be unsealed"
        await conn.execute("DELETE FROM audit.events WHERE event_id = $1", victim["event_id"])
        after = await _verify(conn, db, mac_key)
    gaps = [p for p in _new(before, after) if p.kind == "chain_gap"]
    assert len(gaps) == 1, after.problems
    # Located between the events around it, by id.
    assert str(first["event_id"]) in gaps[0].detail
    assert str(last["event_id"]) in gaps[0].detail
    assert f"{victim['wseq']}..{victim['wseq']}" in gaps[0].detail


async def test_a_deleted_write_event_leaves_its_history_and_outbox_unmatched(
    client: Any, tokens: dict[str, str], db: Database, mac_key: bytes
) -> None:
    label = f"write-{uuid.uuid4()}"
    async with superuser(db) as conn:
        r = await client.post(
            f"{BASE}/residents",
            json=resident_body(),
            headers=auth(tokens["kaga"], **{"X-Request-ID": label}),
        )
        assert r.status_code == 201
        before = await _verify(conn, db, mac_key)
        event = await _event(conn, label)
        outbox = await conn.fetchval(
            f"SELECT event_id FROM t_{KAGA}.events WHERE xid = $1", event["xid"]
        )
        await conn.execute("DELETE FROM audit.events WHERE event_id = $1", event["event_id"])
        after = await _verify(conn, db, mac_key)
    new = _new(before, after)
    kinds = {p.kind for p in new}
    assert {"history_without_event", "outbox_without_event"} <= kinds, new
    assert any(str(outbox) in p.detail for p in new if p.kind == "outbox_without_event")
    resident = r.json()["id"]
    assert any(resident in p.detail for p in new if p.kind == "history_without_event")


async def test_two_reordered_events_are_detected(
    client: Any, tokens: dict[str, str], person: dict[str, Any], db: Database, mac_key: bytes
) -> None:
    labels = [f"order-{uuid.uuid4()}" for _ in range(2)]
    async with superuser(db) as conn:
        for label in labels:
            await _read(client, tokens, person, label)
        before = await _verify(conn, db, mac_key)
        a, b = [await _event(conn, label) for label in labels]
        assert a["writer"] == b["writer"]
        assert b["wseq"] == a["wseq"] + 1
        # Swap when they happened (their transaction ids and times): the log
        # would now say b came first.
        for mine, theirs in ((a, b), (b, a)):
            await conn.execute(
                "UPDATE audit.events SET occurred_at = $2, xid = $3::text::xid8 "
                "WHERE event_id = $1",
                mine["event_id"],
                theirs["occurred_at"],
                str(theirs["xid"]),
            )
        after = await _verify(conn, db, mac_key)
    orders = [p for p in _new(before, after) if p.kind == "chain_order"]
    assert orders, after.problems
    assert str(b["event_id"]) in orders[0].detail
    assert str(a["event_id"]) in orders[0].detail


async def _copy(conn: asyncpg.Connection, event_id: Any, occurred_at: str) -> None:
    """Insert a copy of event ``event_id``, every column kept but its time."""
    await conn.execute(
        "INSERT INTO audit.events SELECT (jsonb_populate_record(NULL::audit.events, "
        "to_jsonb(e) || jsonb_build_object('occurred_at', now() + $2::text::interval))).* "
        "FROM audit.events AS e WHERE e.event_id = $1",
        event_id,
        occurred_at,
    )


async def test_a_replayed_event_is_reported_by_its_id(
    client: Any, tokens: dict[str, str], person: dict[str, Any], db: Database, mac_key: bytes
) -> None:
    """A copy keeps its MAC (the MAC leaves out the time and the transaction id,
    which the database assigns): only its id, twice in the log, gives it away."""
    label = f"replay-{uuid.uuid4()}"
    async with superuser(db) as conn:
        r = await client.post(
            f"{BASE}/residents",
            json=resident_body(),
            headers=auth(tokens["kaga"], **{"X-Request-ID": label}),
        )
        assert r.status_code == 201
        before = await _verify(conn, db, mac_key)
        write = await _event(conn, label)
        assert write["writer"] is None, "a write's event is not chained"
        # A sealed event too: the copy would get a leaf of its own.
        sealed = await conn.fetchval(
            "SELECT event_id FROM audit.leaves WHERE tenant = $1 ORDER BY seq DESC LIMIT 1", KAGA
        )
        assert sealed is not None
        await _copy(conn, write["event_id"], "-40 days")
        await _copy(conn, sealed, "-1 second")
        after = await _verify(conn, db, mac_key)
    new = _new(before, after)
    copies = [p for p in new if p.kind == "event_duplicated"]
    assert {str(write["event_id"]), str(sealed)} <= {p.detail.split()[1] for p in copies}, new
    # Nothing else gave the unchained copy away: the MACs still verify.
    assert not any(p.kind == "mac_invalid" for p in new), new


async def test_a_back_dated_chained_read_is_reported(
    client: Any, tokens: dict[str, str], person: dict[str, Any], db: Database, mac_key: bytes
) -> None:
    """Moving a read back by months keeps its transaction id in order: the time
    alone going back along the chain must be reported."""
    labels = [f"backdate-{uuid.uuid4()}" for _ in range(3)]
    async with superuser(db) as conn:
        for label in labels:
            await _read(client, tokens, person, label)
        before = await _verify(conn, db, mac_key)
        a, b, c = [await _event(conn, label) for label in labels]
        assert a["writer"] == b["writer"] == c["writer"]
        await conn.execute(
            "UPDATE audit.events SET occurred_at = occurred_at - interval '120 days' "
            "WHERE event_id = $1",
            b["event_id"],
        )
        after = await _verify(conn, db, mac_key)
    orders = [p for p in _new(before, after) if p.kind == "chain_order"]
    assert len(orders) == 1, after.problems
    assert str(b["event_id"]) in orders[0].detail
    assert str(a["event_id"]) in orders[0].detail
    assert "its time went back" in orders[0].detail


async def test_an_event_dated_in_the_future_is_reported(
    client: Any, tokens: dict[str, str], person: dict[str, Any], db: Database, mac_key: bytes
) -> None:
    labels = [f"future-{uuid.uuid4()}" for _ in range(2)]
    async with superuser(db) as conn:
        for label in labels:
            await _read(client, tokens, person, label)
        before = await _verify(conn, db, mac_key)
        near, far = [await _event(conn, label) for label in labels]
        # Within the slack (another session's clock): not reported. Beyond it: reported.
        for event, ahead in ((near, "3 minutes"), (far, "30 days")):
            await conn.execute(
                "UPDATE audit.events SET occurred_at = now() + $2::text::interval "
                "WHERE event_id = $1",
                event["event_id"],
                ahead,
            )
        after = await _verify(conn, db, mac_key)
    future = [p for p in _new(before, after) if p.kind == "event_in_future"]
    assert [str(far["event_id"]) in p.detail for p in future] == [True], after.problems
    assert not any(str(near["event_id"]) in p.detail for p in future)


async def test_a_deleted_domain_read_event_breaks_its_chain(
    client: Any, issuer: Any, db: Database, mac_key: bytes
) -> None:
    """A domain's reads (DomainSpec.read_actions: here 介護保険課 listing its
    queue) go through the audit writer too: chained, so deleting one unsealed
    event is a gap located between its neighbours (hostile review r1 #2)."""
    token = issuer.mint(
        subject="k-tamper", tenant=KAGA, department="kaigo", roles=["staff"], mfa=True
    )
    labels = [f"kdrop-{uuid.uuid4()}" for _ in range(3)]
    async with superuser(db) as conn:
        for label in labels:
            r = await client.get(
                f"{BASE}/kaigo/determinations",
                headers=auth(token, "kaigo.qualification", **{"X-Request-ID": label}),
            )
            assert r.status_code == 200, r.text
        before = await _verify(conn, db, mac_key)
        first, victim, last = [await _event(conn, label) for label in labels]
        assert victim["action"] == "kaigo.determination.list"
        assert victim["writer"] is not None, "a domain read is chained by the writer"
        await conn.execute("DELETE FROM audit.events WHERE event_id = $1", victim["event_id"])
        after = await _verify(conn, db, mac_key)
    gaps = [p for p in _new(before, after) if p.kind == "chain_gap"]
    assert len(gaps) == 1, after.problems
    assert str(first["event_id"]) in gaps[0].detail
    assert str(last["event_id"]) in gaps[0].detail
