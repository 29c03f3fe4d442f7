"""The 介護保険 use cases staff drive: read and find insured persons, work the queue
(confirm, correct, reject). Decide first (Cedar, through the ``Access`` the guarded
entry hands over), then the repository; fill the request's audit event.

A confirmed determination changes the insured person's record in the same
transaction (:func:`confirm`). Separation of duties: who corrected a
determination cannot confirm it. Every change needs If-Match (the
determination's version). Refusals carry Japanese reasons (with English).

Never imports another domain; never queries (the repository does).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from shared_gov import errors
from shared_gov.auth.subjects import same_person
from shared_gov.clock import now_jst, today_jst
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo import messages as m
from shared_gov.domains.kaigo import proposals
from shared_gov.domains.kaigo.directory import Directory
from shared_gov.domains.kaigo.models import (
    Card,
    Correction,
    Determination,
    FacilityRef,
    InsuredPerson,
    Tokurei,
)
from shared_gov.domains.kaigo.repository import determinations as queue
from shared_gov.domains.kaigo.repository import insured, notices, register
from shared_gov.domains.kaigo.rules import Category, fiscal_year, premium_months_of
from shared_gov.domains.kaigo.schemas import Correct, InsuredSearch
from shared_gov.domains.kaigo.spec import DETERMINATION, INSURED_PERSON
from shared_gov.domains.kaigo.vocabulary import Kind, Status
from shared_gov.messages import FieldName, Message
from shared_gov.policy import Access, FieldView

INSURED_TYPE = INSURED_PERSON.name
DETERMINATION_TYPE = DETERMINATION.name
_AFFIRMATIVE = ("はい", "済", "yes", "返還")


def touched(access: Access, resident_ids: list[str], view: FieldView, rows: int) -> None:
    """The audit event: which persons (their resident ids, hashed when written), which
    fields, how many rows."""
    event = access.audit
    event.subjects.extend(r for r in dict.fromkeys(resident_ids) if r not in event.subjects)
    event.fields.extend(sorted(set(view.allowed) - set(event.fields)))
    event.rows += rows


def parse_uuid(value: str, missing: Message) -> str:
    """``value`` as a canonical UUID; the 404 ``missing`` when it is none."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise errors.not_found(missing) from None


def parse_if_match(header: str | None) -> int:
    """The version an If-Match names: 428 without one, 412 for anything else."""
    if header is None or not header.strip():
        raise errors.precondition_required(m.IF_MATCH_REQUIRED)
    value = header.strip()
    digits = value[2:-1]
    if value.startswith('"v') and value.endswith('"') and 0 < len(digits) <= 9 and digits.isdigit():
        return int(digits)
    raise errors.precondition_failed(m.IF_MATCH_INVALID)


def etag(version: int) -> str:
    return f'"v{version}"'


# --- insured persons ----------------------------------------------------------------


async def _views(
    uow: TenantUnitOfWork, access: Access, record_type: str, resident_ids: list[str]
) -> tuple[set[str], dict[bool, FieldView]]:
    """Who of ``resident_ids`` is protected (rule 1), and the view of each class."""
    protected = await register.linked(uow, resident_ids)
    views = {
        flag: access.readable(flag, linked=flag, record_type=record_type)
        for flag in {r in protected for r in resident_ids} or {False}
    }
    return protected, views


async def read_insured(
    uow: TenantUnitOfWork, access: Access, insured_id: str
) -> tuple[InsuredPerson, FieldView]:
    access.readable(False, record_type=INSURED_TYPE)  # refused before anything is read
    person = await insured.get(uow, parse_uuid(insured_id, m.NO_INSURED))
    if person is None:
        raise errors.not_found(m.NO_INSURED)
    protected, views = await _views(uow, access, INSURED_TYPE, [person.resident_id])
    view = views[person.resident_id in protected]
    touched(access, [person.resident_id], view, 1)
    return person, view


