"""The last resort: a refusal or error on a town's route that no entry recorded.

:func:`audit_unrecorded` is the application's ``after_exception`` hook:
every request under ``/api/v1/tenants/{code}/`` that ends in a refusal or an
error leaves exactly one event in that town's log, under the action its
route declares (:class:`.entry.Audit`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.handlers import BaseRouteHandler
from litestar.types import Scope

from shared_gov import errors
from shared_gov.audit.recorder import AuditEvent, written_in_request
from shared_gov.auth.failures import FailedLoginGate, failed_login_actor
from shared_gov.auth.principal import Principal
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.logs import get_logger

from .entry import TENANT_ROUTES, audit_actor, guarded_entry, record_failure, route_audit
from .pipeline import services
from .problems import problem_of

log = get_logger(__name__)

UNROUTED = "shared_gov.unrouted"
"""Scope key marking a scope :mod:`.unrouted` routed again (the caller may have no token)."""

ANONYMOUS_GATE_KEY = "anonymous_refusals"
"""Where the process's gate for refusals of callers without a token lives on ``app.state``."""


async def after_exception(exc: Exception, scope: Scope) -> None:
    """``after_exception``: the refusal or error a handler did not record."""
    problem = problem_of(exc)
    # A 4xx as the caller sees it; a 5xx as it happened (failed_attempt tells
    # an outage, which writes nothing, from an error, recorded by its type).
    await audit_unrecorded(scope, problem if problem.status < 500 else exc)


async def audit_unrecorded(scope: Scope, exc: BaseException) -> None:
    """Record a request on a town's route that failed without recording it itself.

    It runs after the handler raised and before the error response is sent,
    so a refusal is in the log before the caller learns of it (no record, no
    answer). ``exc`` is the exception as the response will render it: a 4xx
    is a :class:`errors.DomainError` (:func:`.problems.problem_of` converts
    Litestar's own validation and HTTP errors first); anything else is the
    original exception.

    Covered: everything raised before an entry records — body and parameter
    decoding and validation (400, 422), header checks (428, 412), refusals
    of read-only administration and of the auditors' parameters — and
    whatever a handler raises outside its entry. One event, in a transaction
    of its own, only if nothing was written for the request yet
    (:func:`written_in_request`). When a route's guard let the caller into
    a town (:func:`.entry.guarded_entry`: every town route's entry, and an
    agreement's step in the admin's own town), through that entry, with
    what it decided. Otherwise in the log of the town of the path when it
    is on this deployment (an unknown code writes nothing, as before):

    - actor: the caller, with the purpose a guard's entry decided on, else
      none (:mod:`.entry.actors`); for a route without a token (enrolment) the failed
      login's ``unauthenticated`` actor, within a per-process budget like the
      failed logins' (a caller without a token must not be able to fill a
      town's log);
    - action, resource type and subject (the record its path names) as the
      route declares them (:class:`.entry.Audit`);
    - outcome and reason as :func:`.entry.failed_attempt` gives them:
      ``not_found``, ``denied`` (every other 4xx, and whatever another town
      or an operator got: a concealed refusal with the gate's reason), ``error`` (5xx, the
      exception's type only); an outage (503) writes nothing. Reasons are our
      own texts: never a submitted value.

    A request routing refused (405: a method the route does not take) has
    no route handler: :func:`.unrouted.audit_unrouted` finds the route and
    the caller, and records it here.

    Not covered (recorded elsewhere or never): the authentication
    middleware's refusals (401s, suspended people: :mod:`shared_gov.auth.failures`
    and :func:`shared_gov.policy.permissions.admit` record them), requests
    that match no route with any method (no caller was identified), and
    routes outside a town's path.
    """
    if scope["type"] != ScopeType.HTTP or written_in_request():
        return
    template = str(scope.get("path_template") or "")
    handler = scope.get("route_handler")
    if handler is None:
        # Routing refused it (a 405): the route its path matches, and who asked.
        from .unrouted import audit_unrouted

        await audit_unrouted(scope, exc)
        return
    request: Request[Any, Any, Any] = Request(scope)
    entry = guarded_entry(request)
    if entry is not None:
        # A guard let the caller into the town (an agreement's step: their
        # own, whatever the path): its record, with what it decided.
        await entry.refused(exc)
        return
    if not template.startswith(TENANT_ROUTES):
        return
    principal = scope.get("user")
    anonymous_ok = _without_token(handler) or bool(scope.get(UNROUTED))
    if not isinstance(principal, Principal) and not anonymous_ok:
        return  # the authentication middleware refused it (and reported it)
    path_params = scope.get("path_params") or {}
    code = str(path_params.get("code") or "")
    if not is_valid_lgcode(code):
        return
    svc = services(request)
    try:
        names = await svc.registry.get(code)
    except Exception as failed:  # the catalog is unreachable: nothing to write into
        log.warning("audit.unrecorded", error=type(exc).__name__, audit_error=type(failed).__name__)
        return
    if names is None:
        return
    route = route_audit(scope).asked(request)
    if isinstance(principal, Principal):
        # Nothing was decided on a purpose for this caller: none is recorded.
        actor = audit_actor(request, principal, None)
        why = route.gate.outsider(principal, code)
        if why and isinstance(exc, errors.DomainError) and not exc.audit.get("reason"):
            # They got what anyone outside the town gets; the log says who it
            # was, as a refusal (whatever status they were answered with).
            reason = why if isinstance(exc, errors.NotFound) else f"{why}: {exc.detail}"
            exc = errors.concealed(reason, exc.policies)
    else:
        client = request.client.host if request.client else None
        gate = request.app.state.get(ANONYMOUS_GATE_KEY)
        if not isinstance(gate, FailedLoginGate):
            gate = request.app.state[ANONYMOUS_GATE_KEY] = FailedLoginGate()
        if not gate.admit(client or "unknown", code):
            return
        actor = failed_login_actor(client, request.headers.get("user-agent"))
    event = AuditEvent(
        action=route.action,
        resource_type=route.resource_type,
        subjects=route.subject(path_params),
    )
    await record_failure(svc, names, actor, event, exc)


def _without_token(handler: BaseRouteHandler) -> bool:
    return bool(handler.opt.get("exclude_from_auth"))
