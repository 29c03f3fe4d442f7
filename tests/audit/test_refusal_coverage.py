"""Every refusal on a town's routes is one event in the town's log (review finding H2, M4).

The attacks: another town's people, an operator and the town's own people
ending a request on a town's path in a 4xx — by body decoding and
validation, header checks, parameter checks, read-only administration,
the auditors' parameters — and hoping it goes unnoticed. Each request is
found in the log by the response's ``X-Request-ID`` (the event's
``request_id``), and must have left EXACTLY one event: at least one (it is
audited) and at most one (no double recording when a scope already did).

The route table is walked, so a route added later without an audit action,
or one whose refusals leave nothing, fails here.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from litestar import Litestar

from shared_gov.api.entry import TENANT_ROUTES, Audit, route_audit
from shared_gov.api.proofs import AuditController
from shared_gov.api.refusals import ANONYMOUS_GATE_KEY
from shared_gov.audit.queries import subject_hash
from shared_gov.auth.failures import ENROLMENT_STATE_KEY, FailedLoginGate
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import today_jst
from shared_gov.db import Database
from tests.conftest import KAGA, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"
BODY_METHODS = {"POST", "PUT", "PATCH"}
ACTORS = {"komatsu_admin": "m-admin", "komatsu": "m-0001", "operator": "op-1"}


async def _events(db: Database, request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE request_id = $1 ORDER BY occurred_at", request_id
        )
    return [dict(r) for r in rows]


async def _one(db: Database, response: Any) -> dict[str, Any]:
    """The one event the request left (fails on none and on more than one)."""
    found = await _events(db, response.headers["x-request-id"])
    assert len(found) == 1, (response.status_code, [(e["action"], e["outcome"]) for e in found])
    return found[0]


@pytest.fixture
def routes(app: Litestar, client: Any) -> None:
    if not any(route.path.endswith("/audit/proofs/inclusion") for route in app.routes):
        app.register(AuditController)


@pytest.fixture
async def resident(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    r = await client.post(f"{BASE}/residents", json=resident_body(), headers=auth(tokens["kaga"]))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def _tenant_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, path template) of every route under a town's path, OPTIONS aside."""
    found = set()
    for route in app.routes:
        if not route.path_format.startswith(TENANT_ROUTES):
            continue
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods:
                if method != "OPTIONS":
                    found.add((method, route.path_format))
    return sorted(found)


def _route_audits(app: Litestar) -> dict[tuple[str, str], Audit]:
    """The audit action each town route declares (``audit=Audit(...)`` on the route)."""
    found = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            declared = handler.opt.get("audit")
            for method in handler.http_methods:
                if isinstance(declared, Audit):
                    found[(method, route.path_format)] = route_audit({"route_handler": handler})
    return found


def _url(template: str, resident: dict[str, Any]) -> str:
    return (
        template.replace("{code}", KAGA)
        .replace("{resident_id}", resident["id"])
        .replace("{household_no}", resident.get("household_no") or "1")
        .replace("{staff_id}", "k-0001")
        .replace("{department}", "shimin")
    )


async def test_every_town_route_has_an_audit_action(app: Litestar, routes: None) -> None:
    declared = _route_audits(app)
    missing = [r for r in _tenant_routes(app) if r not in declared]
    assert not missing, f"declare audit=Audit(...) on these routes: {missing}"
    assert len(_tenant_routes(app)) >= 28


