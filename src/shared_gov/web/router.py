"""The console's router and what the application registers for it."""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.static_files import create_static_files_router

from shared_gov.db import Database
from shared_gov.domains import registry as domain_registry
from shared_gov.settings import Settings

from .admin import DepartmentPages, StaffPages
from .agreements import AgreementPages
from .analyses import AnalysisPages
from .auditors import AuditorPages
from .devissuer import DevIssuerController
from .issuer import IssuerPages
from .oidc import SignInController
from .pages import EXCEPTION_HANDLERS, STATIC, asset_version
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
            # Every installed domain's pages, as its spec lists them.
            *domain_registry.console_pages(),
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
