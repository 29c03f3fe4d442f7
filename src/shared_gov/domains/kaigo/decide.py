"""From one resident event to the determinations it calls for: pure, no I/O.

The consumer (:mod:`.consumer`) turns each outbox event into a
:class:`Happening` — what the register's history entry says (異動事由, 異動日,
the record as it was then) — and hands it here with what the 介護保険 side
knows of the person (their insured record, the open determinations, the
facility at an address). :func:`determinations_for` answers with drafts;
:func:`.proposals.apply` is what confirming one does to the insured person's periods
(also used to show the premium months before and after).

Which rule applies to which event (articles in :mod:`.rules`):

==============================  ===============================================
転入 (moved_in), 職権記載         65 or over by the event's day: 資格取得 on the
                                 転入日 (or on the day 65 was reached, if later);
                                 into a covered facility from another town:
                                 住所地特例者 of that town, not enrolled here
国内転出 (planned)               資格喪失 on the 転出日 — or, when the new address
                                 is a covered facility of another town, no loss:
                                 住所地特例 (questions: the actual date, the 適用届)
転出確定 (the new town's         the same, on the actual date; supersedes the open
転入通知)                        determination of the planned date
国外転出, 職権消除               資格喪失 the next day
死亡                             資格喪失 the next day; supersedes an open
                                 determination of a planned move
転居                             住所地特例者 of another town leaving the facility
                                 for an ordinary address: enrolled here; an
                                 insured person: the card's address
氏名変更, 世帯変更               an insured person: card reissue / premium stage
65 reached (the daily job)       第1号 from that day (第2号 → 第1号: category change)
==============================  ===============================================

第2号 (40–64) are recorded when they apply for 要介護認定: only their medical
insurer knows who they are, so no event makes one (介護保険法 第9条第2号).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from shared_gov.domains.kaigo import proposals
from shared_gov.domains.kaigo.models import (
    Determination,
    FacilityRef,
    InsuredPerson,
    Proposal,
    Question,
)
from shared_gov.domains.kaigo.rules import (
    Category,
    Departure,
    lost_on_departure,
    reaches_65_on,
)
from shared_gov.domains.kaigo.vocabulary import KIND_JA, QUALIFYING, Kind

# The 異動事由 codes of the register's history (docs/events.md): the contract
# with the residents domain, which this domain reads but never imports.
MOVE_IN_REASONS = frozenset({"move_in_domestic", "move_in_from_abroad", "ex_officio_entry"})
MOVE_OUT_DOMESTIC = "move_out_domestic"
MOVE_OUT_ABROAD = "move_out_abroad"
EX_OFFICIO_REMOVAL = "ex_officio_removal"
DEATH = "death"
MOVE_OUT_CONFIRMED = "move_out_confirmed"
MOVE_WITHIN_TOWN = "move_within_town"
NAME_CHANGE = "name_change"
HOUSEHOLD_REASONS = frozenset({"household_split", "head_of_household_change"})

_DEPARTURES = {
    MOVE_OUT_DOMESTIC: Departure.DOMESTIC,
    MOVE_OUT_CONFIRMED: Departure.DOMESTIC,
    MOVE_OUT_ABROAD: Departure.ABROAD,
    EX_OFFICIO_REMOVAL: Departure.EX_OFFICIO,
    DEATH: Departure.DEATH,
}


# Facility names and towns appear in a determination's ``facility`` only, never in
# its summary or notes: the facility is where the person lives, and Cedar withholds
# that one field for a person under 支援措置 (rule 1).


@dataclass(frozen=True, slots=True)
class Happening:
    """One resident event, as the register's history entry tells it."""

    reason: str
    """The entry's 異動事由 code (``move_in_domestic`` …)."""
    day: date
    """The entry's 異動日 (a planned 転出 may be in the future)."""
    event_day: date
    """The day the event was written (JST): decides what was already true then."""
    birth_date: date
    address_key: str | None = None
    """The record's address (then), as facilities are matched."""
    forward_key: str | None = None
    """The 転出先 the person declared, as facilities are matched."""
    from_town: str | None = None
    to_town: str | None = None
    transfer_id: str | None = None
    protected: bool = False
    """Under 支援措置 or linked to someone who is: nothing crosses to another town
    automatically (docs/support-measures.md, rule 1)."""


