"""The resident record use cases that only read: one record, a search, its history, a household.

Each authorises first (DESIGN.md rule 2), reads through the repository,
shows each record through its rule-1 field view (:mod:`.views`) and names
what it read for the audit (``service._touched``). The use cases that
change the register are :mod:`.service`'s.
"""

from __future__ import annotations

from typing import Any

from shared_gov import errors
from shared_gov.checkdigits import is_valid_individual_number, is_valid_serial
from shared_gov.clock import day_of
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import messages as m
from shared_gov.domains.residents import move_outs, reads
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.models import (
    REASON_JA,
    Resident,
)
from shared_gov.domains.residents.rules import (
    _check_kana,
    _check_not_too_early,
    parse_id,
)
from shared_gov.domains.residents.schemas import ResidentSearch
from shared_gov.domains.residents.service import _touched
from shared_gov.domains.residents.views import (
    PROTECTED_ELSEWHERE,
    _protected_elsewhere,
    view_of,
    views_of,
)
from shared_gov.errors import FieldError
from shared_gov.messages import access as ma
from shared_gov.messages.core import FieldName
from shared_gov.policy import Access, FieldView

SEARCH_LIMIT = 50
MEMBER_FIELDS = frozenset(
    {"family_name", "given_name", "family_name_kana", "given_name_kana", "relationship"}
)


async def get(
    uow: TenantUnitOfWork, access: Access, resident_id: str
) -> tuple[Resident, FieldView]:
    """The current record and the fields this caller may see of it."""
    # Refuse before reading anything when not a single field could be shown
    # (at home; under an agreement what may be shown depends on the record's
    # state, and every refusal is the same 404 as a missing record anyway).
    if access.agreement is None:
        access.readable(support_measure=False)
    # At home one round trip: the town's read function (reads.py).
    resident = await reads.get(uow, parse_id(resident_id))
    if resident is None:
        raise errors.not_found(m.NO_SUCH_RESIDENT)
    if access.agreement is not None:
        if await _protected_elsewhere(uow, access, [resident]):
            # Rule 1: never another town, whatever an agreement says — the
            # same 404 as a missing record (the reason is for the audit only).
            raise access.refusal(PROTECTED_ELSEWHERE)
        access.destinations.update(await move_outs.destinations(uow, [resident.id]))
    view = await view_of(uow, access, resident)
    if view.empty:
        raise access.refusal(next(iter(view.reasons.values()), ma.NO_FIELD_READABLE))
    _touched(access, [resident.id], view.allowed, rows=1)
    return resident, view


async def search(
    uow: TenantUnitOfWork, access: Access, query: ResidentSearch
) -> list[tuple[Resident, FieldView]]:
    """Find residents by 宛名番号, individual number, or kana family name + birth date.

    Looking a person up by individual number is a use of it: the search itself
    needs a listed purpose and two-factor authentication.
    """
    modes = [
        query.atena_no is not None,
        query.individual_number is not None,
        query.phone is not None,
        query.family_name_kana is not None or query.birth_date is not None,
    ]
    if sum(modes) != 1:
        raise errors.invalid_field("/", m.EXACTLY_ONE_MODE)
    access.require("search", by_individual_number=query.individual_number is not None)
    # Searching by a field is reading it: the purpose must cover what is searched.
    searched = (
        ("individual_number",)
        if query.individual_number is not None
        else ("phone",)
        if query.phone is not None
        else ("family_name_kana", "birth_date")
        if query.atena_no is None
        else ()
    )
    # Under the standing move agreement only records moving out to the caller's
    # town are readable; the search key must be readable on some record this
    # caller may find.
    own = access.actor.tenant or ""
    classes = [("active", "")] + ([("moved_out", own)] if access.agreement is not None else [])
    views = [access.field_view(False, state, dest) for state, dest in classes]
    for name in searched:
        if not any(name in v.allowed for v in views):
            raise access.refusal(
                views[0].reasons.get(name, m.PURPOSE_DOES_NOT_COVER(field=FieldName(name)))
            )

    candidates = await _find(uow, query)
    if access.agreement is not None:
        # Rule 1: a protected or linked record is not found by another town.
        hidden = await _protected_elsewhere(uow, access, candidates)
        candidates = [r for r in candidates if r.id not in hidden]
        access.destinations.update(await move_outs.destinations(uow, [r.id for r in candidates]))
        if access.agreement.kind == "standing_move":  # the 転出証明書 goes to the new town only
            candidates = [r for r in candidates if access.destination(r.id) == own]
    shown = await views_of(uow, access, candidates)
    # A protected (or linked) record is only found by a field this caller may
    # see on it (else searching by phone would confirm a hidden number); a
    # record of which nothing may be shown is not found at all.
    found = [
        (r, shown[r.id])
        for r in candidates
        if not shown[r.id].empty and all(n in shown[r.id].allowed for n in searched)
    ]
    fields = set(searched)
    for _r, view in found:
        fields |= view.allowed
    _touched(access, [r.id for r, _v in found], fields, rows=len(found))
    return found