@pytest.mark.parametrize("caller", ["komatsu_admin", "komatsu", "operator"])
async def test_every_route_refused_to_an_outsider_is_one_event(
    app: Litestar,
    client: Any,
    routes: None,
    tokens: dict[str, str],
    db: Database,
    resident: dict[str, Any],
    caller: str,
) -> None:
    """Another town's admin or staff, or the operator, on every route of Kaga's."""
    subject = await subject_hash(db, KAGA, resident["id"])
    for method, template in _tenant_routes(app):
        kwargs: dict[str, Any] = {"headers": auth(tokens[caller])}
        if method in BODY_METHODS:
            kwargs["json"] = {}
        r = await client.request(method, _url(template, resident), **kwargs)
        where = (method, template, r.status_code)
        assert 400 <= r.status_code < 500, where
        event = await _one(db, r)
        assert event["tenant"] == KAGA, where
        assert event["outcome"] in ("denied", "not_found"), where
        if template.endswith("/enrolment"):
            # No token on that route: the failed login's actor, never a claim.
            assert (event["actor"], event["auth_strength"]) == ("unauthenticated", "none")
        else:
            assert event["actor"] == ACTORS[caller], where
            assert event["action"] == _route_audits(app)[(method, template)].action, where
        if "{resident_id}" in template:
            assert event["subjects"] == [subject], where
        # Whatever they got, the log says who it was (a 404 as another town's is a denial).
        assert event["outcome"] == "denied", where
        if caller != "operator" and not template.endswith("/enrolment"):
            assert "another town" in (event["reason"] or ""), where


@pytest.mark.parametrize("body", [b"{", b'{"a": 1, "a": 2}', b"[" * 5000])
async def test_every_body_that_does_not_decode_is_one_event(
    app: Litestar,
    client: Any,
    routes: None,
    tokens: dict[str, str],
    db: Database,
    resident: dict[str, Any],
    body: bytes,
) -> None:
    """The town's own callers, each on the routes they may use, with a broken body."""
    by_area = {"/audit/": "kaga_auditor", "/departments": "kaga_admin", "/staff": "kaga_admin"}
    by_area["/issuer"] = "kaga_admin"
    for method, template in _tenant_routes(app):
        if method not in BODY_METHODS:
            continue
        if "/supplier/" in template:
            # Suppliers' systems' routes: the town's people get the 404 of another
            # caller before any body is read (tests/domains/invoices: their own attacks,
            # a broken body from a supplier is a 422 with its report).
            continue
        who = next((v for k, v in by_area.items() if k in template), "kaga")
        headers = {**auth(tokens[who]), "content-type": "application/json", "If-Match": '"v1"'}
        r = await client.request(method, _url(template, resident), content=body, headers=headers)
        where = (method, template, r.status_code)
        assert r.status_code in (400, 422), where
        assert r.headers["content-type"].startswith("application/problem+json")
        event = await _one(db, r)
        assert event["outcome"] == "denied", where
        assert event["action"] == _route_audits(app)[(method, template)].action, where
        # Never what was sent: not the key, not the bytes.
        assert '"a"' not in (event["reason"] or ""), where


async def test_if_match_refusals_are_denials_naming_the_resident(
    client: Any, tokens: dict[str, str], db: Database, resident: dict[str, Any]
) -> None:
    today = today_jst().isoformat()
    move = {"event": "death", "move_date": today, "notified_on": today}
    url = f"{BASE}/residents/{resident['id']}/moves"
    subject = await subject_hash(db, KAGA, resident["id"])
    for if_match, status in ((None, 428), ('"nonsense"', 412), ('"v99"', 412)):
        headers = auth(tokens["kaga"], **({"If-Match": if_match} if if_match else {}))
        r = await client.post(url, json=move, headers=headers)
        assert r.status_code == status, (if_match, r.text)
        event = await _one(db, r)
        # A stale If-Match is a refusal, not an error (M4).
        assert (event["action"], event["outcome"]) == ("resident.move", "denied")
        assert event["subjects"] == [subject]
    r = await client.put(
        f"{BASE}/residents/{resident['id']}/support-measure",
        json={"active": True},
        headers=auth(tokens["kaga"]),
    )
    assert r.status_code == 428
    event = await _one(db, r)
    assert (event["action"], event["outcome"]) == ("resident.protect", "denied")


