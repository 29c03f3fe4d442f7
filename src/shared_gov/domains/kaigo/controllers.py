"""HTTP endpoints of 介護保険 under ``/api/v1/tenants/{code}/kaigo``: insured persons,
the determination queue and the reports.

Each route declares its audit action and enters the guarded entry; handlers
parse, call a service and shape the output — they never query. Personal values
searched for travel in a POST body, never a URL. Changes need If-Match (the
determination's ``ETag``); refusals are problem+json with a Japanese reason.
The facilities' endpoints are in :mod:`.facility_controllers`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from shared_gov import errors
from shared_gov.api.entry import Entry, audited
from shared_gov.api.pipeline import known_query_only, services
from shared_gov.clock import now_jst, today_jst
from shared_gov.domains.kaigo import directory, flows, reports, service
from shared_gov.domains.kaigo import messages as m
from shared_gov.domains.kaigo.facility_controllers import FacilityController
from shared_gov.domains.kaigo.models import InsuredPerson
from shared_gov.domains.kaigo.repository.determinations import Filters
from shared_gov.domains.kaigo.schemas import (
    CardOut,
    Confirm,
    Correct,
    CorrectionOut,
    DeterminationList,
    DeterminationOut,
    FacilityRefOut,
    InsuredList,
    InsuredOut,
    InsuredSearch,
    NoticeOut,
    PeriodOut,
    PremiumMonths,
    PremiumPerson,
    ProposalOut,
    QuestionOut,
    Reject,
    TokureiOut,
)
from shared_gov.domains.kaigo.vocabulary import KIND_JA, Kind, Status
from shared_gov.openapi import served_also_as
from shared_gov.policy import FieldView

__all__ = ["DeterminationController", "FacilityController", "InsuredController", "ReportController"]

BASE = "/api/v1/tenants/{code:str}/kaigo"
INSURED = "insured_person"
DETERMINATION = "determination"
_AFTER = re.compile(r"\A(\d{4}-\d{2}-\d{2})_([0-9a-f-]{36})\Z")


def insured_out(p: InsuredPerson, view: FieldView) -> InsuredOut:
    """Only the fields the policy allows this caller for this purpose."""

    def may(name: str) -> bool:
        return f"InsuredPerson.{name}" in view.allowed

    # A period's facility town is the town of the facility the person lives in: it
    # is 住所地特例's whereabouts and goes where ``tokurei`` goes (rule 1 withholds
    # both for a person under 支援措置 or linked to one).
    where = may("tokurei")
    return InsuredOut(
        id=p.id,
        resident_id=p.resident_id,
        insurer_town=p.insurer_town,
        version=p.version,
        insured_number=p.insured_number if may("insured_number") else None,
        category=p.category.value if may("category") else None,
        status=p.status if may("status") else None,
        periods=[
            PeriodOut(
                x.insurer,
                x.gained,
                x.gain_reason,
                x.lost,
                x.loss_reason,
                x.category.value,
                x.facility_town if where else None,
            )
            for x in p.periods
        ]
        if may("periods")
        else None,
        tokurei=TokureiOut(
            p.tokurei.insurer_town,
            p.tokurei.facility_town,
            p.tokurei.facility_id,
            p.tokurei.facility_name,
            p.tokurei.since,
            p.tokurei.insurer_number,
        )
        if p.tokurei is not None and may("tokurei")
        else None,
        card=CardOut(p.card.issued_on, p.card.returned_on) if may("card") else None,
        notes=p.notes if may("notes") else None,
        withheld=list(view.withheld),
        withheld_reasons=dict(view.reasons),
    )


def determination_out(shown: service.Shown) -> DeterminationOut:
    d, view = shown.determination, shown.view

    def may(name: str) -> bool:
        return f"Determination.{name}" in view.allowed

    p, f, c = d.proposal, d.facility, d.correction
    facility = FacilityRefOut(f.facility_id, f.name, f.town, f.covered) if f else None
    correction = None
    if c is not None:
        # The facility a correction names is the determination's facility too: it
        # goes where ``facility`` goes (rule 1).
        cf = c.facility if may("facility") else None
        correction = CorrectionOut(
            c.by,
            c.reason,
            c.date,
            c.kind,
            FacilityRefOut(cf.facility_id, cf.name, cf.town, cf.covered) if cf else None,
            c.insurer_town,
            c.premium_after,
        )
    notice = shown.notice
    return DeterminationOut(
        id=d.id,
        resident_id=d.resident_id,
        kind=d.kind,
        kind_ja=KIND_JA[Kind(d.kind)],
        status=d.status,
        proposed_on=d.proposed_on,
        deadline=d.deadline,
        overdue=d.status == Status.OPEN and d.deadline < today_jst(),
        version=d.version,
        supersedes=d.supersedes,
        superseded_by=d.superseded_by,
        corrected_by=d.corrected_by,
        decided_by=d.decided_by,
        decided_at=d.decided_at,
        proposal=ProposalOut(
            p.date,
            p.reason,
            p.legal_basis,
            p.summary,
            p.category.value,
            p.insurer_town,
            p.fiscal_year,
            p.premium_before,
            p.premium_after,
            [QuestionOut(q.code, q.text) for q in p.questions],
            list(p.notes),
        )
        if may("proposal")
        else None,
        facility=facility if may("facility") else None,
        correction=correction if may("correction") else None,
        answers=dict(d.answers) if d.answers and may("answers") else None,
        notice=NoticeOut(notice.insurer_town, notice.insurer_number)
        if notice is not None and may("facility")
        else None,
        withheld=list(view.withheld),
        withheld_reasons=dict(view.reasons),
    )


def _with_etag(shown: service.Shown) -> Response[DeterminationOut]:
    return Response(
        determination_out(shown), headers={"ETag": service.etag(shown.determination.version)}
    )


class InsuredController(Controller):
    path = BASE
    tags = ("kaigo",)

    @get(
        "/insured/{insured_id:str}",
        summary="An insured person (被保険者)",
        **audited("kaigo.insured.read", INSURED, record="insured_id"),
    )
    async def read(self, entry: NamedDependency[Entry], insured_id: FromPath[str]) -> InsuredOut:
        async with entry:
            person, view = await service.read_insured(entry.uow, entry.access, insured_id)
        return insured_out(person, view)

    @post(
        "/insured/search",
        status_code=200,
        summary="Find insured persons by insured number or by resident",
        **audited("kaigo.insured.search", INSURED),
    )
    async def search(
        self, entry: NamedDependency[Entry], data: JSONBody[InsuredSearch]
    ) -> InsuredList:
        async with entry:
            found = await service.search_insured(entry.uow, entry.access, data)
        return InsuredList(insured=[insured_out(p, v) for p, v in found])

    @get(
        "/insured/{insured_id:str}/premium-months",
        summary="The months the town charges this person in a fiscal year (第1号)",
        guards=[known_query_only],
        **audited("kaigo.insured.premium", INSURED, record="insured_id"),
    )
    async def premium(
        self,
        entry: NamedDependency[Entry],
        insured_id: FromPath[str],
        fiscal_year: Annotated[int, QueryParameter(ge=2000, le=2100)],
    ) -> PremiumPerson:
        async with entry:
            person, months = await service.premium_months_of_person(
                entry.uow, entry.access, insured_id, fiscal_year
            )
        return PremiumPerson(
            person.id, person.resident_id, [m.strftime("%Y-%m") for m in months], len(months)
        )


def queue_filters(
    kind: list[str] | None, status: list[str] | None, overdue: bool, after: str | None, limit: int
) -> Filters:
    kinds = tuple(sorted(set(kind or ())))
    if not set(kinds) <= {k.value for k in Kind}:
        raise errors.invalid_field("/query/kind", m.UNKNOWN_KIND(kinds=", ".join(Kind)))
    statuses = tuple(sorted(set(status or ())))
    if not set(statuses) <= {s.value for s in Status}:
        raise errors.invalid_field("/query/status", m.UNKNOWN_STATUS(statuses=", ".join(Status)))
    position = None
    if after is not None:
        found = _AFTER.match(after)
        try:
            position = (date.fromisoformat(found.group(1)), found.group(2)) if found else None
        except ValueError:
            position = None
        if position is None:
            raise errors.invalid_field("/query/after", m.NOT_A_PAGE)
    return Filters(
        kinds=kinds,
        statuses=statuses,
        overdue_on=today_jst() if overdue else None,
        after=position,
        limit=limit,
    )


class DeterminationController(Controller):
    path = BASE
    tags = ("kaigo",)

    @get(
        "/determinations",
        summary="The queue: determinations by deadline (filters: kind, status, overdue)",
        guards=[known_query_only],
        **audited("kaigo.determination.list", DETERMINATION),
    )
    async def list_(
        self,
        entry: NamedDependency[Entry],
        kind: Annotated[list[str] | None, QueryParameter(description="repeatable")] = None,
        status: Annotated[list[str] | None, QueryParameter(description="repeatable")] = None,
        overdue: Annotated[
            bool, QueryParameter(description="only open ones past their deadline")
        ] = False,
        after: Annotated[str | None, QueryParameter(max_length=64)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> DeterminationList:
        filters = queue_filters(kind, status, overdue, after, limit)
        async with entry:
            found = await service.list_determinations(entry.uow, entry.access, filters)
        last = found[-1].determination if len(found) == limit else None
        return DeterminationList(
            determinations=[determination_out(s) for s in found],
            next=f"{last.deadline.isoformat()}_{last.id}" if last else None,
        )

    @get(
        "/determinations/{determination_id:str}",
        summary="One determination, with its ETag",
        **audited("kaigo.determination.read", DETERMINATION, record="determination_id"),
    )
    async def read(
        self, entry: NamedDependency[Entry], determination_id: FromPath[str]
    ) -> Response[DeterminationOut]:
        async with entry:
            shown = await service.read_determination(entry.uow, entry.access, determination_id)
        return _with_etag(shown)

    @post(
        "/determinations/{determination_id:str}/confirm",
        status_code=200,
        summary="Confirm (the insured person's record changes in the same transaction)",
        **audited(
            "kaigo.determination.confirm", DETERMINATION, record="determination_id", if_match=True
        ),
    )
    async def confirm(
        self,
        entry: NamedDependency[Entry],
        determination_id: FromPath[str],
        data: JSONBody[Confirm],
    ) -> Response[DeterminationOut]:
        done = await flows.confirm(entry, determination_id, data)
        return _with_etag(service.Shown(done.determination, done.view))

    @post(
        "/determinations/{determination_id:str}/correct",
        status_code=200,
        summary="Correct (with a reason); someone else confirms",
        **audited(
            "kaigo.determination.correct", DETERMINATION, record="determination_id", if_match=True
        ),
    )
    async def correct(
        self,
        entry: NamedDependency[Entry],
        determination_id: FromPath[str],
        data: JSONBody[Correct],
    ) -> Response[DeterminationOut]:
        # The facility list is read before the town's unit of work opens (never two
        # pooled connections at once), and only for the town's own staff.
        own = entry.principal.tenant == entry.code and not entry.principal.is_operator
        places = (
            await directory.directory(services(entry.request).db) if own and data.facility else None
        )
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
        return _with_etag(shown)

    @post(
        "/determinations/{determination_id:str}/reject",
        status_code=200,
        summary="Reject (nothing changes; the reason is kept)",
        **audited(
            "kaigo.determination.reject", DETERMINATION, record="determination_id", if_match=True
        ),
    )
    async def reject(
        self,
        entry: NamedDependency[Entry],
        determination_id: FromPath[str],
        data: JSONBody[Reject],
    ) -> Response[DeterminationOut]:
        async with entry:
            version = service.parse_if_match(entry.if_match)
            shown = await service.reject(
                entry.uow, entry.access, determination_id, version, data.reason
            )
        return _with_etag(shown)


class ReportController(Controller):
    path = BASE
    tags = ("kaigo",)

    @get(
        "/premium-months",
        summary="Premium months per insured person in a fiscal year (第1号, by insured id)",
        guards=[known_query_only],
        **audited("kaigo.report.premium", INSURED),
    )
    async def premium(
        self,
        entry: NamedDependency[Entry],
        fiscal_year: Annotated[int, QueryParameter(ge=2000, le=2100)],
        after: Annotated[str | None, QueryParameter(max_length=36)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=reports.MAX_PAGE)] = 1000,
    ) -> PremiumMonths:
        if after is not None:
            after = service.parse_uuid(after, m.NO_INSURED)
        async with entry:
            charged, total, following = await reports.premium_months(
                entry.uow, entry.access, fiscal_year, after, limit
            )
        return PremiumMonths(
            fiscal_year=fiscal_year,
            people=[
                PremiumPerson(
                    c.person.id,
                    c.person.resident_id,
                    [m.strftime("%Y-%m") for m in c.months],
                    len(c.months),
                )
                for c in charged
            ],
            total=total,
            next=following,
        )

    @get(
        "/reports/changes",
        summary="The changes confirmed in a month, to send to 国保連 (CSV)",
        guards=[known_query_only],
        operation_class=served_also_as("text/csv"),
        **audited("kaigo.report.changes", DETERMINATION),
    )
    async def changes(
        self,
        entry: NamedDependency[Entry],
        month: Annotated[str, QueryParameter(pattern=r"^[0-9]{4}-[0-9]{2}$")],
    ) -> Response[bytes]:
        async with entry:
            text, rows = await reports.change_report(entry.uow, entry.access, month)
        stamp = now_jst().strftime("%Y%m%dT%H%M%S")
        return Response(
            text.encode("utf-8"),
            media_type="text/csv",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="kaigo-changes-{entry.code}-{month}-{stamp}.csv"'
                ),
                "X-Total-Count": str(rows),
            },
        )
