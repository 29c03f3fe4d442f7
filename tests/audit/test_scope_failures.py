"""What the audit log records when an attempt fails, and whose request id it is.

- Anything that fails inside a tenant scope, not only a refusal, is an event:
  outcome ``error`` with the exception's type (never its message).
- Refusals on the checkpoint and proof endpoints are denied events.
- ``request_id`` is always the service's; a client's ``X-Request-ID`` is kept
  only as ``client_request_id``, and only when it is short printable ASCII.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar

from shared_gov.api.proofs import AuditController
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from shared_gov.domains.residents import queries
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"


async def _by_client_id(db: Database, client_request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE client_request_id = $1 ORDER BY occurred_at",
            client_request_id,
        )
    return [dict(r) for r in rows]


async def _by_request_id(db: Database, request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch("SELECT * FROM audit.events WHERE request_id = $1", request_id)
    return [dict(r) for r in rows]


@pytest.fixture
async def resident(client: Any, tokens: dict[str, str]) -> str:
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201, r.text
    rid: str = r.json()["id"]
    return rid


async def test_the_request_id_is_the_services_and_the_clients_is_kept_apart(
    client: Any, tokens: dict[str, str], db: Database, resident: str
) -> None:
    mine = f"client-{uuid.uuid4().hex[:8]}"
    r = await client.get(
        f"{BASE}/residents/{resident}", headers=auth(tokens["kaga"], **{"X-Request-ID": mine})
    )
    assert r.status_code == 200
    ours = r.headers["x-request-id"]
    assert ours != mine
    uuid.UUID(ours)
    (event,) = await _by_client_id(db, mine)
    assert event["request_id"] == ours
    assert event["client_request_id"] == mine
    # Naming another request's id only ever sets the client's own field.
    again = await client.get(
        f"{BASE}/residents/{resident}", headers=auth(tokens["kaga"], **{"X-Request-ID": ours})
    )
    assert again.headers["x-request-id"] != ours
    assert len(await _by_request_id(db, ours)) == 1


@pytest.mark.parametrize(
    "sent",
    ["abc\x01def", "tab\there", "x" * 65, "caf\u00e9", "with space", "nul\x7fdel"],
    ids=["control", "tab", "65-chars", "latin-1", "space", "del"],
)
async def test_a_bad_client_request_id_is_dropped_whole(
    client: Any, tokens: dict[str, str], db: Database, resident: str, sent: str
) -> None:
    r = await client.get(
        f"{BASE}/residents/{resident}",
        headers=auth(tokens["kaga"], **{"X-Request-ID": sent.encode("latin-1")}),  # type: ignore[dict-item]
    )
    assert r.status_code == 200
    (event,) = await _by_request_id(db, r.headers["x-request-id"])
    assert event["client_request_id"] is None


async def test_a_failure_inside_the_scope_is_an_error_event(
    client: Any, tokens: dict[str, str], db: Database, resident: str, monkeypatch: Any
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a value that must not reach the log: 山田太郎")

    monkeypatch.setattr(queries, "get", broken)
    rid = f"scope-error-{uuid.uuid4().hex[:8]}"
    r = await client.get(
        f"{BASE}/residents/{resident}", headers=auth(tokens["kaga"], **{"X-Request-ID": rid})
    )
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/problem+json")
    (event,) = await _by_client_id(db, rid)
    assert (event["action"], event["outcome"]) == ("resident.read", "error")
    assert event["reason"] == "internal error (RuntimeError)"
    assert event["actor"] == "k-0001"
    assert "山田" not in str(event)


async def test_a_failure_before_the_unit_of_work_is_an_error_event(
    app: Litestar, client: Any, tokens: dict[str, str], db: Database, monkeypatch: Any
) -> None:
    async def broken(_tenant: str) -> Any:
        raise ValueError("boom")

    monkeypatch.setattr(app.state.services.permissions, "town", broken)
    rid = f"scope-early-{uuid.uuid4().hex[:8]}"
    r = await client.get(
        f"{BASE}/residents/{uuid.uuid4()}", headers=auth(tokens["kaga"], **{"X-Request-ID": rid})
    )
    assert r.status_code == 500
    (event,) = await _by_client_id(db, rid)
    assert (event["outcome"], event["reason"]) == ("error", "internal error (ValueError)")


@pytest.fixture
def routes(app: Litestar, client: Any) -> None:
    if not any(route.path.endswith("/audit/proofs/inclusion") for route in app.routes):
        app.register(AuditController)


async def test_refusals_on_checkpoint_and_proofs_are_denied_events(
    client: Any, routes: None, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    komatsu_auditor = issuer.mint(
        subject="m-9001", tenant=KOMATSU, department="kansa", roles=["auditor"]
    )
    callers = {
        "staff": (tokens["kaga"], 403, "reading the audit log needs the auditor role"),
        "admin": (tokens["kaga_admin"], 403, "reading the audit log needs the auditor role"),
        "other-town-auditor": (komatsu_auditor, 404, "caller from another town"),
        "other-town-staff": (tokens["komatsu"], 404, "caller from another town"),
        "operator": (tokens["operator"], 404, "operators do not read a town's audit log"),
    }
    paths = {
        "checkpoint": "audit.checkpoint",
        f"proofs/inclusion?event={uuid.uuid4()}": "audit.proof",
        "proofs/consistency?first=1&second=2": "audit.proof",
    }
    for who, (token, status, reason) in callers.items():
        for path, action in paths.items():
            rid = f"cp-{who}-{uuid.uuid4().hex[:8]}"
            r = await client.get(
                f"{BASE}/audit/{path}", headers=auth(token, purpose=None, **{"X-Request-ID": rid})
            )
            assert r.status_code == status, (who, path, r.text)
            (event,) = await _by_client_id(db, rid)
            assert event["tenant"] == KAGA
            assert (event["action"], event["resource_type"]) == (action, "audit_log")
            assert event["outcome"] == "denied"
            assert event["reason"] == reason, (who, path)
