"""Towns' own OpenID Connect issuers: the ``/api/v1/tenants/{code}/issuer`` API,
the in-memory issuer registry, JWKS fetching and key rotation.

A real HTTP server on 127.0.0.1 (a ``http.server`` thread on an ephemeral
port) plays the town's IdP: it serves a JWKS the test can rotate, and counts
every fetch. The helpers here are also used by ``tests/security/test_tokens.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import msgspec
import pytest
import structlog
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from litestar import Litestar
from structlog.testing import capture_logs

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.auth.registry import (
    FetchPolicy,
    IssuerRegistry,
    JwksError,
    JwksSource,
    fetch_jwks,
)
from shared_gov.auth.verify import TokenVerifier
from shared_gov.checkdigits import lgcode_check_digit
from shared_gov.db import Database
from shared_gov.errors import DomainError
from shared_gov.settings import Settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import IssuerConfig, load_manifest
from tests.conftest import KAGA, KOMATSU, TENANTS_DIR, auth

# --- the test IdP -----------------------------------------------------------


@dataclasses.dataclass
class Route:
    """What the server answers on one path."""

    body: bytes = b'{"keys": []}'
    status: int = 200
    delay: float = 0.0


class JwksServer:
    """A threaded HTTP server on 127.0.0.1 serving JWKS documents by path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer._lock:
                    outer.hits[self.path] += 1
                    route = outer.routes.get(self.path)
                if route is None:
                    route = Route(body=b"not found", status=404)
                if route.delay:
                    time.sleep(route.delay)
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve(self, path: str, route: Route) -> None:
        with self._lock:
            self.routes[path] = route

    def fetches(self, path: str) -> int:
        with self._lock:
            return self.hits[path]


_KEY_POOL: list[RSAKey] = []


def rsa_key(index: int) -> RSAKey:
    """One of a few RSA keys, generated once per session (kids are set per test)."""
    while len(_KEY_POOL) <= index:
        _KEY_POOL.append(RSAKey.generate_key(2048, private=True))
    return _KEY_POOL[index]


def public_jwk(key: RSAKey | ECKey, kid: str) -> dict[str, Any]:
    public: dict[str, Any] = dict(key.as_dict(private=False))
    public.update({"kid": kid, "use": "sig"})
    return public


class TownIdp:
    """A town's identity provider: signing keys by kid, a JWKS path, an issuer URL."""

    def __init__(self, server: JwksServer, tenant: str, **config: Any) -> None:
        tag = secrets.token_hex(4)
        self.server = server
        self.tenant = tenant
        self.path = f"/{tenant}/{tag}/jwks.json"
        self.issuer = f"https://idp-{tag}.{tenant}.example"
        self.audience = f"shared-gov-{tenant}"
        self.keys: dict[str, RSAKey] = {}
        self.extra_config = config

    @property
    def jwks_uri(self) -> str:
        return self.server.base_url + self.path

    def add_key(self, kid: str, index: int) -> RSAKey:
        self.keys[kid] = rsa_key(index)
        return self.keys[kid]

    def publish(self, *kids: str) -> None:
        """Serve exactly these keys (a rotation drops the others)."""
        document = {"keys": [public_jwk(self.keys[k], k) for k in kids]}
        self.server.serve(self.path, Route(body=json.dumps(document).encode()))

    def fetches(self) -> int:
        return self.server.fetches(self.path)

    def config(self, **overrides: Any) -> dict[str, Any]:
        """The PUT body registering this IdP."""
        body: dict[str, Any] = {
            "url": self.issuer,
            "audience": self.audience,
            "jwks_uri": self.jwks_uri,
            "algorithms": ["RS256"],
            **self.extra_config,
        }
        body.update(overrides)
        return {k: v for k, v in body.items() if v is not None}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "ext-0042",
            "dept": "shimin",
            "roles": ["staff"],
            "amr": ["pwd", "mfa"],
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": str(uuid.uuid4()),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(self, kid: str, *, alg: str = "RS256", key: Any = None, **overrides: Any) -> str:
        header = {"alg": alg, "kid": kid, "typ": "JWT"}
        return jwt.encode(header, self.claims(**overrides), key or self.keys[kid], algorithms=[alg])