async def test_another_town_without_if_match_gets_404_first(
    client: Any, tokens: dict[str, str], db: Database, resident: dict[str, Any]
) -> None:
    r = await client.post(
        f"{BASE}/residents/{resident['id']}/moves",
        json={"event": "death", "move_date": "2024-01-01", "notified_on": "2024-01-01"},
        headers=auth(tokens["komatsu"]),
    )
    assert r.status_code == 404
    event = await _one(db, r)
    assert (event["outcome"], event["reason"]) == ("denied", "caller from another town")


@pytest.mark.parametrize(
    ("path", "status", "outcome"),
    [
        (f"/audit/proofs/inclusion?event={uuid.uuid4()}", 404, "not_found"),
        ("/audit/proofs/inclusion?event=not-a-uuid", 422, "denied"),
        ("/audit/proofs/inclusion", 400, "denied"),
        ("/audit/proofs/consistency?first=2&second=1", 400, "denied"),
        ("/audit/proofs/consistency?first=0&second=1", 422, "denied"),
        ("/audit/proofs/consistency?first=x&second=1", 422, "denied"),
        ("/audit/proofs/consistency?first=1&second=999999999", 404, "not_found"),
        ("/audit/checkpoint?tenant=172031", 400, "denied"),
        ("/audit/events?outcome=maybe", 422, "denied"),
        ("/audit/events?from=yesterday", 422, "denied"),
        ("/audit/events?after=garbage", 422, "denied"),
        ("/audit/events?after=", 422, "denied"),
        ("/audit/events?limit=100000", 422, "denied"),
        ("/audit/analyses?from=2026-02-30", 422, "denied"),
        ("/audit/analyses?office_start=25:00", 422, "denied"),
        ("/audit/suppressions?all=1", 400, "denied"),
    ],
)
async def test_auditors_parameter_refusals_are_one_event_each(
    client: Any,
    routes: None,
    tokens: dict[str, str],
    db: Database,
    path: str,
    status: int,
    outcome: str,
) -> None:
    r = await client.get(BASE + path, headers=auth(tokens["kaga_auditor"], purpose=None))
    assert r.status_code == status, r.text
    event = await _one(db, r)
    assert (event["outcome"], event["resource_type"]) == (outcome, "audit_log")
    assert event["actor"] == "k-9001"


@pytest.mark.parametrize("unknown", ["resident", "cursor", "subjects", "page"])
async def test_an_unknown_filter_is_400_not_the_whole_log(
    client: Any,
    tokens: dict[str, str],
    db: Database,
    resident: dict[str, Any],
    unknown: str,
) -> None:
    """?resident=<id> used to return every event of the town (the filter is subject=)."""
    r = await client.get(
        f"{BASE}/audit/events?{unknown}={resident['id']}",
        headers=auth(tokens["kaga_auditor"], purpose=None),
    )
    assert r.status_code == 400, r.text
    assert "events" not in r.json()
    assert unknown in r.json()["detail"]
    event = await _one(db, r)
    assert (event["outcome"], event["reason"]) == ("denied", "unknown query parameter")
    assert resident["id"] not in str(event)