@dataclass(slots=True)
class Draft:
    """A determination to write (the consumer gives it its id and key)."""

    kind: Kind
    proposal: Proposal
    facility: FacilityRef | None = None
    supersedes: list[str] = field(default_factory=list)
    transfer_id: str | None = None
    notify_town: str | None = None
    """The facility's town, told on confirmation (住所地特例 after a one-stop move)."""


FacilityAt = Callable[[str | None], FacilityRef | None]
"""A facility at an address key (of a given town, or of any town), or None."""


# --- the rules, event by event -----------------------------------------------------------


def _informed(insurer: str) -> Question:
    return Question("insurer_informed", f"保険者（{insurer}）に連絡したか")


def _open(open_determinations: Sequence[Determination], kinds: frozenset[Kind]) -> list[str]:
    return [d.id for d in open_determinations if d.status == "open" and Kind(d.kind) in kinds]


def determinations_for(
    town: str,
    what: Happening,
    insured: InsuredPerson | None,
    open_determinations: Sequence[Determination],
    *,
    facility_here: FacilityAt,
    facility_anywhere: FacilityAt,
    notice_insurer: str | None = None,
) -> list[Draft]:
    """The determinations one event calls for in town ``town`` (none, one or two)."""
    reason = what.reason
    if reason in MOVE_IN_REASONS:
        return _moved_in(town, what, insured, facility_here, notice_insurer)
    if reason in _DEPARTURES:
        return _departed(town, what, insured, open_determinations, facility_anywhere)
    if reason == MOVE_WITHIN_TOWN:
        return _moved_within(town, what, insured, facility_here)
    if reason == NAME_CHANGE or reason in HOUSEHOLD_REASONS:
        return _record_changed(town, what, insured)
    return []


def _known(insured: InsuredPerson | None) -> bool:
    return insured is not None and insured.status != "lost"


def _moved_in(
    town: str,
    what: Happening,
    insured: InsuredPerson | None,
    facility_here: FacilityAt,
    notice_insurer: str | None,
) -> list[Draft]:
    turns_65 = reaches_65_on(what.birth_date)
    gained = max(what.day, turns_65)
    if gained > what.event_day:
        return []  # under 65 when written: the daily job proposes it on the day
    if insured is not None and insured.status == "insured" and insured.current is not None:
        return []  # already insured here (a replay of an old registration, say)
    facility = facility_here(what.address_key)
    domestic = what.reason == "move_in_domestic"
    if facility is not None and facility.covered and domestic:
        insurer = None if what.protected else (notice_insurer or what.from_town)
        questions = [] if insurer is not None else [proposals.Q_INSURER]
        notes = ["入所先は住所地特例対象施設（施設は facility 欄）"]
        if insurer is not None and notice_insurer is None:
            questions.append(
                Question("insurer_notice", f"保険者（{insurer}）の住所地特例の確定待ち")
            )
        summary = (
            f"住所地特例対象施設への入所: 当市町村の被保険者としない（保険者: {insurer}）"
            if insurer
            else "住所地特例対象施設への入所: 当市町村の被保険者としない（保険者を確認）"
        )
        proposal = proposals.proposal(
            town,
            insured,
            Kind.TOKUREI_INCOMING,
            what.day,
            "tokurei_incoming",
            summary,
            insurer=insurer or "",
            questions=questions,
            notes=notes,
        )
        return [
            Draft(
                Kind.TOKUREI_INCOMING,
                proposal,
                facility=facility,
                transfer_id=None if what.protected else what.transfer_id,
            )
        ]
    by_age = gained > what.day
    reason = "reached_65" if by_age else "move_in"
    notes = []
    if facility is not None and not facility.covered:
        notes.append("入所先は地域密着型・グループホーム: 住所地特例の対象外（施設は facility 欄）")
    questions = [proposals.Q_CERTIFICATE, proposals.Q_INCOME] if domestic else [proposals.Q_INCOME]
    summary = (
        f"{gained.isoformat()} に65歳到達（転入後）: 第1号被保険者の資格取得"
        if by_age
        else f"{what.day.isoformat()} 転入: 第1号被保険者の資格取得"
    )
    proposal = proposals.proposal(
        town,
        insured,
        Kind.GAIN,
        gained,
        reason,
        summary,
        questions=questions,
        notes=notes,
    )
    return [Draft(Kind.GAIN, proposal, facility=facility)]


