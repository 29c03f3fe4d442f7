"""Refusals that routing itself answered: a method a town route does not take (405).

Litestar refuses ``HEAD``, ``PATCH`` or ``DELETE`` on a route that has no
handler for it while it routes the request — before the route's
middleware (so before authentication) and without a route handler, path
template or path parameters in the scope. The application's last-resort
audit hook (:func:`.refusals.audit_unrecorded`) found no route and
wrote nothing, although docs/audit.md promises one event for every refused
request on a town path that matches a route (review finding H-1).

:func:`audit_unrouted` restores what routing would have found and who asked:

- the route: the path routed again with the methods the route does take
  (the requested one's nearest: a read for ``HEAD``/``GET``-like methods, a
  write for the others — ``PUT``, ``POST``, ``DELETE``, ``PATCH``, then
  ``GET``), so the event carries that route's action and resource type
  (the route's declared :class:`.entry.Audit`) and the record its path
  names; only paths under a
  town's prefix count;
- the caller: the bearer token verified as the authentication middleware
  would have verified it. A valid token's person who is suspended is
  refused as everywhere else (``policy.permissions.admit`` records the
  denied ``authenticate`` event, reason ``suspended``); a valid token is
  the actor otherwise; no token, a refused token, or a town that is not in
  service make the failed login's ``unauthenticated`` actor, within the
  budget for refusals of callers without a token.

The answer stays the 405 routing gave (it discloses only which methods a
documented route takes); the event is denied with reason ``method not
allowed`` (prefixed by ``caller from another town`` or the operator's
reason when it was not the town's own).
"""

from __future__ import annotations

from typing import Any, Literal, cast

from litestar.types import Scope
from litestar.utils import normalize_path

from shared_gov import errors
from shared_gov.auth.principal import Principal
from shared_gov.auth.verify import TokenRejected
from shared_gov.logs import get_logger

from .entry import TENANT_ROUTES
from .refusals import UNROUTED, audit_unrecorded

log = get_logger(__name__)

_SAFE = ("GET", "PUT", "POST", "DELETE", "PATCH")
_WRITES = ("PUT", "POST", "DELETE", "PATCH", "GET")


def route_of(scope: Scope) -> Scope | None:
    """A copy of ``scope`` as routing would have made it for the route its path matches.

    None when the path matches no route with any method (a 404 that names
    nothing) or the app cannot route it.
    """
    app = scope.get("app")
    router = getattr(app, "asgi_router", None)
    if router is None:
        return None
    path = str(scope.get("path") or "")
    if root_path := scope.get("root_path", ""):
        path = path.split(root_path, maxsplit=1)[-1]
    path = normalize_path(path)
    requested = str(scope.get("method") or "GET").upper()
    order = _SAFE if requested in ("GET", "HEAD", "OPTIONS", "TRACE", "CONNECT") else _WRITES
    for method in order:
        try:
            _, handler, _, params, template = router.handle_routing(path=path, method=method)
        except Exception:  # noqa: S112 - this method is not the route's; try the next
            continue
        routed = {
            **scope,
            "method": method,
            "route_handler": handler,
            "path_params": params,
            "path_template": template,
            UNROUTED: True,
        }
        return cast(Scope, routed)
    return None


async def caller(routed: Scope) -> Principal | Literal["suspended"] | None:
    """Who asked, as the authentication middleware would have decided it.

    A :class:`Principal` for a valid token of a person in service; ``None``
    for no token, a refused token or a town out of service (the
    ``unauthenticated`` actor); ``"suspended"`` when the person is (the
    refusal is recorded already, by :func:`~shared_gov.policy.permissions.admit`).
    """
    from litestar import Request

    from shared_gov.policy.permissions import admit

    request: Request[Any, Any, Any] = Request(routed)
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    services = request.app.state.services
    try:
        principal: Principal = await services.verifier.verify(token.strip())
    except TokenRejected:
        return None
    try:
        await admit(request, principal)
    except errors.DomainError as exc:
        if exc.status == 403:
            return "suspended"  # admit recorded it
        if exc.status == 401:
            return None  # the token's town is not in service
        raise
    return principal


async def audit_unrouted(scope: Scope, exc: BaseException) -> None:
    """Record a request refused by routing on a town route (see the module docstring)."""
    routed = route_of(scope)
    if routed is None or not str(routed["path_template"]).startswith(TENANT_ROUTES):
        return
    try:
        who = await caller(routed)
    except Exception as failed:  # the catalog is unreachable: nothing decided, nothing to write
        log.warning("audit.unrecorded", error=type(exc).__name__, audit_error=type(failed).__name__)
        return
    if who == "suspended":
        return
    if isinstance(who, Principal):
        routed["user"] = who
    else:
        routed.pop("user", None)  # type: ignore[misc]
    await audit_unrecorded(routed, exc)
