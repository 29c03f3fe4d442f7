"""``create_app()``: the Litestar application factory.

Mounts each package's controllers, wires the principal dependency, renders
every error as RFC 9457 problem+json, and opens/closes the database pool
with the application's lifespan. Run it with any ASGI server, e.g.
``granian --interface asgi --factory shared_gov.app:create_app``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

import asyncpg
import structlog
from litestar import Litestar, Request, Response, get
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shared_gov import __version__, errors, policy
from shared_gov.audit.auditor_controllers import AuditorController
from shared_gov.audit.controllers import AuditController
from shared_gov.audit.recorder import track_request
from shared_gov.audit.sealer import Sealer
from shared_gov.auth.controllers import IssuerController, WellKnownController
from shared_gov.auth.issuer import builtin_issuer
from shared_gov.auth.registry import FetchPolicy, IssuerRegistry, catalog_loader
from shared_gov.auth.verify import TokenVerifier
from shared_gov.crypto.providers import KeyProviderError, WrapError
from shared_gov.db import Database
from shared_gov.db.embedded import start_embedded
from shared_gov.db.notify import ChangeListener
from shared_gov.domains import registry as domain_registry
from shared_gov.logs import configure_logging, get_logger, request_ids
from shared_gov.observability import AUTH_EXCLUDE, metrics_endpoint, metrics_middleware, ready
from shared_gov.openapi import document_problems
from shared_gov.policy.agreement_controllers import AgreementController
from shared_gov.policy.controllers import PurposeController, TownAdminController
from shared_gov.policy.permissions import PermissionStore
from shared_gov.serving import behind_proxies
from shared_gov.settings import Settings, get_settings
from shared_gov.tenancy.controllers import TenantController
from shared_gov.tenancy.registry import TenantRegistry
from shared_gov.validation import duplicate_key, msgspec_error_to_field, text_path_parameters
from shared_gov.web import (
    BearerAuthenticationMiddleware,
    Services,
    audit_unrecorded,
    provide_principal,
)

log = get_logger("shared_gov.http")


class StrictJSONRequest(Request[Any, Any, Any]):
    """Every request: a JSON body whose object repeats a key is refused (422).

    Litestar decodes every JSON body of the API (structs and plain bodies
    alike) through ``Request.json()`` before converting it to the handler's
    type, so this is the one place all of them pass; GETs have no body.
    """

    async def json(self) -> Any:
        body = await self.body()
        pointer = duplicate_key(body) if body else None
        if pointer is not None:
            # The key (a field name), never a value.
            raise errors.invalid_field(pointer, "occurs more than once in its object")
        return await super().json()


def _problem(exc: errors.DomainError, request: Request[Any, Any, Any]) -> Response[Any]:
    return Response(
        content=exc.problem(),
        status_code=exc.status,
        media_type=errors.PROBLEM_JSON,
        headers=exc.headers,
    )


def _domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _problem(problem_of(exc), request)


def _validation_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's body/parameter validation -> 422 with JSON pointers, values removed."""
    return _problem(problem_of(exc), request)


def _validation_problem(exc: ValidationException) -> errors.DomainError:
    problems: list[errors.FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        source = item.get("source")
        key = str(item.get("key", ""))
        if source == "body" or key == "data":
            field = msgspec_error_to_field(message)
            if key and key != "data" and field.pointer in ("", "/"):
                # Litestar moves msgspec's "$.data.x" location into `key`.
                pointer = "/" + re.sub(r"\[(\d+)\]", r".\1", key).replace(".", "/")
                field = errors.FieldError(pointer, field.detail)
            problems.append(field)
        else:
            where = getattr(source, "value", source) or "request"
            problems.append(errors.FieldError(f"/{where}/{key}", "invalid value"))
    if not problems:
        detail = "the request body is not valid JSON" if "JSON" in exc.detail else "invalid input"
        return errors.bad_request(detail)
    return errors.invalid(problems)


_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
}


def _http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _problem(problem_of(exc), request)


def _http_problem(exc: HTTPException) -> errors.DomainError:
    status = exc.status_code
    slug = _SLUGS.get(status, "http")
    detail = {
        400: "the request body is not valid JSON or not the expected shape",
        404: "no such resource",
        405: "method not allowed",
        413: "the request body is too large",
    }.get(status, "the request could not be processed" if status < 500 else "internal error")
    # RFC 9457 §3.1.3: the title does not change from occurrence to occurrence.
    return errors.DomainError(
        detail=detail,
        status=status,
        type_slug=slug,
        title=HTTPStatus(status).phrase.capitalize(),
        headers=dict(exc.headers or {}),
    )


def _internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    problem = problem_of(exc)
    if problem.type_slug == "internal":
        # Log the type only: exception messages from drivers can quote values.
        log.error("request.failed", error=type(exc).__name__)
    elif isinstance(exc, KeyProviderError):
        # The HSM is unreachable (or lacks a key) on a path that called the
        # keyring directly (audit queries, sealing): the platform's fault.
        log.warning("key_provider.unavailable", error=type(exc).__name__)
    return _problem(problem, request)


