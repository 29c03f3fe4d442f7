"""Resident record (住民記録) use cases.

Every function takes the tenant unit of work and the acting principal,
authorises first (DESIGN.md rule 2), then works through the repository.
Rules enforced here, from 住民記録システム標準仕様書 (see FACTS.md):

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

import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import asyncpg
import msgspec

from shared_gov import errors
from shared_gov.checkdigits import is_valid_individual_number, is_valid_serial
from shared_gov.clock import day_of, today_jst
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import events, move_outs
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.models import (
    CONFIRMED_REASON,
    HEAD,
    REASON_JA,
    RELATIONSHIPS,
    REMOVAL_STATE,
    ChangeEvent,
    Resident,
)
from shared_gov.domains.residents.schemas import MoveCreate, ResidentCreate, ResidentSearch
from shared_gov.domains.residents.spec import POLICY_FIELDS
from shared_gov.errors import FieldError
from shared_gov.policy import Access, FieldView
from shared_gov.validation import EARLIEST_DATE

SEARCH_LIMIT = 50
MEMBER_FIELDS = frozenset(
    {"family_name", "given_name", "family_name_kana", "given_name_kana", "relationship"}
)


def etag(resident: Resident) -> str:
    return f'"v{resident.version}"'


def parse_if_match(header: str | None) -> int | None:
    """The version an If-Match header names; None for ``*``. 428 when absent."""
    if header is None or not header.strip():
        raise errors.precondition_required("this change needs an If-Match header with the ETag")
    value = header.strip()
    if value == "*":
        return None
    digits = value[2:-1]
    if (
        value.startswith('"v')
        and value.endswith('"')
        and 0 < len(digits) <= 9
        and digits.isascii()
        and digits.isdigit()
    ):
        return int(digits)
    raise errors.precondition_failed("If-Match does not name a version of this record")


def normalize_kana(value: str) -> str:
    """NFKC (half-width to full-width), hiragana to katakana, no spaces."""
    text = unicodedata.normalize("NFKC", value).replace(" ", "").replace("\u3000", "")
    return "".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in text)


def _is_katakana(value: str) -> bool:
    return bool(value) and all("ァ" <= c <= "ヺ" or c in "ー・" for c in value)


def _check_kana(problems: list[FieldError], pointer: str, value: str | None) -> str | None:
    if value is None:
        return None
    kana = normalize_kana(value)
    if not _is_katakana(kana):
        problems.append(FieldError(pointer, "must be written in kana"))
    return kana


def _check_not_future(problems: list[FieldError], pointer: str, value: date, today: date) -> None:
    if value > today:
        problems.append(FieldError(pointer, "must be today or earlier"))


def _check_not_too_early(problems: list[FieldError], pointer: str, value: date) -> None:
    if value < EARLIEST_DATE:
        problems.append(FieldError(pointer, f"must not be before {EARLIEST_DATE.isoformat()}"))


MOVE_OUT_NOTICE_AHEAD = timedelta(days=14)
"""How long before the move a 転出届 may be made.