class FakeClock:
    """A monotonic clock the test moves forward."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def registry_of(app: Litestar) -> IssuerRegistry:
    registry = app.state.services.verifier.registry
    assert isinstance(registry, IssuerRegistry)
    return registry


def issuer_url(code: str) -> str:
    return f"/api/v1/tenants/{code}/issuer"


def resident_url(code: str = KAGA) -> str:
    return f"/api/v1/tenants/{code}/residents/{uuid.uuid4()}"


def pending_url(code: str, proposal_id: str | None = None, tail: str = "") -> str:
    base = f"{issuer_url(code)}/pending"
    return base if proposal_id is None else f"{base}/{proposal_id}{tail}"


async def approve(client: Any, code: str, proposal: dict[str, Any], approver: str) -> Any:
    """The second admin approves ``proposal`` (as read from a 202 or GET …/pending)."""
    return await client.post(
        pending_url(code, proposal["id"], "/approve"),
        json={"digest": proposal["digest"]},
        headers=auth(approver, None),
    )


async def four_eyes(client: Any, code: str, proposed: Any, approver: str) -> Any:
    """Approve the proposal a PUT/DELETE answered with (202); any other answer as is.

    An issuer change takes two admins of the town: one proposes, a different one
    approves. A town that is not enrolled yet registers its first issuer at once
    (201, development only), so that answer is returned unchanged.
    """
    if proposed.status_code != 202:
        return proposed
    return await approve(client, code, proposed.json(), approver)


async def register(
    client: Any, admin: str, idp: TownIdp, *, approver: str, **overrides: Any
) -> Any:
    """Register ``idp`` the way a town does: ``admin`` proposes, ``approver`` approves.

    The answer is the approval (200) or, for a town not enrolled yet, the
    bootstrap registration (201).
    """
    proposed = await client.put(
        issuer_url(idp.tenant), json=idp.config(**overrides), headers=auth(admin, None)
    )
    return await four_eyes(client, idp.tenant, proposed, approver)


async def unregister(client: Any, code: str, admin: str, approver: str) -> Any:
    """Remove the town's issuer: ``admin`` proposes, ``approver`` approves (200)."""
    proposed = await client.delete(issuer_url(code), headers=auth(admin, None))
    return await four_eyes(client, code, proposed, approver)


