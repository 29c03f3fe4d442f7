"""Resident record (住民記録) use cases that change the register.

Every function takes the tenant unit of work and the acting principal,
authorises first (DESIGN.md rule 2), then works through the repository.
The reads are :mod:`.queries`, the input rules :mod:`.rules`, the rule-1
field views :mod:`.views`. Rules enforced, from 住民記録システム標準仕様書
(see FACTS.md):

- 異動日 may be today or earlier, except for ``move_out_domestic`` (a planned
  転出 may be dated in the future). 処理日 is always today (JST).
- Each change stores a full snapshot under the next 履歴番号, starting at 1.
- Writes to an existing record need the current version (ETag / If-Match):
  428 without it, 412 when stale, so two staff cannot overwrite each other.
- A removed person (転出, 死亡, 職権消除) keeps the record with its state.
- Every change writes its domain event (:mod:`.events`) in its own
  transaction: the event exists exactly when the change does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import date

import asyncpg

from shared_gov import errors
from shared_gov.checkdigits import is_valid_individual_number, is_valid_serial
from shared_gov.clock import today_jst
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import events, linkage, move_outs
from shared_gov.domains.residents import messages as m
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.models import (
    CONFIRMED_REASON,
    HEAD,
    RELATIONSHIPS,
    REMOVAL_STATE,
    ChangeEvent,
    Resident,
)
from shared_gov.domains.residents.rules import (
    _check_kana,
    _check_name_changes,
    _check_not_future,
    _check_not_too_early,
    _check_notified,
    _event_changes,
    parse_id,
)
from shared_gov.domains.residents.schemas import MoveCreate, ResidentCreate
from shared_gov.domains.residents.spec import POLICY_FIELDS
from shared_gov.domains.residents.views import (
    view_of,
)
from shared_gov.errors import FieldError
from shared_gov.policy import Access, FieldView


async def register(
    uow: TenantUnitOfWork, access: Access, data: ResidentCreate, **event_ids: str
) -> Resident:
    """Enter a person in the register through an entry event (記載).

    Recording an individual number uses it (and a duplicate would confirm it
    exists): that needs 2FA and a listed purpose, like searching by it.
    ``event_ids``: more ids for the event (a one-stop move's ``from_town`` and
    ``transfer_id``, docs/events.md).
    """
    access.require("register", by_individual_number=data.individual_number is not None)
    today = today_jst()
    problems: list[FieldError] = []
    family_kana = _check_kana(problems, "/family_name_kana", data.family_name_kana)
    given_kana = _check_kana(problems, "/given_name_kana", data.given_name_kana)
    _check_not_future(problems, "/birth_date", data.birth_date, today)
    _check_not_future(problems, "/move_date", data.move_date, today)
    _check_not_future(problems, "/notified_on", data.notified_on, today)
    _check_not_too_early(problems, "/birth_date", data.birth_date)
    if data.move_date < data.birth_date:
        problems.append(FieldError("/move_date", m.BEFORE_BIRTH))
    _check_notified(problems, None, data.move_date, data.notified_on)
    if data.resident_since is not None:
        _check_not_future(problems, "/resident_since", data.resident_since, today)
        if data.resident_since < data.birth_date:
            problems.append(FieldError("/resident_since", m.BEFORE_BIRTH))
    if data.individual_number is not None and not is_valid_individual_number(
        data.individual_number
    ):
        problems.append(FieldError("/individual_number", m.CHECK_DIGIT))
    if data.household_no is not None and not is_valid_serial(data.household_no):
        problems.append(FieldError("/household_no", m.CHECK_DIGIT))
    if data.relationship is not None and data.relationship not in RELATIONSHIPS:
        problems.append(FieldError("/relationship", m.UNKNOWN_RELATIONSHIP))
    if data.household_no is not None and data.relationship in (None, HEAD):
        problems.append(FieldError("/relationship", m.RELATIONSHIP_REQUIRED))
    if data.household_no is None and data.relationship not in (None, HEAD):
        problems.append(FieldError("/relationship", m.NEW_HOUSEHOLD_HEAD))
    if problems:
        raise errors.invalid(problems)

    resident_id = str(uuid.uuid4())
    household_no = data.household_no
    if household_no is not None:
        # Joining a household joins its rule-1 component: the lock comes
        # before the household's row lock (repository.lock_linkage).
        await linkage.lock_linkage(uow)
        exists, _head = await repo.household_head(uow, household_no)
        if not exists:
            raise errors.invalid_field("/household_no", m.NO_SUCH_HOUSEHOLD_HERE)
    else:
        household_no = await repo.create_household(uow, resident_id)
    resident = Resident(
        id=resident_id,
        atena_no=await repo.next_atena_no(uow),
        version=1,
        state="active",
        resident_type=data.resident_type,
        household_no=household_no,
        relationship=data.relationship or HEAD,
        family_name=data.family_name,
        given_name=data.given_name,
        family_name_kana=family_kana or "",
        given_name_kana=given_kana or "",
        birth_date=data.birth_date,
        sex=data.sex,
        address=data.address,
        postal_code=data.postal_code,
        individual_number=data.individual_number,
        juminhyo_code=data.juminhyo_code,
        phone=data.phone,
        former_surname=data.former_surname,
        domicile=data.domicile,
        previous_address=data.previous_address,
        forward_address=None,
        resident_since=data.resident_since or data.move_date,
        address_since=data.move_date,
        notified_on=data.notified_on,
        removed_on=None,
        history_no=1,
    )
    try:
        await repo.insert(uow, resident)
    except asyncpg.UniqueViolationError as exc:
        raise _duplicate(exc) from None
    if data.household_no is not None:
        # The newcomer is linked when anyone of the household's component is
        # (F2: a household split off from a protected one, joined later).
        await linkage.relink_component(uow, resident.id)
    await repo.append_history(
        uow,
        resident,
        reason=data.event.value,
        move_date=data.move_date,
        notified_on=data.notified_on,
        processed_on=today,
    )
    # A new record: no field names (consumers read the record they need).
    await events.emit(
        uow,
        events.ENTRY_KINDS[data.event],
        resident.id,
        atena_no=resident.atena_no,
        history_no=str(resident.history_no),
        **event_ids,
    )
    # The event names what the response discloses (the returned record as
    # this caller may see it) and what was written.
    view = await view_of(uow, access, resident)
    written = [f for f in POLICY_FIELDS if getattr(resident, f, None) is not None]
    _touched(access, [resident.id], {*written, *view.allowed}, rows=1)
    return resident


def _touched(access: Access, subjects: list[str], fields: Iterable[str], rows: int) -> None:
    """Tell the audit record what this request touched (ids are hashed when written)."""
    # The target may already be named (recorded before authorising: see subject_of).
    access.audit.subjects.extend(s for s in subjects if s not in access.audit.subjects)
    access.audit.fields.extend(sorted(set(fields) - set(access.audit.fields)))
    access.audit.rows += rows


def _duplicate(exc: asyncpg.UniqueViolationError) -> errors.DomainError:
    # Name the field, never the value.
    constraint = getattr(exc, "constraint_name", "") or ""
    if "individual_number" in constraint:
        return errors.conflict(m.DUPLICATE_INDIVIDUAL_NUMBER)
    if "juminhyo" in constraint:
        return errors.conflict(m.DUPLICATE_JUMINHYO_CODE)
    return errors.conflict(m.DUPLICATE_RECORD)


async def move(
    uow: TenantUnitOfWork,
    access: Access,
    resident_id: str,
    data: MoveCreate,
    expected_version: int | None,
) -> tuple[Resident, FieldView]:
    """Apply a change or removal event (修正・消除) under optimistic concurrency."""
    access.require("move")
    rid = parse_id(resident_id)
    today = today_jst()
    problems: list[FieldError] = []
    if data.event is not ChangeEvent.MOVE_OUT_DOMESTIC:
        _check_not_future(problems, "/move_date", data.move_date, today)
    _check_not_future(problems, "/notified_on", data.notified_on, today)
    _check_not_too_early(problems, "/move_date", data.move_date)
    _check_notified(problems, data.event, data.move_date, data.notified_on)
    changes = _event_changes(data, problems)
    move_outs.check(data, uow.code, problems)
    if problems:
        raise errors.invalid(problems)

    if data.event in (ChangeEvent.HOUSEHOLD_SPLIT, ChangeEvent.HEAD_OF_HOUSEHOLD_CHANGE):
        # Changes to households take the town's linkage lock before any row:
        # a head change locks two records, and a recomputation of rule 1
        # (which writes a whole component's flags) must never wait on one of
        # them while its holder waits for the lock. A split needs no
        # recomputation (the new household joins the person's component,
        # whose flag is the person's), but is serialised with them all the same.
        await linkage.lock_linkage(uow)
    current = await repo.get(uow, rid, lock=True)
    if current is None:
        raise errors.not_found(m.NO_SUCH_RESIDENT)
    if expected_version is not None and expected_version != current.version:
        raise errors.precondition_failed(m.CHANGED_SINCE_READ)
    if current.state != "active":
        raise errors.conflict(m.NOT_REGISTERED(state=current.state))
    if data.move_date < current.birth_date:
        raise errors.invalid_field("/move_date", m.BEFORE_BIRTH)
    if data.event is ChangeEvent.NAME_CHANGE:
        _check_name_changes(current, changes)

    event = data.event
    updated = replace(current, **changes)
    if event in REMOVAL_STATE:
        updated.state = REMOVAL_STATE[event]
        updated.removed_on = data.move_date
    elif event is ChangeEvent.MOVE_WITHIN_TOWN:
        updated.previous_address = current.address
        updated.address_since = data.move_date
    elif event is ChangeEvent.HOUSEHOLD_SPLIT:
        if current.relationship == HEAD:
            raise errors.conflict(m.HEAD_CANNOT_SPLIT)
        updated.household_no = await repo.create_household(uow, current.id)
        updated.relationship = HEAD
    elif event is ChangeEvent.HEAD_OF_HOUSEHOLD_CHANGE:
        await _make_head(uow, current, data, today)
        updated.relationship = HEAD
    await _save(uow, updated, event.value, data.move_date, data.notified_on, today)
    if event is ChangeEvent.MOVE_OUT_DOMESTIC:
        # Binds the 転出証明書 and a one-stop move-in to the named new town.
        await move_outs.register(uow, current.id, data.to_tenant)
    await events.emit(
        uow,
        events.CHANGE_KINDS[event],
        current.id,
        events.changed_fields(current, updated),
        atena_no=current.atena_no,
        history_no=str(updated.history_no),
    )
    changed = [f for f in POLICY_FIELDS if getattr(updated, f, None) != getattr(current, f, None)]
    # The response returns the record: the event names every field it shows.
    view = await view_of(uow, access, updated)
    _touched(access, [current.id], {*changed, *view.allowed}, rows=1)
    return updated, view


async def set_support_measure(
    uow: TenantUnitOfWork,
    access: Access,
    resident_id: str,
    active: bool,
    expected_version: int | None,
) -> tuple[Resident, FieldView]:
    """Set or lift 支援措置 on a record (市民課 only, by policy)."""
    access.require("protect")
    rid = parse_id(resident_id)
    await linkage.lock_linkage(uow)  # before the record's row lock (repository.lock_linkage)
    current = await repo.get(uow, rid, lock=True)
    if current is None:
        raise errors.not_found(m.NO_SUCH_RESIDENT)
    if expected_version is not None and expected_version != current.version:
        raise errors.precondition_failed(m.CHANGED_SINCE_READ)
    updated = replace(current, support_measure=active, version=current.version + 1)
    await repo.update(uow, updated)
    if not active:
        # Lifting also forgets a link carried from another town (flows.py):
        # 市民課 decides for its own register.
        await linkage.lift_carried(uow, current.id)
    # Everyone in the component is linked exactly while someone in it is a seed.
    await linkage.relink_component(uow, current.id)
    # Departments must learn of 支援措置 to stop disclosing; the flag itself is
    # shown with every record, so the event tells no more than a read would.
    await events.emit(
        uow, events.CHANGED, current.id, ["support_measure"], atena_no=current.atena_no
    )
    view = await view_of(uow, access, updated)
    _touched(access, [current.id], {"support_measure", *view.allowed}, rows=1)
    return updated, view


async def _make_head(
    uow: TenantUnitOfWork, current: Resident, data: MoveCreate, today: date
) -> None:
    if current.relationship == HEAD:
        raise errors.conflict(m.ALREADY_HEAD)
    _exists, head_id = await repo.household_head(uow, current.household_no)
    if head_id is not None and head_id != current.id:
        former = await repo.get(uow, head_id, lock=True)
        if former is not None and former.state == "active":
            demoted = replace(former, relationship=data.previous_head_relationship or "同居人")
            await _save(
                uow,
                demoted,
                ChangeEvent.HEAD_OF_HOUSEHOLD_CHANGE.value,
                data.move_date,
                data.notified_on,
                today,
            )
            await events.emit(
                uow,
                events.CHANGED,
                former.id,
                events.changed_fields(former, demoted),
                atena_no=former.atena_no,
                history_no=str(demoted.history_no),
            )
    await repo.set_household_head(uow, current.household_no, current.id)


async def _save(
    uow: TenantUnitOfWork,
    resident: Resident,
    reason: str,
    move_date: date,
    notified_on: date,
    today: date,
) -> None:
    resident.version += 1
    resident.history_no += 1
    resident.notified_on = notified_on
    await repo.update(uow, resident)
    await repo.append_history(
        uow,
        resident,
        reason=reason,
        move_date=move_date,
        notified_on=notified_on,
        processed_on=today,
    )


async def carry_support_measure(uow: TenantUnitOfWork, resident: Resident) -> Resident:
    """Set 支援措置 on a record just created by a one-stop move (see :mod:`.flows`).

    The caller holds the linkage lock (taken before the registration).
    """
    updated = replace(resident, support_measure=True, version=resident.version + 1)
    await repo.update(uow, updated)
    await linkage.relink_component(uow, resident.id)
    await events.emit(
        uow, events.CHANGED, resident.id, ["support_measure"], atena_no=resident.atena_no
    )
    return updated


async def carry_link(uow: TenantUnitOfWork, resident: Resident) -> None:
    """Link a record just created by a one-stop move whose person was linked in
    the old town (F3): their new household's component is linked with them.

    No field changes (``support_measure`` stays false; the flag is not a
    field), so no event. The caller holds the linkage lock.
    """
    await linkage.carry_protection(uow, resident.id)
    await linkage.relink_component(uow, resident.id)


async def confirm_move_out(
    uow: TenantUnitOfWork, before: Resident, after: Resident, notified_on: date
) -> None:
    """Record the actual 転出 date of a planned move-out (転入通知 from the new town)."""
    today = today_jst()
    await _save(uow, after, CONFIRMED_REASON, after.removed_on or today, notified_on, today)