住民基本台帳法 第24条: the person moving out notifies "あらかじめ" (before
the move; afterwards is accepted too, like every 届出). The law sets no
earliest day; towns take a 転出届 from about 14 days before the planned
move, and a planned move further away is still too uncertain to record. Every
other event is notified after it happened: 転入 (第22条), 転居 (第23条) and
世帯変更 (第25条) within 14 days after, a birth or death under 戸籍法 after the
fact, and a late notification (期間経過) is still recorded. So: ``notified_on``
is never before ``move_date``, except up to this long for a 転出.
"""
_NOTIFIED_AHEAD = {
    ChangeEvent.MOVE_OUT_DOMESTIC: MOVE_OUT_NOTICE_AHEAD,
    ChangeEvent.MOVE_OUT_ABROAD: MOVE_OUT_NOTICE_AHEAD,
}


def _check_notified(
    problems: list[FieldError], event: ChangeEvent | None, move_date: date, notified_on: date
) -> None:
    """届出日 against 異動日 (see :data:`MOVE_OUT_NOTICE_AHEAD`); None: an entry event.

    Not when 異動日 is refused itself: that is the one problem to report.
    """
    if any(p.pointer == "/move_date" for p in problems):
        return
    ahead = _NOTIFIED_AHEAD.get(event, timedelta(0)) if event is not None else timedelta(0)
    if notified_on < move_date - ahead:
        problems.append(
            FieldError(
                "/notified_on",
                f"must not be more than {ahead.days} days before move_date"
                if ahead
                else "must not be before move_date",
            )
        )


def parse_id(resident_id: str) -> str:
    try:
        return str(uuid.UUID(resident_id))
    except ValueError:
        raise errors.not_found("no such resident") from None


def subject_of(resident_id: str) -> str | None:
    """The resident id a request names, when it is one (for the audit record).

    A refused or failed attempt on a resident is still about that resident:
    the tenant scope records this id (hashed) whatever the outcome, so the
    auditor's search by resident and the resident's access report show it.
    """
    try:
        return str(uuid.UUID(resident_id))
    except ValueError:
        return None


async def views_of(
    uow: TenantUnitOfWork, access: Access, residents: Iterable[Resident]
) -> dict[str, FieldView]:
    """The field view of each record, by id, under rule 1 (docs/support-measures.md).

    A record in the same component as a person under 支援措置 (people joined
    by every household any of them was ever filed under) is
    ``linked_to_protected``: the guardrail then withholds its whereabouts and
    household links from everyone but the town's 市民課 registering
    residents, as for the protected person.
    """
    records = list(residents)
    # "Linked" is the whole connected component of "person —(ever filed
    # under)— household", stored per record by every write that can change
    # it (repository.relink_component): the reads that returned these records
    # carried the flag, so this costs no round trip and no decryption.
    linked = await repo.linked_residents(uow, records)
    return {
        r.id: access.field_view(
            r.support_measure,
            r.state,
            access.destination(r.id),
            linked=r.id in linked,
        )
        for r in records
    }


PROTECTED_ELSEWHERE = "rule 1: a protected or linked record is never shown to another town"
"""The audit reason of a cross-town read refused under rule 1 (the caller gets a plain 404)."""


async def _protected_elsewhere(
    uow: TenantUnitOfWork, access: Access, records: Iterable[Resident]
) -> set[str]:
    """Ids of ``records`` that another town may not see at all (rule 1).

    "Never another town, whatever an agreement says": under ANY agreement
    (bilateral or the standing move agreement) a record under 支援措置 or in
    a protected person's component does not exist for the recipient — not
    withheld field by field, which would still show that the person is
    registered there and since when (their destination town, for a protected
    person who moved). The one-stop move-in does not read through here: the
    destination's 市民課 registering the move cites the leaving record inside
    :mod:`.flows`, which carries the protection instead of showing it.
    """
    if access.agreement is None:
        return set()
    wanted = list(records)
    hidden = {r.id for r in wanted if r.support_measure}
    return hidden | await repo.linked_residents(uow, wanted)


async def view_of(uow: TenantUnitOfWork, access: Access, resident: Resident) -> FieldView:
    """The field view of one record (see :func:`views_of`)."""
    return (await views_of(uow, access, [resident]))[resident.id]


async def register(uow: TenantUnitOfWork, access: Access, data: ResidentCreate) -> Resident:
    """Enter a person in the register through an entry event (記載).

    Recording an individual number uses it (and a duplicate would confirm it
    exists): that needs 2FA and a listed purpose, like searching by it.
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
        problems.append(FieldError("/move_date", "must not be before the birth date"))
    _check_notified(problems, None, data.move_date, data.notified_on)
    if data.resident_since is not None:
        _check_not_future(problems, "/resident_since", data.resident_since, today)
        if data.resident_since < data.birth_date:
            problems.append(FieldError("/resident_since", "must not be before the birth date"))
    if data.individual_number is not None and not is_valid_individual_number(
        data.individual_number
    ):
        problems.append(FieldError("/individual_number", "check digit does not match"))
    if data.household_no is not None and not is_valid_serial(data.household_no):
        problems.append(FieldError("/household_no", "check digit does not match"))
    if data.relationship is not None and data.relationship not in RELATIONSHIPS:
        problems.append(FieldError("/relationship", "not a known 続柄"))
    if data.household_no is not None and data.relationship in (None, HEAD):
        problems.append(
            FieldError("/relationship", "required, and not 世帯主, when joining a household")
        )
    if data.household_no is None and data.relationship not in (None, HEAD):
        problems.append(FieldError("/relationship", "a new household is headed by this person"))
    if problems:
        raise errors.invalid(problems)

    resident_id = str(uuid.uuid4())
    household_no = data.household_no
    if household_no is not None:
        # Joining a household joins its rule-1 component: the lock comes
        # before the household's row lock (repository.lock_linkage).
        await repo.lock_linkage(uow)
        exists, _head = await repo.household_head(uow, household_no)
        if not exists:
            raise errors.invalid_field("/household_no", "no such household in this town")
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
        await repo.relink_component(uow, resident.id)
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
        return errors.conflict("another resident of this town has this individual number")
    if "juminhyo" in constraint:
        return errors.conflict("another resident of this town has this 住民票コード")
    return errors.conflict("the record conflicts with an existing one")


