"""One guarded entry (issue #15 item 1): every route that acts in a town goes
through ``api.entry.Entry`` with a gate, and every gate records the same way.

The attacks: a route added without the entry (it would decide and record on
its own, or not at all); an operator on a town's records hoping to pass as
"another town"; a refused change of the town's administration whose record
cannot be written, hoping to get the refusal anyway (no record, no answer);
an admin's change refused by the entry naming what was asked for.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar import Litestar

from shared_gov.api.entry import TENANT_ROUTES, Gate, route_audit
from shared_gov.api.entry import failures as entry_failures
from shared_gov.api.entry.gates import OPERATORS_OUTSIDE, OTHER_TOWN
from shared_gov.api.proofs import AuditController
from shared_gov.auth.principal import Principal
from shared_gov.db import Database
from tests.conftest import KAGA, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"


@pytest.fixture
def routes(app: Litestar, client: Any) -> None:
    if not any(route.path.endswith("/audit/proofs/inclusion") for route in app.routes):
        app.register(AuditController)


def _acting_routes(app: Litestar) -> list[tuple[str, Any]]:
    """(where, handler) of every route under a town's path, and of the agreements
    (their lifecycle and their reading act in the caller's own town)."""
    found = []
    for route in app.routes:
        path = route.path_format
        acts = path.startswith((TENANT_ROUTES, "/api/v1/agreements"))
        for handler in getattr(route, "route_handlers", []) if acts else []:
            methods = sorted(handler.http_methods - {"OPTIONS"})
            if methods:
                found.append((f"{methods} {path}", handler))
    return found


async def test_every_town_route_goes_through_the_entry(app: Litestar, routes: None) -> None:
    """The route table: each takes the ``entry`` dependency and declares a gate;
    the enrolment (no token: the code is the credential) takes its town the same way."""
    found = _acting_routes(app)
    assert len(found) >= 33, len(found)
    for where, handler in found:
        dependencies = handler.resolve_dependencies()
        gate = route_audit({"route_handler": handler}).gate
        assert isinstance(gate, Gate), where
        if where.endswith("/enrolment"):
            assert "town" in dependencies, where
            continue
        assert "entry" in dependencies, f"{where} does not go through the guarded entry"
        # No handler reads the town code or the principal on its own any more.
        parameters = set(handler.parsed_fn_signature.parameters)
        assert not parameters & {"code", "principal", "request"}, (where, parameters)


def _principal(roles: set[str], tenant: str | None) -> Principal:
    return Principal("x-1", tenant, None, frozenset(roles), frozenset({"mfa"}))


def test_a_gate_that_admits_a_role_lets_in_only_its_holders_of_no_town() -> None:
    """``Gate.admits`` (the suppliers' gate): the role's holders who belong to no
    town, in any town; the town's own people, another town's and operators not —
    nor a town's principal who also claims the role."""
    gate = Gate(
        "role", purpose=None, serves="juki.registration", admits="supplier", own_people="no"
    )
    assert gate.outsider(_principal({"supplier"}, None), KAGA) is None
    assert gate.outsider(_principal({"supplier"}, None), "172031") is None
    assert gate.outsider(_principal({"staff"}, KAGA), KAGA) == "no"
    assert gate.outsider(_principal({"staff", "supplier"}, KAGA), KAGA) == "no"
    assert gate.outsider(_principal({"admin"}, "172031"), KAGA) == OTHER_TOWN
    assert gate.outsider(_principal({"operator", "supplier"}, None), KAGA) == OPERATORS_OUTSIDE
    assert gate.outsider(_principal({"integration"}, None), KAGA) == OTHER_TOWN
    # The town's own records gate never lets a role of no town in.
    assert Gate("records").outsider(_principal({"supplier"}, None), KAGA) == OTHER_TOWN
    # A role's gate decides per record on the one purpose it serves.
    for wrong in (
        {"purpose": None},
        {"serves": "juki.registration"},
        {"purpose": None, "serves": "x", "decides": ("administer", "Town")},
    ):
        with pytest.raises(ValueError, match="one purpose"):
            Gate("bad", admits="supplier", **wrong)  # type: ignore[arg-type]


async def test_an_operator_on_records_is_recorded_as_an_operator(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """The same 404 as another town; the log says an operator asked (not "another town")."""
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201, r.text
    url = f"{BASE}/residents/{r.json()['id']}"
    refused = await client.get(url, headers=auth(tokens["operator"]))
    assert refused.status_code == 404
    assert refused.json()["detail"] == "no such resource"
    event = await _one(db, refused)
    assert (event["outcome"], event["reason"]) == (
        "denied",
        "operators have no access to a town's own data",
    )
    assert event["action"] == "resident.read"


async def test_a_refused_change_is_recorded_with_what_was_asked_for(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """The town's own admin, refused after the gate: the event names the change
    (another town's admin gets the plain reason: tests/security/test_entry_review.py)."""
    r = await client.put(
        f"{BASE}/departments/somu",
        json={"name": "総務課", "purposes": ["juki.registration", "no.such.purpose"]},
        headers=auth(tokens["kaga_admin"]),
    )
    assert r.status_code == 403
    event = await _one(db, r)
    assert (event["action"], event["resource_type"], event["outcome"]) == (
        "admin.department",
        "department",
        "denied",
    )
    assert json.loads(event["reason"]) == {
        "target": "somu",
        "requested": {
            "name": "総務課",
            "active": True,
            "purposes": ["juki.registration"],
            "unknown_purposes": 1,
        },
        "refused": "nobody changes the purposes of their own department; "
        "another admin of the town must",
    }
    assert event["purpose"] is None


async def test_no_record_no_answer_for_a_refused_change(
    client: Any, tokens: dict[str, str], monkeypatch: Any
) -> None:
    """The entry's refusal of an administrative change cannot be recorded: no refusal either."""

    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the log is down")

    monkeypatch.setattr(entry_failures, "record_apart", broken)
    r = await client.put(
        f"{BASE}/staff/k-0001", json={"purposes": []}, headers=auth(tokens["komatsu_admin"])
    )
    assert r.status_code == 500


async def _one(db: Database, response: Any) -> dict[str, Any]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE request_id = $1", response.headers["x-request-id"]
        )
    assert len(rows) == 1, [(r["action"], r["outcome"]) for r in rows]
    return dict(rows[0])