REGISTERED = (200, 201)
"""Approved (an enrolled town) or registered at once (a town not enrolled yet)."""


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clock(app: Litestar, client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """Controls the issuer registry's clock (TTLs and the 30 s refetch limit)."""
    fake = FakeClock()
    registry = registry_of(app)
    monkeypatch.setattr(registry.policy, "clock", fake)
    yield fake
    registry.invalidate("*")


@pytest.fixture
async def kaga_idp(
    client: Any, tokens: dict[str, str], jwks_server: JwksServer
) -> AsyncIterator[TownIdp]:
    """Kaga's own IdP publishing key ``k1``, registered through the API."""
    idp = TownIdp(jwks_server, KAGA)
    idp.add_key("k1", 0)
    idp.publish("k1")
    r = await register(client, tokens["kaga_admin"], idp, approver=tokens["kaga_admin2"])
    assert r.status_code in REGISTERED, r.text
    yield idp
    await unregister(client, KAGA, tokens["kaga_admin"], tokens["kaga_admin2"])


# --- the API ----------------------------------------------------------------


async def test_put_get_delete_round_trip(
    client: Any, tokens: dict[str, str], jwks_server: JwksServer
) -> None:
    """Kaga's admins register Kaga's issuer, replace it (proposed 202, approved by the
    second admin 200), read it back in the manifest's shape, remove it (proposed,
    approved); afterwards GET and DELETE are 404."""
    idp = TownIdp(jwks_server, KAGA)
    headers = auth(tokens["kaga_admin"], None)
    second = tokens["kaga_admin2"]
    created = await register(client, tokens["kaga_admin"], idp, approver=second)
    assert created.status_code in REGISTERED, created.text
    assert created.json()["tenant"] == KAGA
    proposed = await client.put(
        issuer_url(KAGA), json=idp.config(roles_claim="groups"), headers=headers
    )
    assert proposed.status_code == 202, proposed.text
    assert proposed.json()["status"] == "pending"
    assert (await client.get(issuer_url(KAGA), headers=headers)).json()["roles_claim"] == "roles"
    replaced = await approve(client, KAGA, proposed.json(), second)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["status"] == "approved"
    got = await client.get(issuer_url(KAGA), headers=headers)
    assert got.status_code == 200, got.text
    assert got.json() == {
        "tenant": KAGA,
        "url": idp.issuer,
        "audience": idp.audience,
        "jwks_uri": idp.jwks_uri,
        "jwks": None,
        "algorithms": ["RS256"],
        "staff_claim": "sub",
        "department_claim": "dept",
        "roles_claim": "groups",
    }
    removed = await unregister(client, KAGA, tokens["kaga_admin"], second)
    assert removed.status_code == 200, removed.text
    assert (await client.get(issuer_url(KAGA), headers=headers)).status_code == 404
    assert (await client.delete(issuer_url(KAGA), headers=headers)).status_code == 404


async def test_town_admin_manages_own_issuer_only(
    client: Any, issuer: Any, tokens: dict[str, str], jwks_server: JwksServer
) -> None:
    """Kaga's admin may register Kaga's issuer; Kaga's staff get 403; Komatsu's admin
    gets 404 for Kaga, exactly as for a town that does not exist."""
    kaga_admin = issuer.mint(subject="k-adm", tenant=KAGA, department="soumu", roles=["admin"])
    komatsu_admin = issuer.mint(
        subject="m-adm", tenant=KOMATSU, department="soumu", roles=["admin"]
    )
    idp = TownIdp(jwks_server, KAGA)
    try:
        staff = await client.put(
            issuer_url(KAGA), json=idp.config(), headers=auth(tokens["kaga"], None)
        )
        assert staff.status_code == 403, staff.text
        foreign = await client.put(
            issuer_url(KAGA), json=idp.config(), headers=auth(komatsu_admin, None)
        )
        assert foreign.status_code == 404, foreign.text
        assert (
            await client.get(issuer_url(KAGA), headers=auth(komatsu_admin, None))
        ).status_code == 404
        own = await register(client, kaga_admin, idp, approver=tokens["kaga_admin2"])
        assert own.status_code in REGISTERED, own.text
        assert (await client.get(issuer_url(KAGA), headers=auth(kaga_admin, None))).json()[
            "url"
        ] == idp.issuer
    finally:
        await unregister(client, KAGA, tokens["kaga_admin"], tokens["kaga_admin2"])


_UNKNOWN_TOWN = "47999" + lgcode_check_digit("47999")
_BAD_CHECK_DIGIT = "47999" + str((int(lgcode_check_digit("47999")) + 1) % 10)


@pytest.mark.parametrize("code", [_UNKNOWN_TOWN, _BAD_CHECK_DIGIT, "17206x"])
async def test_unknown_or_malformed_town_is_404(
    client: Any, tokens: dict[str, str], jwks_server: JwksServer, code: str
) -> None:
    """PUT, GET and DELETE for a town that does not exist (or is no town code) are 404."""
    idp = TownIdp(jwks_server, code)
    headers = auth(tokens["kaga_admin"], None)
    assert (await client.put(issuer_url(code), json=idp.config(), headers=headers)).status_code == (
        404
    )
    assert (await client.get(issuer_url(code), headers=headers)).status_code == 404
    assert (await client.delete(issuer_url(code), headers=headers)).status_code == 404


async def test_issuer_api_needs_a_token(client: Any, jwks_server: JwksServer) -> None:
    """Without a token the issuer endpoints answer 401 before reading the body."""
    idp = TownIdp(jwks_server, KAGA)
    assert (await client.put(issuer_url(KAGA), json=idp.config())).status_code == 401
    assert (await client.get(issuer_url(KAGA))).status_code == 401


def _inline_jwks(kid: str = "inline-1", *, private: bool = False) -> dict[str, Any]:
    member = dict(rsa_key(0).as_dict(private=private))
    member["kid"] = kid
    return {"keys": [member]}


INVALID_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("hs256", {"algorithms": ["HS256"]}, "/algorithms"),
    ("hs512_among_others", {"algorithms": ["RS256", "HS512"]}, "/algorithms"),
    ("alg_none", {"algorithms": ["none"]}, "/algorithms"),
    ("alg_unknown", {"algorithms": ["RS1"]}, "/algorithms/0"),
    ("no_algorithms", {"algorithms": []}, "/algorithms"),
    ("both_key_sources", {"jwks": _inline_jwks()}, "/jwks_uri"),
    ("no_key_source", {"jwks_uri": None}, "/jwks_uri"),
    ("private_inline_key", {"jwks_uri": None, "jwks": _inline_jwks(private=True)}, "/jwks"),
    (
        "symmetric_inline_key",
        {"jwks_uri": None, "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "o"}]}},
        "/jwks",
    ),
    (
        "inline_key_unfit_for_algorithms",
        {"jwks_uri": None, "jwks": _inline_jwks(), "algorithms": ["ES256"]},
        "/jwks",
    ),
    ("url_not_http", {"url": "ftp://idp.example"}, "/url"),
    ("unknown_field", {"tenant": KOMATSU}, "/tenant"),  # the unknown field, named
    ("bad_claim_name", {"staff_claim": "a b"}, "/staff_claim"),
]


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [(o, p) for _, o, p in INVALID_BODIES],
    ids=[name for name, _, _ in INVALID_BODIES],
)
async def test_invalid_issuer_is_422_with_pointer(
    client: Any,
    tokens: dict[str, str],
    jwks_server: JwksServer,
    overrides: dict[str, Any],
    pointer: str,
) -> None:
    """Each invalid body is refused with 422 and a JSON pointer to the bad field
    (``none`` and HS* at ``/algorithms``), and nothing is registered."""
    idp = TownIdp(jwks_server, KAGA)
    body = idp.config()
    body.update(overrides)
    body = {k: v for k, v in body.items() if v is not None}
    r = await client.put(issuer_url(KAGA), json=body, headers=auth(tokens["kaga_admin"], None))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert pointer in [e["pointer"] for e in r.json()["errors"]]
    got = await client.get(issuer_url(KAGA), headers=auth(tokens["kaga_admin"], None))
    assert got.status_code == 404


