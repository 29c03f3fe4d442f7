"""The built-in development issuer's authorization and token endpoints.

The built-in issuer (:mod:`shared_gov.auth.issuer`) only mints tokens; a
browser sign-in needs an authorization endpoint. In development (and the
tests) — never otherwise: the routes answer 404 and the discovery document
does not list them — this module adds:

- ``GET /console/dev/authorize``: the OAuth 2.0 authorization request
  (``response_type=code``, ``code_challenge_method=S256`` required, the
  town in ``login_hint``); a page listing the town's demo staff;
- ``POST /console/dev/authorize``: the chosen member of staff (a form with
  its CSRF token) → a one-time code, bound to the client, the redirect URI
  and the PKCE challenge, valid 60 s, → back to the client's redirect URI;
- ``POST /console/dev/token``: the code and its ``code_verifier`` → an
  access token from the built-in issuer (the claims ``shared-gov token``
  would put in it).

Codes live in a store shared by the workers (``console-codes``), are used
at most once and are deleted on first use, right or wrong.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect
from litestar.stores.base import Store

from shared_gov import errors
from shared_gov.api.pipeline import services
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.domains import registry
from shared_gov.messages import console as L

from .pages import page
from .security import CODE_STORE

CODE_SECONDS = 60


@dataclass(frozen=True, slots=True)
class DemoStaff:
    subject: str
    department: str
    roles: tuple[str, ...]
    mfa: bool
    label_ja: str
    label_en: str


DEMO_STAFF: tuple[DemoStaff, ...] = (
    DemoStaff("audit-0001", "kansa", ("auditor",), True, "監査担当", "Auditor"),
    DemoStaff("admin-0001", "somu", ("admin",), True, "情報政策担当（管理者）", "Town admin"),
    DemoStaff("admin-0002", "somu", ("admin",), True, "情報政策担当（第二管理者）", "Second admin"),
    DemoStaff("staff-0001", "shimin", ("staff",), False, "市民課 職員", "Residents' desk"),
    DemoStaff("kaigo-0001", "kaigo", ("staff",), True, "介護保険課 職員", "Long-term care"),
    DemoStaff("kaikei-0001", "kaikei", ("staff",), True, "会計課 職員", "Accounting"),
)
"""Who the development sign-in page offers in every town (synthetic)."""


def demo_staff() -> tuple[DemoStaff, ...]:
    """The platform's demo staff, then those the domains' consoles add
    (``registry.Console.staff``: an ordering department's clerk, a second
    person for separation of duties); a subject already offered stays as it is."""
    known = {s.subject for s in DEMO_STAFF}
    added = tuple(
        DemoStaff(s.subject, s.department, s.roles, s.mfa, s.label.ja, s.label.en)
        for s in registry.console_staff()
        if s.subject not in known
    )
    return DEMO_STAFF + added


def enabled(request: Request[Any, Any, Any]) -> bool:
    return services(request).settings.is_dev


def _store(request: Request[Any, Any, Any]) -> Store:
    return request.app.stores.get(CODE_STORE)


def _refuse() -> errors.DomainError:
    return errors.bad_request(L.BAD_AUTHORIZATION)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a code stands for (and is checked against at the token endpoint)."""

    town: str
    staff: DemoStaff
    client_id: str
    redirect_uri: str
    challenge: str


async def mint_code(store: Store, grant: Grant) -> str:
    code = secrets.token_urlsafe(32)
    value = {
        "town": grant.town,
        "sub": grant.staff.subject,
        "client_id": grant.client_id,
        "redirect_uri": grant.redirect_uri,
        "challenge": grant.challenge,
    }
    await store.set(code, json.dumps(value), expires_in=CODE_SECONDS)
    return code


async def redeem(
    request: Request[Any, Any, Any],
    *,
    code: str,
    verifier: str,
    client_id: str,
    redirect_uri: str,
) -> str:
    """The access token for a code (used once), or a 400 ``invalid_grant``."""
    store = _store(request)
    raw = await store.get(code)
    await store.delete(code)  # once, whatever follows
    if raw is None:
        raise errors.bad_request(L.INVALID_GRANT)
    grant = json.loads(raw)
    if (
        grant["client_id"] != client_id
        or grant["redirect_uri"] != redirect_uri
        or not secrets.compare_digest(create_s256_code_challenge(verifier), grant["challenge"])
    ):
        raise errors.bad_request(L.INVALID_GRANT)
    staff = next(s for s in demo_staff() if s.subject == grant["sub"])
    svc = services(request)
    return svc.issuer.mint(
        subject=staff.subject,
        tenant=grant["town"],
        department=staff.department,
        roles=list(staff.roles),
        mfa=staff.mfa,
        ttl_seconds=min(3600, svc.settings.max_token_lifetime),
    )


def _checked(params: dict[str, str]) -> dict[str, str]:
    town = params.get("login_hint", "")
    if (
        params.get("response_type") != "code"
        or params.get("code_challenge_method") != "S256"
        or len(params.get("code_challenge", "")) < 43
        or not params.get("state")
        or not params.get("client_id")
        or not params.get("redirect_uri", "").startswith(("http://", "https://"))
        or not is_valid_lgcode(town)
    ):
        raise _refuse()
    return params


_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "scope",
    "nonce",
)


class DevIssuerController(Controller):
    path = "/dev"
    include_in_schema = False

    @get("/authorize")
    async def authorize_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        if not enabled(request):
            raise errors.not_found()
        params = _checked({k: request.query_params.get(k, "") for k in _FIELDS})
        names = await services(request).registry.get(params["login_hint"])
        if names is None:
            raise errors.not_found()
        return page(request, "dev_authorize.html", staff=demo_staff(), params=params)

    @post("/authorize")
    async def authorize(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        if not enabled(request):
            raise errors.not_found()
        params = _checked({k: str(data.get(k, "")) for k in _FIELDS})
        staff = next((s for s in demo_staff() if s.subject == data.get("staff")), None)
        if staff is None:
            raise _refuse()
        code = await mint_code(
            _store(request),
            Grant(
                params["login_hint"],
                staff,
                params["client_id"],
                params["redirect_uri"],
                params["code_challenge"],
            ),
        )
        target = params["redirect_uri"]
        sep = "&" if "?" in target else "?"
        return Redirect(target + sep + urlencode({"code": code, "state": params["state"]}))

    @post("/token")
    async def token(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> dict[str, Any]:
        if not enabled(request):
            raise errors.not_found()
        if data.get("grant_type") != "authorization_code":
            raise errors.bad_request(L.UNSUPPORTED_GRANT)
        token = await redeem(
            request,
            code=str(data.get("code", "")),
            verifier=str(data.get("code_verifier", "")),
            client_id=str(data.get("client_id", "")),
            redirect_uri=str(data.get("redirect_uri", "")),
        )
        return {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
