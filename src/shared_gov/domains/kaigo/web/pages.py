"""介護保険課's console pages: the queue, a determination and its decision, insured persons.

Each route declares the audit action, resource type and subject of the API
route behind it (:func:`shared_gov.web.domainpages.page_audited`) and calls
what that route calls — :func:`service.list_determinations`,
:func:`flows.confirm`, :func:`service.correct`, … — so the rules (If-Match,
separation of duties, rule 1's field views) are the API's, and so are the
refusals: a page shows the API's reason in the page's language.

- the queue is a GET (its filters are the API's: kind, status, overdue;
  nothing personal), by deadline, so open ones past their deadline come first;
- a determination's id is not a person's: its page is a GET;
- a change is a form with its CSRF token and the version the page showed (the
  API's If-Match); a refusal (the corrector confirming, a stale version) is
  shown on a page with the way back;
- insured persons are looked up by POST (an insured number or a resident id
  never sits in a URL), and so are a person's premium months.

The queue and decisions work under ``kaigo.qualification`` (the only purpose
that reads determinations); the lookups under the purpose the person picks
among ``kaigo.qualification`` and ``kaigo.premium``.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from shared_gov import errors
from shared_gov.api.entry import Entry
from shared_gov.api.pipeline import known_query_only, services
from shared_gov.clock import today_jst
from shared_gov.domains.kaigo import directory, flows, service
from shared_gov.domains.kaigo import messages as m
from shared_gov.domains.kaigo.controllers import (
    DETERMINATION,
    INSURED,
    determination_out,
    insured_out,
    queue_filters,
)
from shared_gov.domains.kaigo.rules import fiscal_year
from shared_gov.domains.kaigo.schemas import Confirm, Correct, InsuredSearch, Reject
from shared_gov.domains.kaigo.vocabulary import Kind, Status
from shared_gov.policy.purposes import Purpose
from shared_gov.web.domainpages import (
    decoded,
    if_match,
    offered_to,
    page_audited,
    refusal,
    text_of,
    work_under,
)
from shared_gov.web.pages import page

QUALIFICATION = "kaigo.qualification"
LOOKUP = ("kaigo.qualification", "kaigo.premium")
PAGE_SIZE = 50
CORRECTABLE = ("loss", "tokurei_keep", "gain", "tokurei_incoming", "tokurei_ends")
"""The kinds a correction may name (the API's ``Correct.kind``)."""


class PremiumAsked(msgspec.Struct, forbid_unknown_fields=True):
    """The premium months' form: the API's query parameter, checked the same way."""

    fiscal_year: Annotated[int, msgspec.Meta(ge=2000, le=2100)]


def _context(entry: Entry, purpose: Purpose, **more: Any) -> dict[str, Any]:
    return {"code": entry.code, "purpose": purpose, "m": m, **more}


def _determination_page(
    request: Request[Any, Any, Any],
    entry: Entry,
    purpose: Purpose,
    shown: service.Shown,
    notice: object = None,
) -> Response[Any]:
    out = determination_out(shown)
    return page(
        request,
        "kaigo/determination.html",
        **_context(
            entry, purpose, d=out, notice=notice, correctable=CORRECTABLE, open=out.status == "open"
        ),
    )


def _refused(
    request: Request[Any, Any, Any], entry: Entry, exc: errors.DomainError, back: str
) -> Response[Any]:
    """The API's refusal on a page; ``back``: the page to return to, under ``kaigo/``."""
    return refusal(request, exc, "kaigo/refused.html", code=entry.code, back=back, m=m)


class KaigoPages(Controller):
    path = "/towns/{code:str}/kaigo"
    include_in_schema = False

    # --- the queue -------------------------------------------------------------------

    @get(
        "/determinations",
        guards=[known_query_only],
        **page_audited("kaigo.determination.list", DETERMINATION),
    )
    async def queue(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        kind: Annotated[list[str] | None, QueryParameter()] = None,
        status: Annotated[list[str] | None, QueryParameter()] = None,
        overdue: Annotated[bool, QueryParameter()] = False,
        after: Annotated[str | None, QueryParameter(max_length=64)] = None,
        filtered: Annotated[bool, QueryParameter()] = False,
    ) -> Response[Any]:
        # First opened: the open ones. Once the form was used, exactly what it says.
        statuses = status if filtered or status else [Status.OPEN.value]
        filters = queue_filters(kind, statuses, overdue, after, PAGE_SIZE)
        purpose = await work_under(entry, (QUALIFICATION,))
        try:
            async with entry:
                found = await service.list_determinations(entry.uow, entry.access, filters)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, "determinations")
        rows = [determination_out(s) for s in found]
        last = found[-1].determination if len(found) == PAGE_SIZE else None
        following = None
        if last is not None:
            query: list[tuple[str, str]] = [("filtered", "true")]
            query += [("kind", k) for k in filters.kinds]
            query += [("status", s) for s in filters.statuses]
            if overdue:
                query.append(("overdue", "true"))
            query.append(("after", f"{last.deadline.isoformat()}_{last.id}"))
            following = urlencode(query)
        return page(
            request,
            "kaigo/queue.html",
            **_context(
                entry,
                purpose,
                rows=rows,
                kinds=[k.value for k in Kind],
                statuses=[s.value for s in Status],
                chosen_kinds=set(filters.kinds),
                chosen_statuses=set(filters.statuses),
                overdue=overdue,
                following=following,
            ),
        )

    # --- one determination and its decision ------------------------------------------------

    @get(
        "/determinations/{determination_id:str}",
        **page_audited("kaigo.determination.read", DETERMINATION, record="determination_id"),
    )
    async def determination(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        determination_id: FromPath[str],
    ) -> Response[Any]:
        purpose = await work_under(entry, (QUALIFICATION,))
        try:
            async with entry:
                shown = await service.read_determination(entry.uow, entry.access, determination_id)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, "determinations")
        return _determination_page(request, entry, purpose, shown)

    @post(
        "/determinations/{determination_id:str}/confirm",
        status_code=200,
        **page_audited("kaigo.determination.confirm", DETERMINATION, record="determination_id"),
    )
    async def confirm(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        determination_id: FromPath[str],
    ) -> Response[Any]:
        form = await request.form()
        purpose = await work_under(entry, (QUALIFICATION,))
        entry.if_match = if_match(form.get("version"))
        back = f"determinations/{determination_id}"
        answers = {
            key.removeprefix("answer."): str(value).strip()
            for key, value in form.items()
            if key.startswith("answer.") and str(value).strip()
        }
        try:
            data = decoded({"answers": answers}, Confirm)
        except errors.DomainError as exc:
            # As the API's refused body: recorded, nothing decided on a purpose.
            await entry.refused(exc)
            return _refused(request, entry, exc, back)
        try:
            done = await flows.confirm(entry, determination_id, data)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, back)
        shown = service.Shown(done.determination, done.view)
        return _determination_page(request, entry, purpose, shown, notice=m.C_CONFIRMED)

    @post(
        "/determinations/{determination_id:str}/correct",
        status_code=200,
        **page_audited("kaigo.determination.correct", DETERMINATION, record="determination_id"),
    )
    async def correct(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        determination_id: FromPath[str],
    ) -> Response[Any]:
        form = await request.form()
        purpose = await work_under(entry, (QUALIFICATION,))
        entry.if_match = if_match(form.get("version"))
        back = f"determinations/{determination_id}"
        body: dict[str, Any] = {
            name: value
            for name in ("reason", "date", "kind", "insurer_town")
            if (value := text_of(form, name)) is not None
        }
        facility = {
            name: value
            for name, field in (
                ("facility_id", "facility_id"),
                ("name", "facility_name"),
                ("town", "facility_town"),
            )
            if (value := text_of(form, field)) is not None
        }
        if facility:
            body["facility"] = facility
        try:
            data = decoded(body, Correct)
        except errors.DomainError as exc:
            await entry.refused(exc)
            return _refused(request, entry, exc, back)
        # As the API: the facility list is read before the town's unit of work
        # opens (never two pooled connections at once), for the town's own staff.
        principal = entry.principal
        own = principal.tenant == entry.code and not principal.is_operator
        places = await directory.directory(services(request).db) if own and data.facility else None
        try:
            async with entry:
                version = service.parse_if_match(entry.if_match)
                shown = await service.correct(
                    entry.uow,
                    entry.access,
                    determination_id,
                    version,
                    data,
                    places or directory.Directory(),
                )
        except errors.DomainError as exc:
            return _refused(request, entry, exc, back)
        return _determination_page(request, entry, purpose, shown, notice=m.C_CORRECTED)

    @post(
        "/determinations/{determination_id:str}/reject",
        status_code=200,
        **page_audited("kaigo.determination.reject", DETERMINATION, record="determination_id"),
    )
    async def reject(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        determination_id: FromPath[str],
    ) -> Response[Any]:
        form = await request.form()
        purpose = await work_under(entry, (QUALIFICATION,))
        entry.if_match = if_match(form.get("version"))
        back = f"determinations/{determination_id}"
        reason = text_of(form, "reason")
        try:
            data = decoded({"reason": reason} if reason else {}, Reject)
        except errors.DomainError as exc:
            await entry.refused(exc)
            return _refused(request, entry, exc, back)
        try:
            async with entry:
                version = service.parse_if_match(entry.if_match)
                shown = await service.reject(
                    entry.uow, entry.access, determination_id, version, data.reason
                )
        except errors.DomainError as exc:
            return _refused(request, entry, exc, back)
        return _determination_page(request, entry, purpose, shown, notice=m.C_REJECTED)

    # --- insured persons (by POST) -------------------------------------------------------

    @get("/insured", **page_audited("kaigo.insured.search", INSURED))
    async def insured_form(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        # Let in by the entry's middleware (the town's own people); nothing is read.
        choices = await offered_to(entry, LOOKUP)
        purpose = await work_under(entry, LOOKUP)
        return page(
            request,
            "kaigo/insured.html",
            **_context(entry, purpose, choices=choices, found=None, year=fiscal_year(today_jst())),
        )

    @post("/insured", status_code=200, **page_audited("kaigo.insured.search", INSURED))
    async def insured(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        form = await request.form()
        choices = await offered_to(entry, LOOKUP)
        purpose = await work_under(entry, LOOKUP, text_of(form, "purpose"))
        body = {
            name: value
            for name in ("insured_number", "resident_id")
            if (value := text_of(form, name, 64)) is not None
        }
        try:
            data = decoded(body, InsuredSearch)
        except errors.DomainError as exc:
            await entry.refused(exc)
            return _refused(request, entry, exc, "insured")
        try:
            async with entry:
                found = await service.search_insured(entry.uow, entry.access, data)
        except errors.DomainError as exc:
            return _refused(request, entry, exc, "insured")
        return page(
            request,
            "kaigo/insured.html",
            **_context(
                entry,
                purpose,
                choices=choices,
                found=[insured_out(p, view) for p, view in found],
                year=fiscal_year(today_jst()),
            ),
        )

    @post(
        "/insured/premium-months",
        status_code=200,
        **page_audited("kaigo.insured.premium", INSURED),
    )
    async def premium_months(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        form = await request.form()
        choices = await offered_to(entry, LOOKUP)
        purpose = await work_under(entry, LOOKUP, text_of(form, "purpose"))
        insured_id = text_of(form, "insured_id", 64) or ""
        with contextlib.suppress(ValueError):
            # The API names the person in its path: the event's subject, whatever follows.
            entry.audit.subjects = [str(uuid.UUID(insured_id))]
        try:
            asked = decoded({"fiscal_year": text_of(form, "fiscal_year", 8)}, PremiumAsked)
        except errors.DomainError as exc:
            await entry.refused(exc)
            return _refused(request, entry, exc, "insured")
        try:
            async with entry:
                person, months = await service.premium_months_of_person(
                    entry.uow, entry.access, insured_id, asked.fiscal_year
                )
        except errors.DomainError as exc:
            return _refused(request, entry, exc, "insured")
        return page(
            request,
            "kaigo/insured.html",
            **_context(
                entry,
                purpose,
                choices=choices,
                found=None,
                year=asked.fiscal_year,
                premium={
                    "person": person,
                    "year": asked.fiscal_year,
                    "months": [d.strftime("%Y-%m") for d in months],
                },
            ),
        )
