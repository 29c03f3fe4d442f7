"""Auditors' endpoints on a town's audit log, under ``/api/v1/tenants/{code}/audit``.

- ``GET /events``: search with filters, keyset pages, or a streamed export
  (``?format=csv`` or ``?format=jsonl``).
- ``GET /analyses``: after-hours and holiday access, bulk access, repeated
  denials, individual-number reads (see :mod:`shared_gov.audit.analyses`).
- ``POST /suppressions`` and ``GET /suppressions``: withhold events from
  residents' access reports until a date.

Only the town's auditors may (Cedar action ``audit`` on ``AuditLog``): the
town's other staff get 403 with the reason, other towns and operators 404.
That is decided by the guarded entry's gate ``AUDITORS`` in a guard, before
any parameter or body is read: whoever may not ask gets the refusal, never a 400/422 about
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
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from litestar.response import Stream

from shared_gov import errors
from shared_gov.api.entry import AUDITORS, Entry, audited
from shared_gov.api.pipeline import Services
from shared_gov.audit import analyses, queries, suppressions
from shared_gov.audit.recorder import record_as_town
from shared_gov.clock import now_jst
from shared_gov.crypto.keyring import town_keys
from shared_gov.messages import audit as m
from shared_gov.openapi import served_also_as
from shared_gov.towns.names import TenantNames
from shared_gov.validation import NO_NUL_PATTERN, NoNul

RESOURCE = "audit_log"
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


def analysis_window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """The analyses' window: the last 7 days by default, at most 366 (the API's 422s)."""
    end = until or now_jst()
    start = since or end - analyses.DEFAULT_WINDOW
    if start >= end:
        raise errors.invalid_field("/query/from", m.FROM_BEFORE_TO)
    if end - start > analyses.MAX_WINDOW:
        raise errors.invalid_field("/query/from", m.WINDOW_TOO_LONG)
    return start, end


def time_of_day(value: str | None, default: time, name: str) -> time:
    if value is None:
        return default
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise errors.invalid_field(f"/query/{name}", m.TIME_OF_DAY) from None
    if parsed.tzinfo is not None:
        raise errors.invalid_field(f"/query/{name}", m.TIME_OF_DAY_JST)
    return parsed


def analysis_settings(
    office_start: str | None,
    office_end: str | None,
    weekends: bool,
    bulk_threshold: int,
    denial_threshold: int,
) -> analyses.AnalysisSettings:
    """The analyses' settings from what was asked (the API's 422s; the console's too)."""
    settings = analyses.AnalysisSettings(
        opens=time_of_day(office_start, analyses.OFFICE_OPENS, "office_start"),
        closes=time_of_day(office_end, analyses.OFFICE_CLOSES, "office_end"),
        weekends=weekends,
        bulk_residents=bulk_threshold,
        denials=denial_threshold,
    )
    if settings.opens >= settings.closes:
        raise errors.invalid_field("/query/office_start", m.START_BEFORE_END)
    return settings


