"""The guarded entry of a supplier's system into a town (supplier endpoints).

A supplier is a principal of the platform, not of a town (``Principal.is_supplier``;
its subject is its supplier key). The platform's :class:`~shared_gov.api.entry.Entry`
admits a town's own people only, so the supplier endpoints enter through this
one, built from the same pieces (``audit_actor``, ``record``,
``record_failure``) and with the same guarantees:

1. a missing town, a caller who is not a supplier, and a supplier the town
   has not registered (or has deactivated) all get the same 404, recorded in
   the town's log as a denial with the reason;
2. the purpose is fixed (``invoices.supplier``): a supplier states none;
3. one unit of work on the town; Cedar decides each record action with the
   invoice's owner (:meth:`SupplierEntry.require`): a supplier acts on its own
   invoices only — another's is the same 404;
4. the access is recorded in that transaction before it commits, or the
   refusal or failure in a transaction of its own after the rollback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Annotated, Any

import structlog
from litestar import Request
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter

from shared_gov import errors, policy
from shared_gov.api.entry import (
    AUDIT,
    RECORDS,
    Audit,
    audit_actor,
    record_failure,
    route_audit,
)
from shared_gov.api.pipeline import services
from shared_gov.audit.recorder import AuditEvent, record
from shared_gov.auth.principal import Principal
from shared_gov.db import TenantUnitOfWork
from shared_gov.policy import Access, Query, Resource
from shared_gov.policy.purposes import purposes

from . import repository as repo
from .models import Supplier

PURPOSE = "invoices.supplier"

TenantCode = Annotated[str, PathParameter(description="6-digit local government code")]


class SupplierEntry:
    """One supplier request's way into a town (``async with entry:``)."""

    __slots__ = ("_scope", "access", "code", "principal", "request", "supplier", "uow")

    uow: TenantUnitOfWork
    access: Access
    supplier: Supplier

    def __init__(self, request: Request[Any, Any, Any], principal: Principal, code: str) -> None:
        self.request = request
        self.principal = principal
        self.code = code

    @property
    def audit(self) -> AuditEvent:
        return self.access.audit

    def require(self, owner: str, record_type: str = "Invoice") -> None:
        """Cedar decides the supplier's action on a record ``owner`` owns; refused: 404."""
        decision = self.access.engine.decide(
            self.access.actor,
            Query(
                "invoice_submit",
                Resource("Record", self.code, record_type=record_type, owner=owner),
                self.access.purpose,
            ),
        )
        self.access.decisions.append(("invoice_submit", decision))
        if not decision.allowed:
            raise errors.concealed("not this supplier's invoice", list(decision.policy_ids) or None)

    async def __aenter__(self) -> SupplierEntry:
        structlog.contextvars.bind_contextvars(tenant=self.code)
        self._scope = _scope(self)
        await self._scope.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._scope.__aexit__(exc_type, exc, tb)


@asynccontextmanager
async def _scope(entry: SupplierEntry) -> AsyncIterator[None]:
    request, principal, code = entry.request, entry.principal, entry.code
    svc = services(request)
    route = route_audit(request.scope)
    purpose = purposes()[PURPOSE]
    actor = audit_actor(request, principal, purpose.code)
    event = AuditEvent(
        action=route.action,
        resource_type=route.resource_type,
        subjects=route.subject(request.scope.get("path_params")),
    )
    names = await svc.registry.get(code)
    try:
        if names is None:
            raise errors.not_found()
        if not principal.is_supplier:
            # Other towns' people and operators get the reason every town route gives them.
            raise errors.concealed(
                RECORDS.outsider(principal, code)
                or "the supplier endpoints serve suppliers' systems only"
            )
    except Exception as exc:
        if names is not None:
            await record_failure(svc, names, actor, event, exc)
        raise
    access = Access(principal, policy.actor_of(principal), purpose, svc.policy, code)
    access.audit = event
    entry.access = access
    try:
        async with svc.db.tenant(names) as uow:
            entry.uow = uow
            supplier = await repo.registration_by_key(uow, principal.subject)
            if supplier is None or not supplier.active:
                raise errors.concealed("the supplier is not registered with this town")
            entry.supplier = supplier
            yield
            if svc.settings.audit:
                await record(uow, actor, event)
    except Exception as exc:
        await record_failure(svc, names, actor, event, exc)
        raise


async def _provide(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal], code: TenantCode
) -> SupplierEntry:
    return SupplierEntry(request, principal, code)


def supplier_route(
    action: str,
    resource_type: str = "invoice",
    path_record: str | None = None,
    *,
    body: bool = False,
) -> dict[str, Any]:
    """A supplier route's declaration (spread into the decorator): its audit action and
    entry (``body``: it takes a request body, for the OpenAPI problems: 413)."""
    return {
        AUDIT: Audit(action, resource_type, path_record),
        "dependencies": {"supplier_entry": Provide(_provide)},
        "inputs": ("code", "data") if body else ("code",),
    }