def problem_of(exc: BaseException) -> errors.DomainError:
    """The problem+json an exception is answered with (what every handler renders).

    Pure: the exception handlers render it, and the audit hook records the
    same status and reason the caller gets.
    """
    from shared_gov.db.engine import UNAVAILABLE_ERRORS

    if isinstance(exc, errors.DomainError):
        return exc
    if isinstance(exc, ValidationException):
        return _validation_problem(exc)
    if isinstance(exc, HTTPException):
        return _http_problem(exc)
    if isinstance(exc, asyncpg.QueryCanceledError):
        # statement_timeout: e.g. waiting behind a lock another session holds.
        return errors.unavailable("the database did not answer in time; retry")
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return errors.unavailable("the database is unreachable; retry")
    if isinstance(exc, KeyProviderError) and not isinstance(exc, WrapError):
        return errors.unavailable("the key provider is unavailable; retry")
    if isinstance(exc, RecursionError):
        # Litestar decodes untyped JSON recursively: "[[[[…" is bad input, not a bug.
        return errors.bad_request("the request body is nested too deeply")
    return errors.DomainError("internal error", 500, "internal", "Internal error")


async def _audit_unrecorded(exc: Exception, scope: Scope) -> None:
    """``after_exception``: the refusal or error a handler did not record (web.py)."""
    problem = problem_of(exc)
    # A 4xx as the caller sees it; a 5xx as it happened (failed_attempt tells
    # an outage, which writes nothing, from an error, recorded by its type).
    await audit_unrecorded(scope, problem if problem.status < 500 else exc)


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    """Bind a request id to the log context and log one line per request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        track_request()  # counts this request's audit events (web.audit_unrecorded)
        # Ours always; the client's own id only as client_request_id (logs.py).
        request_id, client_id = request_ids(scope.get("headers", ()))
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if client_id is not None:
            structlog.contextvars.bind_contextvars(client_request_id=client_id)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            if access_log_enabled:
                log.info(
                    "request",
                    method=scope.get("method"),
                    # Paths carry codes and UUIDs only; personal values go in bodies.
                    path=scope.get("path"),
                    status=status,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )

    return middleware


access_log_enabled = True

# Paths served without a bearer token (regular expressions, as Litestar's exclude takes them).
PUBLIC_PATHS = ("^/health$", "^/\\.well-known/", "^/docs", *AUTH_EXCLUDE)


@get("/health", summary="Process is up", tags=["ops"])
async def health() -> dict[str, str]:
    return {"status": "ok"}


def create_app(settings: Settings | None = None, database_url: str | None = None) -> Litestar:
    """Build the application. Without a URL, starts the embedded PostgreSQL."""
    global access_log_enabled
    settings = settings or get_settings()
    configure_logging(settings.log_level, stream="stdout")
    access_log_enabled = settings.access_log
    url = database_url or settings.database_url or start_embedded(settings.data_dir)
    db = Database(url, settings)
    issuer = builtin_issuer(settings.data_dir, settings.issuer, settings.audience)
    svc = Services(
        settings=settings,
        db=db,
        registry=TenantRegistry(db),
        issuer=issuer,
        verifier=TokenVerifier(
            issuer=issuer.issuer,
            audience=issuer.audience,
            keys=issuer.public_keyset(),
            registry=IssuerRegistry(
                catalog_loader(db), policy=FetchPolicy(public_only=not settings.is_dev)
            ),
            # Outside development, towns' staff come from towns' own IdPs only.
            builtin_for_towns=settings.is_dev,
            max_lifetime=settings.max_token_lifetime,
            max_integration_lifetime=settings.max_integration_token_lifetime,
        ),
        changes=ChangeListener(db.url),
        # Refuses to start on an invalid policy (PolicyError).
        policy=policy.engine(),
        permissions=PermissionStore(db),
    )
    svc.changes.subscribe(lambda _tenant: svc.registry.invalidate())
    svc.changes.subscribe(svc.verifier.invalidate_issuers)
    svc.changes.subscribe(svc.permissions.invalidate)
    svc.changes.subscribe(db.keyring.invalidate)
    svc.changes.subscribe(svc.policy.invalidate)

    # One sealer per worker; an advisory lock makes exactly one of them the leader.
    sealer = Sealer(db)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await db.open()
        await svc.changes.start()
        app.state.services = svc
        sealing = asyncio.create_task(sealer.run_forever(), name="audit-sealer")
        try:
            yield
        finally:
            sealer.stop()
            await sealing
            await svc.changes.stop()
            await db.close()

    app = Litestar(
        route_handlers=[
            health,
            ready,
            metrics_endpoint,
            WellKnownController,
            IssuerController,
            TenantController,
            # Every installed domain's controllers, as its spec lists them.
            *domain_registry.routers(),
            AuditorController,
            AuditController,
            TownAdminController,
            PurposeController,
            AgreementController,
        ],
        dependencies={"principal": Provide(provide_principal)},
        # A control or format character in any path parameter: 422, before any handler.
        guards=[text_path_parameters],
        request_class=StrictJSONRequest,
        exception_handlers={
            errors.DomainError: _domain_error_handler,
            ValidationException: _validation_handler,
            HTTPException: _http_error_handler,
            Exception: _internal_error_handler,
        },
        # Before the error response leaves: the event a handler did not write.
        after_exception=[_audit_unrecorded],
        # Authentication runs before the body is parsed, so anonymous callers
        # get 401 and never make us decode their payloads.
        middleware=[
            DefineMiddleware(
                BearerAuthenticationMiddleware,
                exclude=list(PUBLIC_PATHS),
            )
        ],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="shared-gov",
            version=__version__,
            description="Backend of a shared municipal cloud (自治体クラウド).",
            path="/docs",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        logging_config=None,
        debug=False,
    )
    document_problems(app, PUBLIC_PATHS)
    app.asgi_handler = metrics_middleware(app.asgi_handler)
    app.asgi_handler = behind_proxies(app.asgi_handler, settings.trusted_proxies)
    # Outermost: also covers requests that match no route (404/405 probes).
    app.asgi_handler = request_context_middleware(app.asgi_handler)
    return app
