"""``create_app()``: the Litestar application factory.

Only assembles: the process's services, the API's own controllers
(:mod:`shared_gov.api`) and every installed domain's (the domain registry),
the request pipeline (authentication, the principal dependency, problem+json
for every error, the refusal hook), and the database pool's lifespan. Run it
with any ASGI server, e.g.
``granian --interface asgi --factory shared_gov.app:create_app``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import structlog
from litestar import Litestar, get
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from shared_gov import __version__, policy
from shared_gov.api import problems
from shared_gov.api.administration import PurposeController, TownAdminController
from shared_gov.api.agreements import AgreementController
from shared_gov.api.auditors import AuditorController
from shared_gov.api.issuers import IssuerController, WellKnownController
from shared_gov.api.pipeline import (
    BearerAuthenticationMiddleware,
    Services,
    provide_principal,
    single_valued,
)
from shared_gov.api.proofs import AuditController
from shared_gov.api.refusals import after_exception
from shared_gov.api.tenants import TenantController
from shared_gov.audit import writer as audit_writer
from shared_gov.audit.recorder import track_request
from shared_gov.audit.sealer import Sealer
from shared_gov.auth.issuer import builtin_issuer
from shared_gov.auth.registry import FetchPolicy, IssuerRegistry, catalog_loader
from shared_gov.auth.verify import TokenVerifier
from shared_gov.crypto.keyring import keyring_from_settings
from shared_gov.db import Database
from shared_gov.db.embedded import start_embedded
from shared_gov.db.notify import ChangeListener
from shared_gov.domains import registry as domain_registry
from shared_gov.logs import configure_logging, get_logger, request_ids
from shared_gov.messages import language
from shared_gov.messages.core import Localized
from shared_gov.observability import AUTH_EXCLUDE, metrics_endpoint, metrics_middleware, ready
from shared_gov.openapi import document_problems
from shared_gov.policy.permissions import PermissionStore
from shared_gov.serving import behind_proxies
from shared_gov.settings import Settings, get_settings
from shared_gov.towns.registry import TenantRegistry
from shared_gov.validation import text_path_parameters
from shared_gov.web import close_stores, console_router, console_stores, console_template_config
from shared_gov.web.security import PREFIX as CONSOLE_PREFIX
from shared_gov.web.security import secured

log = get_logger("shared_gov.http")


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    """Bind a request id to the log context and log one line per request.

    It also negotiates the request's language (``Accept-Language``): whatever
    the response renders of the message catalogues is in that language, the
    response varies on the header, and says ``Content-Language`` when it
    carries a rendered message.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        structlog.contextvars.clear_contextvars()
        track_request()  # counts this request's audit events (api.refusals)
        # In flight: the audit writer waits for requests that may still add
        # an event to its next batch (audit/writer.py, "Waiting for company").
        audit_writer.request_started()
        # Ours always; the client's own id only as client_request_id (logs.py).
        request_id, client_id = request_ids(scope.get("headers", ()))
        negotiated = language.begin(_header(scope, b"accept-language"))
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
                headers = _vary_on_language(headers)
                names = {name.lower() for name, _ in headers}
                if negotiated.used and b"content-language" not in names:
                    headers.append((b"content-language", negotiated.language.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            audit_writer.request_ended()
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


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _vary_on_language(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Accept-Language`` among those the response varies on."""
    for i, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            listed = {v.strip().lower() for v in value.split(b",")}
            if b"accept-language" not in listed and b"*" not in listed:
                headers[i] = (name, value + b", Accept-Language")
            return headers
    return [*headers, (b"vary", b"Accept-Language")]


def _localized(value: Localized) -> str:
    """The JSON encoder's rendering of a catalogue message: in the request's language."""
    return value.render(language.current())


# Paths served without a bearer token (regular expressions, as Litestar's exclude takes them).
# The console signs its people in itself (web/signin.py): no bearer token there.
PUBLIC_PATHS = ("^/health$", "^/\\.well-known/", "^/docs", f"^{CONSOLE_PREFIX}(/|$)", *AUTH_EXCLUDE)


@get("/health", summary="Process is up", tags=["ops"])
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _logged(name: str, loop: Awaitable[None]) -> None:
    """Run a domain's background loop; one that fails is logged, not restarted."""
    try:
        await loop
    except Exception as exc:
        log.error("background.failed", loop=name, error=type(exc).__name__)


def create_app(settings: Settings | None = None, database_url: str | None = None) -> Litestar:
    """Build the application. Without a URL, starts the embedded PostgreSQL."""
    global access_log_enabled
    settings = settings or get_settings()
    configure_logging(settings.log_level, stream="stdout")
    access_log_enabled = settings.access_log
    url = database_url or settings.database_url or start_embedded(settings.data_dir)
    db = Database(url, settings, keyring_from_settings(settings))
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
    # The console's sessions and codes, in the database every host shares.
    stores = console_stores(settings, db)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await db.open()
        await svc.changes.start()
        app.state.services = svc
        sealing = asyncio.create_task(sealer.run_forever(), name="audit-sealer")
        # Group commit of reads' and refusals' events (audit/writer.py).
        audit_writer.start(db)
        # Each domain's loops (an outbox consumer ...), as its spec lists them.
        stop = asyncio.Event()
        loops = [
            asyncio.create_task(_logged(b.name, b.run(db, stop)), name=b.name)
            for b in domain_registry.background()
        ]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*loops)
            await audit_writer.stop(db)
            sealer.stop()
            await sealing
            await svc.changes.stop()
            await db.close()
            await close_stores(stores)

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
            # The web console (web/): pages, sign-in; never in the OpenAPI document.
            console_router(settings),
        ],
        stores=stores,
        # The console's templates and each domain's (the registry's consoles).
        template_config=console_template_config(),
        dependencies={"principal": Provide(provide_principal)},
        request_class=problems.StrictJSONRequest,
        # Reasons in a response (withheld fields, explanations) in the request's language.
        type_encoders={Localized: _localized},
        exception_handlers=problems.EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        # Before the error response leaves: the event a handler did not write.
        after_exception=[after_exception],
        # Authentication runs before the body is parsed, so anonymous callers
        # get 401 and never make us decode their payloads.
        # Outermost first: the path check runs after authentication.
        middleware=[
            DefineMiddleware(
                BearerAuthenticationMiddleware,
                exclude=list(PUBLIC_PATHS),
            ),
            # A control or format character in any path parameter: 422,
            # before any guard or handler.
            text_path_parameters,
            # A single-valued query parameter or entry header given twice: 400
            # (on a town route, once its entry knows who asks).
            single_valued,
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
    app.asgi_handler = secured(app.asgi_handler)
    app.asgi_handler = metrics_middleware(app.asgi_handler)
    app.asgi_handler = behind_proxies(app.asgi_handler, settings.trusted_proxies)
    # Outermost: also covers requests that match no route (404/405 probes).
    app.asgi_handler = request_context_middleware(app.asgi_handler)
    return app
