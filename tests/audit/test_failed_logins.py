"""Failed logins: a refused bearer token aimed at one of our towns leaves a denied
``authenticate`` event in that town's log; anything else leaves a warning log
line. The 401 itself is unchanged, recording is rate limited per client address
and town, and nothing of the token is ever written anywhere."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import structlog
from joserfc import jwt
from litestar import Litestar
from structlog.testing import capture_logs

from shared_gov import errors
from shared_gov.api.pipeline import BearerAuthenticationMiddleware
from shared_gov.auth.failures import FailedLoginGate
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from shared_gov.messages import PLATFORM
from tests.auth.test_issuers import FakeClock, TownIdp, jwks_server, kaga_idp, rsa_key
from tests.conftest import KAGA, KOMATSU, auth
from tests.security.test_tokens import _logged_strings, _token_parts

__all__ = ["jwks_server", "kaga_idp"]  # fixtures used by the tests below

GATE = BearerAuthenticationMiddleware.GATE_STATE_KEY
NAHA = "472018"
"""A valid town code (那覇市) that no test onboards (tests/domains/residents/test_transfer.py
onboards 札幌市 011002, so a town chosen from it would depend on the order tests run in)."""


def _url(code: str = KAGA) -> str:
    return f"/api/v1/tenants/{code}/residents/{uuid.uuid4()}"


@pytest.fixture
def gate(app: Litestar, client: Any) -> Iterator[FailedLoginGate]:
    """A fresh gate with roomy limits, so other tests' failures do not count here."""
    previous = app.state.get(GATE)
    fresh = FailedLoginGate(per_client=1000, per_town=1000)
    app.state[GATE] = fresh
    yield fresh
    app.state[GATE] = previous if previous is not None else FailedLoginGate()


