"""A 503 is not a refusal: nothing goes to the audit log for it.

Found while exhausting the pool: a request whose town permissions had to be
(re)loaded — after a restart or an invalidation — got 503 when the catalog
query found no free connection, and the scope then tried to record a
"denied" access for it in a transaction of its own. That second attempt
waited another acquire timeout (callers saw 503 after twice the timeout), and
whenever it found a connection it wrote a denial the auditors would count,
with "the database is busy" as its reason. Refusals (4xx) are recorded; an
unavailable database is not a decision about anyone.

Runs in the test process against the session's database, with the
permission lookup made to fail as it does when the pool is empty.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar

from shared_gov import errors
from shared_gov.db import Database
from tests.conftest import KAGA, auth
from tests.factories import resident_body

pytestmark = pytest.mark.faults

BASE = f"/api/v1/tenants/{KAGA}"


async def test_unavailable_permissions_answer_503_and_record_nothing(
    app: Litestar, client: Any, tokens: dict[str, str], db: Database, monkeypatch: Any
) -> None:
    created = await client.post(
        f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"])
    )
    assert created.status_code == 201, created.text
    rid = created.json()["id"]

    async def pool_empty(_tenant: str) -> Any:
        raise errors.unavailable("the database is busy or unreachable; retry")

    monkeypatch.setattr(app.state.services.permissions, "town", pool_empty)
    r = await client.get(
        f"{BASE}/residents/{rid}",
        headers=auth(tokens["kaga"], **{"X-Request-ID": "fault-permissions-503"}),
    )
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "1"
    async with db.catalog() as conn:
        recorded = await conn.fetchval(
            "SELECT count(*) FROM audit.events WHERE client_request_id = $1",
            "fault-permissions-503",
        )
    assert recorded == 0