async def search_insured(
    uow: TenantUnitOfWork, access: Access, data: InsuredSearch
) -> list[tuple[InsuredPerson, FieldView]]:
    if (data.insured_number is None) == (data.resident_id is None):
        raise errors.invalid_field("/", m.ONE_OF_TWO)
    access.require("insured_search", record_type=INSURED_TYPE)
    access.readable(False, record_type=INSURED_TYPE)
    if data.insured_number is not None:
        found = await insured.find_by_number(uow, data.insured_number)
    else:
        person = await insured.by_resident(uow, data.resident_id or "")
        found = [person] if person is not None else []
    protected, views = await _views(uow, access, INSURED_TYPE, [p.resident_id for p in found])
    out = [(p, views[p.resident_id in protected]) for p in found]
    for p, view in out:
        touched(access, [p.resident_id], view, 1)
    return out


async def premium_months_of_person(
    uow: TenantUnitOfWork, access: Access, insured_id: str, year: int
) -> tuple[InsuredPerson, list[date]]:
    access.require("insured_report", record_type=INSURED_TYPE)
    view = access.readable(False, record_type=INSURED_TYPE)
    if "InsuredPerson.periods" not in view.allowed:
        raise access.refusal(
            view.reasons.get("InsuredPerson.periods")
            or m.FIELD_NOT_READABLE(field=FieldName("InsuredPerson.periods"))
        )
    person = await insured.get(uow, parse_uuid(insured_id, m.NO_INSURED))
    if person is None:
        raise errors.not_found(m.NO_INSURED)
    touched(access, [person.resident_id], view, 1)
    return person, list(premium_months_of(person.periods, year, uow.code))


# --- the queue ----------------------------------------------------------------------


@dataclass(slots=True)
class Shown:
    """A determination as one caller may see it."""

    determination: Determination
    view: FieldView
    notice: notices.Notice | None = None


async def _shown(uow: TenantUnitOfWork, access: Access, found: list[Determination]) -> list[Shown]:
    protected, views = await _views(uow, access, DETERMINATION_TYPE, [d.resident_id for d in found])
    out = []
    for d in found:
        notice = None
        if d.transfer_id and d.kind == Kind.TOKUREI_INCOMING:
            notice = await notices.by_transfer(uow, d.transfer_id)
        view = views[d.resident_id in protected]
        out.append(Shown(d, view, notice))
        touched(access, [d.resident_id], view, 1)
    return out


async def list_determinations(
    uow: TenantUnitOfWork, access: Access, filters: queue.Filters
) -> list[Shown]:
    access.readable(False, record_type=DETERMINATION_TYPE)
    return await _shown(uow, access, await queue.page(uow, filters))


async def read_determination(uow: TenantUnitOfWork, access: Access, determination_id: str) -> Shown:
    access.readable(False, record_type=DETERMINATION_TYPE)
    d = await queue.get(uow, parse_uuid(determination_id, m.NO_DETERMINATION))
    if d is None:
        raise errors.not_found(m.NO_DETERMINATION)
    (shown,) = await _shown(uow, access, [d])
    return shown


async def _open_for_change(
    uow: TenantUnitOfWork, access: Access, determination_id: str, version: int
) -> Determination:
    d = await queue.get(uow, parse_uuid(determination_id, m.NO_DETERMINATION), lock=True)
    if d is None:
        raise errors.not_found(m.NO_DETERMINATION)
    if d.version != version:
        raise errors.precondition_failed(m.DETERMINATION_CHANGED(etag=etag(d.version)))
    if d.status != Status.OPEN:
        raise errors.conflict(m.ALREADY_DECIDED(status=d.status))
    return d


@dataclass(slots=True)
class Confirmed:
    determination: Determination
    person: InsuredPerson | None
    view: FieldView