def _departed(
    town: str,
    what: Happening,
    insured: InsuredPerson | None,
    open_determinations: Sequence[Determination],
    facility_anywhere: FacilityAt,
) -> list[Draft]:
    opened_gain = _open(open_determinations, frozenset({Kind.GAIN, Kind.TOKUREI_ENDS}))
    if not _known(insured) and not opened_gain:
        return []  # never insured here: nothing to decide
    # The same fact decided again (a planned move and then the actual one, or a
    # death after a planned move) replaces the open determination of it.
    supersedes = _open(open_determinations, frozenset({Kind.LOSS, Kind.TOKUREI_KEEP}))
    departure = _DEPARTURES[what.reason]
    notes: list[str] = []
    if supersedes:
        notes.append(_superseding_note(what.reason))
    if insured is not None and insured.status == "tokurei_elsewhere":
        # A 住所地特例者 of another town leaves (or dies): this town's record of
        # them ends; their insurer decides the loss.
        proposal = proposals.proposal(
            town,
            insured,
            Kind.LOSS,
            lost_on_departure(departure, what.day),
            what.reason,
            f"住所地特例者（保険者: {insured.insurer_town}）の{_verb(what.reason)}: "
            "当市町村の記録を終了し、保険者に施設退所を連絡",
            insurer=insured.insurer_town,
            questions=[_informed(insured.insurer_town)],
            notes=notes,
        )
        return [Draft(Kind.LOSS, proposal, supersedes=supersedes)]
    transfer = what.transfer_id if what.reason == MOVE_OUT_CONFIRMED else None
    if departure is Departure.DOMESTIC:
        facility = facility_anywhere(what.forward_key)
        destination_ok = facility is not None and (
            what.to_town is None or facility.town == what.to_town
        )
        if facility is not None and destination_ok and facility.covered and facility.town != town:
            chain = (
                insured is not None
                and insured.tokurei is not None
                and insured.tokurei.facility_id != facility.facility_id
            )
            questions = [proposals.Q_TOKUREI_FORM]
            if what.reason != MOVE_OUT_CONFIRMED:
                questions.insert(0, proposals.Q_ACTUAL_DATE)
            if what.protected:
                questions.append(proposals.Q_PAPER_NOTICE)
            proposal = proposals.proposal(
                town,
                insured,
                Kind.TOKUREI_KEEP,
                what.day,
                "tokurei_chain" if chain else "tokurei_keep",
                "住所地特例対象施設へ入所: 資格を喪失しない（住所地特例、当市町村が保険者）",
                questions=questions,
                notes=notes,
            )
            return [
                Draft(
                    Kind.TOKUREI_KEEP,
                    proposal,
                    facility=facility,
                    supersedes=supersedes,
                    transfer_id=None if what.protected else transfer,
                    notify_town=None if what.protected or transfer is None else facility.town,
                )
            ]
        if facility is not None and not facility.covered:
            notes.append("転出先は地域密着型・グループホーム: 住所地特例の対象外")
    lost = lost_on_departure(departure, what.day)
    questions = [proposals.Q_CARD_RETURN]
    if what.reason == MOVE_OUT_DOMESTIC:
        questions = [proposals.Q_ACTUAL_DATE, proposals.Q_COVERED, proposals.Q_CARD_RETURN]
    elif what.reason == MOVE_OUT_CONFIRMED:
        notes.append("実際の転出日は転入先市町村の転入通知で確認済み")
    proposal = proposals.proposal(
        town,
        insured,
        Kind.LOSS,
        lost,
        what.reason,
        f"{what.day.isoformat()} {_verb(what.reason)}: 資格喪失日 {lost.isoformat()}",
        questions=questions,
        notes=notes,
    )
    return [Draft(Kind.LOSS, proposal, supersedes=supersedes, transfer_id=transfer)]


def _verb(reason: str) -> str:
    return {
        MOVE_OUT_DOMESTIC: "転出（予定）",
        MOVE_OUT_CONFIRMED: "転出（確定）",
        MOVE_OUT_ABROAD: "国外転出",
        EX_OFFICIO_REMOVAL: "職権消除",
        DEATH: "死亡",
    }.get(reason, reason)


