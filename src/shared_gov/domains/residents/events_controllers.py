"""The town's event feed for its own integrations: ``GET /api/v1/tenants/{code}/events``.

Departments' systems poll it with the cursor of their last page and react to
what changed (see :mod:`.events` for what an event holds and docs/events.md
for the protocol).

Who may read: the town's own principals with the ``integration`` role (a
department system's client, from the town's IdP) or the ``admin`` role —
Cedar action ``read_events`` on the town's ``Town`` entity
(policies/events.cedar). The town's other staff get 403 with the reason;
other towns and operators get the 404 a missing town gets.

No ``X-Purpose`` is read (the event's ``purpose`` is null): the feed
carries ids and field names, never a personal value, and a consumer that
wants the values reads the record through the resident API, where its
purpose is checked per field. The read is still
written to the town's audit log (action ``events.read``, resource type
``event_feed``) with the page's residents as subjects (hashed, as always):
an event about a person is still about that person, so auditors — and the
resident, in their access report — can tell which of the town's systems
were told of a change, and when. That costs one insert in the read's own
transaction, and only for pages that returned events: empty polls disclose
nothing and would otherwise be most of the log. Refusals are always recorded.

Who may read is decided by the guarded entry's gate (:data:`FEED`) in a
guard, before any parameter is decoded (another town learns nothing, not
even whether its cursor would have parsed); then a query parameter the feed
does not take is a 400, never silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from shared_gov import errors
from shared_gov.api.entry import Entry, Gate, audited
from shared_gov.domains.residents import events
from shared_gov.messages import access as ma

__all__ = ["ACTION", "FEED", "RESOURCE", "EventController"]

ACTION = "events.read"
RESOURCE = "event_feed"
DENIED = ma.EVENTS_NEED_ROLE

FEED = Gate(
    "events",
    decides=("read_events", "Town"),
    # No purpose: Cedar decides read_events on the town, on none. An X-Purpose
    # is not read, so never recorded (it was the caller's word: an
    # integration's "kansa.audit" showed in residents' access reports).
    purpose=None,
    operators="operators do not read a town's events",
    refused=lambda decision: errors.forbidden(DENIED, list(decision.policy_ids)),
    in_guard=True,
    quiet_when_empty=True,
)
"""The feed's gate: Cedar ``read_events`` on the town, in a guard before any
parameter is decoded; a read with events is recorded, an empty poll is not."""


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


class EventController(Controller):
    path = "/api/v1/tenants/{code:str}/events"
    tags = ("events",)

    @get(
        "/",
        summary="The town's domain events after a cursor (integrations and admins)",
        **audited(ACTION, RESOURCE, gate=FEED),
    )
    async def list_events(
        self,
        entry: NamedDependency[Entry],
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
        code = entry.code
        # An empty ?after= is a malformed cursor, not "from the start".
        cursor = events.Cursor.decode(after, code) if after is not None else None
        wanted = events.parse_kinds(kinds)
        async with entry:
            page = await events.read(entry.uow, cursor, limit=limit, kinds=wanted)
            page = await events.withhold_whereabouts(entry.uow, page)
            # The page's residents are the read's subjects (an empty page is not recorded).
            entry.audit.subjects = [e["resident_id"] for e in page.events]
            entry.audit.rows = len(page.events)
        return EventPage(
            events=[msgspec.convert(e, EventOut) for e in page.events],
            count=len(page.events),
            next=page.next.encode(code),
            more=page.more,
        )
