"""Auditors' endpoints on a town's audit log, under ``/api/v1/tenants/{code}/audit``.

- ``GET /events``: search with filters, keyset pages, or a streamed export
  (``?format=csv`` or ``?format=jsonl``).
- ``GET /analyses``: after-hours and holiday access, bulk access, repeated
  denials, individual-number reads (see :mod:`shared_gov.audit.analyses`).
- ``POST /suppressions`` and ``GET /suppressions``: withhold events from
  residents' access reports until a date.

Only the town's auditors may (Cedar action ``audit`` on ``AuditLog``): the
town's other staff get 403 with the reason, other towns and operators 404.
That is decided by a guard (:func:`auditors_only`), before any parameter or
body is read: whoever may not ask gets the refusal, never a 400/422 about
what they sent. Then a query parameter the endpoint does not take is a 400
(:func:`shared_gov.api.pipeline.known_query_only`): an ignored filter would return
more than was asked for. Auditors are audited too: every query, export, analysis and suppression is
an event in the town's log (resource type ``audit_log``), and so is every
refused attempt. A search by resident names the resident in that event's
subjects (hashed), so who looked whom up stays answerable.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody, PathParameter, QueryParameter
from litestar.response import Stream

from shared_gov import errors
from shared_gov.api.entry import Admitted, Audit, admit_town, route_audit
from shared_gov.api.pipeline import Services, known_query_only
from shared_gov.audit import analyses, queries, suppressions
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.audit.recorder import AuditEvent, record_apart, record_as_town
from shared_gov.auth.principal import Principal
from shared_gov.clock import now_jst
from shared_gov.crypto.keyring import town_keys
from shared_gov.openapi import served_also_as
from shared_gov.policy.access import denied
from shared_gov.towns.names import TenantNames
from shared_gov.validation import NO_NUL_PATTERN, NoNul

AUDIT_PURPOSE = "kansa.audit"
"""Recorded as the purpose of auditors' own events: these endpoints serve no other."""
RESOURCE = "audit_log"

TenantCode = Annotated[str, PathParameter(description="6-digit local government code")]
# No NUL: these filters are compared with text columns, which cannot hold one (it was a 500).
Text = Annotated[str | None, QueryParameter(max_length=128, pattern=NO_NUL_PATTERN)]
# Counts and LIMIT are PostgreSQL bigints: a larger number failed as a 500.
BIGINT_MAX = 2**63 - 1
_INSTANT = "ISO 8601 date or date-time; without an offset, Japan time"
From = Annotated[str | None, QueryParameter(name="from", description=_INSTANT + " (inclusive)")]
To = Annotated[str | None, QueryParameter(name="to", description=_INSTANT + " (exclusive)")]


class AuditEventOut(msgspec.Struct, kw_only=True):
    event_id: str
    occurred_at: str
    request_id: str | None
    """The service's id of the request (also in its log lines)."""
    client_request_id: str | None
    """What the client sent as ``X-Request-ID``: the client's word, not ours."""
    actor: str | None
    actor_tenant: str | None
    department: str | None
    roles: list[str]
    auth_strength: str | None
    client_addr: str | None
    user_agent: str | None
    action: str
    resource_type: str
    subjects: list[str]
    """Keyed hashes of resident ids (decimal strings): search with ``subject=<resident id>``."""
    fields: list[str]
    rows_returned: int
    individual_number: bool
    purpose: str | None
    agreement_id: str | None
    outcome: str
    reason: str | None
    policy_ids: list[str]


class AuditEventPage(msgspec.Struct, kw_only=True):
    events: list[AuditEventOut]
    count: int
    next: str | None
    """URL of the next page (same filters), None on the last page."""
    next_cursor: str | None


class SuppressionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    event_ids: Annotated[list[uuid.UUID], msgspec.Meta(min_length=1, max_length=1000)]
    until: date
    """Release date: the events reappear in the resident's report on this day (JST)."""
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200), NoNul]
    """For auditors only, never shown to the resident. Name a case, not a person."""


class SuppressionOut(msgspec.Struct, kw_only=True):
    suppressed: int
    until: date