async def confirm(
    uow: TenantUnitOfWork,
    access: Access,
    determination_id: str,
    version: int,
    answers: dict[str, str],
) -> Confirmed:
    """Confirm: the insured person's record changes in this same transaction."""
    access.require("determine", record_type=DETERMINATION_TYPE)
    view = access.readable(False, record_type=DETERMINATION_TYPE)
    d = await _open_for_change(uow, access, determination_id, version)
    subject = access.principal.subject
    # One person, one key (docs/separation-of-duties.md): the corrector in any
    # spelling of their subject (case, full width, a dash look-alike) is the corrector.
    if d.corrected_by is not None and same_person(d.corrected_by, subject):
        raise errors.forbidden(m.SEPARATION_OF_DUTIES)
    unknown = set(answers) - {q.code for q in d.proposal.questions}
    if unknown:
        raise errors.invalid_field(f"/answers/{sorted(unknown)[0]}", m.NOT_A_QUESTION)
    person = await insured.by_resident(uow, d.resident_id, lock=True)
    person = await _apply(uow, d, person, answers)
    await queue.save_decision(uow, d, Status.CONFIRMED, subject, now_jst(), answers)
    # What the answer shows follows rule 1 like any read of it (the facility of a
    # protected person is withheld).
    protected, views = await _views(uow, access, DETERMINATION_TYPE, [d.resident_id])
    view = views[d.resident_id in protected]
    touched(access, [d.resident_id], view, 1)
    access.audit.fields.extend(
        f for f in ("InsuredPerson.periods", "InsuredPerson.status") if f not in access.audit.fields
    )
    return Confirmed(d, person, view)


async def _apply(
    uow: TenantUnitOfWork,
    d: Determination,
    person: InsuredPerson | None,
    answers: dict[str, str],
) -> InsuredPerson | None:
    """What confirming ``d`` does to the insured person's record."""
    town, kind, day = uow.code, Kind(d.effective_kind), d.effective_date
    today = today_jst()
    category = d.proposal.category
    if kind is Kind.RECORD_UPDATE:
        if person is not None and _yes(answers.get("card_reissued")):
            person.card = Card(issued_on=today)
            await insured.update(uow, person)
        return person
    if kind in (Kind.GAIN, Kind.TOKUREI_ENDS, Kind.CATEGORY_CHANGE):
        periods = proposals.apply(
            town, person.periods if person else [], kind, day, d.proposal.reason, category=category
        )
        if person is None:
            person = InsuredPerson(
                id=str(uuid.uuid4()),
                resident_id=d.resident_id,
                status="insured",
                category=category,
                insurer_town=town,
                insured_number=await insured.next_number(uow),
                periods=periods,
                card=Card(issued_on=today),
            )
            await insured.insert(uow, person)
            return person
        person.status, person.category, person.insurer_town = "insured", category, town
        person.periods, person.tokurei = periods, None
        person.insured_number = person.insured_number or await insured.next_number(uow)
        person.card = Card(issued_on=today)
        await insured.update(uow, person)
        return person
    if kind is Kind.TOKUREI_INCOMING:
        insurer = d.effective_insurer
        if not insurer or insurer == town:
            raise errors.conflict(m.INSURER_UNKNOWN)
        facility = d.effective_facility
        notice = await notices.by_transfer(uow, d.transfer_id) if d.transfer_id else None
        tokurei = Tokurei(
            insurer_town=insurer,
            facility_town=town,
            facility_id=facility.facility_id if facility else None,
            facility_name=facility.name if facility else "",
            since=day,
            insurer_number=notice.insurer_number if notice else None,
        )
        if person is None:
            person = InsuredPerson(
                id=str(uuid.uuid4()),
                resident_id=d.resident_id,
                status="tokurei_elsewhere",
                category=Category.FIRST,
                insurer_town=insurer,
                insured_number=None,
                tokurei=tokurei,
            )
            await insured.insert(uow, person)
            return person
        person.status, person.insurer_town, person.tokurei = "tokurei_elsewhere", insurer, tokurei
        await insured.update(uow, person)
        return person
    if person is None:
        raise errors.conflict(m.NO_INSURED_RECORD)
    if kind is Kind.LOSS:
        person.periods = proposals.apply(town, person.periods, kind, day, d.proposal.reason)
        person.status = "lost"
        if _yes(answers.get("card_returned")):
            person.card = Card(person.card.issued_on, today)
        await insured.update(uow, person)
        return person
    if kind is Kind.TOKUREI_KEEP:
        facility = d.effective_facility
        if facility is None:
            raise errors.conflict(m.NO_FACILITY_NAMED)
        chain = person.tokurei is not None
        person.tokurei = Tokurei(
            insurer_town=town,
            facility_town=facility.town,
            facility_id=facility.facility_id,
            facility_name=facility.name,
            since=person.tokurei.since if chain and person.tokurei else day,
        )
        person.periods = proposals.apply(
            town, person.periods, kind, day, d.proposal.reason, facility_town=facility.town
        )
        await insured.update(uow, person)
        return person
    raise errors.conflict(m.KIND_NOT_CHANGEABLE)  # pragma: no cover - every kind above