def _superseding_note(reason: str) -> str:
    if reason == MOVE_OUT_CONFIRMED:
        return "転入通知で実際の転出日が届いたため、予定日による判定を置き換える"
    if reason == DEATH:
        return "転出予定の後に死亡: 転出予定による判定を置き換える"
    return "同じ事実について後の異動が届いたため、前の判定を置き換える"


def _moved_within(
    town: str, what: Happening, insured: InsuredPerson | None, facility_here: FacilityAt
) -> list[Draft]:
    if not _known(insured):
        return []
    if insured is None:  # pragma: no cover - _known says so (for the type checker)
        return []
    facility = facility_here(what.address_key)
    if insured.status == "tokurei_elsewhere":
        if facility is not None and facility.covered:
            return []  # from one covered facility to another: 住所地特例 goes on
        proposal = proposals.proposal(
            town,
            insured,
            Kind.TOKUREI_ENDS,
            what.day,
            "tokurei_ends",
            f"{what.day.isoformat()} 施設を退所し当市町村の一般住所へ: 住所地特例の終了、"
            "当市町村で資格取得",
            questions=[
                _informed(insured.insurer_town),
                proposals.Q_INCOME,
            ],
        )
        return [Draft(Kind.TOKUREI_ENDS, proposal, facility=facility)]
    proposal = proposals.proposal(
        town,
        insured,
        Kind.RECORD_UPDATE,
        what.day,
        "record_update",
        "転居: 資格の変動なし（被保険者証の住所を変更）",
        questions=[Question("card_reissued", "被保険者証を再交付したか")],
    )
    return [Draft(Kind.RECORD_UPDATE, proposal)]


def _record_changed(town: str, what: Happening, insured: InsuredPerson | None) -> list[Draft]:
    if insured is None or insured.status != "insured":
        return []
    if what.reason == NAME_CHANGE:
        summary = "氏名変更: 資格の変動なし（被保険者証の再交付）"
        questions = [Question("card_reissued", "被保険者証を再交付したか")]
    else:
        summary = "世帯の変更: 資格の変動なし（保険料段階を世帯の課税状況で見直す）"
        questions = [Question("premium_stage", "保険料段階を見直したか")]
    proposal = proposals.proposal(
        town, insured, Kind.RECORD_UPDATE, what.day, "record_update", summary, questions=questions
    )
    return [Draft(Kind.RECORD_UPDATE, proposal)]


# --- the daily job ------------------------------------------------------------------------


def reaching_65(
    town: str,
    day: date,
    insured: InsuredPerson | None,
    open_determinations: Sequence[Determination],
) -> list[Draft]:
    """A resident who reaches 65 on ``day`` (the watch found them): 第1号 from that
    day (第10条第3号).

    A recorded 第2号 changes category (第9条第1号); a person already 第1号 here,
    a 住所地特例者 of another town, or one with an open gain needs nothing.
    """
    if _open(open_determinations, frozenset({Kind.GAIN, Kind.CATEGORY_CHANGE})):
        return []
    if insured is not None and insured.status == "tokurei_elsewhere":
        return []
    current = insured.current if insured is not None else None
    if current is not None and current.category is Category.FIRST:
        return []
    if current is not None:
        proposal = proposals.proposal(
            town,
            insured,
            Kind.CATEGORY_CHANGE,
            day,
            "category_change",
            f"{day.isoformat()} 65歳到達: 第2号から第1号被保険者へ",
            questions=[Question("card_reissued", "第1号被保険者証を交付したか")],
        )
        return [Draft(Kind.CATEGORY_CHANGE, proposal)]
    proposal = proposals.proposal(
        town,
        insured,
        Kind.GAIN,
        day,
        "reached_65",
        f"{day.isoformat()} 65歳到達: 第1号被保険者の資格取得",
        questions=[Question("card_issued", "第1号被保険者証を交付したか")],
    )
    return [Draft(Kind.GAIN, proposal)]


def label(kind: Kind) -> str:
    return KIND_JA[kind]


__all__ = [
    "QUALIFYING",
    "Draft",
    "FacilityAt",
    "Happening",
    "determinations_for",
    "label",
    "reaching_65",
]
