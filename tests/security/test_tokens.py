"""Bearer-token verification on a real endpoint.

Every bad token — missing, wrong scheme, unsigned, key-confused, expired,
not yet valid, for another issuer or audience, tampered, signed by a foreign
key, lacking the claims we need, oversized or plain garbage — gets the same
401 problem+json with a ``WWW-Authenticate`` challenge, and nothing of the
token ever reaches the logs. A valid token, by contrast, gets through.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from joserfc import jwt
from joserfc.jwk import RSAKey
from litestar import Litestar
from structlog.testing import capture_logs

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from tests.auth.test_issuers import (  # the fixtures are shared, not copied
    REGISTERED,
    FakeClock,
    JwksServer,
    Route,
    TownIdp,
    clock,
    jwks_server,
    kaga_idp,
    register,
    registry_of,
    unregister,
)
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body

__all__ = ["clock", "jwks_server", "kaga_idp"]  # fixtures used by the tests below

PROBLEM_JSON = "application/problem+json"
LEEWAY = 30  # seconds, as in shared_gov.auth.verify
_DROP = object()


def _url(resident_id: str | None = None) -> str:
    return f"/api/v1/tenants/{KAGA}/residents/{resident_id or uuid.uuid4()}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _unb64json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return result


def _claims(issuer: BuiltinIssuer, **overrides: Any) -> dict[str, Any]:
    """Claims of a valid Kaga staff token; ``_DROP`` removes a claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": "k-0042",
        "tenant": KAGA,
        "dept": "shimin",
        "roles": ["staff"],
        "amr": ["pwd"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    for name, value in overrides.items():
        if value is _DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def _sign(claims: dict[str, Any], key: RSAKey, kid: str) -> str:
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, claims, key)


def _hs256(issuer: BuiltinIssuer, secret: bytes) -> str:
    """A token whose header says HS256, MACed with ``secret`` (key-confusion attack)."""
    header = _b64json({"alg": "HS256", "kid": issuer.kid, "typ": "JWT"})
    payload = _b64json(_claims(issuer))
    signing_input = f"{header}.{payload}".encode()
    mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


def _alg_none(issuer: BuiltinIssuer) -> str:
    header = _b64json({"alg": "none", "kid": issuer.kid, "typ": "JWT"})
    return f"{header}.{_b64json(_claims(issuer))}."


def _tampered(issuer: BuiltinIssuer) -> str:
    """A valid Kaga token whose payload now says Komatsu; header and signature kept."""
    header, payload, signature = _sign(_claims(issuer), issuer.key, issuer.kid).split(".")
    claims = _unb64json(payload)
    claims["tenant"] = KOMATSU
    return f"{header}.{_b64json(claims)}.{signature}"


@pytest.fixture(scope="module")
def foreign_key() -> RSAKey:
    """An RSA key the server has never seen."""
    return RSAKey.generate_key(2048, private=True)


