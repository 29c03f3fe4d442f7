"""The console's router and what the application registers for it."""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.static_files import create_static_files_router
from litestar.stores.file import FileStore

from shared_gov.domains import registry as domain_registry
from shared_gov.settings import Settings

from .admin import DepartmentPages, StaffPages
from .agreements import AgreementPages
from .auditors import AuditorPages
from .devissuer import DevIssuerController
from .issuer import IssuerPages
from .oidc import SignInController
from .pages import EXCEPTION_HANDLERS, STATIC, asset_version
from .security import CODE_STORE, PREFIX, SESSION_STORE, csrf_middleware, session_middleware


def console_stores(settings: Settings) -> dict[str, Any]:
    """Stores shared by the worker processes: sessions, and the dev issuer's codes."""
    base = settings.data_dir / "console"
    return {
        SESSION_STORE: FileStore(base / "sessions", create_directories=True),
        CODE_STORE: FileStore(base / "codes", create_directories=True),
    }


def console_router(settings: Settings) -> Router:
    """Everything under ``/console``; none of it in the OpenAPI document."""
    return Router(
        path=PREFIX,
        route_handlers=[
            SignInController,
            DevIssuerController,
            AuditorPages,
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