async def test_issuer_url_of_another_town_or_the_platform_is_409(
    client: Any, issuer: Any, tokens: dict[str, str], kaga_idp: TownIdp
) -> None:
    """An issuer belongs to one town: Komatsu cannot register Kaga's issuer URL, and no
    town can register the built-in issuer's URL (409 either way)."""
    headers = auth(tokens["komatsu_admin"], None)
    body = kaga_idp.config()
    r = await client.put(issuer_url(KOMATSU), json=body, headers=headers)
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("/conflict")
    builtin = dict(body, url=issuer.issuer)
    r = await client.put(issuer_url(KOMATSU), json=builtin, headers=headers)
    assert r.status_code == 409, r.text
    assert (await client.get(issuer_url(KOMATSU), headers=headers)).status_code == 404


async def test_a_change_commits_a_notification(
    client: Any, settings: Settings, tokens: dict[str, str], jwks_server: JwksServer
) -> None:
    """PUT and DELETE each commit ``pg_notify('shared_gov_policy', <town>)`` so that
    other workers drop their cached issuers."""
    assert settings.database_url
    received: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.add_listener(
            "shared_gov_policy", lambda *args: received.put_nowait(str(args[3]))
        )
        idp = TownIdp(jwks_server, KOMATSU)
        second = tokens["komatsu_admin2"]
        r = await register(client, tokens["komatsu_admin"], idp, approver=second)
        assert r.status_code in REGISTERED, r.text
        assert await asyncio.wait_for(received.get(), 5) == KOMATSU
        r = await unregister(client, KOMATSU, tokens["komatsu_admin"], second)
        assert r.status_code == 200
        assert await asyncio.wait_for(received.get(), 5) == KOMATSU
    finally:
        await conn.close()


# --- verification through the registry ---------------------------------------


async def test_town_token_is_accepted_and_keys_rotate_without_restart(
    client: Any, kaga_idp: TownIdp, clock: FakeClock
) -> None:
    """A token of Kaga's IdP gets through (one JWKS fetch; a reused token costs none).
    The IdP then rotates to a new key: a token signed with it gets through after
    one refetch, and the retired key is refused once the JWKS no longer has it."""
    old = kaga_idp.mint("k1")
    assert (await client.get(resident_url(), headers=auth(old))).status_code == 404
    assert (await client.get(resident_url(), headers=auth(old))).status_code == 404
    assert kaga_idp.fetches() == 1

    kaga_idp.add_key("k2", 1)
    kaga_idp.publish("k2")
    clock.advance(31)
    new = kaga_idp.mint("k2")
    r = await client.get(resident_url(), headers=auth(new))
    assert r.status_code == 404, r.text
    assert kaga_idp.fetches() == 2

    # The old token was cached, but its key is gone from the JWKS now.
    assert (await client.get(resident_url(), headers=auth(old))).status_code == 401
    assert kaga_idp.fetches() == 2  # within 30 s of the last fetch: no new one
    clock.advance(31)
    assert (await client.get(resident_url(), headers=auth(kaga_idp.mint("k1")))).status_code == (
        401
    )
    assert kaga_idp.fetches() == 3


async def test_keys_are_refreshed_when_old(
    client: Any, kaga_idp: TownIdp, clock: FakeClock
) -> None:
    """Fetched keys older than five minutes are fetched again on the next new token, so
    a key the IdP withdrew stops working even if no unknown kid ever shows up."""
    assert (await client.get(resident_url(), headers=auth(kaga_idp.mint("k1")))).status_code == (
        404
    )
    kaga_idp.server.serve(kaga_idp.path, Route(body=b'{"keys": []}'))
    clock.advance(301)
    r = await client.get(resident_url(), headers=auth(kaga_idp.mint("k1")))
    # An empty JWKS is not usable: the last good keys stay (an IdP hiccup must not
    # log everyone out), but the fetch happened.
    assert r.status_code == 404, r.text
    assert kaga_idp.fetches() == 2
    kaga_idp.add_key("k9", 2)
    kaga_idp.publish("k9")
    clock.advance(301)
    r = await client.get(resident_url(), headers=auth(kaga_idp.mint("k1")))
    assert r.status_code == 401, r.text
    assert kaga_idp.fetches() == 3