async def _find(uow: TenantUnitOfWork, query: ResidentSearch) -> list[Resident]:
    if query.atena_no is not None:
        return await repo.find_by_atena_no(uow, query.atena_no)
    if query.individual_number is not None:
        if not is_valid_individual_number(query.individual_number):
            raise errors.invalid_field("/individual_number", m.CHECK_DIGIT)
        return await repo.find_by_individual_number(uow, query.individual_number)
    if query.phone is not None:
        return await repo.find_by_phone(uow, query.phone)
    if query.family_name_kana is None or query.birth_date is None:
        raise errors.invalid_field("/", m.KANA_WITH_BIRTH)
    problems: list[FieldError] = []
    kana = _check_kana(problems, "/family_name_kana", query.family_name_kana)
    _check_not_too_early(problems, "/birth_date", query.birth_date)
    if problems or kana is None:
        raise errors.invalid(problems)
    return await repo.find_by_kana_and_birth(uow, kana, query.birth_date, SEARCH_LIMIT)


async def history(
    uow: TenantUnitOfWork, access: Access, resident_id: str
) -> tuple[list[dict[str, Any]], FieldView]:
    """Every snapshot, and the fields of them this caller may see."""
    access.require("history")
    rid = parse_id(resident_id)
    current = await repo.get(uow, rid)
    if current is None:
        raise errors.not_found(m.NO_SUCH_RESIDENT)
    entries = await repo.history(uow, rid)
    # Rule 1 over time (views_of): a snapshot filed under a household that
    # now holds a protected person shows where that person lives, so a record
    # ever filed under one is shown as a linked record, history included.
    view = await view_of(uow, access, current)
    if view.empty:
        raise access.refusal(next(iter(view.reasons.values()), ma.NO_FIELD_READABLE))
    # N4: the instant an entry was recorded is the same in both towns of a
    # one-stop move; for a protected or linked record, anyone but the
    # exception gets the day only (the exception: see a protected record's
    # household number).
    coarse = (
        current.support_measure or bool(await repo.linked_residents(uow, [current]))
    ) and "household_no" not in access.field_view(True).allowed
    for entry in entries:
        if "reason" in entry:  # not in an unreadable entry (repository.history)
            entry["reason_ja"] = REASON_JA.get(str(entry["reason"]), str(entry["reason"]))
        if coarse:
            entry["recorded_at"] = day_of(entry["recorded_at"])
    _touched(access, [rid], view.allowed, rows=len(entries))
    return entries, view


async def household(
    uow: TenantUnitOfWork, access: Access, household_no: str
) -> tuple[str | None, list[tuple[Resident, FieldView]]]:
    """The household's head and members, as this caller may see them.

    Rule 1 (docs/support-measures.md): a household in the component of a
    person under 支援措置 does not exist for anyone who may not see that
    person's household number — the same 404 as a number never issued. Listing it without the
    protected person would still tell, by a missing head or a 続柄 pointing at
    nobody, that someone protected lives where the others live.
    """
    access.require("household")
    if not is_valid_serial(household_no):
        raise errors.not_found(m.NO_SUCH_HOUSEHOLD)
    exists, head, linked = await repo.household_protected(uow, household_no)
    if not exists:
        raise errors.not_found(m.NO_SUCH_HOUSEHOLD)
    # Every household of a linked component (F1: the one a protected person
    # split off from; F2: one split off from theirs, and its newcomers).
    may_see_protected = "household_no" in access.field_view(True).allowed
    if linked and not may_see_protected:
        raise errors.not_found(m.NO_SUCH_HOUSEHOLD)
    members = await repo.household_members(uow, household_no)
    views = await views_of(uow, access, members)
    shown = [(m, views[m.id]) for m in members if not views[m.id].empty]
    fields: set[str] = set()
    for _m, view in shown:
        fields |= view.allowed & MEMBER_FIELDS
    _touched(access, [m.id for m, _v in shown], fields, rows=len(shown))
    return head, shown
