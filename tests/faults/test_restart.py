"""PostgreSQL restarted in the middle of a load run (issue #7, "Faults").

The service runs as ``shared-gov serve`` against the tests' own cluster; eight
clients read and register residents while the cluster is restarted with
``pg_ctl restart -m fast`` (running transactions aborted, every connection
dropped). Required:

- every answer is 2xx or 503 problem+json with Retry-After: never a hang,
  never a 500;
- the service recovers by itself: a request started after PostgreSQL is back
  succeeds within 5 s;
- the service's audit sealer resumes by itself and signs every event;
- afterwards, every 2xx read or registration has exactly one committed audit
  event (found by its request id) and no other answer has one; every 2xx
  registration exists, nothing else was registered, and no registration is
  half applied (household, record, history snapshot and domain event all or
  nothing).

One exception is inherent: when the connection drops after COMMIT was sent,
nobody can tell the service whether it committed. It answers 503 ("went away
during commit"); such a request may have committed, with its audit event —
never half of it. The checks allow exactly that, and nothing else.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest

from tests.conftest import KAGA
from tests.faults import auditlog
from tests.faults.cluster import Service, Town
from tests.faults.load import BASE, Load, Outcome, synthetic_resident

pytestmark = pytest.mark.faults

RECOVERY_LIMIT = 5.0
RUN_AFTER_RECOVERY = 1.5
SEALER_CATCH_UP = 15.0

HALF_APPLIED = {
    "household without its head": "SELECT count(*) FROM {s}.households h "
    "WHERE NOT EXISTS (SELECT 1 FROM {s}.residents r WHERE r.id = h.head_id)",
    "record without history": "SELECT count(*) FROM {s}.residents r "
    "WHERE NOT EXISTS (SELECT 1 FROM {s}.resident_history h WHERE h.resident_id = r.id)",
    "record without its domain event": "SELECT count(*) FROM {s}.residents r "
    "WHERE NOT EXISTS (SELECT 1 FROM {s}.events e WHERE e.record_id = r.id)",
    "domain event without its record": "SELECT count(*) FROM {s}.events e "
    "WHERE NOT EXISTS (SELECT 1 FROM {s}.residents r WHERE r.id = e.record_id)",
}


async def _residents(client: httpx.AsyncClient, token: str, n: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "juki.registration"}
    ids = []
    for _ in range(n):
        r = await client.post(f"{BASE}/residents", json=synthetic_resident(), headers=headers)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def _resident_ids(town: Town) -> set[str]:
    conn = await asyncpg.connect(town.url, timeout=30)
    try:
        return {str(r["id"]) for r in await conn.fetch(f"SELECT id FROM t_{KAGA}.residents")}
    finally:
        await conn.close()


def _report(failures: list[Outcome], service: Service) -> str:
    """The failed requests and what the service logged about them (by request id)."""
    ids = {f.request_id for f in failures}
    lines = [
        line
        for line in service.logs().splitlines()
        if any(f'"{rid}"' in line for rid in ids) and '"event": "request"' not in line
    ]
    return "\n".join([f.describe() for f in failures[:20]] + lines[:40])


async def _fault(town: Town, fault: str) -> None:
    if fault == "restart":
        await town.cluster.restart()
    else:
        await town.cluster.crash_a_backend(town.database)
        await town.cluster.wait_accepting()


@pytest.mark.parametrize("fault", ["restart", "backend_crash"])
async def test_restart_under_load(town: Town, service: Service, fault: str) -> None:
    """``restart``: pg_ctl restart -m fast. ``backend_crash``: one backend
    SIGKILLed (the OOM killer), so PostgreSQL resets every connection and
    runs crash recovery."""
    token = town.staff_token()
    schema = f"t_{KAGA}"
    async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as client:
        residents = await _residents(client, token, 10)
        before = await _resident_ids(town)
        async with Load(client, token, residents) as load:
            await asyncio.sleep(1.5)
            restart_began = load.now()
            await _fault(town, fault)
            back = load.now()
            # Keep the load on until the service has recovered (or clearly has not).
            deadline = time.monotonic() + RECOVERY_LIMIT + 5
            while time.monotonic() < deadline:
                first = load.run.first_ok_started_after(back)
                if first is not None and load.now() > first.ended + RUN_AFTER_RECOVERY:
                    break
                await asyncio.sleep(0.1)
    run = load.run
    verdicts = run.verdicts()
    failures = run.failures()
    slowest_503 = max((o.ended - o.started for o in run.outcomes if o.status == 503), default=0)
    print(
        f"{fault}: PostgreSQL back after {back - restart_began:.2f} s; answers: {dict(verdicts)}; "
        f"failures: {len(failures)}; slowest 503 {slowest_503:.2f} s"
    )
    assert not failures, _report(failures, service)
    assert verdicts["unavailable"] > 0, "the restart never reached a request"
    first = run.first_ok_started_after(back)
    assert first is not None, f"no success after PostgreSQL came back: {dict(verdicts)}"
    recovery = first.ended - back
    print(
        f"recovery: first 2xx {recovery:.2f} s after PostgreSQL was back, "
        f"{first.ended - restart_began:.2f} s after the restart began"
    )
    assert recovery <= RECOVERY_LIMIT

    # What the database holds, as a superuser of the tests' own cluster.
    conn = await asyncpg.connect(town.url, timeout=30)
    try:
        events = {
            r["request_id"]: r["n"]
            for r in await conn.fetch(
                "SELECT client_request_id AS request_id, count(*) AS n FROM audit.events "
                "WHERE client_request_id LIKE $1 GROUP BY client_request_id",
                f"fault-{load.tag}-%",
            )
        }
        unknown = [o for o in run.outcomes if o.commit_unknown]
        for outcome in run.outcomes:
            found = events.get(outcome.request_id, 0)
            if outcome.verdict == "ok":
                assert found == 1, outcome.describe()
            elif outcome.commit_unknown:
                # The COMMIT was sent and its answer lost: it may have committed.
                assert found <= 1, outcome.describe()
            else:
                assert found == 0, outcome.describe()
        registered = {
            o.body["id"] for o in run.outcomes if o.kind == "register" and o.verdict == "ok"
        }
        rows = {str(r["id"]) for r in await conn.fetch(f"SELECT id FROM {schema}.residents")}
        # Every 2xx registration is there; a record no 2xx answer announced
        # exists only for a registration whose COMMIT went through unanswered,
        # and then with its audit event (one per such registration).
        assert registered <= rows
        committed_unanswered = [
            o for o in unknown if o.kind == "register" and events.get(o.request_id)
        ]
        assert len(rows - before - registered) == len(committed_unanswered)
        print(
            f"COMMIT sent, answer lost: {len(unknown)} requests (503), "
            f"{sum(1 for o in unknown if events.get(o.request_id))} of them committed"
        )
        # The service's sealer came back by itself: everything gets signed.
        signed, took = await auditlog.until_all_signed(conn, within=SEALER_CATCH_UP)
        print(f"sealer: all {signed.events} events signed {took:.2f} s after the load ended")
        # A registration writes household, record, history snapshot and domain
        # event in one transaction: all of them or none.
        for what, sql in HALF_APPLIED.items():
            assert await conn.fetchval(sql.format(s=schema)) == 0, what
    finally:
        await conn.close()
    service.assert_running()