def _row(idp: TownIdp, **overrides: Any) -> dict[str, Any]:
    """A ``catalog.issuers`` row for ``idp`` (for registries without a database)."""
    row: dict[str, Any] = {
        "issuer": idp.issuer,
        "tenant_code": idp.tenant,
        "audience": idp.audience,
        "jwks_uri": idp.jwks_uri,
        "jwks": None,
        "algorithms": ["RS256"],
        "staff_claim": "sub",
        "department_claim": "dept",
        "roles_claim": "roles",
    }
    row.update(overrides)
    return row


def local_verifier(builtin: BuiltinIssuer, *rows: dict[str, Any]) -> TokenVerifier:
    """A verifier on this test's event loop whose registry holds ``rows``."""

    async def loader() -> list[dict[str, Any]]:
        return list(rows)

    return TokenVerifier(
        issuer=builtin.issuer,
        audience=builtin.audience,
        keys=builtin.public_keyset(),
        registry=IssuerRegistry(loader),
    )


async def test_claims_are_mapped_as_the_town_configured(
    issuer: BuiltinIssuer, jwks_server: JwksServer
) -> None:
    """With custom claim names (nested ``realm_access.roles``) the principal's staff id,
    department and roles come from those claims; the town is the issuer's; roles are
    limited to staff/admin/auditor, so an IdP-granted ``operator`` is dropped."""
    idp = TownIdp(jwks_server, KOMATSU)
    idp.add_key("c1", 0)
    idp.publish("c1")
    verifier = local_verifier(
        issuer,
        _row(
            idp,
            staff_claim="employee_id",
            department_claim="org_unit",
            roles_claim="realm_access.roles",
        ),
    )
    token = idp.mint(
        "c1",
        sub="opaque-uuid",
        dept="shimin",
        employee_id="m-7",
        org_unit="zeimu",
        realm_access={"roles": ["admin", "operator", "superuser"]},
        amr=["pwd", "otp"],
    )
    principal = await verifier.verify(token)
    assert principal.tenant == KOMATSU
    assert principal.subject == "m-7"
    assert principal.department == "zeimu"
    assert principal.roles == frozenset({"admin"})
    assert principal.amr == frozenset({"pwd", "otp"})
    assert not principal.is_operator
    # A numeric staff id is accepted as its decimal string; the town's own name in a
    # tenant claim is fine.
    same = idp.mint("c1", employee_id=1234, tenant=KOMATSU, realm_access={"roles": ["auditor"]})
    principal = await verifier.verify(same)
    assert (principal.subject, principal.tenant) == ("1234", KOMATSU)
    assert principal.roles == frozenset({"auditor"})
    assert principal.department is None
    assert idp.fetches() == 1


@pytest.mark.parametrize(
    "overrides",
    [
        {"realm_access": {"roles": ["operator"]}},
        {"realm_access": {"roles": "admin"}},
        {"realm_access": None},
        {"employee_id": None},
        {"employee_id": ""},
        {"employee_id": True},
        {"org_unit": 7},
        {"amr": "mfa"},
    ],
    ids=[
        "operator_only",
        "roles_not_a_list",
        "roles_missing",
        "staff_id_missing",
        "staff_id_empty",
        "staff_id_bool",
        "department_not_text",
        "amr_not_a_list",
    ],
)
async def test_unusable_town_claims_are_refused(
    issuer: BuiltinIssuer, jwks_server: JwksServer, overrides: dict[str, Any]
) -> None:
    """A signed town token whose configured claims are missing or of the wrong kind is
    refused (401) — in particular one whose only role is ``operator``."""
    idp = TownIdp(jwks_server, KOMATSU)
    idp.add_key("c1", 0)
    idp.publish("c1")
    verifier = local_verifier(
        issuer,
        _row(
            idp,
            staff_claim="employee_id",
            department_claim="org_unit",
            roles_claim="realm_access.roles",
        ),
    )
    claims: dict[str, Any] = {
        "employee_id": "m-7",
        "org_unit": "zeimu",
        "realm_access": {"roles": ["staff"]},
    }
    good = await verifier.verify(idp.mint("c1", **claims))
    assert good.subject == "m-7"
    claims.update(overrides)
    with capture_logs() as events, pytest.raises(DomainError) as caught:
        await verifier.verify(idp.mint("c1", **claims))
    assert caught.value.status == 401
    assert [e["reason"] for e in events if e["event"] == "auth.rejected"] == ["claims"]


