"""The audit writer waits for company (issue #16): one commit for the reads in flight.

Before taking a batch, the writer waits while HTTP requests that may still
add an event are in flight, bounded by ``Settings.audit_linger``. These tests
set that bound far beyond any test's patience, so that they can only pass
through the writer's own reasoning: a lone read is not held back (nothing
else is in flight), and concurrent reads wait for each other and commit
together, in one batch.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar

from shared_gov.audit import writer as audit_writer
from shared_gov.audit.recorder import Actor, AuditEvent
from shared_gov.db import Database
from shared_gov.settings import Settings
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"
PATIENCE = 3600.0
"""The linger bound these tests set: an hour, i.e. "never times out" here."""


@pytest.fixture(scope="module")
async def person(client: Any, tokens: dict[str, str]) -> str:
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201
    rid: str = r.json()["id"]
    return rid


@pytest.fixture
async def writer(app: Litestar, client: Any) -> AsyncIterator[audit_writer.AuditWriter]:
    """The app's writer (its lifespan runs while the client does), with the
    linger bound at :data:`PATIENCE`."""
    found = audit_writer.running(app.state.services.db)
    assert found is not None
    before = found._linger
    found._linger = PATIENCE
    yield found
    found._linger = before


async def test_a_lone_read_does_not_wait(
    writer: audit_writer.AuditWriter, client: Any, tokens: dict[str, str], person: str
) -> None:
    batches = writer.batches
    # Were it to wait for the bound, this would not return within the hour.
    r = await asyncio.wait_for(
        client.get(f"{BASE}/residents/{person}", headers=auth(tokens["kaga"])), timeout=60
    )
    assert r.status_code == 200
    assert writer.batches == batches + 1


async def test_concurrent_reads_commit_in_one_batch(
    writer: audit_writer.AuditWriter, client: Any, tokens: dict[str, str], person: str
) -> None:
    batches = writer.batches
    reads = [
        client.get(f"{BASE}/residents/{person}", headers=auth(tokens["kaga"])) for _ in range(8)
    ]
    answers = await asyncio.wait_for(asyncio.gather(*reads), timeout=60)
    assert [r.status_code for r in answers] == [200] * 8
    # The first event waited until the other seven were pending: one commit.
    assert writer.batches == batches + 1


async def test_a_request_that_leaves_without_an_event_releases_the_wait(
    writer: audit_writer.AuditWriter, settings: Settings
) -> None:
    """An event waits while another request is in flight; that request ends
    without an event of its own (a write, whose event is in its own
    transaction), and the event's batch commits."""
    names = tenant_names(KAGA, settings.role_prefix)
    actor = Actor("k-0001", KAGA, "shimin", ("staff",), "mfa", None, None, "juki.registration")
    batches = writer.batches
    audit_writer.request_started()  # the request submitting below
    audit_writer.request_started()  # another one, still working
    try:
        submitted = asyncio.create_task(
            writer.submit(names, actor, AuditEvent("resident.read", rows=0))
        )
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert not submitted.done()  # waiting for the other request (for up to an hour)
        assert writer.batches == batches
    finally:
        audit_writer.request_ended()  # the other one leaves
    try:
        await asyncio.wait_for(submitted, timeout=60)
    finally:
        audit_writer.request_ended()
    assert writer.batches == batches + 1


async def test_no_request_in_flight_no_wait(writer: audit_writer.AuditWriter) -> None:
    """Outside HTTP (command-line jobs, the sealer's own events) nothing is in flight."""
    assert audit_writer._IN_FLIGHT.count == 0


async def test_a_cancelled_request_leaves_its_batch_to_the_others(
    writer: audit_writer.AuditWriter, settings: Settings, db: Database
) -> None:
    """A client that goes away cancels its own wait, never the batch (the others'
    events still commit; its own event may or may not be in the log: it got no answer)."""
    names = tenant_names(KAGA, settings.role_prefix)
    actor = Actor("k-0001", KAGA, "shimin", ("staff",), "mfa", None, None, "juki.registration")
    reasons = [f"company-cancel-{uuid.uuid4()}" for _ in range(2)]
    audit_writer.request_started()
    audit_writer.request_started()
    audit_writer.request_started()  # a third in flight: the batch waits
    try:
        waits = [
            asyncio.create_task(
                writer.submit(names, actor, AuditEvent("resident.read", reason=reason))
            )
            for reason in reasons
        ]
        for _ in range(10):
            await asyncio.sleep(0.01)
        waits[0].cancel()
    finally:
        audit_writer.request_ended()  # the third leaves
        audit_writer.request_ended()  # the cancelled one
    try:
        await asyncio.wait_for(waits[1], timeout=60)
    finally:
        audit_writer.request_ended()
    assert waits[0].cancelled()
    async with db.catalog() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM audit.events WHERE tenant = $1 AND reason = $2",
            KAGA,
            reasons[1],
        )
    assert stored == 1
