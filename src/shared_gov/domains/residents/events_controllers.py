"""The town's event feed for its own integrations: ``GET /api/v1/tenants/{code}/events``.

Departments' systems poll it with the cursor of their last page and react to
what changed (see :mod:`.events` for what an event holds and docs/events.md
for the protocol).

Who may read: the town's own principals with the ``integration`` role (a
department system's client, from the town's IdP) or the ``admin`` role —
Cedar action ``read_events`` on the town's ``Town`` entity
(policies/events.cedar). The town's other staff get 403 with the reason;
other towns and operators get the 404 a missing town gets.

No ``X-Purpose`` is needed: the feed carries ids and field names, never a
personal value, and a consumer that wants the values reads the record through
the resident API, where its purpose is checked per field. The read is still
written to the town's audit log (action ``events.read``, resource type
``event_feed``) with the page's residents as subjects (hashed, as always):
an event about a person is still about that person, so auditors — and the
resident, in their access report — can tell which of the town's systems
were told of a change, and when. That costs one insert in the read's own
transaction, and only for pages that returned events: empty polls disclose
nothing and would otherwise be most of the log. Refusals are always recorded.

Who may read is decided by a guard, before any parameter is decoded (another
town learns nothing, not even whether its cursor would have parsed); then a
query parameter the feed does not take is a 400, never silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from litestar.params import PathParameter, QueryParameter

from shared_gov import errors
from shared_gov.api.entry import Admitted, Audit, admit_town, known_purpose, record_failure
from shared_gov.api.pipeline import known_query_only
from shared_gov.audit.recorder import AuditEvent, submit
from shared_gov.auth.principal import Principal
from shared_gov.domains.residents import events

__all__ = ["ACTION", "RESOURCE", "EventController", "authorize_reader"]

ACTION = "events.read"
RESOURCE = "event_feed"
DENIED = "reading the town's events needs the integration or admin role"
FEED = Audit(ACTION, RESOURCE)

TenantCode = Annotated[str, PathParameter(description="6-digit local government code")]


class EventOut(msgspec.Struct, kw_only=True):
    """One event: ids and field names, never a value."""

    event_id: str
    """Stable id of this event: use it to make handling idempotent."""
    cursor: str
    """This event's position: ``after=<cursor>`` resumes right after it."""
    type: str
    resident_id: str
    fields: list[str]
    """Names of the record fields the change set (empty for a new record)."""
    ids: dict[str, str]
    """Other ids: ``history_no`` (the history entry of the change), ``atena_no``,
    ``import_id`` for a bulk import, and others a flow adds. The towns of a
    move (``*_town``) are left out for people under 支援措置 and those sharing
    their household (docs/support-measures.md)."""
    occurred_at: datetime
    """When the change's transaction started (not the 異動日, which is personal)."""


class EventPage(msgspec.Struct, kw_only=True):
    events: list[EventOut]
    count: int
    next: str
    """Pass as ``after`` on the next read, also when this page was empty."""
    more: bool
    """The page is full: read again at once. Otherwise wait before polling."""


async def authorize_reader(
    connection: ASGIConnection[Any, Any, Any, Any], principal: Principal, code: str
) -> Admitted:
    """Let the town's integrations and admins in; record and raise any refusal."""
    return await admit_town(
        connection,
        principal,
        code,
        FEED,
        ("read_events", "Town"),
        # The feed needs no purpose; a known one the caller stated is kept.
        purpose=known_purpose(connection.headers.get("x-purpose")),
        outsiders="operators do not read a town's events",
        refused=lambda decision: errors.forbidden(DENIED, list(decision.policy_ids)),
    )


_AUTHORIZED = "event_reader"


async def readers_only(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """Guard: :func:`authorize_reader` before any parameter is decoded."""
    principal = connection.scope.get("user")
    if not isinstance(principal, Principal):  # pragma: no cover - authenticated routes
        raise errors.unauthorized()
    code = str(connection.path_params["code"])
    connection.state[_AUTHORIZED] = await authorize_reader(connection, principal, code)


class EventController(Controller):
    path = "/api/v1/tenants/{code:str}/events"
    tags = ("events",)
    guards = (readers_only, known_query_only)

    @get(
        "/",
        summary="The town's domain events after a cursor (integrations and admins)",
        audit=FEED,
    )
    async def list_events(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        after: Annotated[
            str | None,
            QueryParameter(
                max_length=64, description="``next`` of the previous page; omit to start"
            ),
        ] = None,
        limit: Annotated[
            int, QueryParameter(ge=1, le=events.MAX_LIMIT, description="events per page")
        ] = events.DEFAULT_LIMIT,
        kinds: Annotated[
            list[str] | None,
            QueryParameter(name="type", description="only these types (repeatable)"),
        ] = None,
    ) -> EventPage:
        admitted: Admitted = request.state[_AUTHORIZED]
        svc, names, actor = admitted.svc, admitted.names, admitted.actor
        # An empty ?after= is a malformed cursor, not "from the start".
        cursor = events.Cursor.decode(after, code) if after is not None else None
        wanted = events.parse_kinds(kinds)
        try:
            async with svc.db.tenant(names) as uow:
                page = await events.read(uow, cursor, limit=limit, kinds=wanted)
                page = await events.withhold_whereabouts(uow, page)
            if page.events and svc.settings.audit:
                # A read: group-committed by the audit writer before the answer.
                await submit(
                    svc.db,
                    names,
                    actor,
                    AuditEvent(
                        action=ACTION,
                        resource_type=RESOURCE,
                        subjects=[e["resident_id"] for e in page.events],
                        rows=len(page.events),
                    ),
                )
        except Exception as exc:
            # Whatever failed inside the town's unit of work is in its log too.
            event = AuditEvent(action=ACTION, resource_type=RESOURCE)
            await record_failure(svc, names, actor, event, exc)
            raise
        return EventPage(
            events=[msgspec.convert(e, EventOut) for e in page.events],
            count=len(page.events),
            next=page.next.encode(code),
            more=page.more,
        )