class SuppressionItem(msgspec.Struct, kw_only=True):
    event_id: str
    until: date
    active: bool
    reason: str
    created_by: str
    created_at: datetime


class SuppressionList(msgspec.Struct, kw_only=True):
    suppressions: list[SuppressionItem]


async def authorize_auditor(
    connection: ASGIConnection[Any, Any, Any, Any], principal: Principal, code: str, route: Audit
) -> Admitted:
    """The town's auditors pass; anyone else is refused, and the refusal is recorded.

    Other towns and operators get the 404 a missing town gets; the town's own
    staff get 403 with the reason Cedar's decision gives.
    """
    return await admit_town(
        connection,
        principal,
        code,
        route,
        ("audit", "AuditLog"),
        purpose=AUDIT_PURPOSE,
        outsiders="operators do not read a town's audit log",
        refused=denied,
    )


_AUTHORIZED = "auditor"
"""Where :func:`auditors_only` leaves the authorised caller on the request's state."""


async def auditors_only(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """Guard of every auditor endpoint: :func:`authorize_auditor` before anything else.

    Litestar runs guards before it decodes parameters and bodies, so a
    caller who is not the town's auditor gets the 403/404 (recorded as
    always), never a validation error about what they sent. The action is
    the route's (:class:`shared_gov.api.entry.Audit`); a search asking for an
    export is ``audit.export``.
    """
    principal = connection.scope.get("user")
    if not isinstance(principal, Principal):  # pragma: no cover - authenticated routes
        raise errors.unauthorized()
    route = route_audit(connection.scope)
    if route.action == "audit.query" and connection.query_params.get("format", "json") != "json":
        route = Audit("audit.export", route.resource_type)
    code = str(connection.path_params["code"])
    connection.state[_AUTHORIZED] = await authorize_auditor(connection, principal, code, route)


def authorized(request: Request[Any, Any, Any]) -> tuple[Services, TenantNames, AuditActor]:
    """What :func:`auditors_only` established for this request."""
    found: Admitted = request.state[_AUTHORIZED]
    return found.svc, found.names, found.actor


AUDITOR_GUARDS = (auditors_only, known_query_only)
"""Who first, then what: the order matters (see the module docstring)."""


async def guarded_subjects(svc: Services, names: TenantNames) -> frozenset[str]:
    """Subject hashes (decimal strings) of the town's protected or linked residents.

    Hashed with the recorder's function (:func:`queries.subject_hash`); the
    set is small. Read before the log, in its own unit of work: never two
    pooled connections at once.
    """
    async with svc.db.tenant(names) as uow:
        rows = await uow.fetch(
            "SELECT id::text AS id FROM residents WHERE support_measure OR protection_linked"
        )
    if not rows:
        return frozenset()
    keys = await town_keys(svc.db, names.code)
    return frozenset(str(keys.index("audit_subject", r["id"])) for r in rows)


async def _record(svc: Services, names: TenantNames, actor: AuditActor, event: AuditEvent) -> None:
    # Before the response leaves: if this write fails, the auditor gets an
    # error and no rows.
    if svc.settings.audit:
        await record_apart(svc.db, names, actor, event)


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    end = until or now_jst()
    start = since or end - analyses.DEFAULT_WINDOW
    if start >= end:
        raise errors.invalid_field("/query/from", "must be before to")
    if end - start > analyses.MAX_WINDOW:
        raise errors.invalid_field("/query/from", "the window is at most 366 days")
    return start, end


def _time_of_day(value: str | None, default: time, name: str) -> time:
    if value is None:
        return default
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise errors.invalid_field(f"/query/{name}", "a time of day, HH:MM") from None
    if parsed.tzinfo is not None:
        raise errors.invalid_field(f"/query/{name}", "a time of day in Japan time, HH:MM")
    return parsed


class AuditorController(Controller):
    path = "/api/v1/tenants/{code:str}/audit"
    tags = ("audit",)
    guards = AUDITOR_GUARDS

    @get(
        "/events",
        summary="Search the town's audit log (auditors); CSV / JSON Lines export",
        audit=Audit("audit.query", RESOURCE),
        operation_class=served_also_as("text/csv", "application/jsonl"),
    )
    async def search_events(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        actor: Text = None,
        actor_tenant: Annotated[str | None, QueryParameter(pattern=r"^[0-9]{6}$")] = None,
        department: Text = None,
        subject: Annotated[
            str | None, QueryParameter(description="a resident id; matched by its keyed hash")
        ] = None,
        purpose: Text = None,
        action: Text = None,
        resource_type: Text = None,
        outcome: Annotated[
            Literal["allowed", "denied", "not_found", "error"] | None, QueryParameter()
        ] = None,
        individual_number: Annotated[bool | None, QueryParameter()] = None,
        since: From = None,
        until: To = None,
        after: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int | None, QueryParameter(ge=1, le=BIGINT_MAX)] = None,
        order: Annotated[Literal["asc", "desc"], QueryParameter()] = "asc",
        export: Annotated[Literal["json", "csv", "jsonl"], QueryParameter(name="format")] = "json",
    ) -> Response[Any]:
        streamed = export != "json"
        svc, names, audit = authorized(request)
        resident_id = queries.parse_resident_id(subject, "/query/subject") if subject else None
        flt = queries.EventFilter(
            actor=actor,
            actor_tenant=actor_tenant,
            department=department,
            subject=(
                await queries.subject_hash(svc.db, code, resident_id) if resident_id else None
            ),
            purpose=purpose,
            action=action,
            outcome=queries.check_outcome(outcome),
            individual_number=individual_number,
            since=queries.parse_instant(since, "from"),
            until=queries.parse_instant(until, "to"),
            resource_type=resource_type,
        )
        guarded = await guarded_subjects(svc, names)
        flt = dataclasses.replace(flt, guarded=tuple(sorted(int(h) for h in guarded)))
        # An empty ?after= is a malformed cursor, not "from the beginning".
        cursor = queries.Cursor.decode(after) if after is not None else None
        descending = order == "desc"
        event = AuditEvent(
            action="audit.export" if streamed else "audit.query",
            resource_type=RESOURCE,
            subjects=[resident_id] if resident_id else [],
        )
        if streamed:
            return await _export(
                svc, names, audit, event, code, flt, cursor, limit, descending, export, guarded
            )
        size = limit or queries.DEFAULT_PAGE
        if size > queries.MAX_PAGE:
            raise errors.invalid_field("/query/limit", f"at most {queries.MAX_PAGE}")
        page = await queries.fetch_page(
            svc.db, code, flt, after=cursor, limit=size, descending=descending
        )
        event.rows = len(page.rows)
        await _record(svc, names, audit, event)
        next_url = None
        headers: dict[str, str] = {}
        if page.next is not None:
            params = [
                *queries.filter_params(flt, resident_id),
                ("order", order),
                ("limit", size),
                ("after", page.next.encode()),
            ]
            next_url = queries.events_url(code, params)
            headers["Link"] = f'<{next_url}>; rel="next"'
        body = AuditEventPage(
            events=[
                msgspec.convert(queries.mask_other_town(r, code, guarded), AuditEventOut)
                for r in page.rows
            ],
            count=len(page.rows),
            next=next_url,
            next_cursor=page.next.encode() if page.next else None,
        )
        return Response(body, headers=headers)

    @get(
        "/analyses",
        summary="After-hours, bulk, denial and individual-number analyses",
        audit=Audit("audit.analyses", RESOURCE),
    )
    async def run_analyses(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        since: From = None,
        until: To = None,
        office_start: Annotated[str | None, QueryParameter(description="HH:MM, JST")] = None,
        office_end: Annotated[str | None, QueryParameter(description="HH:MM, JST")] = None,
        weekends: Annotated[bool, QueryParameter()] = analyses.WEEKENDS_CLOSED,
        bulk_threshold: Annotated[
            int, QueryParameter(ge=1, le=BIGINT_MAX)
        ] = analyses.BULK_RESIDENTS,
        denial_threshold: Annotated[int, QueryParameter(ge=1, le=BIGINT_MAX)] = analyses.DENIALS,
    ) -> analyses.AnalysisReport:
        svc, names, audit = authorized(request)
        start, end = _window(
            queries.parse_instant(since, "from"), queries.parse_instant(until, "to")
        )
        settings = analyses.AnalysisSettings(
            opens=_time_of_day(office_start, analyses.OFFICE_OPENS, "office_start"),
            closes=_time_of_day(office_end, analyses.OFFICE_CLOSES, "office_end"),
            weekends=weekends,
            bulk_residents=bulk_threshold,
            denials=denial_threshold,
        )
        if settings.opens >= settings.closes:
            raise errors.invalid_field("/query/office_start", "must be before office_end")
        report = await analyses.analyse(
            svc.db, code, start, end, settings, await guarded_subjects(svc, names)
        )
        await _record(
            svc,
            names,
            audit,
            AuditEvent(action="audit.analyses", resource_type=RESOURCE, rows=report.findings),
        )
        return report

    @post(
        "/suppressions",
        status_code=201,
        summary="Withhold events from residents' access reports until a date (auditors)",
        audit=Audit("audit.suppress", RESOURCE),
    )
    async def add_suppressions(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
        data: JSONBody[SuppressionIn],
    ) -> SuppressionOut:
        svc, names, audit = authorized(request)
        keys = await town_keys(svc.db, code)

        async def recorded(conn: Any, count: int) -> None:
            # In the suppression's own transaction: no record, no suppression.
            if svc.settings.audit:
                event = AuditEvent(action="audit.suppress", resource_type=RESOURCE, rows=count)
                await record_as_town(conn, keys, names.role, audit, event)

        count = await suppressions.add(
            svc.db,
            code,
            data.event_ids,
            data.until,
            data.reason,
            created_by=principal.subject,
            audit=recorded,
        )
        return SuppressionOut(suppressed=count, until=data.until)

    @get(
        "/suppressions",
        summary="Current suppressions of the town's events (auditors)",
        audit=Audit("audit.query", RESOURCE),
    )
    async def list_suppressions(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        code: TenantCode,
    ) -> SuppressionList:
        svc, names, audit = authorized(request)
        rows = await suppressions.current(svc.db, code)
        today = now_jst().date()
        await _record(
            svc,
            names,
            audit,
            AuditEvent(action="audit.query", resource_type=RESOURCE, rows=len(rows)),
        )
        return SuppressionList(
            suppressions=[
                SuppressionItem(
                    event_id=s.event_id,
                    until=s.until,
                    active=today < s.until,
                    reason=s.reason,
                    created_by=s.created_by,
                    created_at=s.created_at,
                )
                for s in rows
            ]
        )