async def get(
    uow: TenantUnitOfWork, access: Access, resident_id: str
) -> tuple[Resident, FieldView]:
    """The current record and the fields this caller may see of it."""
    # Refuse before reading anything when not a single field could be shown
    # (at home; under an agreement what may be shown depends on the record's
    # state, and every refusal is the same 404 as a missing record anyway).
    if access.agreement is None:
        access.readable(support_measure=False)
    resident = await repo.get(uow, parse_id(resident_id))
    if resident is None:
        raise errors.not_found("no such resident")
    if access.agreement is not None:
        if await _protected_elsewhere(uow, access, [resident]):
            # Rule 1: never another town, whatever an agreement says — the
            # same 404 as a missing record (the reason is for the audit only).
            raise access.refusal(PROTECTED_ELSEWHERE)
        access.destinations.update(await move_outs.destinations(uow, [resident.id]))
    view = await view_of(uow, access, resident)
    if view.empty:
        raise access.refusal(next(iter(view.reasons.values()), "no field may be read"))
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
        raise errors.invalid_field(
            "/",
            "give exactly one of: atena_no; individual_number; phone; "
            "family_name_kana with birth_date",
        )
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
            raise access.refusal(views[0].reasons.get(name, "the purpose does not cover " + name))

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
            raise errors.invalid_field("/individual_number", "check digit does not match")
        return await repo.find_by_individual_number(uow, query.individual_number)
    if query.phone is not None:
        return await repo.find_by_phone(uow, query.phone)
    if query.family_name_kana is None or query.birth_date is None:
        raise errors.invalid_field("/", "family_name_kana and birth_date go together")
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
        raise errors.not_found("no such resident")
    entries = await repo.history(uow, rid)
    # Rule 1 over time (views_of): a snapshot filed under a household that
    # now holds a protected person shows where that person lives, so a record
    # ever filed under one is shown as a linked record, history included.
    view = await view_of(uow, access, current)
    if view.empty:
        raise access.refusal(next(iter(view.reasons.values()), "no field may be read"))
    # N4: the instant an entry was recorded is the same in both towns of a
    # one-stop move; for a protected or linked record, anyone but the
    # exception gets the day only (the exception: see a protected record's
    # household number).
    coarse = (
        current.support_measure or bool(await repo.linked_residents(uow, [current]))
    ) and "household_no" not in access.field_view(True).allowed
    for entry in entries:
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
        raise errors.not_found("no such household")
    exists, head, linked = await repo.household_protected(uow, household_no)
    if not exists:
        raise errors.not_found("no such household")
    # Every household of a linked component (F1: the one a protected person
    # split off from; F2: one split off from theirs, and its newcomers).
    may_see_protected = "household_no" in access.field_view(True).allowed
    if linked and not may_see_protected:
        raise errors.not_found("no such household")
    members = await repo.household_members(uow, household_no)
    views = await views_of(uow, access, members)
    shown = [(m, views[m.id]) for m in members if not views[m.id].empty]
    fields: set[str] = set()
    for _m, view in shown:
        fields |= view.allowed & MEMBER_FIELDS
    _touched(access, [m.id for m, _v in shown], fields, rows=len(shown))
    return head, shown


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
        await repo.lock_linkage(uow)
    current = await repo.get(uow, rid, lock=True)
    if current is None:
        raise errors.not_found("no such resident")
    if expected_version is not None and expected_version != current.version:
        raise errors.precondition_failed("the record changed since it was read; reload it")
    if current.state != "active":
        raise errors.conflict(f"the resident is no longer registered (state {current.state})")
    if data.move_date < current.birth_date:
        raise errors.invalid_field("/move_date", "must not be before the birth date")
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
            raise errors.conflict("the head of a household cannot split from it")
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
    await repo.lock_linkage(uow)  # before the record's row lock (repository.lock_linkage)
    current = await repo.get(uow, rid, lock=True)
    if current is None:
        raise errors.not_found("no such resident")
    if expected_version is not None and expected_version != current.version:
        raise errors.precondition_failed("the record changed since it was read; reload it")
    updated = replace(current, support_measure=active, version=current.version + 1)
    await repo.update(uow, updated)
    if not active:
        # Lifting also forgets a link carried from another town (flows.py):
        # 市民課 decides for its own register.
        await repo.lift_carried(uow, current.id)
    # Everyone in the component is linked exactly while someone in it is a seed.
    await repo.relink_component(uow, current.id)
    # Departments must learn of 支援措置 to stop disclosing; the flag itself is
    # shown with every record, so the event tells no more than a read would.
    await events.emit(
        uow, events.CHANGED, current.id, ["support_measure"], atena_no=current.atena_no
    )
    view = await view_of(uow, access, updated)
    _touched(access, [current.id], {"support_measure", *view.allowed}, rows=1)
    return updated, view


