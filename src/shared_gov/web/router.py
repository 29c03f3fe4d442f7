"""The console's router and what the application registers for it.

Domains bring pages of their own (``DomainSpec.console``, read through the
registry, never imported here): their controllers are mounted in this router
— its session, CSRF, headers and error pages — and their template folders
join the console's (:func:`console_template_config`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar import Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from shared_gov.db import Database
from shared_gov.domains import registry
from shared_gov.settings import Settings

from .admin import DepartmentPages, StaffPages
from .agreements import AgreementPages
from .analyses import AnalysisPages
from .auditors import AuditorPages
from .devissuer import DevIssuerController
from .issuer import IssuerPages
from .oidc import SignInController
from .pages import EXCEPTION_HANDLERS, STATIC, asset_version, template_config
from .security import CODE_STORE, PREFIX, SESSION_STORE, csrf_middleware, session_middleware
from .store import DatabaseStore, StorePool


def console_stores(settings: Settings, db: Database) -> dict[str, Any]:
    """Stores shared by every worker of every host: sessions, and the dev issuer's
    codes, in the database (:mod:`.store`). Close them with :func:`close_stores`."""
    pool = StorePool(db.url, timeout=settings.pool_acquire_timeout)
    return {
        SESSION_STORE: DatabaseStore(pool, SESSION_STORE),
        CODE_STORE: DatabaseStore(pool, CODE_STORE),
    }


def domain_pages() -> list[Any]:
    """Every domain's console controllers, each under ``/towns/{code:str}/<domain>``."""
    found: list[Any] = []
    for name, console in registry.consoles():
        for controller in console.controllers():
            path = str(getattr(controller, "path", "")).rstrip("/")
            own = f"/towns/{{code:str}}/{name}"
            if path != own and not path.startswith(own + "/"):
                raise ValueError(f"domain {name}: console page {path} is outside its own path")
            found.append(controller)
    return found


def console_template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """The console's templates and every domain's folder; the home page's links
    to the domains' pages (``domain_links``)."""
    consoles = registry.consoles()
    config = template_config([console.templates for _, console in consoles])
    links = [link for _, console in consoles for link in console.links]
    configure = config.engine_callback

    def with_links(engine: JinjaTemplateEngine) -> None:
        if configure is not None:
            configure(engine)
        engine.engine.globals["domain_links"] = links

    return dataclasses.replace(config, engine_callback=with_links)


async def close_stores(stores: dict[str, Any]) -> None:
    """Close the stores' own pool (at shutdown)."""
    for store in stores.values():
        if isinstance(store, DatabaseStore):
            await store.close()


def console_router(settings: Settings) -> Router:
    """Everything under ``/console``; none of it in the OpenAPI document."""
    return Router(
        path=PREFIX,
        route_handlers=[
            SignInController,
            DevIssuerController,
            AuditorPages,
            AnalysisPages,
            # The town admins' pages (web/admin.py, issuer.py, agreements.py).
            DepartmentPages,
            StaffPages,
            IssuerPages,
            AgreementPages,
            # Each domain's pages, as its spec lists them.
            *domain_pages(),
            create_static_files_router(
                path=f"/static/{asset_version()}",
                directories=[STATIC],
                include_in_schema=False,
                # Versioned URLs: a changed file has a new URL, so keep them long.
                cache_control=None,
            ),
        ],
        middleware=[session_middleware(settings), csrf_middleware(settings)],
        exception_handlers=dict(EXCEPTION_HANDLERS),
        include_in_schema=False,
    )
