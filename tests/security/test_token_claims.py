"""Attacks with token claims that are not printable text, and with tokens that
(almost) never expire, through the HTTP API.

Each refused token gets the usual 401 and leaves a denied ``authenticate``
event in the town's log (``reason`` says which check failed) — never a 500,
never an actor whose control characters were stripped away.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar

from shared_gov.api.pipeline import BearerAuthenticationMiddleware
from shared_gov.auth.failures import FailedLoginGate
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from tests.conftest import KAGA, auth
from tests.security.test_tokens import _DROP, _claims, _sign

GATE = BearerAuthenticationMiddleware.GATE_STATE_KEY
HOUR = 3600


@pytest.fixture
def gate(app: Litestar, client: Any) -> Iterator[FailedLoginGate]:
    """Roomy limits, so that other tests' failures do not suppress these records."""
    previous = app.state.get(GATE)
    app.state[GATE] = FailedLoginGate(per_client=1000, per_town=1000)
    yield app.state[GATE]
    app.state[GATE] = previous if previous is not None else FailedLoginGate()


async def _events(db: Database, client_request_id: str) -> list[dict[str, Any]]:
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT * FROM audit.events WHERE client_request_id = $1 ORDER BY occurred_at",
            client_request_id,
        )
    return [dict(r) for r in rows]


async def _refused(client: Any, db: Database, token: str, reason: str) -> None:
    """The token gets a 401 and exactly one denied authenticate event in Kaga's log."""
    rid = f"claims-{uuid.uuid4().hex[:12]}"
    r = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/{uuid.uuid4()}",
        headers=auth(token, **{"X-Request-ID": rid}),
    )
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    (event,) = await _events(db, rid)
    assert event["tenant"] == KAGA
    assert (event["action"], event["outcome"]) == ("authenticate", "denied")
    assert event["actor"] == "unauthenticated"
    assert event["reason"] == reason


CONTROL = ["\u0000", "\u0007", "\n", "\u001b", "\u007f", "\u200b\u2028"]


@pytest.mark.parametrize("char", CONTROL, ids=lambda c: f"U+{ord(c[-1]):04X}")
@pytest.mark.parametrize(
    "claim",
    [
        {"sub": "a{c}b"},
        {"dept": "shi{c}min"},
        {"roles": ["staff", "sta{c}ff"]},
        {"roles": ["staff{c}"]},
        {"amr": ["pwd", "o{c}tp"]},
    ],
    ids=["sub", "dept", "roles-extra", "roles-only", "amr"],
)
async def test_control_characters_in_a_claim_are_refused_and_audited(
    client: Any, issuer: BuiltinIssuer, db: Database, gate: FailedLoginGate, claim: Any, char: str
) -> None:
    ((name, template),) = claim.items()
    if isinstance(template, list):
        value: Any = [v.format(c=char) for v in template]
    else:
        value = template.format(c=char)
    token = _sign(_claims(issuer, **{name: value}), issuer.key, issuer.kid)
    await _refused(client, db, token, "non-printable claim")


async def test_a_nul_subject_never_becomes_another_actor(
    client: Any, issuer: BuiltinIssuer, db: Database, gate: FailedLoginGate
) -> None:
    """``a\\u0000b`` was recorded as the actor ``ab``: now nothing acts as anybody."""
    token = _sign(_claims(issuer, sub="k-00\u000042"), issuer.key, issuer.kid)
    await _refused(client, db, token, "non-printable claim")
    async with db.catalog() as conn:
        framed = await conn.fetchval(
            "SELECT count(*) FROM audit.events WHERE actor IN ('k-0042', '172065/k-0042') "
            "AND occurred_at > now() - interval '1 minute' AND action <> 'authenticate'"
        )
    assert framed == 0


async def test_a_nul_in_the_tenant_claim_is_a_401_not_a_500(
    client: Any, issuer: BuiltinIssuer, gate: FailedLoginGate
) -> None:
    token = _sign(_claims(issuer, tenant="1720\u000065"), issuer.key, issuer.kid)
    r = await client.get(f"/api/v1/tenants/{KAGA}/residents/{uuid.uuid4()}", headers=auth(token))
    assert r.status_code == 401, r.text


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": 95_000_000_000_000_000_000},  # the year 3 x 10^12
        {"exp": 2**64 + 7},
        {"exp": 1e300},
        # Relative times (seconds from now) are turned into instants when the
        # test runs, not when it is collected: a long run must not expire them.
        {"exp": ("now", 13 * HOUR)},  # iat now, 13 h
        {"iat": _DROP, "nbf": _DROP, "exp": ("now", 13 * HOUR)},
        {"iat": ("now", -13 * HOUR), "nbf": _DROP, "exp": ("now", 600)},
    ],
    ids=["year-3e12", "2^64", "float-1e300", "13h", "13h-without-iat", "iat-13h-ago"],
)
async def test_tokens_that_live_too_long_are_refused_and_audited(
    client: Any, issuer: BuiltinIssuer, db: Database, gate: FailedLoginGate, overrides: Any
) -> None:
    now = int(time.time())
    claims = {
        k: now + v[1] if isinstance(v, tuple) and v[:1] == ("now",) else v
        for k, v in overrides.items()
    }
    token = _sign(_claims(issuer, **claims), issuer.key, issuer.kid)
    await _refused(client, db, token, "lifetime too long")


async def test_an_infinite_exp_is_an_invalid_claim(
    client: Any, issuer: BuiltinIssuer, db: Database, gate: FailedLoginGate
) -> None:
    now = int(time.time())
    # JSON has no Infinity, but Python's parser reads 1e999 as one: sign such a payload.
    from joserfc import jws

    payload = (
        f'{{"iss":"{issuer.issuer}","aud":"{issuer.audience}","sub":"k-0042","tenant":"{KAGA}",'
        f'"dept":"shimin","roles":["staff"],"iat":{now},"exp":1e999}}'
    )
    token = jws.serialize_compact({"alg": "RS256", "kid": issuer.kid}, payload.encode(), issuer.key)
    await _refused(client, db, token, "invalid claim")


async def test_lifetimes_within_the_maximum_pass(client: Any, issuer: BuiltinIssuer) -> None:
    now = int(time.time())
    staff = _sign(_claims(issuer, exp=now + 11 * HOUR), issuer.key, issuer.kid)
    no_iat = _sign(_claims(issuer, iat=_DROP, exp=now + 11 * HOUR), issuer.key, issuer.kid)
    integration = _sign(
        _claims(issuer, roles=["integration"], dept=_DROP, exp=now + 20 * HOUR),
        issuer.key,
        issuer.kid,
    )
    url = f"/api/v1/tenants/{KAGA}/residents/{uuid.uuid4()}"
    for token in (staff, no_iat):
        assert (await client.get(url, headers=auth(token))).status_code == 404
    # An integration's machine token may live up to 24 h (not 12 h).
    r = await client.get(f"/api/v1/tenants/{KAGA}/events", headers=auth(integration, purpose=None))
    assert r.status_code != 401, r.text
    too_long = _sign(
        _claims(issuer, roles=["integration"], dept=_DROP, exp=now + 25 * HOUR),
        issuer.key,
        issuer.kid,
    )
    r = await client.get(f"/api/v1/tenants/{KAGA}/events", headers=auth(too_long, purpose=None))
    assert r.status_code == 401
