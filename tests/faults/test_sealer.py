"""The audit sealer killed in the middle of a batch (issue #7, "Faults").

A batch is parked at a known point between its statements: the test holds
``audit.checkpoints`` locked (EXCLUSIVE: reads pass, inserts wait), so a pass
writes its leaves and nodes and then waits to add its checkpoints, inside its
transaction. Then the sealer is killed there:

- ``shared-gov audit seal --loop`` with SIGKILL (the process, mid-batch), then
  started again;
- the service's own sealer by terminating its database session
  (``pg_terminate_backend``), after which it must resume by itself.

Either way the killed batch must leave nothing (no leaf without its signed
checkpoint), sealing must continue until every event is under a signed
checkpoint, and ``shared-gov audit verify`` must pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from shared_gov.audit.recorder import seal
from shared_gov.crypto.keyring import keyring_from_settings, town_keys
from shared_gov.db import Database
from tests.audit.test_sealer import event_body
from tests.conftest import KAGA
from tests.faults import auditlog
from tests.faults.cluster import CLI, Service, Town

pytestmark = pytest.mark.faults

BACKLOG = 1500
BATCH = 400
# After its session is cut, the service's sealer must be sealing again within this.
RESUME_LIMIT = 5.0


async def _backlog(town: Town, n: int, label: str) -> None:
    """``n`` committed Kaga events, written as the town's role does (one transaction),
    each MACed with the town's audit key like every event the service writes
    (``audit verify`` reports an event without one)."""
    settings = dataclasses.replace(town.settings, pool_min=1, pool_max=1)
    db = Database(town.url, settings, keyring_from_settings(settings))
    await db.open()
    try:
        key = (await town_keys(db, KAGA)).audit_mac
    finally:
        await db.close()
    assert key is not None
    payloads = []
    for i in range(n):
        payload = {**event_body(f"{label}-{i}"), "event_id": str(uuid.uuid4())}
        seal(payload, KAGA, key)
        payloads.append((json.dumps(payload),))
    conn = await asyncpg.connect(town.url, timeout=30)
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('role', $1, true)", f"{town.settings.role_prefix}_t_{KAGA}"
            )
            await conn.executemany("SELECT audit.record($1::jsonb)", payloads)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _checkpoints_locked(town: Town) -> AsyncIterator[asyncpg.Connection]:
    """Hold audit.checkpoints so that sealing passes park before adding checkpoints."""
    conn = await asyncpg.connect(town.url, timeout=30)
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("LOCK TABLE audit.checkpoints IN EXCLUSIVE MODE")
        try:
            yield conn
        finally:
            await tx.rollback()
    finally:
        await conn.close()


async def _parked_pass(monitor: asyncpg.Connection, within: float = 20.0) -> int:
    """The backend of the sealing pass waiting on the checkpoints lock."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        row = await monitor.fetchrow(
            "SELECT l.pid, a.backend_xid IS NOT NULL AS wrote FROM pg_locks l "
            "JOIN pg_stat_activity a USING (pid) "
            "WHERE l.relation = 'audit.checkpoints'::regclass AND NOT l.granted"
        )
        if row is not None:
            # It has written (leaves, nodes) in its transaction: truly mid-batch.
            assert row["wrote"]
            pid: int = row["pid"]
            return pid
        await asyncio.sleep(0.02)
    raise AssertionError(f"no sealing pass reached the checkpoints in {within:.0f} s")


async def _until_gone(monitor: asyncpg.Connection, pid: int, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while await monitor.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
        assert time.monotonic() < deadline, f"backend {pid} still there after {within:.0f} s"
        await asyncio.sleep(0.05)


async def _until_leading(sealer: subprocess.Popen[bytes], log: Path, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while "audit.sealer.leader" not in (text := await asyncio.to_thread(log.read_text)):
        assert sealer.poll() is None, text
        assert time.monotonic() < deadline, "the sealer process never became the leader"
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def _sealer_process(town: Town, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``shared-gov audit seal --loop`` in a session of its own, stopped at the end."""
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
            [CLI, "audit", "seal", "--loop", "--interval", "0.2", "--batch", str(BATCH)],
            env=town.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


async def test_sealer_process_killed_mid_batch(town: Town, tmp_path: Path) -> None:
    log = tmp_path / "seal.log"
    monitor = await asyncpg.connect(town.url, timeout=30)
    try:
        await _backlog(town, BACKLOG, "kill9")
        before = await auditlog.state(monitor)
        with _sealer_process(town, log) as sealer:
            # It must be the leader (no service of this module runs yet) ...
            await _until_leading(sealer, log)
            # ... let at least one batch commit, then park the next one.
            deadline = time.monotonic() + 60
            while (await auditlog.state(monitor)).signed == before.signed:
                assert sealer.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the sealer never sealed"
                await asyncio.sleep(0.02)
            async with _checkpoints_locked(town):
                pid = await _parked_pass(monitor)
                parked = await auditlog.state(monitor)
                os.kill(sealer.pid, signal.SIGKILL)
                sealer.wait(timeout=10)
            # The lock is gone; the orphaned backend finds its client dead and
            # rolls the batch back.
            await _until_gone(monitor, pid)
        after_kill = await auditlog.state(monitor)
        # Nothing of the killed batch: every sealed leaf is under a signed checkpoint.
        assert after_kill.leaves == after_kill.signed == parked.signed
        assert after_kill.leaves < after_kill.events
        with _sealer_process(town, log) as sealer:
            state, took = await auditlog.until_all_signed(monitor, within=60)
            assert sealer.poll() is None, log.read_text()
        print(
            f"sealer SIGKILLed mid-batch at {parked.signed} signed of {after_kill.events}; "
            f"restarted, all {state.events} signed {took:.2f} s later"
        )
    finally:
        await monitor.close()
    await asyncio.to_thread(auditlog.verify, town)


async def test_service_sealer_resumes_after_its_session_is_cut_mid_batch(
    town: Town, service: Service
) -> None:
    monitor = await asyncpg.connect(town.url, timeout=30)
    try:
        # Whatever earlier tests left is sealed first, so the parked batch is ours.
        await auditlog.until_all_signed(monitor, within=30)
        async with _checkpoints_locked(town):
            await _backlog(town, BACKLOG, "cut")
            pid = await _parked_pass(monitor)
            parked = await auditlog.state(monitor)
            assert await monitor.fetchval("SELECT pg_terminate_backend($1)", pid)
            await _until_gone(monitor, pid)
            cut = time.monotonic()
        after_cut = await auditlog.state(monitor)
        assert after_cut.leaves == after_cut.signed == parked.signed
        state, _ = await auditlog.until_all_signed(monitor, within=30)
        resumed = time.monotonic() - cut
        print(f"service sealer cut mid-batch; all {state.events} signed {resumed:.2f} s later")
        assert resumed <= RESUME_LIMIT, service.logs()[-3000:]
    finally:
        await monitor.close()
    service.assert_running()
    await asyncio.to_thread(auditlog.verify, town)