def _bad_tokens(issuer: BuiltinIssuer, foreign: RSAKey) -> dict[str, Callable[[], str]]:
    now = int(time.time())
    public_pem = issuer.key.as_pem(private=False)
    public_n = str(issuer.key.as_dict(private=False)["n"])
    return {
        "alg_none": lambda: _alg_none(issuer),
        "hs256_public_pem": lambda: _hs256(issuer, public_pem),
        "hs256_public_jwk_n": lambda: _hs256(issuer, public_n.encode()),
        "expired": lambda: issuer.mint(
            subject="k-0042",
            tenant=KAGA,
            department="shimin",
            roles=["staff"],
            now=now - 3600,
            ttl_seconds=3600 - LEEWAY - 60,
        ),
        "nbf_in_future": lambda: issuer.mint(
            subject="k-0042",
            tenant=KAGA,
            department="shimin",
            roles=["staff"],
            extra={"nbf": now + LEEWAY + 120},
        ),
        "wrong_iss": lambda: _sign(
            _claims(issuer, iss="https://idp.evil.example"), issuer.key, issuer.kid
        ),
        "wrong_aud": lambda: _sign(_claims(issuer, aud="some-other-api"), issuer.key, issuer.kid),
        "tampered_tenant": lambda: _tampered(issuer),
        "unknown_kid_foreign_key": lambda: _sign(_claims(issuer), foreign, "unknown-kid-1"),
        "right_kid_foreign_key": lambda: _sign(_claims(issuer), foreign, issuer.kid),
        "missing_sub": lambda: _sign(_claims(issuer, sub=_DROP), issuer.key, issuer.kid),
        "staff_without_tenant": lambda: _sign(
            _claims(issuer, tenant=_DROP), issuer.key, issuer.kid
        ),
        "operator_with_tenant": lambda: issuer.mint(
            subject="op-9", tenant=KAGA, department=None, roles=["operator"]
        ),
        "over_8kb": lambda: issuer.mint(
            subject="k-0042",
            tenant=KAGA,
            department="shimin",
            roles=["staff"],
            extra={"padding": "x" * 9000},
        ),
        "garbage": lambda: "this-is-not.a-jwt-at-all",
        "rs512_not_pinned": lambda: jwt.encode(
            {"alg": "RS512", "kid": issuer.kid}, _claims(issuer), issuer.key, algorithms=["RS512"]
        ),
        "missing_exp": lambda: _sign(_claims(issuer, exp=_DROP), issuer.key, issuer.kid),
        "tenant_bad_check_digit": lambda: _sign(
            _claims(issuer, tenant="172066"), issuer.key, issuer.kid
        ),
        "roles_not_a_list": lambda: _sign(_claims(issuer, roles="staff"), issuer.key, issuer.kid),
        "no_known_role": lambda: _sign(_claims(issuer, roles=["root"]), issuer.key, issuer.kid),
        "header_not_an_object": lambda: f"WzFd.{_b64json(_claims(issuer))}.c2lnbmF0dXJl",
    }


BAD_TOKEN_CASES = [
    "alg_none",
    "hs256_public_pem",
    "hs256_public_jwk_n",
    "expired",
    "nbf_in_future",
    "wrong_iss",
    "wrong_aud",
    "tampered_tenant",
    "unknown_kid_foreign_key",
    "right_kid_foreign_key",
    "missing_sub",
    "staff_without_tenant",
    "operator_with_tenant",
    "over_8kb",
    "garbage",
    "rs512_not_pinned",
    "missing_exp",
    "tenant_bad_check_digit",
    "roles_not_a_list",
    "no_known_role",
    "header_not_an_object",
]