# The fields of a move that each event changes; any other one given is refused
# (a move states what changes: a stated change that is not made is as wrong as
# an unstated one that is).
_NAME_FIELDS = ("family_name", "given_name", "family_name_kana", "given_name_kana")
_EVENT_FIELDS: dict[str, frozenset[ChangeEvent]] = {
    "address": frozenset({ChangeEvent.MOVE_WITHIN_TOWN}),
    "postal_code": frozenset({ChangeEvent.MOVE_WITHIN_TOWN}),
    **dict.fromkeys((*_NAME_FIELDS, "former_surname"), frozenset({ChangeEvent.NAME_CHANGE})),
    "forward_address": frozenset({ChangeEvent.MOVE_OUT_DOMESTIC, ChangeEvent.MOVE_OUT_ABROAD}),
    "previous_head_relationship": frozenset({ChangeEvent.HEAD_OF_HOUSEHOLD_CHANGE}),
}


# Optional record fields a move may clear with null (omitted: UNSET, kept).
_CLEARABLE = frozenset({"postal_code", "former_surname", "forward_address"})


def _given(data: MoveCreate, name: str) -> bool:
    value = getattr(data, name)
    if value is msgspec.UNSET:
        return False
    return value is not None or name in _CLEARABLE


def _event_changes(data: MoveCreate, problems: list[FieldError]) -> dict[str, Any]:
    """Validate the fields an event needs and return the record changes they make.

    Only what the move states changes: an optional field it omits keeps its
    value (``null`` clears it), so a 転居 without ``postal_code`` keeps the
    stored one.
    """
    event = data.event
    for name, events_of in _EVENT_FIELDS.items():
        if event not in events_of and _given(data, name):
            problems.append(FieldError(f"/{name}", f"not changed by {event.value}"))
    changes: dict[str, Any] = {}
    if event is ChangeEvent.MOVE_WITHIN_TOWN:
        if data.address is None:
            problems.append(FieldError("/address", "required for move_within_town"))
        changes["address"] = data.address
        if data.postal_code is not msgspec.UNSET:
            changes["postal_code"] = data.postal_code
    elif event is ChangeEvent.NAME_CHANGE:
        for name in _NAME_FIELDS:
            value = getattr(data, name)
            if name.endswith("_kana"):
                value = _check_kana(problems, f"/{name}", value)
            if value is not None:
                changes[name] = value
        if not changes:
            problems.append(FieldError("/family_name", "name_change needs at least one name"))
        if data.former_surname is not msgspec.UNSET:
            changes["former_surname"] = data.former_surname
    elif event is ChangeEvent.HEAD_OF_HOUSEHOLD_CHANGE:
        rel = data.previous_head_relationship
        if rel is None or rel not in RELATIONSHIPS or rel == HEAD:
            problems.append(
                FieldError("/previous_head_relationship", "the former head's new 続柄 is required")
            )
    elif event in (ChangeEvent.MOVE_OUT_DOMESTIC, ChangeEvent.MOVE_OUT_ABROAD) and (
        data.forward_address is not msgspec.UNSET
    ):
        changes["forward_address"] = data.forward_address
    return changes


def _check_name_changes(current: Resident, changes: dict[str, Any]) -> None:
    """A name_change whose every given name is the current one changes nothing: 422."""
    given = [name for name in _NAME_FIELDS if name in changes]
    if given and all(changes[name] == getattr(current, name) for name in given):
        raise errors.invalid(
            [FieldError(f"/{name}", "is the current name: nothing would change") for name in given]
        )


async def _make_head(
    uow: TenantUnitOfWork, current: Resident, data: MoveCreate, today: date
) -> None:
    if current.relationship == HEAD:
        raise errors.conflict("the resident already heads the household")
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
    await repo.relink_component(uow, resident.id)
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
    await repo.carry_protection(uow, resident.id)
    await repo.relink_component(uow, resident.id)


async def confirm_move_out(
    uow: TenantUnitOfWork, before: Resident, after: Resident, notified_on: date
) -> None:
    """Record the actual 転出 date of a planned move-out (転入通知 from the new town)."""
    today = today_jst()
    await _save(uow, after, CONFIRMED_REASON, after.removed_on or today, notified_on, today)
