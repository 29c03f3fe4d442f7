"""The auditor's analyses page (``/console/towns/{code}/audit/analyses``).

What ``GET …/audit/analyses`` reports — after hours and holidays, bulk
access, repeated denials, failed sign-ins, individual-number reads — as
tables, each finding with a button that opens its events in the search
(a POST of the filters: a staff id never sits in a URL), and charts of the
period's accesses per day, per hour of the day and per department
(:mod:`shared_gov.audit.analyses.activity`, drawn by :mod:`.charts`).

Same gate and audit action as the API (``audit.analyses`` on ``audit_log``,
auditors only): opening the page runs the last 7 days, the form runs the
period and settings chosen; each run is an event in the town's log, a
refused one too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency

from shared_gov import errors
from shared_gov.api.auditors import (
    BIGINT_MAX,
    RESOURCE,
    analysis_settings,
    analysis_window,
    guarded_subjects,
)
from shared_gov.api.entry import AUDITORS, Entry, audited
from shared_gov.audit import analyses, queries
from shared_gov.messages import console as L
from shared_gov.messages.core import Language, render

from . import charts
from .auditors import FILTERS
from .pages import language_of, page
from .signin import signed_in

FIELDS = (
    "from",
    "to",
    "office_start",
    "office_end",
    "weekends",
    "bulk_threshold",
    "denial_threshold",
)
SERIES = ("allowed", "refused")


@dataclasses.dataclass(slots=True)
class AnalysisForm:
    """The form as submitted (text as typed; checked with the API's own checks)."""

    values: dict[str, str]

    @classmethod
    def empty(cls) -> AnalysisForm:
        return cls(
            {
                "from": "",
                "to": "",
                "office_start": f"{analyses.OFFICE_OPENS:%H:%M}",
                "office_end": f"{analyses.OFFICE_CLOSES:%H:%M}",
                "weekends": "yes" if analyses.WEEKENDS_CLOSED else "no",
                "bulk_threshold": str(analyses.BULK_RESIDENTS),
                "denial_threshold": str(analyses.DENIALS),
            }
        )

    @classmethod
    async def of(cls, request: Request[Any, Any, Any]) -> AnalysisForm:
        form = await request.form()
        return cls({name: str(form.get(name) or "").strip()[:64] for name in FIELDS})

    def parsed(self) -> tuple[datetime, datetime, analyses.AnalysisSettings]:
        """The window and settings, or the API's 422 naming the field."""
        v = self.values
        start, end = analysis_window(
            queries.parse_instant(v["from"], "from"), queries.parse_instant(v["to"], "to")
        )
        settings = analysis_settings(
            v["office_start"] or None,
            v["office_end"] or None,
            v["weekends"] != "no",
            _count(v["bulk_threshold"], "bulk_threshold", analyses.BULK_RESIDENTS),
            _count(v["denial_threshold"], "denial_threshold", analyses.DENIALS),
        )
        return start, end, settings


def _count(text: str, name: str, default: int) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise errors.invalid_field(f"/query/{name}", L.WHOLE_NUMBER) from None
    if not 1 <= value <= BIGINT_MAX:
        raise errors.invalid_field(f"/query/{name}", L.WHOLE_NUMBER)
    return value


def event_filters(query: str) -> list[tuple[str, str]]:
    """A finding's ``/audit/events`` query as the console search form's fields."""
    out = []
    for key, value in parse_qsl(urlsplit(query).query):
        if key == "individual_number":
            value = "yes" if value == "true" else "no"
        if key in FILTERS:
            out.append((key, value))
    return out


def _chart(
    kind: str, items: Iterable[tuple[str, analyses.Counts]], title: object, lang: Language
) -> dict[str, Any]:
    rows = [(label, (c.allowed, c.refused)) for label, c in items]
    chart = charts.columns(rows, SERIES) if kind == "columns" else charts.rows(rows, SERIES)
    name = render(title, lang)
    peak = chart.peak
    if peak is None:
        summary = render(L.CHART_EMPTY(title=name), lang)
    else:
        summary = render(
            L.CHART_SUMMARY(title=name, total=chart.total, peak=peak.total, label=peak.label), lang
        )
    return {"chart": chart, "title": title, "summary": summary}


def activity_charts(activity: analyses.Activity, lang: Language) -> list[dict[str, Any]]:
    """The three charts of the period, with their accessible summaries."""
    per_day = [(f"{d.month}/{d.day}", c) for d, c in activity.per_day]
    per_hour = [(str(h), c) for h, c in activity.per_hour]
    none = render(L.NO_DEPARTMENT, lang)
    per_department = [(d or none, c) for d, c in activity.per_department]
    return [
        {"id": "per-day", **_chart("columns", per_day, L.PER_DAY, lang)},
        {"id": "per-hour", **_chart("columns", per_hour, L.PER_HOUR, lang)},
        {"id": "per-department", **_chart("rows", per_department, L.PER_DEPARTMENT, lang)},
    ]


class AnalysisPages(Controller):
    path = "/towns/{code:str}/audit"
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012 - Litestar's own class attribute

    @get("/analyses", **audited("audit.analyses", RESOURCE, gate=AUDITORS))
    async def default_analyses(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        return await self._run(request, entry, AnalysisForm.empty())

    @post("/analyses", **audited("audit.analyses", RESOURCE, gate=AUDITORS))
    async def run_analyses(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        return await self._run(request, entry, await AnalysisForm.of(request))

    async def _run(
        self, request: Request[Any, Any, Any], entry: Entry, form: AnalysisForm
    ) -> Response[Any]:
        code = entry.code
        try:
            async with entry:
                start, end, settings = form.parsed()
                svc = entry.svc
                guarded = await guarded_subjects(svc, entry.town)
                report = await analyses.analyse(svc.db, code, start, end, settings, guarded)
                activity = await analyses.activity(svc.db, code, start, end, guarded)
                entry.audit.rows = report.findings
        except errors.DomainError as exc:
            if exc.status not in (400, 422):
                raise
            found = exc.extra.get("errors") or []
            return page(
                request,
                "audit/analyses.html",
                422,
                code=code,
                form=form,
                report=None,
                error=exc.detail,
                problems=list(found) if isinstance(found, list) else [],
            )
        return page(
            request,
            "audit/analyses.html",
            code=code,
            form=form,
            report=report,
            charts=activity_charts(activity, language_of(request)),
            events=activity.events,
            filters=event_filters,
        )
