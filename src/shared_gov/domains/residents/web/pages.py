"""The disclosure desk's pages (市民課, purpose ``juki.disclosure``):
find a resident, and their access report printable on A4
(``/console/towns/{code}/residents/disclosure/…``).

The report is the API's (``GET …/residents/{id}/access-log``,
:func:`..access_log.access_report`): the same audit action
(``resident.access_log``), the same gate (the town's records, decided by
Cedar for ``juki.disclosure``'s ``history`` action), the same event naming
the resident (a keyed hash), the same entries withheld. The resident id is
posted in a form, never put in a URL. The page is a document as a resident
receives it: the town's name, the date of issue and the accesses in Japanese
dates (和暦), with a print stylesheet (``report.css``: ``@page { size: A4 }``,
no navigation on paper). Staff without the purpose get the 403 page with the
API's reason; another town's staff the 404 page.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency

from shared_gov import errors
from shared_gov.api.entry import Entry
from shared_gov.audit.queries import parse_instant
from shared_gov.messages.core import Language, field_label
from shared_gov.web.domainpages import page_audited
from shared_gov.web.gated import refusal, refused_input, text
from shared_gov.web.pages import language_of, page
from shared_gov.web.timefmt import jst_text

from ..access_log import DISCLOSURE, access_report, require_disclosure, town_name


def when(moment: date | datetime, lang: Language) -> str:
    """A date or an instant as the report prints it: Japan time, 和暦 in Japanese."""
    return jst_text(moment, lang)


def _day_text(value: str, lang: Language) -> str:
    """A period bound as typed (a date), as the report prints it."""
    try:
        return when(date.fromisoformat(value), lang)
    except ValueError:
        return value


def _until(value: str) -> str:
    """The form's last day (inclusive) as the API's ``to`` (exclusive): the next day."""
    try:
        return (date.fromisoformat(value) + timedelta(days=1)).isoformat()
    except ValueError:
        return value  # refused by parse_instant, naming the field


REPORT = "resident.access_log"
"""The API's action: the desk's pages are recorded as the API's report is."""


class DisclosurePages(Controller):
    path = "/towns/{code:str}/residents/disclosure"
    include_in_schema = False

    async def _admitted(self, entry: Entry) -> None:
        """The purpose this desk serves, decided as the API decides it: a
        refusal is the 403 page and a denied event, like the API's."""
        entry.purpose = DISCLOSURE
        await entry.admit()
        try:
            require_disclosure(entry.access)
        except errors.DomainError as exc:
            await entry.refused(exc)
            raise

    def _lookup(
        self,
        request: Request[Any, Any, Any],
        entry: Entry,
        status: int = 200,
        exc: errors.DomainError | None = None,
        asked: dict[str, str] | None = None,
    ) -> Response[Any]:
        return page(
            request,
            "residents/disclosure_lookup.html",
            status,
            code=entry.code,
            asked=asked or {},
            **refusal(exc),
        )

    @get("/", **page_audited(REPORT, "resident"))
    async def lookup(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        # Admitted for juki.disclosure; nothing read, nothing recorded.
        await self._admitted(entry)
        return self._lookup(request, entry)

    @post("/report", **page_audited(REPORT, "resident"))
    async def report(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        form = await request.form()
        asked = {k: text(form, k, 64) for k in ("resident_id", "from", "to")}
        await self._admitted(entry)
        since = asked["from"] or None
        until = _until(asked["to"]) if asked["to"] else None
        try:
            parse_instant(since, "from")
            parse_instant(until, "to")
        except errors.DomainError as exc:
            await refused_input(entry, exc)
            return self._lookup(request, entry, exc.status, exc, asked)
        try:
            found = await access_report(entry, asked["resident_id"], since, until)
        except errors.DomainError as exc:
            # Recorded by the entry; a resident not found is said beside the form.
            if exc.concealed or exc.status not in (404, 422):
                raise
            return self._lookup(request, entry, exc.status, exc, asked)
        lang = language_of(request)
        rows = [
            {
                "when": when(e.occurred_at, lang),
                "town": e.town,
                "department": e.department,
                "purpose": e.purpose,
                "action": e.action_ja if lang == "ja" and e.action_ja else e.action,
                "fields": [field_label(f, lang) or f for f in e.fields],
                "individual_number": e.individual_number,
                "outcome": e.outcome,
                "withheld": bool(e.withheld),
            }
            for e in found.entries
        ]
        return page(
            request,
            "residents/disclosure_report.html",
            code=entry.code,
            town=await town_name(entry.svc.db, entry.code) or entry.code,
            report=found,
            rows=rows,
            issued=when(found.generated_at.date(), lang),
            period=(_day_text(asked["from"], lang), _day_text(asked["to"], lang)),
            withheld_until=when(found.withheld.until, lang) if found.withheld else None,
        )