async def test_town_roles_come_from_the_configured_claim(
    client: Any, tokens: dict[str, str], jwks_server: JwksServer
) -> None:
    """Through HTTP: a town-IdP admin (roles in ``groups``) may read the town's issuer
    but not list tenants; its staff get 403 for the issuer."""
    idp = TownIdp(jwks_server, KOMATSU, roles_claim="groups")
    idp.add_key("c1", 0)
    idp.publish("c1")
    second = tokens["komatsu_admin2"]
    r = await register(client, tokens["komatsu_admin"], idp, approver=second)
    assert r.status_code in REGISTERED, r.text
    try:
        admin = idp.mint("c1", groups=["admin", "operator"])
        r = await client.get(issuer_url(KOMATSU), headers=auth(admin, None))
        assert r.status_code == 200, r.text
        assert (await client.get("/api/v1/tenants", headers=auth(admin, None))).status_code == 404
        staff = idp.mint("c1", groups=["staff"])
        r = await client.get(issuer_url(KOMATSU), headers=auth(staff, None))
        assert r.status_code == 403, r.text
    finally:
        await unregister(client, KOMATSU, tokens["komatsu_admin"], second)


async def test_inline_jwks_needs_no_fetch(
    client: Any, tokens: dict[str, str], jwks_server: JwksServer
) -> None:
    """An issuer registered with an inline JWKS verifies its tokens without any HTTP."""
    idp = TownIdp(jwks_server, KAGA)
    idp.add_key("inline-1", 0)
    r = await register(
        client,
        tokens["kaga_admin"],
        idp,
        approver=tokens["kaga_admin2"],
        jwks_uri=None,
        jwks=_inline_jwks(),
    )
    assert r.status_code in REGISTERED, r.text
    try:
        r = await client.get(resident_url(), headers=auth(idp.mint("inline-1")))
        assert r.status_code == 404, r.text
        assert idp.fetches() == 0
    finally:
        await unregister(client, KAGA, tokens["kaga_admin"], tokens["kaga_admin2"])


async def test_builtin_tokens_still_act_for_a_town_with_its_own_issuer(
    client: Any, tokens: dict[str, str], kaga_idp: TownIdp
) -> None:
    """Registering Kaga's IdP does not lock out the platform's built-in issuer."""
    r = await client.get(resident_url(), headers=auth(tokens["kaga"]))
    assert r.status_code == 404, r.text


async def test_issuer_from_a_manifest_is_used_and_dropped_when_the_town_is_inactive(
    client: Any, db: Database, jwks_server: JwksServer
) -> None:
    """A manifest's ``[issuer]`` is registered at onboarding and its tokens verify;
    when the town stops being active, its issuer's tokens are refused on the next
    request (the change is announced through LISTEN/NOTIFY)."""
    manifest = load_manifest(TENANTS_DIR / "higashikurume.toml")
    idp = TownIdp(jwks_server, manifest.code)
    idp.add_key("h1", 0)
    idp.publish("h1")
    config = IssuerConfig(url=idp.issuer, audience=idp.audience, jwks_uri=idp.jwks_uri)
    await tenancy.onboard(db, msgspec.structs.replace(manifest, issuer=config))
    token = idp.mint("h1")
    url = resident_url(manifest.code)
    try:
        r = await _eventually(client, url, token, lambda status: status != 401)
        assert r.status_code == 404, r.text
        async with db.catalog() as conn:
            await conn.execute(
                "UPDATE catalog.tenants SET status = 'inactive' WHERE code = $1", manifest.code
            )
            await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", manifest.code)
        r = await _eventually(client, url, token, lambda status: status == 401)
        assert r.status_code == 401
    finally:
        async with db.catalog() as conn:
            await conn.execute(
                "UPDATE catalog.tenants SET status = 'active' WHERE code = $1", manifest.code
            )
            await conn.execute("DELETE FROM catalog.issuers WHERE tenant_code = $1", manifest.code)
            # The stored manifest without the issuer, as a plain onboarding leaves
            # it: a later test may onboard the same manifest (test_encryption).
            await conn.execute(
                "UPDATE catalog.tenants SET manifest = manifest - 'issuer' WHERE code = $1",
                manifest.code,
            )
            await conn.execute("SELECT pg_notify('shared_gov_policy', $1)", manifest.code)


