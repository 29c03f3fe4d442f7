"""Reports of 介護保険課: the premium months per fiscal year, and the monthly change
report (the changes confirmed in a month, to send to 国保連 as CSV).

Both read personal values in bulk: the purpose must cover ``insured_report`` and
the fields shown; the audit event lists every person read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared_gov import errors
from shared_gov.clock import JST
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo import messages as m
from shared_gov.domains.kaigo.models import InsuredPerson
from shared_gov.domains.kaigo.repository import determinations as queue
from shared_gov.domains.kaigo.repository import insured, register
from shared_gov.domains.kaigo.rules import premium_months_of
from shared_gov.domains.kaigo.service import DETERMINATION_TYPE, INSURED_TYPE, touched
from shared_gov.domains.kaigo.vocabulary import KIND_JA, Kind
from shared_gov.messages import FieldName
from shared_gov.policy import Access

MAX_PAGE = 5_000


def _require(access: Access, record_type: str, fields: tuple[str, ...]) -> None:
    access.require("insured_report", record_type=INSURED_TYPE)
    view = access.readable(False, record_type=record_type)
    missing = [f for f in fields if f not in view.allowed]
    if missing:
        raise access.refusal(
            view.reasons.get(missing[0]) or m.FIELD_NOT_READABLE(field=FieldName(missing[0]))
        )
    touched(access, [], view, 0)


@dataclass(slots=True)
class Charged:
    person: InsuredPerson
    months: list[date]


async def premium_months(
    uow: TenantUnitOfWork, access: Access, year: int, after: str | None, limit: int
) -> tuple[list[Charged], int, str | None]:
    """The months this town charges each insured person in fiscal year ``year`` (第1号;
    第129条 and the town's 介護保険条例), a page by insured id; and the page's total."""
    _require(access, INSURED_TYPE, ("InsuredPerson.periods",))
    people = await insured.every(uow, status=("insured", "lost"))
    people = [p for p in people if after is None or p.id > after]
    page = people[:limit]
    out = [Charged(p, list(premium_months_of(p.periods, year, uow.code))) for p in page]
    out = [c for c in out if c.months]
    touched(
        access,
        [c.person.resident_id for c in out],
        access.readable(False, record_type=INSURED_TYPE),
        len(out),
    )
    following = page[-1].id if len(people) > limit else None
    return out, sum(len(c.months) for c in out), following


CSV_HEADER = (
    "保険者番号",
    "被保険者番号",
    "異動区分",
    "異動年月日",
    "異動事由",
    "被保険者区分",
    "住所地特例施設",
    "施設所在市町村",
    "確定日",
    "判定ID",
)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[first instant, next month's first instant) of ``YYYY-MM`` in Japan time."""
    try:
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=JST)
    except ValueError:
        raise errors.invalid_field("/query/month", m.MONTH_FORMAT) from None
    if not 2000 <= first.year <= 2100:
        raise errors.invalid_field("/query/month", m.MONTH_RANGE)
    stop = (first + timedelta(days=32)).replace(day=1)
    return first, stop


async def change_report(uow: TenantUnitOfWork, access: Access, month: str) -> tuple[str, int]:
    """The changes confirmed in ``month`` (JST), one CSV row each, oldest first."""
    start, stop = month_bounds(month)
    _require(access, DETERMINATION_TYPE, ("Determination.proposal",))
    insured_view = access.readable(False, record_type=INSURED_TYPE)
    if "InsuredPerson.insured_number" not in insured_view.allowed:
        field = "InsuredPerson.insured_number"
        raise access.refusal(
            insured_view.reasons.get(field) or m.FIELD_NOT_READABLE(field=FieldName(field))
        )
    decided = [
        d for d in await queue.decided_between(uow, start, stop) if d.kind != Kind.RECORD_UPDATE
    ]
    people = await insured.by_residents(uow, sorted({d.resident_id for d in decided}))
    # Rule 1: the facility of a person under 支援措置 (or linked to one) is where they
    # live; its name and town stay out of the report as out of every read of it (the
    # row itself stays: the change is reported, the facility goes on paper).
    protected = await register.linked(uow, sorted({d.resident_id for d in decided}))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for d in decided:
        person = people.get(d.resident_id)
        facility = None if d.resident_id in protected else d.effective_facility
        kind = Kind(d.effective_kind)
        writer.writerow(
            (
                uow.code,
                (person.insured_number if person else None) or "",
                KIND_JA[kind],
                d.effective_date.isoformat(),
                d.proposal.reason,
                d.proposal.category.value,
                facility.name if facility else "",
                facility.town if facility else "",
                d.decided_at.astimezone(JST).date().isoformat() if d.decided_at else "",
                d.id,
            )
        )
    touched(access, [d.resident_id for d in decided], insured_view, len(decided))
    access.audit.fields.extend(
        f
        for f in ("Determination.proposal", "Determination.facility")
        if f not in access.audit.fields
    )
    return out.getvalue(), len(decided)