async def _export(
    svc: Services,
    names: TenantNames,
    audit: AuditActor,
    event: AuditEvent,
    code: str,
    flt: queries.EventFilter,
    cursor: queries.Cursor | None,
    limit: int | None,
    descending: bool,
    export: str,
    guarded: frozenset[str],
) -> Response[Any]:
    """Stream every matching event; the export's own event is written first,
    with the exact row count of the snapshot being streamed."""
    opened = await queries.Export.open(
        svc.db, code, flt, after=cursor, limit=limit, descending=descending
    )
    try:
        event.rows = opened.count
        await _record(svc, names, audit, event)

        async def masked() -> AsyncIterator[dict[str, Any]]:
            async for row in opened.rows():
                yield queries.mask_other_town(row, code, guarded)

        if export == "csv":
            chunks = await queries.primed(queries.csv_chunks(masked()))
            # Litestar adds "; charset=utf-8" to text/* itself (it was sent twice).
            media_type, suffix = "text/csv", "csv"
        else:
            chunks = await queries.primed(queries.jsonl_chunks(masked()))
            media_type, suffix = "application/jsonl", "jsonl"
    except BaseException:
        await opened.close()
        raise
    stamp = now_jst().strftime("%Y%m%dT%H%M%S")
    return Stream(
        chunks,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="audit-{code}-{stamp}.{suffix}"',
            "X-Total-Count": str(opened.count),
        },
    )