class AuditorController(Controller):
    path = "/api/v1/tenants/{code:str}/audit"
    tags = ("audit",)

    @get(
        "/events",
        summary="Search the town's audit log (auditors); CSV / JSON Lines export",
        **audited("audit.query", RESOURCE, gate=AUDITORS, exported_as="audit.export"),
        operation_class=served_also_as("text/csv", "application/jsonl"),
    )
    async def search_events(
        self,
        entry: NamedDependency[Entry],
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
        resident_id = queries.parse_resident_id(subject, "/query/subject") if subject else None
        flt = queries.EventFilter(
            actor=actor,
            actor_tenant=actor_tenant,
            department=department,
            purpose=purpose,
            action=action,
            outcome=queries.check_outcome(outcome),
            individual_number=individual_number,
            since=queries.parse_instant(since, "from"),
            until=queries.parse_instant(until, "to"),
            resource_type=resource_type,
        )
        # An empty ?after= is a malformed cursor, not "from the beginning".
        cursor = queries.Cursor.decode(after) if after is not None else None
        descending = order == "desc"
        size = limit or queries.DEFAULT_PAGE
        if not streamed and size > queries.MAX_PAGE:
            raise errors.invalid_field("/query/limit", m.AT_MOST(n=queries.MAX_PAGE))
        # The event names the resident searched for: who looked whom up stays answerable.
        entry.audit.subjects = [resident_id] if resident_id else []
        if streamed:
            return await export_events(entry, flt, resident_id, cursor, limit, descending, export)
        code = entry.code
        async with entry:
            flt, guarded = await in_town(entry, flt, resident_id)
            page = await queries.fetch_page(
                entry.svc.db, code, flt, after=cursor, limit=size, descending=descending
            )
            entry.audit.rows = len(page.rows)
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
        **audited("audit.analyses", RESOURCE, gate=AUDITORS),
    )
    async def run_analyses(
        self,
        entry: NamedDependency[Entry],
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
        start, end = analysis_window(
            queries.parse_instant(since, "from"), queries.parse_instant(until, "to")
        )
        settings = analysis_settings(
            office_start, office_end, weekends, bulk_threshold, denial_threshold
        )
        async with entry:
            svc = entry.svc
            guarded = await guarded_subjects(svc, entry.town)
            report = await analyses.analyse(svc.db, entry.code, start, end, settings, guarded)
            entry.audit.rows = report.findings
        return report

    @post(
        "/suppressions",
        status_code=201,
        summary="Withhold events from residents' access reports until a date (auditors)",
        **audited("audit.suppress", RESOURCE, gate=AUDITORS),
    )
    async def add_suppressions(
        self, entry: NamedDependency[Entry], data: JSONBody[SuppressionIn]
    ) -> SuppressionOut:
        async with entry.changing():
            svc, code = entry.svc, entry.code
            keys = await town_keys(svc.db, code)

            async def recorded(conn: Any, count: int) -> None:
                # In the suppression's own transaction: no record, no suppression.
                if svc.settings.audit:
                    entry.audit.rows = count
                    await record_as_town(conn, keys, entry.town.role, entry.actor, entry.audit)

            count = await suppressions.add(
                svc.db,
                code,
                data.event_ids,
                data.until,
                data.reason,
                created_by=entry.principal.subject,
                audit=recorded,
            )
        return SuppressionOut(suppressed=count, until=data.until)

    @get(
        "/suppressions",
        summary="Current suppressions of the town's events (auditors)",
        **audited("audit.query", RESOURCE, gate=AUDITORS),
    )
    async def list_suppressions(self, entry: NamedDependency[Entry]) -> SuppressionList:
        async with entry:
            rows = await suppressions.current(entry.svc.db, entry.code)
            entry.audit.rows = len(rows)
        today = now_jst().date()
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


async def in_town(
    entry: Entry, flt: queries.EventFilter, resident_id: str | None
) -> tuple[queries.EventFilter, frozenset[str]]:
    """The search as the town's log answers it: the resident by their keyed hash,
    and the subjects whose events are masked (:func:`guarded_subjects`)."""
    svc = entry.svc
    subject = await queries.subject_hash(svc.db, entry.code, resident_id) if resident_id else None
    guarded = await guarded_subjects(svc, entry.town)
    scoped = dataclasses.replace(
        flt, subject=subject, guarded=tuple(sorted(int(h) for h in guarded))
    )
    return scoped, guarded


async def export_events(
    entry: Entry,
    flt: queries.EventFilter,
    resident_id: str | None,
    cursor: queries.Cursor | None,
    limit: int | None,
    descending: bool,
    export: str,
) -> Response[Any]:
    """Stream every matching event; the export's own event is written first,
    with the exact row count of the snapshot being streamed."""
    code = entry.code
    opened: queries.Export | None = None
    try:
        async with entry:
            flt, guarded = await in_town(entry, flt, resident_id)
            opened = await queries.Export.open(
                entry.svc.db, code, flt, after=cursor, limit=limit, descending=descending
            )
            entry.audit.rows = opened.count
        rows = opened

        async def masked() -> AsyncIterator[dict[str, Any]]:
            async for row in rows.rows():
                yield queries.mask_other_town(row, code, guarded)

        if export == "csv":
            chunks = await queries.primed(queries.csv_chunks(masked()))
            # Litestar adds "; charset=utf-8" to text/* itself (it was sent twice).
            media_type, suffix = "text/csv", "csv"
        else:
            chunks = await queries.primed(queries.jsonl_chunks(masked()))
            media_type, suffix = "application/jsonl", "jsonl"
    except BaseException:
        if opened is not None:
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