async def _eventually(client: Any, url: str, token: str, done: Any, seconds: float = 5.0) -> Any:
    """Repeat a request until ``done(status)``, for changes announced by NOTIFY."""
    deadline = time.monotonic() + seconds
    while True:
        r = await client.get(url, headers=auth(token))
        if done(r.status_code) or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.05)


# --- the registry and the fetcher on their own -------------------------------


async def test_registry_reads_the_catalog_once_until_invalidated() -> None:
    """One load serves every lookup (unknown issuers included) until invalidated or
    older than the TTL; a reload keeps an unchanged issuer's entry object (and so
    its keys and refetch limit), replaces a changed one and drops a removed one."""
    rows: list[dict[str, Any]] = [
        {
            "issuer": "https://idp.example",
            "tenant_code": KAGA,
            "audience": "a",
            "jwks_uri": None,
            "jwks": _inline_jwks(),
            "algorithms": ["RS256"],
            "staff_claim": "sub",
            "department_claim": "dept",
            "roles_claim": "roles",
        }
    ]
    loads = 0

    async def loader() -> list[dict[str, Any]]:
        nonlocal loads
        loads += 1
        return rows

    fake = FakeClock()
    registry = IssuerRegistry(loader, policy=FetchPolicy(clock=fake), ttl=60)
    first = await registry.get("https://idp.example")
    assert first is not None
    assert first.tenant == KAGA
    assert await registry.get("https://made-up.example") is None
    assert await registry.get("https://idp.example") is first
    assert loads == 1
    registry.invalidate("*")
    assert await registry.get("https://idp.example") is first
    assert loads == 2
    fake.advance(61)
    assert await registry.get("https://idp.example") is first
    assert loads == 3
    registry.invalidate(KAGA)
    assert await registry.get("https://idp.example") is first
    assert loads == 4
    rows[0] = dict(rows[0], audience="b")
    registry.invalidate(KAGA)
    replaced = await registry.get("https://idp.example")
    assert replaced is not None
    assert replaced is not first
    assert replaced.audience == "b"
    rows.clear()
    registry.invalidate("*")
    assert await registry.get("https://idp.example") is None
    assert loads == 6


async def test_registry_ignores_rows_that_fail_validation() -> None:
    """A row written around the API (HS256 pinned by hand) is never used, and a
    warning names the town and field, not the row's content."""

    async def loader() -> list[dict[str, Any]]:
        return [
            {
                "issuer": "https://idp.example",
                "tenant_code": KAGA,
                "audience": "a",
                "jwks_uri": "https://idp.example/jwks",
                "jwks": None,
                "algorithms": ["HS256"],
                "staff_claim": "sub",
                "department_claim": "dept",
                "roles_claim": "roles",
            }
        ]

    with capture_logs() as events:
        assert await IssuerRegistry(loader).get("https://idp.example") is None
    ignored = [e for e in events if e["event"] == "auth.issuer_ignored"]
    assert ignored
    assert ignored[0]["issuer_tenant"] == KAGA


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (Route(status=500, body=b"{}"), "http_500"),
        (Route(body=b"<html>not json"), "not_json"),
        (Route(body=b"{" + b" " * (300 * 1024) + b"}"), "too_large"),
        (Route(delay=1.0), "timeout"),
    ],
    ids=["http_500", "not_json", "too_large", "slow"],
)
async def test_fetch_failures_are_jwks_errors(
    jwks_server: JwksServer, route: Route, reason: str
) -> None:
    """Each kind of failed fetch is one JwksError with a short reason, in bounded time."""
    path = f"/fail/{secrets.token_hex(4)}"
    jwks_server.serve(path, route)
    started = time.monotonic()
    with pytest.raises(JwksError) as caught:
        await fetch_jwks(jwks_server.base_url + path, 0.3)
    assert str(caught.value) == reason
    assert time.monotonic() - started < 0.9


async def test_fetch_refused_connection_is_a_jwks_error() -> None:
    """Nobody listening is a JwksError too (never an exception that becomes a 500)."""
    with pytest.raises(JwksError):
        await fetch_jwks("http://127.0.0.1:9/jwks.json", 1.0)


