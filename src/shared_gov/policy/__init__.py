"""Authorisation decisions.

Interim rule until the Cedar engine lands (issue #3): staff of a town may act
on that town's residents; operators may manage tenants but never read
residents; anything else is answered 404 — not 403 — so that nobody learns
what exists in another town (DESIGN.md rule 3).

Services call :func:`authorize` before touching personal data. Controllers
call :func:`may_enter` first to refuse a foreign caller before any database
work.
"""

from __future__ import annotations

from enum import StrEnum

from shared_gov import errors
from shared_gov.auth.principal import Principal


class Action(StrEnum):
    RESIDENT_READ = "resident.read"
    RESIDENT_SEARCH = "resident.search"
    RESIDENT_REGISTER = "resident.register"
    RESIDENT_MOVE = "resident.move"
    RESIDENT_HISTORY = "resident.history"
    HOUSEHOLD_READ = "household.read"
    TENANT_MANAGE = "tenant.manage"


_STAFF_ROLES = frozenset({"staff", "admin"})


def may_enter(principal: Principal, tenant_code: str) -> bool:
    """Whether the principal may act inside ``tenant_code`` at all."""
    return principal.tenant == tenant_code and bool(principal.roles & _STAFF_ROLES)


def authorize(principal: Principal, action: Action, tenant_code: str) -> None:
    """Raise 404 unless ``principal`` may perform ``action`` in ``tenant_code``."""
    if action is Action.TENANT_MANAGE:
        if not principal.is_operator:
            raise errors.not_found()
        return
    if not may_enter(principal, tenant_code):
        raise errors.not_found()


def authorize_operator(principal: Principal) -> None:
    authorize(principal, Action.TENANT_MANAGE, "")


def authorize_admin(principal: Principal, tenant_code: str) -> None:
    """Town administration (departments, staff permissions, issuer): the town's
    admins and platform operators. Other towns get 404, the town's other staff 403."""
    if principal.is_operator:
        return
    if principal.tenant != tenant_code:
        raise errors.not_found()
    if "admin" not in principal.roles:
        raise errors.forbidden("administering the town needs the admin role")