async def test_an_unknown_parameter_is_refused_after_the_caller(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """Who first: staff who may not search the log get 403, not a hint about parameters."""
    r = await client.get(f"{BASE}/audit/events?resident=x", headers=auth(tokens["kaga"]))
    assert r.status_code == 403
    event = await _one(db, r)
    assert event["outcome"] == "denied"


@pytest.mark.parametrize(
    ("query", "status"),
    [("?cursor=abc", 400), ("?after=", 422), ("?after=!!", 422), ("?limit=0", 422)],
)
async def test_the_event_feed_refuses_bad_and_unknown_parameters(
    client: Any, tokens: dict[str, str], db: Database, query: str, status: int
) -> None:
    r = await client.get(f"{BASE}/events{query}", headers=auth(tokens["kaga_admin"], purpose=None))
    assert r.status_code == status, r.text
    event = await _one(db, r)
    assert (event["action"], event["outcome"]) == ("events.read", "denied")


async def test_a_non_auditor_posting_a_suppression_gets_the_refusal_not_422(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    for who, status in (("kaga", 403), ("kaga_admin", 403), ("komatsu_admin", 404)):
        r = await client.post(f"{BASE}/audit/suppressions", json={}, headers=auth(tokens[who]))
        assert r.status_code == status, (who, r.text)
        event = await _one(db, r)
        assert (event["action"], event["outcome"]) == ("audit.suppress", "denied")
    r = await client.post(
        f"{BASE}/audit/suppressions", json={}, headers=auth(tokens["kaga_auditor"], purpose=None)
    )
    assert r.status_code == 422
    event = await _one(db, r)
    assert (event["action"], event["outcome"]) == ("audit.suppress", "denied")


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("operator", "/departments"),
        ("operator", "/staff"),
        ("operator", "/staff/k-0001"),
        ("operator", "/staff/k-0001/explain?purpose=juki.registration"),
        ("operator", "/issuer"),
        ("komatsu_admin", "/departments"),
        ("komatsu_admin", "/issuer"),
        ("kaga", "/staff"),
    ],
)
async def test_read_only_administration_refused_is_one_event(
    client: Any, tokens: dict[str, str], db: Database, who: str, path: str
) -> None:
    r = await client.get(BASE + path, headers=auth(tokens[who], purpose=None))
    assert r.status_code in (403, 404), r.text
    event = await _one(db, r)
    assert event["outcome"] == "denied"
    if who == "operator":
        assert event["actor"] == "op-1"
        assert "operator" in (event["reason"] or "")


async def test_an_unknown_town_writes_nothing(
    client: Any, routes: None, tokens: dict[str, str], db: Database
) -> None:
    # 172090 is a valid code that is not on this deployment.
    for path in ("/departments", "/audit/events?resident=1", "/residents/search"):
        method = "POST" if path.endswith("search") else "GET"
        r = await client.request(
            method, "/api/v1/tenants/172090" + path, headers=auth(tokens["kaga_admin"])
        )
        assert 400 <= r.status_code < 500, r.text
        assert await _events(db, r.headers["x-request-id"]) == []


async def test_refused_enrolment_is_recorded_within_a_budget(
    app: Litestar, client: Any, db: Database
) -> None:
    """No token on this route: anybody could fill the log, so a budget bounds it."""
    state = app.state
    saved = state.get(ANONYMOUS_GATE_KEY)
    state[ANONYMOUS_GATE_KEY] = FailedLoginGate(per_client=2, per_town=100)
    try:
        counts = []
        for body in ({}, {"code": 1}, {"x": "山田太郎"}, {}):
            r = await client.post(f"{BASE}/enrolment", json=body)
            assert r.status_code == 422
            counts.append(len(await _events(db, r.headers["x-request-id"])))
    finally:
        state[ANONYMOUS_GATE_KEY] = saved
    assert counts == [1, 1, 0, 0]


async def test_enrolment_refusal_names_no_submitted_value(
    app: Litestar, client: Any, db: Database
) -> None:
    app.state[ANONYMOUS_GATE_KEY] = FailedLoginGate()
    r = await client.post(f"{BASE}/enrolment", json={"first_admin": "山田太郎", "code": 5})
    assert r.status_code == 422
    event = await _one(db, r)
    assert (event["action"], event["actor"]) == ("tenant.enrol", "unauthenticated")
    assert "山田" not in str(event)


async def test_granted_requests_are_still_recorded_once(
    client: Any, routes: None, tokens: dict[str, str], db: Database, resident: dict[str, Any]
) -> None:
    r = await client.get(f"{BASE}/residents/{resident['id']}", headers=auth(tokens["kaga"]))
    assert r.status_code == 200
    assert (await _one(db, r))["outcome"] == "allowed"
    r = await client.get(
        f"{BASE}/audit/events?limit=1", headers=auth(tokens["kaga_auditor"], purpose=None)
    )
    assert r.status_code == 200
    assert (await _one(db, r))["action"] == "audit.query"
    # Reads that hold no personal data stay unrecorded when granted.
    for path in ("/departments", "/staff"):
        r = await client.get(BASE + path, headers=auth(tokens["kaga_admin"], purpose=None))
        assert r.status_code == 200
        assert await _events(db, r.headers["x-request-id"]) == []