async def test_operator_log_lines_carry_no_jwks_content(client: Any, kaga_idp: TownIdp) -> None:
    """Fetching keys logs the town and a key count; never a key's material."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        r = await client.get(resident_url(), headers=auth(kaga_idp.mint("k1")))
    assert r.status_code == 404, r.text
    fetched = [e for e in events if e["event"] == "auth.jwks_fetched"]
    assert len(fetched) == 1
    assert fetched[0]["issuer_tenant"] == KAGA
    assert fetched[0]["keys"] == 1
    modulus = str(kaga_idp.keys["k1"].as_dict(private=False)["n"])
    assert not any(modulus[:32] in json.dumps(e, default=str) for e in events)


async def test_the_writing_process_invalidates_before_answering(
    app: Litestar,
    client: Any,
    tokens: dict[str, str],
    jwks_server: JwksServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The approval of a change (or a first registration) drops this process's cached
    issuers itself before it answers, so the caller's next request never races the
    notification; a mere proposal changes nothing and drops nothing."""
    verifier: TokenVerifier = app.state.services.verifier
    original = verifier.invalidate_issuers
    calls: list[str] = []

    def spy(tenant: str = "*") -> None:
        calls.append(tenant)
        original(tenant)

    # The ChangeListener holds the original bound method; only the handler sees the spy.
    monkeypatch.setattr(verifier, "invalidate_issuers", spy)
    idp = TownIdp(jwks_server, KAGA)
    second = tokens["kaga_admin2"]
    registered = await register(client, tokens["kaga_admin"], idp, approver=second)
    assert registered.status_code in REGISTERED
    assert calls == [KAGA]
    headers = auth(tokens["kaga_admin"], None)
    proposed = await client.delete(issuer_url(KAGA), headers=headers)
    assert proposed.status_code == 202
    assert calls == [KAGA]
    assert (await approve(client, KAGA, proposed.json(), second)).status_code == 200
    assert calls == [KAGA, KAGA]


async def test_concurrent_misses_share_one_fetch() -> None:
    """Ten tokens with unknown kids arriving together cause ONE fetch; while a refresh
    of old keys hangs, a token whose kid is known is checked without waiting for it."""
    release = asyncio.Event()
    calls = 0

    async def fetch(uri: str, seconds: float) -> object:
        nonlocal calls
        calls += 1
        await release.wait()
        return {"keys": [public_jwk(rsa_key(0), "a")]}

    fake = FakeClock()
    source = JwksSource(
        KAGA, uri="https://idp.example/jwks", inline=None, policy=FetchPolicy(fake, fetch=fetch)
    )
    waiting = [asyncio.create_task(source.keys_for(f"forged-{i}")) for i in range(10)]
    await asyncio.sleep(0.01)
    assert calls == 1
    release.set()
    results = await asyncio.gather(*waiting)
    assert results == [(None, "unknown_kid")] * 10
    assert calls == 1

    release.clear()
    fake.advance(301)
    refresh = asyncio.create_task(source.keys_for("a"))
    await asyncio.sleep(0.01)
    assert calls == 2
    keys, _ = await asyncio.wait_for(source.keys_for("a"), 1)
    assert keys is not None
    assert not refresh.done()
    release.set()
    keys, _ = await refresh
    assert keys is not None


async def test_operators_cannot_register_a_towns_issuer(
    client: Any, tokens: dict[str, str], jwks_server: Any
) -> None:
    """An operator who could register an IdP could mint a town's staff tokens and read
    residents: registering, reading or removing a town's issuer is the town admins' alone."""
    idp = TownIdp(jwks_server, KAGA)
    r = await client.put(
        issuer_url(KAGA), json=idp.config(), headers=auth(tokens["operator"], None)
    )
    assert r.status_code == 404
    r = await client.get(issuer_url(KAGA), headers=auth(tokens["operator"], None))
    assert r.status_code == 404


async def test_the_registry_says_whether_a_town_still_trusts_an_issuer_as_it_was() -> None:
    """What a console session opened through a town's issuer is checked
    against on every click (hostile review r2 M2): the same configuration is
    trusted; a changed or removed issuer, or another town, is not."""
    row: dict[str, Any] = {
        "issuer": "https://idp.example",
        "tenant_code": KAGA,
        "audience": "a",
        "jwks_uri": None,
        "jwks": _inline_jwks(),
        "algorithms": ["RS256"],
        "staff_claim": "sub",
        "department_claim": "dept",
        "roles_claim": "roles",
    }
    rows = [row]

    async def loader() -> list[dict[str, Any]]:
        return rows

    registry = IssuerRegistry(loader)
    entry = await registry.get("https://idp.example")
    assert entry is not None
    signed_in_with = entry.fingerprint
    assert await registry.trusts(KAGA, signed_in_with)
    assert not await registry.trusts(KOMATSU, signed_in_with)
    rows[0] = dict(row, audience="b")  # the town replaced its issuer's configuration
    registry.invalidate(KAGA)
    assert not await registry.trusts(KAGA, signed_in_with)
    rows.clear()  # ... or removed it
    registry.invalidate(KAGA)
    assert not await registry.trusts(KAGA, signed_in_with)
