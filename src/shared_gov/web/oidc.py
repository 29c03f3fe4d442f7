"""Signing in with the town's identity provider, and signing out.

OpenID Connect authorization code flow with PKCE (RFC 7636, S256), the
console being a public client (``Settings.console_client_id``):

1. ``GET /console/sign-in?town=CODE``: a fresh ``state`` and code verifier
   (authlib's PKCE helpers) kept in the server-side session; the browser goes to the
   town's authorization endpoint;
2. ``GET /console/callback?code&state``: the state must match (once); the
   code and verifier are exchanged for an access token at the token
   endpoint (authlib's client); the token is verified exactly as the API
   verifies a bearer token (:class:`TokenVerifier`: the town's issuer, its
   keys, the claims it maps, ``amr`` for two-factor), must be of that town
   and not an operator's; the person must not be suspended. Then the session
   gets a new id and holds the principal (:mod:`.signin`), never the token;
3. ``POST /console/sign-out`` (with its CSRF token): the session is deleted.

Which provider: outside development, the town's own issuer (its URL's
discovery document names the endpoints); in development and the tests, the
built-in issuer's development endpoints (:mod:`.devissuer`), whose token
exchange runs in-process.
"""

from __future__ import annotations

import secrets
from typing import Any, cast
from urllib.parse import urlencode

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect

from shared_gov import errors
from shared_gov.api.pipeline import services
from shared_gov.auth.issuers.current import get_issuer
from shared_gov.auth.verify import TokenRejected
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.logs import get_logger
from shared_gov.messages import console as L
from shared_gov.policy.permissions import admit

from . import devissuer
from .pages import LANG_COOKIE, page
from .security import PREFIX, ROTATE
from .signin import current, remember, signed_in

log = get_logger(__name__)
SIGNIN = "signin"
BUILTIN = "builtin"


def _redirect_uri(request: Request[Any, Any, Any]) -> str:
    return f"{str(request.base_url).rstrip('/')}{PREFIX}/callback"


async def _endpoints(request: Request[Any, Any, Any], town: str) -> tuple[str, str]:
    """(issuer kind or URL, authorization endpoint, token endpoint) of the town's provider."""
    svc = services(request)
    if svc.settings.is_dev:
        return BUILTIN, f"{PREFIX}/dev/authorize"
    try:
        issuer = await get_issuer(svc.db, town)
    except errors.NotFound:
        raise errors.not_found(L.NO_IDP) from None
    # The town's provider may be down or answer anything: a sign-in page that
    # says so, never a 500 (hostile review r2 L4).
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            found = await client.get(issuer.url.rstrip("/") + "/.well-known/openid-configuration")
        meta = found.json() if found.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        raise errors.unavailable(L.IDP_UNREACHABLE) from None
    if not isinstance(meta, dict):
        meta = {}
    authorize = meta.get("authorization_endpoint")
    token = meta.get("token_endpoint")
    if not (isinstance(authorize, str) and isinstance(token, str)):
        raise errors.not_found(L.NO_IDP)
    return token, authorize


