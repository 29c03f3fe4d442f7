"""The console's protections: sessions, CSRF, and the headers on every page.

- Sessions are server-side (Litestar's ``ServerSideSessionConfig``): the
  cookie holds only a random id; what it stands for lives in a store shared by
  every worker of every host (``catalog.console_store``, :mod:`.store`). The
  cookie is HttpOnly, SameSite=Strict, limited to ``/console`` and Secure
  outside development. Signing in issues a new id (no session fixation).
  Several hosts must share ``SHARED_GOV_CONSOLE_SECRET`` too: a form's CSRF
  token is signed with it.
- Every form carries a CSRF token (Litestar's CSRF middleware, double submit
  with an HMAC-signed cookie); a POST without it is refused with 403.
- Every console response carries a Content-Security-Policy that allows no
  inline script (nor any script but the console's own files), forbids
  framing, and says ``Cache-Control: no-store``: a page may show what an
  auditor saw, and a shared computer's back button must not show it again.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.types import ASGIApp, Empty, Message, Receive, Scope, Send

from shared_gov.settings import Settings

PREFIX = "/console"
SESSION_STORE = "console-sessions"
CODE_STORE = "console-codes"
SESSION_COOKIE = "sg_console"
CSRF_COOKIE = "sg_console_csrf"
SECRET_FILE = "console-secret"  # noqa: S105 - a file name, not a secret

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    # The callback's URL carries a one-time code: never send it on.
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)

ROTATE = "shared_gov.console.rotate"
"""Scope-state key: issue a new session id with this response (signing in)."""
LOADED = "shared_gov.console.loaded"
"""Scope-state key: the session as the store held it when the request came in."""


def secured(app: ASGIApp) -> ASGIApp:
    """The security headers on every console response, error pages included
    (wrapped around the whole application: an error page leaves past the
    router's middleware)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")) if scope["type"] == ScopeType.HTTP else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {name for name, _ in HEADERS}
                ]
                message["headers"] = [*headers, *HEADERS]
            await send(message)

        await app(scope, receive, send_wrapper)

    return middleware


class _RotatingBackend(ServerSideSessionBackend):
    """The server-side backend, which can give a session a new id, and writes
    only what changed.

    Signing in marks the scope (:data:`ROTATE`): the data the session held
    under the id the browser had before (perhaps planted by someone else) is
    deleted and the signed-in session is stored under a fresh id.

    Litestar's backend writes the session back with every response. The
    store is the database shared by every host (:mod:`.store`), so: an empty
    session is never stored (an anonymous page, the sign-in page's
    stylesheet: no row, no cookie; a cookie naming nothing is cleared), and
    a session the request did not change (a static file) is not written
    again. A signed-in page always changes it (its last use, for the idle
    timeout), so that semantics holds.
    """

    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        data = await super().load_from_connection(connection)
        scope = cast("dict[str, Any]", connection.scope)
        scope[LOADED] = self.serialize_data(data, connection.scope) if data else None
        return data

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        fresh = cast("dict[str, Any]", connection.scope).get(ROTATE)
        if isinstance(fresh, str):
            return fresh
        return super().get_session_id(connection)

    async def store_in_message(
        self, scope_session: Any, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        scope = cast("dict[str, Any]", connection.scope)
        had = connection.cookies.get(self.config.key)
        if scope.get(ROTATE) is True and scope_session is not Empty:
            if had:
                await self.delete(had, store=self.config.get_store_from_app(scope["app"]))
            scope[ROTATE] = self.generate_session_id()
        elif isinstance(scope_session, dict):
            if not scope_session:
                if had:
                    await super().store_in_message(Empty, message, connection)
                return
            if had and scope.get(LOADED) == self.serialize_data(scope_session, connection.scope):
                return
        await super().store_in_message(scope_session, message, connection)


@dataclass
class _SessionConfig(ServerSideSessionConfig):
    _backend_class = _RotatingBackend


def session_middleware(settings: Settings) -> DefineMiddleware:
    config = _SessionConfig(
        key=SESSION_COOKIE,
        store=SESSION_STORE,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=not settings.is_dev,
        # The store keeps a session for its whole lifetime; the idle timeout
        # is the guard's (signin.py), so that it can say the session expired.
        max_age=settings.console_lifetime,
    )
    return config.middleware


def console_secret(settings: Settings) -> str:
    """The CSRF tokens' HMAC key: ``SHARED_GOV_CONSOLE_SECRET``, or a random one
    kept in ``<data_dir>/console-secret`` (mode 0600) that every worker reads."""
    given = os.environ.get("SHARED_GOV_CONSOLE_SECRET")
    if given:
        return given
    path = Path(settings.data_dir) / SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def csrf_middleware(settings: Settings) -> DefineMiddleware:
    config = CSRFConfig(
        secret=console_secret(settings),
        cookie_name=CSRF_COOKIE,
        cookie_path=PREFIX,
        cookie_secure=not settings.is_dev,
        cookie_httponly=True,
        cookie_samesite="strict",
        # The token endpoint is called by an OAuth client, not a browser form.
        exclude=[f"^{PREFIX}/dev/token$"],
    )
    return DefineMiddleware(CSRFMiddleware, config=config)