def _assert_401_problem(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    challenge = response.headers.get("www-authenticate")
    assert challenge is not None
    assert challenge.lower().startswith("bearer")
    body = response.json()
    assert body["status"] == 401
    assert body["type"].endswith("/unauthorized")
    assert body["title"]
    assert body["detail"]
    # Nothing about the resident leaks through a 401.
    assert "family_name" not in body


def _logged_strings(events: list[dict[str, Any]]) -> Iterator[str]:
    """Every key and value of every captured event, flattened to strings."""

    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield str(k)
                yield from walk(v)
        elif isinstance(value, list | tuple | set | frozenset):
            for v in value:
                yield from walk(v)
        else:
            yield str(value)

    for event in events:
        yield from walk(event)


def _token_parts(token: str) -> list[str]:
    """The secret-ish parts of a token that must never be logged."""
    parts = token.split(".")
    if len(parts) == 3:
        # payload and signature; long enough to be unmistakable.
        return [p for p in parts[1:] if len(p) >= 8]
    return [token]


async def test_missing_authorization_header_is_401(client: Any) -> None:
    """A request without an Authorization header gets a 401 problem with a challenge."""
    r = await client.get(_url())
    _assert_401_problem(r)


@pytest.mark.parametrize("scheme", ["Basic", "Token", "Bearer:", "Bearerx"])
async def test_non_bearer_scheme_is_401(client: Any, tokens: dict[str, str], scheme: str) -> None:
    """A valid token sent under any scheme other than Bearer is refused with 401."""
    r = await client.get(_url(), headers={"Authorization": f"{scheme} {tokens['kaga']}"})
    _assert_401_problem(r)


async def test_bearer_without_token_is_401(client: Any) -> None:
    """``Authorization: Bearer`` with nothing after it is refused with 401."""
    r = await client.get(_url(), headers={"Authorization": "Bearer "})
    _assert_401_problem(r)


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
async def test_bad_token_is_401_and_never_logged(
    client: Any, issuer: BuiltinIssuer, foreign_key: RSAKey, case: str
) -> None:
    """Each bad token gets a 401 problem+json with WWW-Authenticate; the rejection is
    logged with a reason, and no logged key or value contains any part of the token."""
    token = _bad_tokens(issuer, foreign_key)[case]()
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        r = await client.get(_url(), headers=auth(token))
    _assert_401_problem(r)
    for part in _token_parts(token):
        assert part not in r.text
    rejected = [e for e in events if e.get("event") == "auth.rejected"]
    assert rejected, f"no auth.rejected event was logged: {events}"
    assert all(e.get("reason") for e in rejected)
    logged = list(_logged_strings(events))
    for part in _token_parts(token):
        leaks = [s for s in logged if part in s]
        assert not leaks, f"token part logged for {case}"


@pytest.mark.parametrize("raw", [b"Bearer \xe9.\xe9.\xe9", b"Bearer \xff\xfe", b"Bearer a\tb"])
async def test_non_ascii_token_bytes_are_401(client: Any, raw: bytes) -> None:
    """Header bytes that cannot be a JWT (non-ASCII, control characters) are a 401,
    not a 500."""
    r = await client.get(_url(), headers={"Authorization": raw})
    _assert_401_problem(r)


async def test_over_8kb_token_is_refused_even_when_validly_signed(
    client: Any, issuer: BuiltinIssuer
) -> None:
    """The 8 KB cap applies before verification: a correctly signed but oversized
    token is still 401 and is logged as too large."""
    token = issuer.mint(
        subject="k-0042",
        tenant=KAGA,
        department="shimin",
        roles=["staff"],
        extra={"padding": "x" * 9000},
    )
    assert len(token) > 8192
    with capture_logs() as events:
        r = await client.get(_url(), headers=auth(token))
    _assert_401_problem(r)
    assert [e.get("reason") for e in events if e.get("event") == "auth.rejected"] == ["too_large"]


async def test_tokens_within_the_clock_leeway_are_accepted(
    client: Any, issuer: BuiltinIssuer
) -> None:
    """A token that expired a few seconds ago, or whose nbf is a few seconds ahead,
    is still accepted (30 s leeway for clock skew): the request reaches the
    service and gets 404 for an unknown resident, not 401."""
    now = int(time.time())
    just_expired = issuer.mint(
        subject="k-0042",
        tenant=KAGA,
        department="shimin",
        roles=["staff"],
        now=now - 600,
        ttl_seconds=600 - 5,
    )
    nbf_soon = issuer.mint(
        subject="k-0042", tenant=KAGA, department="shimin", roles=["staff"], extra={"nbf": now + 5}
    )
    for token in (just_expired, nbf_soon):
        r = await client.get(_url(), headers=auth(token))
        assert r.status_code == 404, r.text


async def test_tampered_token_is_refused_after_the_original_was_used(
    client: Any, issuer: BuiltinIssuer
) -> None:
    """Using a valid token first (so it is cached) does not let a tampered copy of it
    through: the cache is keyed by the exact token string."""
    valid = _sign(_claims(issuer), issuer.key, issuer.kid)
    ok = await client.get(_url(), headers=auth(valid))
    assert ok.status_code == 404, ok.text
    header, payload, signature = valid.split(".")
    claims = _unb64json(payload)
    claims["roles"] = ["staff", "admin"]
    r = await client.get(_url(), headers=auth(f"{header}.{_b64json(claims)}.{signature}"))
    _assert_401_problem(r)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
async def test_valid_token_gets_through(client: Any, tokens: dict[str, str], scheme: str) -> None:
    """A valid staff token (scheme matched case-insensitively, RFC 7235) reads the
    town's resident (200) and gets a plain 404 — not 401 — for an unknown id."""
    token = tokens["kaga"]
    created = await client.post(
        f"/api/v1/tenants/{KAGA}/residents", json=resident_body(), headers=auth(token)
    )
    assert created.status_code == 201, created.text
    resident_id = created.json()["id"]
    headers = {"Authorization": f"{scheme} {token}", "X-Purpose": "juki.registration"}
    r = await client.get(_url(resident_id), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == resident_id
    missing = await client.get(_url(), headers=headers)
    assert missing.status_code == 404
    assert "www-authenticate" not in missing.headers


async def test_freshly_minted_custom_token_gets_through(client: Any, issuer: BuiltinIssuer) -> None:
    """The hand-built claims used by the bad-token cases are themselves valid when
    signed by the issuer's key, so each bad case fails for its one defect only."""
    token = _sign(_claims(issuer), issuer.key, issuer.kid)
    r = await client.get(_url(), headers=auth(token))
    assert r.status_code == 404, r.text


async def test_invalid_body_without_token_is_401(client: Any) -> None:
    """Authentication comes before input validation: a well-formed but invalid body
    sent without a token gets 401, not a 422 that would describe the schema."""
    r = await client.post(
        f"/api/v1/tenants/{KAGA}/residents", json={"family_name": 1, "unknown": True}
    )
    _assert_401_problem(r)


async def test_malformed_body_without_token_is_401(client: Any) -> None:
    """An unauthenticated POST is refused with 401 before its body is read, even when
    the body is not valid JSON."""
    r = await client.post(
        f"/api/v1/tenants/{KAGA}/residents",
        content=b'{"family_name": ',
        headers={"content-type": "application/json"},
    )
    _assert_401_problem(r)


# --- tokens of a town's own issuer ---------------------------------------------
#
# Kaga registers its own IdP (a real HTTP server on 127.0.0.1 serving a JWKS and
# counting fetches). Every attack below gets the same 401 problem+json, the
# rejection is logged with a reason, and nothing of the token reaches the logs.


def _resident_url(code: str) -> str:
    return f"/api/v1/tenants/{code}/residents/{uuid.uuid4()}"


async def _assert_refused_quietly(
    client: Any, token: str, reason: str, url: str | None = None
) -> list[dict[str, Any]]:
    """401 problem+json for ``token``, one rejection logged with ``reason``, and no
    part of the token in the response or any log line."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        r = await client.get(url or _url(), headers=auth(token))
    _assert_401_problem(r)
    rejected = [e for e in events if e.get("event") == "auth.rejected"]
    assert [e.get("reason") for e in rejected] == [reason], events
    logged = list(_logged_strings(events))
    for part in _token_parts(token):
        assert part not in r.text
        assert not [s for s in logged if part in s], "token part logged"
    return events


def _town_hs256(idp: TownIdp, secret: bytes) -> str:
    """HS256 over the town's claims, keyed with its PUBLIC key (key confusion)."""
    header = _b64json({"alg": "HS256", "kid": "k1", "typ": "JWT"})
    payload = _b64json(idp.claims())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


async def test_town_token_gets_through(client: Any, kaga_idp: TownIdp) -> None:
    """Control for the cases below: a good token of Kaga's IdP reaches the service
    (404 for an unknown resident) and acts as the IdP's staff member of Kaga."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        r = await client.get(_url(), headers=auth(kaga_idp.mint("k1")))
    assert r.status_code == 404, r.text
    assert {e.get("actor") for e in events if e.get("event") == "request"} == {f"{KAGA}/ext-0042"}


async def test_town_token_claiming_another_town_is_401(client: Any, kaga_idp: TownIdp) -> None:
    """The issuer decides the town: a Kaga-IdP token whose ``tenant`` claim says
    Komatsu is refused, wherever it is sent; without the claim it acts for Kaga
    only (Komatsu's data is 404 to it)."""
    lying = kaga_idp.mint("k1", tenant=KOMATSU)
    await _assert_refused_quietly(client, lying, "tenant_mismatch", _resident_url(KOMATSU))
    await _assert_refused_quietly(client, lying, "tenant_mismatch", _resident_url(KAGA))
    honest = kaga_idp.mint("k1")
    r = await client.get(_resident_url(KOMATSU), headers=auth(honest))
    assert r.status_code == 404, r.text


async def test_token_of_a_removed_issuer_is_401(
    client: Any, tokens: dict[str, str], kaga_idp: TownIdp
) -> None:
    """Removing Kaga's issuer (DELETE) refuses its tokens on the very next request,
    even one that was verified and cached a moment before."""
    token = kaga_idp.mint("k1")
    assert (await client.get(_url(), headers=auth(token))).status_code == 404
    removed = await unregister(client, KAGA, tokens["kaga_admin"], tokens["kaga_admin2"])
    assert removed.status_code == 200
    await _assert_refused_quietly(client, token, "unknown_issuer")


async def test_issuer_removed_by_another_process_is_refused_after_its_notification(
    client: Any, db: Database, kaga_idp: TownIdp
) -> None:
    """A removal committed elsewhere (another worker, here a separate connection)
    with ``pg_notify('shared_gov_policy', town)`` reaches this process through its
    ChangeListener: the cached token is refused within moments, long before the
    registry's 60 s safety reload."""
    token = kaga_idp.mint("k1")
    assert (await client.get(_url(), headers=auth(token))).status_code == 404
    async with db.catalog() as conn:
        await conn.execute("DELETE FROM catalog.issuers WHERE tenant_code = $1", KAGA)
        await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", KAGA)
    deadline = time.monotonic() + 5
    status = 404
    while status != 401 and time.monotonic() < deadline:
        status = (await client.get(_url(), headers=auth(token))).status_code
    assert status == 401
    await _assert_refused_quietly(client, token, "unknown_issuer")


async def test_unknown_kid_refetches_at_most_once_per_30_seconds(
    client: Any, kaga_idp: TownIdp, clock: FakeClock, foreign_key: RSAKey
) -> None:
    """A forged ``kid`` is refused after at most one JWKS refetch; a second forged
    kid within 30 s triggers no fetch at all (counted on the IdP); after 30 s one
    more refetch is allowed."""
    good = kaga_idp.mint("k1")
    assert (await client.get(_url(), headers=auth(good))).status_code == 404
    assert kaga_idp.fetches() == 1
    clock.advance(31)
    first = kaga_idp.mint("forged-1", key=foreign_key)
    await _assert_refused_quietly(client, first, "unknown_kid")
    assert kaga_idp.fetches() == 2
    second = kaga_idp.mint("forged-2", key=foreign_key)
    await _assert_refused_quietly(client, second, "unknown_kid")
    await _assert_refused_quietly(client, first, "unknown_kid")
    assert kaga_idp.fetches() == 2
    clock.advance(29)
    await _assert_refused_quietly(client, kaga_idp.mint("forged-3", key=foreign_key), "unknown_kid")
    assert kaga_idp.fetches() == 2
    clock.advance(2)
    await _assert_refused_quietly(client, kaga_idp.mint("forged-4", key=foreign_key), "unknown_kid")
    assert kaga_idp.fetches() == 3
    # The real key still works throughout.
    assert (await client.get(_url(), headers=auth(kaga_idp.mint("k1")))).status_code == 404


async def test_forged_kids_on_a_cold_cache_cost_one_fetch(
    client: Any, kaga_idp: TownIdp, foreign_key: RSAKey
) -> None:
    """Before any key was fetched, a burst of forged kids causes exactly one fetch."""
    for i in range(5):
        token = kaga_idp.mint(f"forged-{i}", key=foreign_key)
        await _assert_refused_quietly(client, token, "unknown_kid")
    assert kaga_idp.fetches() == 1


async def test_right_kid_wrong_key_is_401(
    client: Any, kaga_idp: TownIdp, foreign_key: RSAKey
) -> None:
    """A token naming the IdP's real kid but signed by another key fails the signature."""
    token = kaga_idp.mint("k1", key=foreign_key)
    await _assert_refused_quietly(client, token, "BadSignatureError")


@pytest.mark.parametrize("secret", ["pem", "jwk_n"])
async def test_hs256_signed_with_the_town_public_key_is_401(
    client: Any, kaga_idp: TownIdp, secret: str
) -> None:
    """HS256 "signed" with the town IdP's public key (as PEM or as the JWK modulus)
    is refused on the pinned algorithm list, before any key is fetched."""
    key = kaga_idp.keys["k1"]
    raw = key.as_pem(private=False) if secret == "pem" else str(key.as_dict()["n"]).encode()
    await _assert_refused_quietly(client, _town_hs256(kaga_idp, raw), "alg_not_allowed")
    assert kaga_idp.fetches() == 0


@pytest.mark.parametrize("alg", ["RS512", "PS256", "none"])
async def test_alg_outside_the_issuers_pinned_list_is_401(
    client: Any, kaga_idp: TownIdp, alg: str
) -> None:
    """Kaga pinned RS256: a token correctly signed with its key under RS512 or PS256,
    or an unsigned ``alg: none`` token, is refused without fetching keys."""
    if alg == "none":
        header = _b64json({"alg": "none", "kid": "k1", "typ": "JWT"})
        token = f"{header}.{_b64json(kaga_idp.claims())}."
    else:
        token = kaga_idp.mint("k1", alg=alg)
    await _assert_refused_quietly(client, token, "alg_not_allowed")
    assert kaga_idp.fetches() == 0


async def test_issuer_pinning_es256_refuses_rs256(
    client: Any, tokens: dict[str, str], jwks_server: JwksServer
) -> None:
    """Pinning is per issuer: a town that pinned ES256 gets RS256 tokens refused."""
    idp = TownIdp(jwks_server, KAGA)
    idp.add_key("k1", 0)
    idp.publish("k1")
    r = await register(
        client, tokens["kaga_admin"], idp, approver=tokens["kaga_admin2"], algorithms=["ES256"]
    )
    assert r.status_code in REGISTERED, r.text
    try:
        await _assert_refused_quietly(client, idp.mint("k1"), "alg_not_allowed")
    finally:
        await unregister(client, KAGA, tokens["kaga_admin"], tokens["kaga_admin2"])


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 3600},
        {"aud": "shared-gov"},
        {"iss": None},
        {"roles": ["operator"]},
    ],
    ids=["expired", "builtin_audience", "no_iss", "operator_only"],
)
async def test_bad_town_tokens_are_401(
    client: Any, kaga_idp: TownIdp, overrides: dict[str, Any]
) -> None:
    """Expired, for another audience, without ``iss`` (so no issuer can be chosen),
    or granting only ``operator`` (never from a town's IdP): all 401."""
    token = kaga_idp.mint("k1", **overrides)
    with capture_logs() as events:
        r = await client.get(_url(), headers=auth(token))
    _assert_401_problem(r)
    assert [e.get("event") for e in events].count("auth.rejected") == 1
    for part in _token_parts(token):
        assert not [s for s in _logged_strings(events) if part in s]