class SignInController(Controller):
    path = "/"
    include_in_schema = False

    @get("/")
    async def start_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        if current(request) is not None and request.query_params.get("expired") is None:
            return Redirect(f"{PREFIX}/home")
        svc = services(request)
        towns: list[dict[str, str]] = []
        if svc.settings.is_dev:
            async with svc.db.catalog() as conn:
                rows = await conn.fetch(
                    "SELECT code, name FROM catalog.tenants WHERE status = 'active' ORDER BY code"
                )
            towns = [{"code": r["code"], "name": r["name"]} for r in rows]
        notice = None
        if request.query_params.get("expired"):
            notice = L.EXPIRED
        elif request.query_params.get("out"):
            notice = L.SIGNED_OUT
        return page(request, "signin.html", towns=towns, notice=notice)

    @get("/sign-in")
    async def sign_in(
        self, request: Request[Any, Any, Any], town: FromQuery[str] = ""
    ) -> Response[Any]:
        if not is_valid_lgcode(town) or await services(request).registry.get(town) is None:
            raise errors.not_found()
        token_endpoint, authorize = await _endpoints(request, town)
        state, verifier, nonce = secrets.token_urlsafe(24), generate_token(64), generate_token(24)
        request.set_session(
            {
                SIGNIN: {
                    "town": town,
                    "state": state,
                    "verifier": verifier,
                    "token_endpoint": token_endpoint,
                }
            }
        )
        query = {
            "response_type": "code",
            "client_id": services(request).settings.console_client_id,
            "redirect_uri": _redirect_uri(request),
            "scope": "openid",
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
            "login_hint": town,
        }
        return Redirect(f"{authorize}?{urlencode(query)}")

    @get("/callback")
    async def callback(
        self,
        request: Request[Any, Any, Any],
        code: FromQuery[str] = "",
    ) -> Response[Any]:
        state = request.query_params.get("state", "")  # "state" is Litestar's own kwarg
        session = request.session if isinstance(request.scope.get("session"), dict) else {}
        started = session.pop(SIGNIN, None)
        if (
            not isinstance(started, dict)
            or not code
            or not secrets.compare_digest(str(started.get("state", "")), state)
        ):
            return page(request, "error.html", 400, title=L.ERROR, detail=L.SIGN_IN_FAILED)
        svc = services(request)
        client_id = svc.settings.console_client_id
        try:
            if started["token_endpoint"] == BUILTIN:
                token = await devissuer.redeem(
                    request,
                    code=code,
                    verifier=started["verifier"],
                    client_id=client_id,
                    redirect_uri=_redirect_uri(request),
                )
            else:
                # A public client's token request (RFC 6749 4.1.3 + RFC 7636 4.5).
                # authlib makes the verifier and challenge; its httpx client is
                # deprecated (it warns on import), so the POST is httpx's own.
                async with httpx.AsyncClient(timeout=5.0) as client:
                    answer = await client.post(
                        started["token_endpoint"],
                        data={
                            "grant_type": "authorization_code",
                            "code": code,
                            "code_verifier": started["verifier"],
                            "redirect_uri": _redirect_uri(request),
                            "client_id": client_id,
                        },
                        headers={"Accept": "application/json"},
                    )
                    answer.raise_for_status()
                token = str(answer.json()["access_token"])
            principal = await svc.verifier.verify(token)
        except (errors.DomainError, TokenRejected, httpx.HTTPError, KeyError) as exc:
            log.info("console.sign_in_failed", error=type(exc).__name__)
            return page(request, "error.html", 401, title=L.ERROR, detail=L.SIGN_IN_FAILED)
        if principal.tenant != started["town"] or principal.is_operator:
            return page(request, "error.html", 401, title=L.ERROR, detail=L.SIGN_IN_FAILED)
        await admit(request, principal)  # suspended: 403, recorded as for the API
        remember(session, principal)
        request.set_session(session)
        cast("dict[str, Any]", request.scope)[ROTATE] = True
        return Redirect(f"{PREFIX}/home")

    # No signed_in guard: a suspended person (or one whose session has just
    # expired) must still be able to end it; the CSRF check still applies.
    @post("/sign-out")
    async def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        request.clear_session()
        return Redirect(f"{PREFIX}/?out=1")

    @get("/language")
    async def switch_language(
        self,
        request: Request[Any, Any, Any],
        to: FromQuery[str] = "ja",
        back: FromQuery[str] = PREFIX + "/",
    ) -> Redirect:
        # Only back into the console: never an open redirect.
        if not back.startswith(PREFIX + "/") or "//" in back or "\\" in back:
            back = PREFIX + "/"
        response = Redirect(back)
        response.set_cookie(
            LANG_COOKIE,
            "en" if to == "en" else "ja",
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=not services(request).settings.is_dev,
            max_age=365 * 24 * 3600,
        )
        return response

    @get("/home", guards=[signed_in])
    async def home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return page(request, "home.html")
