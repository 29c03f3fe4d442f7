"""What a route is called in the town's log: :class:`Audit`, declared on the route.

Read by the entry and by the refusal hook (:mod:`shared_gov.api.refusals`),
so that a refused attempt is found under the action a granted one has.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

from litestar.connection import ASGIConnection

from .gates import RECORDS, Gate

TENANT_ROUTES = "/api/v1/tenants/{code}/"
"""Every route under this prefix leaves an event in the town's log, whatever happens."""


@dataclass(frozen=True, slots=True)
class Audit:
    """What an event about a request on one route is called in the town's log,
    and the gate its entry goes through (:mod:`.gates`)."""

    action: str
    resource_type: str = "resident"
    record: str | None = None
    """The path parameter naming the record (a resident id): the event's subject,
    whatever the outcome."""
    gate: Gate = RECORDS
    exported_as: str | None = None
    """The action of a request that asks for an export (``?format=`` other than json)."""

    def subject(self, path_params: dict[str, Any] | None) -> list[str]:
        """The event's subjects: the record the path names, when it is an id."""
        if self.record is None or not path_params:
            return []
        value = path_params.get(self.record)
        if not isinstance(value, str):
            return []
        try:
            return [str(uuid.UUID(value))]
        except ValueError:
            return []

    def asked(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Audit:
        """The declaration as this request asks for it (an export is its own action).

        The value Litestar binds (the last one given): a repeated ``format``
        is refused anyway (:func:`..pipeline.single_values`), and its refusal
        is recorded under the action the handler would have performed.
        """
        formats = connection.query_params.getall("format", ["json"])
        if self.exported_as and formats[-1] != "json":
            return replace(self, action=self.exported_as)
        return self


AUDIT = "audit"
"""The key of a route's :class:`Audit` in its ``opt``."""


def route_audit(scope: Any) -> Audit:
    """The :class:`Audit` of the request's route (``api.<handler>`` if it declares none)."""
    handler = scope.get("route_handler")
    opt = getattr(handler, "opt", None) or {}
    found = opt.get(AUDIT)
    if isinstance(found, Audit):
        return found
    name = getattr(handler, "handler_name", None) or "unknown"
    return Audit(f"api.{name}", "request")