@pytest.fixture
async def elsewhere(app: Litestar, client: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client connecting from 192.0.2.7 (the app's lifespan is the session client's)."""
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c


async def _events(db: Database, request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE client_request_id = $1 ORDER BY occurred_at",
            request_id,
        )
    return [dict(r) for r in rows]


def _forged(issuer: BuiltinIssuer) -> str:
    """A Kaga staff token of the built-in issuer whose signature is another token's."""
    token = issuer.mint(subject="k-0042", tenant=KAGA, department="shimin", roles=["staff"])
    other = issuer.mint(subject="k-0043", tenant=KAGA, department="shimin", roles=["staff"])
    header, payload, _ = token.split(".")
    return f"{header}.{payload}.{other.split('.')[2]}"


def _foreign(**claims: Any) -> str:
    """A well-formed token of an issuer nobody registered."""
    now = int(time.time())
    body = {
        "iss": "https://idp.unknown.example",
        "aud": "shared-gov",
        "sub": "k-0042",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode({"alg": "RS256", "kid": "x1"}, body, rsa_key(0))


async def _attempt(
    client: Any, token: str | None, request_id: str, code: str = KAGA
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    headers = {"X-Request-ID": request_id}
    if token is not None:
        headers.update(auth(token))
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = await client.get(_url(code), headers=headers)
    return response, logs


def _token_sentence(detail: str) -> bool:
    """Whether ``detail`` is one of the catalogue's sentences for a refused token."""
    for entry in PLATFORM.entries.values():
        if not entry.id.startswith("sg.token."):
            continue
        pattern = re.escape(entry.en)
        for name in entry.placeholders:
            pattern = pattern.replace(re.escape("{" + name + "}"), ".+")
        if re.fullmatch(pattern, detail):
            return True
    return False


def _assert_unchanged_401(response: httpx.Response) -> None:
    """The 401 every refused token got before failed logins were recorded, but for
    ``detail``: one of the fixed sentences saying which check failed."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    body = response.json()
    assert {k: v for k, v in body.items() if k != "detail"} == {
        k: v for k, v in errors.unauthorized().problem().items() if k != "detail"
    }
    assert _token_sentence(body["detail"]), body["detail"]


def _assert_no_token(token: str, *where: Any) -> None:
    flat = list(_logged_strings([{"x": w} for w in where]))
    for part in _token_parts(token):
        assert not [s for s in flat if part in s], "a part of the token was written"


def _failed(logs: list[dict[str, Any]], name: str = "auth.failed") -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == name]


async def test_forged_signature_is_recorded_in_the_towns_log(
    client: Any, issuer: BuiltinIssuer, db: Database, gate: FailedLoginGate
) -> None:
    """A built-in token naming Kaga with a signature that does not verify: the same
    401 as ever, and one denied ``authenticate`` event in Kaga's log saying
    "bad signature", from the client's address, by nobody we know."""
    token = _forged(issuer)
    response, logs = await _attempt(client, token, "fl-forged")
    _assert_unchanged_401(response)
    (event,) = await _events(db, "fl-forged")
    assert event["tenant"] == KAGA
    assert event["action"] == "authenticate"
    assert event["resource_type"] == "token"
    assert event["outcome"] == "denied"
    assert event["reason"] == "bad signature"
    assert event["actor"] == "unauthenticated"
    assert event["actor_tenant"] is None
    assert event["roles"] == []
    assert event["auth_strength"] == "none"
    assert event["client_addr"] == "127.0.0.1"
    assert event["subjects"] == []
    assert event["fields"] == []
    # The claims are unverified: the token's subject and department are not recorded.
    assert "k-0042" not in repr(event)
    assert "shimin" not in repr(event)
    assert not _failed(logs)
    _assert_no_token(token, event, logs)


@pytest.mark.parametrize(
    ("shift", "reason"), [(-3600, "expired"), (3600, "not yet valid")], ids=["exp", "nbf"]
)
async def test_expired_or_early_token_says_so(
    client: Any,
    issuer: BuiltinIssuer,
    db: Database,
    gate: FailedLoginGate,
    shift: int,
    reason: str,
) -> None:
    """A genuine Kaga token used an hour after it expired, or an hour before it is
    valid: the reason tells which (a stolen old token, a client's clock)."""
    token = issuer.mint(
        subject="k-0042",
        tenant=KAGA,
        department="shimin",
        roles=["staff"],
        now=int(time.time()) + shift,
        ttl_seconds=600,
    )
    request_id = f"fl-time-{reason[:3]}"
    response, logs = await _attempt(client, token, request_id)
    _assert_unchanged_401(response)
    (event,) = await _events(db, request_id)
    assert (event["tenant"], event["reason"], event["outcome"]) == (KAGA, reason, "denied")
    _assert_no_token(token, event, logs)


async def test_a_town_issuers_refusal_lands_in_that_towns_log(
    client: Any, db: Database, gate: FailedLoginGate, kaga_idp: TownIdp
) -> None:
    """Kaga's own IdP names the town even without a ``tenant`` claim: a token
    signed with a key Kaga's IdP never published is "unknown key" in Kaga's log,
    also when it is sent to Komatsu's URL."""
    kaga_idp.add_key("k9", 1)
    token = kaga_idp.mint("k9")
    response, logs = await _attempt(client, token, "fl-town-kid", KOMATSU)
    _assert_unchanged_401(response)
    (event,) = await _events(db, "fl-town-kid")
    assert (event["tenant"], event["reason"]) == (KAGA, "unknown key")
    _assert_no_token(token, event, logs)


async def test_unknown_issuer_without_a_town_is_a_log_line_only(
    client: Any, db: Database, gate: FailedLoginGate
) -> None:
    """An issuer nobody registered, no ``tenant`` claim: no town to tell, so no
    event anywhere; a warning line with the kind and the client address only."""
    token = _foreign()
    response, logs = await _attempt(client, token, "fl-unknown-iss")
    _assert_unchanged_401(response)
    assert await _events(db, "fl-unknown-iss") == []
    (line,) = _failed(logs)
    assert line["log_level"] == "warning"
    assert (line["kind"], line["client_addr"]) == ("unknown issuer", "127.0.0.1")
    assert set(line) <= {
        "event",
        "log_level",
        "kind",
        "client_addr",
        "request_id",
        "client_request_id",
        "tenant",
    }
    _assert_no_token(token, logs)


async def test_unknown_issuer_naming_a_town_is_recorded_there(
    client: Any, db: Database, gate: FailedLoginGate
) -> None:
    """The same foreign token with ``tenant: Komatsu`` is aimed at Komatsu: its
    auditors see it (wherever it was sent), Kaga's do not."""
    token = _foreign(tenant=KOMATSU)
    response, logs = await _attempt(client, token, "fl-unknown-iss-town")
    _assert_unchanged_401(response)
    (event,) = await _events(db, "fl-unknown-iss-town")
    assert (event["tenant"], event["reason"]) == (KOMATSU, "unknown issuer")
    assert not _failed(logs)
    _assert_no_token(token, event, logs)


async def test_a_town_not_on_this_deployment_is_a_log_line_only(
    client: Any, issuer: BuiltinIssuer, db: Database, gate: FailedLoginGate
) -> None:
    """A well-formed code of a town that is not onboarded here records nothing."""
    token = issuer.mint(subject="s-1", tenant=NAHA, department="shimin", roles=["staff"])
    forged = ".".join([*token.split(".")[:2], _forged(issuer).split(".")[2]])
    response, logs = await _attempt(client, forged, "fl-other-town", NAHA)
    _assert_unchanged_401(response)
    assert await _events(db, "fl-other-town") == []
    assert [(e["kind"], e["client_addr"]) for e in _failed(logs)] == [
        ("bad signature", "127.0.0.1")
    ]


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (None, "missing token"),
        ("Bearer ", "missing token"),
        ("Basic a2FnYTpwdw==", "not a bearer token"),
    ],
)
async def test_missing_or_non_bearer_header_is_a_log_line_only(
    client: Any, db: Database, gate: FailedLoginGate, header: str | None, kind: str
) -> None:
    request_id = f"fl-header-{uuid.uuid4().hex[:8]}"
    headers = {"X-Request-ID": request_id}
    if header is not None:
        headers["Authorization"] = header
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        response = await client.get(_url(), headers=headers)
    _assert_unchanged_401(response)
    assert await _events(db, request_id) == []
    assert [(e["kind"], e["client_addr"]) for e in _failed(logs)] == [(kind, "127.0.0.1")]
    assert "a2FnYTpwdw" not in repr(logs)


async def test_recording_is_rate_limited_per_client_and_town(
    app: Litestar,
    client: Any,
    elsewhere: httpx.AsyncClient,
    issuer: BuiltinIssuer,
    db: Database,
) -> None:
    """At most ``per_client`` events per address and town per window: the rest are
    suppressed (still 401), the first suppression is logged at once and the
    count when the window is over. Another address has its own allowance, and
    the limit starts afresh in the next window."""
    clock = FakeClock()
    limited = FailedLoginGate(per_client=3, per_town=1000, window=60, clock=clock)
    previous = app.state.get(GATE)
    app.state[GATE] = limited
    token = _forged(issuer)
    run = uuid.uuid4().hex[:8]
    try:
        with capture_logs() as logs:
            for i in range(5):
                response = await client.get(
                    _url(), headers={**auth(token), "X-Request-ID": f"fl-rl-{run}-{i}"}
                )
                _assert_unchanged_401(response)
            response = await elsewhere.get(
                _url(), headers={**auth(token), "X-Request-ID": f"fl-rl-{run}-other"}
            )
            _assert_unchanged_401(response)
            clock.advance(61)
            response = await client.get(
                _url(), headers={**auth(token), "X-Request-ID": f"fl-rl-{run}-later"}
            )
            _assert_unchanged_401(response)
    finally:
        app.state[GATE] = previous if previous is not None else FailedLoginGate()
    recorded = [bool(await _events(db, f"fl-rl-{run}-{i}")) for i in range(5)]
    assert recorded == [True, True, True, False, False]
    assert [e["client_addr"] for e in await _events(db, f"fl-rl-{run}-other")] == ["192.0.2.7"]
    assert len(await _events(db, f"fl-rl-{run}-later")) == 1
    assert limited.suppressed_total == 2
    (limited_line,) = _failed(logs, "auth.failed.limited")
    assert (limited_line["client_addr"], limited_line["tenant"]) == ("127.0.0.1", KAGA)
    (suppressed,) = _failed(logs, "auth.failed.suppressed")
    assert (suppressed["client_addr"], suppressed["tenant"], suppressed["count"]) == (
        "127.0.0.1",
        KAGA,
        2,
    )
    _assert_no_token(token, logs)


async def test_recording_is_rate_limited_per_town(
    app: Litestar, client: Any, elsewhere: httpx.AsyncClient, issuer: BuiltinIssuer, db: Database
) -> None:
    """Many addresses together get at most ``per_town`` events per town and window."""
    limited = FailedLoginGate(per_client=1000, per_town=2, window=60, clock=FakeClock())
    previous = app.state.get(GATE)
    app.state[GATE] = limited
    token = _forged(issuer)
    run = uuid.uuid4().hex[:8]
    try:
        with capture_logs() as logs:
            for i, c in enumerate((client, elsewhere, client, elsewhere)):
                r = await c.get(_url(), headers={**auth(token), "X-Request-ID": f"fl-rt-{run}-{i}"})
                _assert_unchanged_401(r)
    finally:
        app.state[GATE] = previous if previous is not None else FailedLoginGate()
    assert [len(await _events(db, f"fl-rt-{run}-{i}")) for i in range(4)] == [1, 1, 0, 0]
    (line,) = _failed(logs, "auth.failed.limited")
    assert line["tenant"] == KAGA
    assert "client_addr" not in line


async def test_log_lines_are_rate_limited_too(app: Litestar, client: Any, db: Database) -> None:
    """Requests without a token cannot flood the log either."""
    limited = FailedLoginGate(per_client=2, per_town=1000, window=60, clock=FakeClock())
    previous = app.state.get(GATE)
    app.state[GATE] = limited
    try:
        with capture_logs() as logs:
            for _ in range(4):
                _assert_unchanged_401(await client.get(_url()))
    finally:
        app.state[GATE] = previous if previous is not None else FailedLoginGate()
    assert len(_failed(logs)) == 2
    assert len(_failed(logs, "auth.failed.limited")) == 1
    assert limited.suppressed_total == 2


def test_gate_windows_are_bounded_in_number() -> None:
    """A flood of distinct addresses keeps at most ``max_keys`` client windows."""
    gate = FailedLoginGate(per_client=1, per_town=10**6, max_keys=100, clock=FakeClock())
    for i in range(1000):
        assert gate.admit(f"10.0.{i // 250}.{i % 250}", KAGA)
    assert len(gate._clients) <= 101


async def test_analyses_count_failed_logins_per_client_address(
    client: Any,
    elsewhere: httpx.AsyncClient,
    tokens: dict[str, str],
    issuer: BuiltinIssuer,
    gate: FailedLoginGate,
) -> None:
    """Five refused tokens from one address are a ``failed_logins`` finding with the
    address, the count and the reasons; they are not lumped into repeated denials."""
    token = _forged(issuer)
    for i in range(5):
        r = await elsewhere.get(_url(), headers={**auth(token), "X-Request-ID": f"fl-an-{i}"})
        assert r.status_code == 401
    now = time.time()
    window = {
        "from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3600)),
        "to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3600)),
    }
    r = await client.get(
        f"/api/v1/tenants/{KAGA}/audit/analyses",
        params=window,
        headers=auth(tokens["kaga_auditor"], "kansa.audit"),
    )
    assert r.status_code == 200, r.text
    report = r.json()
    (finding,) = [f for f in report["failed_logins"] if f["client_addr"] == "192.0.2.7"]
    assert finding["failures"] >= 5
    assert "bad signature" in finding["reasons"]
    assert "action=authenticate" in finding["query"]
    assert not [d for d in report["repeated_denials"] if d["actor"] == "unauthenticated"]


async def test_with_auditing_off_nothing_is_recorded(
    app: Litestar,
    client: Any,
    issuer: BuiltinIssuer,
    db: Database,
    gate: FailedLoginGate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``SHARED_GOV_AUDIT=0`` (benchmarks' baseline): a log line instead of an event."""
    svc = app.state.services
    monkeypatch.setattr(svc, "settings", dataclasses.replace(svc.settings, audit=False))
    response, logs = await _attempt(client, _forged(issuer), "fl-audit-off")
    _assert_unchanged_401(response)
    assert await _events(db, "fl-audit-off") == []
    assert [e["kind"] for e in _failed(logs)] == ["bad signature"]