async def test_a_refusal_inside_a_scope_is_not_recorded_twice(
    client: Any, tokens: dict[str, str], db: Database, resident: dict[str, Any]
) -> None:
    r = await client.get(
        f"{BASE}/residents/{resident['id']}", headers=auth(tokens["kaga"], purpose="no.such")
    )
    assert r.status_code == 400
    await _one(db, r)
    r = await client.get(f"{BASE}/residents/{uuid.uuid4()}", headers=auth(tokens["kaga"]))
    assert r.status_code == 404
    assert (await _one(db, r))["outcome"] == "not_found"


async def test_a_refused_token_stays_one_authenticate_event(
    client: Any, issuer: BuiltinIssuer, db: Database
) -> None:
    token = issuer.mint(subject="k-0001", tenant=KAGA, department="shimin", roles=["staff"])
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = await client.get(f"{BASE}/departments", headers=auth(forged))
    assert r.status_code == 401
    found = await _events(db, r.headers["x-request-id"])
    assert [e["action"] for e in found] in ([], ["authenticate"])


async def test_no_record_no_answer(
    app: Litestar, client: Any, tokens: dict[str, str], monkeypatch: Any
) -> None:
    """If the refusal cannot be recorded, the caller does not get the refusal."""
    from shared_gov.api.entry import failures

    async def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the log is down")

    monkeypatch.setattr(failures, "record_apart", broken)
    r = await client.get(f"{BASE}/departments", headers=auth(tokens["komatsu_admin"]))
    assert r.status_code == 500


async def test_too_many_enrolment_attempts_is_recorded(
    app: Litestar, client: Any, db: Database
) -> None:
    """The enrolment's own limit refuses with 403; that refusal is in the log too."""
    state = app.state
    saved = state.get(ENROLMENT_STATE_KEY), state.get(ANONYMOUS_GATE_KEY)
    state[ENROLMENT_STATE_KEY] = FailedLoginGate(per_client=1, per_town=100)
    state[ANONYMOUS_GATE_KEY] = FailedLoginGate()
    body = {"code": "x" * 20, "first_admin": "someone", "issuer": {}}
    try:
        responses = [await client.post(f"{BASE}/enrolment", json=body) for _ in range(3)]
    finally:
        state[ENROLMENT_STATE_KEY], state[ANONYMOUS_GATE_KEY] = saved
    limited = [r for r in responses if r.status_code == 403 and "too many" in r.text]
    assert limited, [r.status_code for r in responses]
    for r in responses:
        event = await _one(db, r)
        assert event["outcome"] == "denied"
        assert "someone" not in str(event["reason"])


# --- methods a route does not take (405): routing refuses them (review H-1) -----