@pytest.mark.parametrize(
    ("route", "error"),
    [(Route(status=500, body=b"{}"), "http_500"), (Route(delay=1.0), "timeout")],
    ids=["http_500", "timeout"],
)
async def test_jwks_fetch_failure_is_401_not_500(
    app: Litestar,
    client: Any,
    tokens: dict[str, str],
    jwks_server: JwksServer,
    monkeypatch: pytest.MonkeyPatch,
    route: Route,
    error: str,
) -> None:
    """When the IdP answers 500 or too slowly, the token gets 401 (never 500) within
    the fetch deadline, and the failure is logged with its kind only."""
    monkeypatch.setattr(registry_of(app).policy, "timeout", 0.3)
    idp = TownIdp(jwks_server, KAGA)
    idp.add_key("k1", 0)
    jwks_server.serve(idp.path, route)
    r = await register(client, tokens["kaga_admin"], idp, approver=tokens["kaga_admin2"])
    assert r.status_code in REGISTERED, r.text
    try:
        started = time.monotonic()
        events = await _assert_refused_quietly(client, idp.mint("k1"), "jwks_unavailable")
        assert time.monotonic() - started < 0.9
        failed = [e for e in events if e.get("event") == "auth.jwks_fetch_failed"]
        assert [(e["issuer_tenant"], e["error"]) for e in failed] == [(KAGA, error)]
        assert idp.fetches() == 1
    finally:
        await unregister(client, KAGA, tokens["kaga_admin"], tokens["kaga_admin2"])


async def test_deeply_nested_unverified_payload_is_401(client: Any) -> None:
    """The issuer is chosen from claims read before the signature is checked; a
    payload nested 1500 deep (under 8 KB, beyond the JSON parser's recursion limit)
    is a 401, not a 500."""
    nested = "[" * 1500 + "]" * 1500
    token = f"{_b64json({'alg': 'RS256', 'kid': 'k1'})}.{_b64(nested.encode())}.c2lnbmF0dXJl"
    assert len(token) < 8192
    await _assert_refused_quietly(client, token, "malformed")