def _yes(answer: str | None) -> bool:
    return answer is not None and answer.strip().lower().startswith(_AFFIRMATIVE)


async def correct(
    uow: TenantUnitOfWork,
    access: Access,
    determination_id: str,
    version: int,
    data: Correct,
    places: Directory,
) -> Shown:
    """Record a correction (with its reason); someone else then confirms it."""
    access.require("correct", record_type=DETERMINATION_TYPE)
    access.readable(False, record_type=DETERMINATION_TYPE)
    d = await _open_for_change(uow, access, determination_id, version)
    if d.kind in (Kind.RECORD_UPDATE, Kind.CATEGORY_CHANGE) and data.kind is not None:
        raise errors.invalid_field("/kind", m.KIND_NOT_CHANGEABLE)
    kind = Kind(data.kind or d.kind)
    facility: FacilityRef | None = None
    if data.facility is not None:
        choice = data.facility
        if choice.facility_id is not None:
            found = next((f for f in places.all() if f.id == choice.facility_id.lower()), None)
            if found is None:
                raise errors.invalid_field("/facility/facility_id", m.NOT_A_LISTED_FACILITY)
            facility = FacilityRef(found.id, found.name, found.town, found.covered)
        elif choice.name is not None and choice.town is not None:
            # A town that is not on the deployment: staff name the facility (covered).
            facility = FacilityRef(None, choice.name, choice.town, True)
        else:
            raise errors.invalid_field("/facility", m.FACILITY_CHOICE)
    if kind is Kind.TOKUREI_KEEP:
        chosen = facility or d.effective_facility
        if chosen is None or not chosen.covered:
            raise errors.invalid_field("/facility", m.COVERED_FACILITY_NEEDED)
        if chosen.town == uow.code:
            raise errors.invalid_field("/facility", m.FACILITY_OF_THIS_TOWN)
    if kind is Kind.TOKUREI_INCOMING and not (data.insurer_town or d.effective_insurer):
        raise errors.invalid_field("/insurer_town", m.INSURER_NEEDED)
    person = await insured.by_resident(uow, d.resident_id)
    day = data.date or d.proposal.date
    after = proposals.apply(
        uow.code, person.periods if person else [], kind, day, d.proposal.reason
    )
    year = fiscal_year(day)
    correction = Correction(
        by=access.principal.subject,
        reason=data.reason,
        date=data.date,
        kind=data.kind,
        facility=facility,
        insurer_town=data.insurer_town,
        premium_after=0
        if kind is Kind.TOKUREI_INCOMING
        else len(premium_months_of(after, year, uow.code)),
    )
    await queue.save_correction(uow, d, correction)
    (shown,) = await _shown(uow, access, [d])
    return shown


async def reject(
    uow: TenantUnitOfWork, access: Access, determination_id: str, version: int, reason: str
) -> Shown:
    """Reject: nothing changes in the insured person's record; the reason is kept."""
    access.require("determine", record_type=DETERMINATION_TYPE)
    access.readable(False, record_type=DETERMINATION_TYPE)
    d = await _open_for_change(uow, access, determination_id, version)
    await queue.save_decision(
        uow, d, Status.REJECTED, access.principal.subject, now_jst(), {"rejected": reason}
    )
    (shown,) = await _shown(uow, access, [d])
    return shown