def _unrouted_cases(resident: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(method, url, the action recorded, whether the resident is named)."""
    rid = resident["id"]
    return [
        ("HEAD", f"{BASE}/residents/{rid}", "resident.read", True),
        ("PATCH", f"{BASE}/residents/{rid}", "resident.read", True),
        ("DELETE", f"{BASE}/residents/{rid}", "resident.read", True),
        ("PATCH", f"{BASE}/staff/k-0001", "admin.staff", False),
        ("HEAD", f"{BASE}/events", "events.read", False),
        ("PATCH", f"{BASE}/issuer/pending/{uuid.uuid4()}/approve", "admin.issuer.approve", False),
    ]


@pytest.mark.parametrize("caller", ["kaga", "kaga_admin", "komatsu", "operator", None])
async def test_a_method_the_route_does_not_take_is_one_event(
    app: Litestar,
    client: Any,
    tokens: dict[str, str],
    db: Database,
    resident: dict[str, Any],
    caller: str | None,
) -> None:
    """HEAD/PATCH/DELETE where the route takes none of them: 405, and one denied event."""
    app.state[ANONYMOUS_GATE_KEY] = FailedLoginGate()
    subject = await subject_hash(db, KAGA, resident["id"])
    expected_actor = {
        "kaga": "k-0001",
        "kaga_admin": "k-admin",
        "komatsu": "m-0001",
        "operator": "op-1",
        None: "unauthenticated",
    }[caller]
    for method, url, action, names_resident in _unrouted_cases(resident):
        headers = auth(tokens[caller]) if caller else {}
        r = await client.request(method, url, headers=headers)
        where = (caller, method, url)
        assert r.status_code == 405, where
        event = await _one(db, r)
        assert event["tenant"] == KAGA, where
        assert (event["action"], event["outcome"]) == (action, "denied"), where
        assert event["actor"] == expected_actor, where
        assert "method not allowed" in (event["reason"] or ""), where
        if caller == "komatsu":
            assert event["reason"].startswith("caller from another town"), where
        if caller == "operator":
            assert "operator" in event["reason"], where
        assert event["subjects"] == ([subject] if names_resident else []), where


async def test_a_forged_token_on_a_method_the_route_does_not_take_is_one_event(
    app: Litestar, client: Any, issuer: BuiltinIssuer, db: Database, resident: dict[str, Any]
) -> None:
    app.state[ANONYMOUS_GATE_KEY] = FailedLoginGate()
    token = issuer.mint(subject="k-0001", tenant=KAGA, department="shimin", roles=["staff"])
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    r = await client.request("PATCH", f"{BASE}/residents/{resident['id']}", headers=auth(forged))
    assert r.status_code == 405
    event = await _one(db, r)
    # Never the claims of a token that did not verify.
    assert (event["actor"], event["auth_strength"]) == ("unauthenticated", "none")
    assert (event["action"], event["outcome"]) == ("resident.read", "denied")


async def test_a_suspended_admin_on_a_method_the_route_does_not_take_is_refused_as_suspended(
    client: Any, issuer: BuiltinIssuer, tokens: dict[str, str], db: Database
) -> None:
    """Suspended means refused, also where routing answers: the suspension is recorded."""
    who = "k-admin-405"
    r = await client.put(
        f"{BASE}/staff/{who}", json={"active": False}, headers=auth(tokens["kaga_admin"])
    )
    assert r.status_code == 200, r.text
    suspended = issuer.mint(subject=who, tenant=KAGA, department="somu", roles=["admin"])
    for method, path in (("PATCH", "/staff/k-0001"), ("HEAD", "/events"), ("PATCH", "/issuer")):
        r = await client.request(method, BASE + path, headers=auth(suspended))
        assert r.status_code == 405, (method, path)
        event = await _one(db, r)
        assert (event["action"], event["outcome"], event["reason"]) == (
            "authenticate",
            "denied",
            "suspended",
        )
        assert event["actor"] == who


async def test_a_path_no_route_matches_writes_nothing(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    r = await client.request("PATCH", f"{BASE}/no-such-thing", headers=auth(tokens["kaga"]))
    assert r.status_code == 404
    assert await _events(db, r.headers["x-request-id"]) == []


# --- path parameters and what a refusal may carry (review round 2, minor) -------


@pytest.mark.parametrize(
    ("method", "tail", "action"),
    [
        ("POST", "/issuer/pending/%00/approve", "admin.issuer.approve"),
        ("DELETE", "/issuer/pending/a%0Ab", "admin.issuer.cancel"),
        ("GET", "/residents/%00", "resident.read"),
        ("GET", "/households/1%00", "household.read"),
        ("PUT", "/staff/k-0001%00", "admin.staff"),
        ("GET", "/staff/k%E2%80%AE0001", "admin.staff.read"),
        ("PUT", "/departments/shimin%00", "admin.department"),
    ],
)
async def test_a_control_character_in_a_path_parameter_is_a_422_naming_it(
    client: Any, tokens: dict[str, str], db: Database, method: str, tail: str, action: str
) -> None:
    """A NUL (newline, bidi override…) in any path parameter: 422 before any handler;
    the one event records neither the character nor the value."""
    body = {"digest": "0" * 64} if "approve" in tail else {"purposes": []}
    who = "kaga" if "resid" in tail or "house" in tail else "kaga_admin"
    kwargs: dict[str, Any] = {"headers": auth(tokens[who])}
    if method in BODY_METHODS:
        kwargs["json"] = body
    r = await client.request(method, BASE + tail, **kwargs)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["detail"].startswith("invalid path parameter: "), problem
    assert problem["errors"][0]["pointer"].startswith("/path/")
    event = await _one(db, r)
    assert (event["action"], event["outcome"]) == (action, "denied")
    assert event["reason"] == problem["detail"]
    assert "\x00" not in str(event)
    assert "\u202e" not in str(event)


async def test_a_too_long_proposal_id_names_the_path_parameter(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    r = await client.post(
        f"{BASE}/issuer/pending/{'a' * 65}/approve",
        json={"digest": "0" * 64},
        headers=auth(tokens["kaga_admin"]),
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "invalid path parameter: proposal_id"
    assert "a" * 65 not in str(await _one(db, r))


async def test_a_refused_approval_records_only_a_proposal_id_that_is_one(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """Kaga's admin approving a "proposal" 山田太郎 (none is pending): the event says
    null; another town's admin gets no more than the plain reason (docs/audit.md)."""
    for who in ("kaga_admin", "komatsu_admin"):
        r = await client.post(
            f"{BASE}/issuer/pending/山田太郎/approve",
            json={"digest": "0" * 64},
            headers=auth(tokens[who]),
        )
        assert r.status_code == 404, r.text
        event = await _one(db, r)
        assert "山田" not in str(event)
    proposal = str(uuid.uuid4())
    r = await client.post(
        f"{BASE}/issuer/pending/{proposal}/approve",
        json={"digest": "0" * 64},
        headers=auth(tokens["kaga_admin"]),
    )
    assert proposal in ((await _one(db, r))["reason"] or "")


async def test_a_refused_issuer_change_records_where_it_pointed_not_what_was_written(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    body = {
        "url": "https://idp.evil.example/山田太郎?note=secret",
        "audience": "shared-gov",
        "jwks_uri": "https://user:pw@keys.evil.example:8443/鈴木一郎/jwks",
        # Refused by the town's own admin's entry (a symmetric algorithm): only a
        # caller the gate let in has what they asked for recorded.
        "algorithms": ["HS256"],
    }
    r = await client.put(f"{BASE}/issuer", json=body, headers=auth(tokens["kaga_admin"]))
    assert 400 <= r.status_code < 500, r.text
    event = await _one(db, r)
    assert event["outcome"] == "denied"
    assert "山田" not in event["reason"]
    assert "鈴木" not in event["reason"]
    assert "secret" not in event["reason"]
    assert "pw" not in event["reason"]
    assert "https://idp.evil.example" in event["reason"]
    assert "https://keys.evil.example:8443" in event["reason"]


async def test_a_refused_permission_change_records_no_unknown_purpose_text(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """Unknown purposes are whatever the sender wrote: only their number is recorded.

    Kaga's admin changing their own permissions (refused: another admin must).
    """
    r = await client.put(
        f"{BASE}/staff/k-admin",
        json={"purposes": ["juki.registration", "山田太郎"]},
        headers=auth(tokens["kaga_admin"]),
    )
    assert r.status_code == 403, r.text
    event = await _one(db, r)
    assert "山田" not in event["reason"]
    assert '"unknown_purposes":1' in event["reason"]
    assert "juki.registration" in event["reason"]
