"""Who is signed in: the session's member of staff, and the guard of every
signed-in page.

The session holds the principal the town's token proved at sign-in (staff
id, town, department, roles, ``amr``) — never the token, never a name. Each
signed-in request rebuilds the :class:`Principal` from it and puts it where
the API's authentication puts a bearer token's (``scope["user"]``): the
guarded entry then decides and audits a page exactly as the API call behind
it. As for a bearer token, an inactive town or a suspended person is
refused on every request (:func:`shared_gov.policy.permissions.admit`): a
suspension ends the person's console sessions at their next click (the
session is deleted, not only refused). A session opened through the town's
own issuer lasts only while the town trusts that issuer as it was then (its
configuration's fingerprint). What it does not see: a role removed at the
IdP after sign-in (the session keeps the roles it was opened with until it
ends: idle timeout, lifetime, sign-out).

A session ends after :attr:`Settings.console_idle_timeout` seconds without
a request and :attr:`Settings.console_lifetime` seconds after sign-in.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from shared_gov import errors
from shared_gov.api.pipeline import services
from shared_gov.auth.principal import Principal
from shared_gov.policy.permissions import admit

STAFF = "staff"
"""Session key of the signed-in member of staff."""
SINCE = "since"
SEEN = "seen"


class NotSignedIn(Exception):
    """No (live) session: the router's handler sends the browser to sign in."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("not signed in")
        self.expired = expired


def remember(session: dict[str, Any], principal: Principal, now: float | None = None) -> None:
    """Start a signed-in session for ``principal`` (the callback, after the token verified)."""
    moment = time.time() if now is None else now
    session.clear()
    session[STAFF] = {
        "sub": principal.subject,
        "tenant": principal.tenant,
        "dept": principal.department,
        "roles": sorted(principal.roles),
        "amr": sorted(principal.amr),
        "ifp": principal.issuer_fingerprint,
    }
    session[SINCE] = moment
    session[SEEN] = moment


def principal_of(session: dict[str, Any]) -> Principal | None:
    """The principal the session stands for, or None."""
    staff = session.get(STAFF)
    if not isinstance(staff, dict):
        return None
    return Principal(
        subject=str(staff["sub"]),
        tenant=staff.get("tenant"),
        department=staff.get("dept"),
        roles=frozenset(staff.get("roles") or ()),
        amr=frozenset(staff.get("amr") or ()),
        issuer_fingerprint=staff.get("ifp"),
    )


def current(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The signed-in principal, when the session is live (no side effect)."""
    session = connection.scope.get("session")
    if not isinstance(session, dict):
        return None
    settings = services(connection).settings
    now = time.time()
    if now - float(session.get(SEEN, 0)) > settings.console_idle_timeout:
        return None
    if now - float(session.get(SINCE, 0)) > settings.console_lifetime:
        return None
    return principal_of(session)


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard of every signed-in page: a live session, a town in service, a
    person not suspended; then the principal is the request's user."""
    session = connection.scope.get("session")
    if not isinstance(session, dict) or STAFF not in session:
        raise NotSignedIn()
    principal = current(connection)
    if principal is None:
        session.clear()
        raise NotSignedIn(expired=True)
    if principal.issuer_fingerprint is not None:
        # Signed in through the town's own issuer: only while the town still
        # trusts that issuer as it was (replaced or removed with four eyes,
        # e.g. after a compromise, it ends every session it opened).
        issuers = services(connection).verifier.registry
        if issuers is None or not await issuers.trusts(
            principal.tenant or "", principal.issuer_fingerprint
        ):
            session.clear()
            raise NotSignedIn(expired=True)
    session[SEEN] = time.time()
    connection.scope["user"] = principal
    structlog.contextvars.bind_contextvars(actor=principal.actor)
    try:
        await admit(connection, principal)
    except errors.DomainError:
        # A suspension (or a town out of service) ends the session, not only
        # this click: lifting the suspension later does not revive it.
        session.clear()
        raise
