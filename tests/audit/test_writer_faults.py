"""Group commit under faults (issue #16): the audit writer's connection is killed
in the middle of a batch. Every read in that batch answers 503 with no data,
none of their events is committed, and the next read succeeds on a new
connection with a new chain: no 2xx without its committed event.

(PostgreSQL restarted under load, reads and writes mixed, is
tests/faults/test_restart.py, whose completeness check covers the writer.)"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar

from shared_gov.audit import writer as audit_writer
from shared_gov.db import Database
from tests.conftest import KAGA, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"


@pytest.fixture(scope="module")
async def person(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201
    result: dict[str, Any] = r.json()
    return result


async def _committed(db: Database, labels: list[str]) -> set[str]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT client_request_id FROM audit.events WHERE tenant = $1 "
            "AND client_request_id = ANY($2::text[])",
            KAGA,
            labels,
        )
    return {r["client_request_id"] for r in rows}


async def test_killing_the_writer_mid_batch_fails_every_read_in_it(
    app: Litestar, client: Any, tokens: dict[str, str], person: dict[str, Any], db: Database
) -> None:
    writer = audit_writer.running(app.state.services.db)
    assert writer is not None
    await client.get(f"{BASE}/residents/{person['id']}", headers=auth(tokens["kaga"]))
    pid, chain = writer.backend_pid, writer.writer_id
    assert pid is not None
    labels = [f"kill-{uuid.uuid4()}" for _ in range(6)]
    blocker = await asyncpg.connect(db.url)
    try:
        # Hold the batch inside its INSERT: a lock that conflicts with it.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE audit.events IN EXCLUSIVE MODE")
        reads = [
            asyncio.create_task(
                client.get(
                    f"{BASE}/residents/{person['id']}",
                    headers=auth(tokens["kaga"], **{"X-Request-ID": label}),
                )
            )
            for label in labels
        ]
        # Until the writer's backend waits for the lock with the batch.
        for _ in range(200):
            waiting = await blocker.fetchval(
                "SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted", pid
            )
            if waiting:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the writer never reached its INSERT")
        assert await blocker.fetchval("SELECT pg_terminate_backend($1)", pid)
        answers = await asyncio.gather(*reads)
        await tx.rollback()
    finally:
        await blocker.close()
    for r in answers:
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "family_name" not in r.text
    assert await _committed(db, labels) == set()
    # Recovered: a new connection, a new chain.
    again = f"after-{uuid.uuid4()}"
    r = await client.get(
        f"{BASE}/residents/{person['id']}",
        headers=auth(tokens["kaga"], **{"X-Request-ID": again}),
    )
    assert r.status_code == 200
    assert await _committed(db, [again]) == {again}
    assert writer.writer_id != chain
    assert writer.backend_pid not in (None, pid)


async def test_concurrent_reads_share_batches(
    app: Litestar, client: Any, tokens: dict[str, str], person: dict[str, Any], db: Database
) -> None:
    writer = audit_writer.running(app.state.services.db)
    assert writer is not None
    labels = [f"group-{uuid.uuid4()}" for _ in range(40)]
    before = writer.batches
    answers = await asyncio.gather(
        *(
            client.get(
                f"{BASE}/residents/{person['id']}",
                headers=auth(tokens["kaga"], **{"X-Request-ID": label}),
            )
            for label in labels
        )
    )
    assert all(r.status_code == 200 for r in answers)
    assert await _committed(db, labels) == set(labels)
    # Group commit: fewer batches than reads.
    assert writer.batches - before < len(labels)
