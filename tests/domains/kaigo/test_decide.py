"""What each resident event proposes (pure: no database), rule by rule, including the
cases the register cannot produce in one town (a death after a planned move-out) and
the 住所地特例 decisions on both sides."""

from __future__ import annotations

import uuid
from datetime import date

from shared_gov.domains.kaigo.decide import Happening, determinations_for, reaching_65
from shared_gov.domains.kaigo.models import Determination, FacilityRef, InsuredPerson, Tokurei
from shared_gov.domains.kaigo.proposals import apply
from shared_gov.domains.kaigo.rules import Category, Period
from shared_gov.domains.kaigo.vocabulary import Kind

KAGA, KOMATSU, NOMI = "172065", "172031", "172111"
D = date
TOKUYO = FacilityRef("f-1", "特養こまつ", KOMATSU, True)
CHIIKI = FacilityRef("f-2", "地域密着こまつ", KOMATSU, False)


def _insured(**kw: object) -> InsuredPerson:
    base: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "resident_id": str(uuid.uuid4()),
        "status": "insured",
        "category": Category.FIRST,
        "insurer_town": KAGA,
        "insured_number": "0000000019",
        "periods": [Period(KAGA, D(2015, 4, 1), "move_in")],
    }
    base.update(kw)
    return InsuredPerson(**base)  # type: ignore[arg-type]


def _what(reason: str, day: date, **kw: object) -> Happening:
    base: dict[str, object] = {
        "reason": reason,
        "day": day,
        "event_day": D(2026, 11, 10),
        "birth_date": D(1950, 5, 5),
    }
    base.update(kw)
    return Happening(**base)  # type: ignore[arg-type]


def _none(_key: str | None) -> FacilityRef | None:
    return None


def _decide(
    what: Happening,
    insured: InsuredPerson | None = None,
    opened: list[Determination] | None = None,
    here: FacilityRef | None = None,
    anywhere: FacilityRef | None = None,
    notice: str | None = None,
    town: str = KAGA,
) -> list[tuple[Kind, date, list[str]]]:
    drafts = determinations_for(
        town,
        what,
        insured,
        opened or [],
        facility_here=lambda _k: here,
        facility_anywhere=lambda _k: anywhere,
        notice_insurer=notice,
    )
    return [(d.kind, d.proposal.date, d.supersedes) for d in drafts]


def _open(kind: str, day: date) -> Determination:
    from shared_gov.domains.kaigo.models import Proposal

    return Determination(
        id=str(uuid.uuid4()),
        resident_id="r",
        kind=kind,
        status="open",
        source_key="event:x",
        proposed_on=day,
        deadline=day,
        proposal=Proposal(day, "move_out_domestic", "", ""),
    )


def test_a_death_after_a_planned_move_supersedes_its_open_loss() -> None:
    planned = _open("loss", D(2026, 11, 30))
    result = _decide(_what("death", D(2026, 11, 20)), _insured(), [planned])
    assert result == [(Kind.LOSS, D(2026, 11, 21), [planned.id])]


def test_abroad_on_the_last_day_loses_the_next_day() -> None:
    assert _decide(_what("move_out_abroad", D(2026, 11, 30)), _insured()) == [
        (Kind.LOSS, D(2026, 12, 1), [])
    ]


def test_never_insured_here_leaves_without_a_determination() -> None:
    assert _decide(_what("move_out_abroad", D(2026, 11, 30))) == []


def test_moving_into_a_covered_facility_of_another_town_keeps_the_insurer() -> None:
    result = determinations_for(
        KAGA,
        _what("move_out_domestic", D(2026, 11, 3), to_town=KOMATSU, forward_key="k"),
        _insured(),
        [],
        facility_here=_none,
        facility_anywhere=lambda _k: TOKUYO,
    )
    (draft,) = result
    assert draft.kind is Kind.TOKUREI_KEEP
    assert draft.facility == TOKUYO
    assert draft.proposal.premium_before == draft.proposal.premium_after == 12
    assert "第13条" in draft.proposal.legal_basis


def test_a_facility_in_another_town_than_the_destination_is_no_match() -> None:
    result = _decide(
        _what("move_out_domestic", D(2026, 11, 3), to_town=NOMI),
        _insured(),
        anywhere=None,  # the directory asked for Nomi's facilities: none at that address
    )
    assert [k for k, _, _ in result] == [Kind.LOSS]


def test_a_non_covered_facility_gives_the_ordinary_loss_and_gain() -> None:
    loss = determinations_for(
        KAGA,
        _what("move_out_domestic", D(2026, 11, 3), to_town=KOMATSU),
        _insured(),
        [],
        facility_here=_none,
        facility_anywhere=lambda _k: CHIIKI,
    )
    assert [d.kind for d in loss] == [Kind.LOSS]
    assert any("対象外" in n for n in loss[0].proposal.notes)
    gain = determinations_for(
        KOMATSU,
        _what("move_in_domestic", D(2026, 11, 3), from_town=KAGA),
        None,
        [],
        facility_here=lambda _k: CHIIKI,
        facility_anywhere=_none,
    )
    assert [(d.kind, d.proposal.date) for d in gain] == [(Kind.GAIN, D(2026, 11, 3))]


def test_the_facility_town_does_not_enroll_a_tokurei_person() -> None:
    (draft,) = determinations_for(
        KOMATSU,
        _what("move_in_domestic", D(2026, 11, 3), from_town=KAGA, transfer_id="t"),
        None,
        [],
        facility_here=lambda _k: TOKUYO,
        facility_anywhere=_none,
    )
    assert draft.kind is Kind.TOKUREI_INCOMING
    assert draft.proposal.insurer_town == KAGA
    assert draft.proposal.premium_after == 0
    assert draft.transfer_id == "t"
    assert "insurer_notice" in {q.code for q in draft.proposal.questions}
    # Once the insurer's notice is here, nothing is left to wait for.
    (noticed,) = determinations_for(
        KOMATSU,
        _what("move_in_domestic", D(2026, 11, 3), from_town=KAGA, transfer_id="t"),
        None,
        [],
        facility_here=lambda _k: TOKUYO,
        facility_anywhere=_none,
        notice_insurer=KAGA,
    )
    assert noticed.proposal.questions == []


def test_a_protected_person_crosses_nothing_automatically() -> None:
    (out,) = determinations_for(
        KAGA,
        _what(
            "move_out_domestic", D(2026, 11, 3), to_town=KOMATSU, protected=True, transfer_id="t"
        ),
        _insured(),
        [],
        facility_here=_none,
        facility_anywhere=lambda _k: TOKUYO,
    )
    assert out.kind is Kind.TOKUREI_KEEP
    assert out.transfer_id is None
    assert "paper_notice" in {q.code for q in out.proposal.questions}
    (incoming,) = determinations_for(
        KOMATSU,
        _what("move_in_domestic", D(2026, 11, 3), from_town=KAGA, protected=True, transfer_id="t"),
        None,
        [],
        facility_here=lambda _k: TOKUYO,
        facility_anywhere=_none,
    )
    assert incoming.proposal.insurer_town == ""
    assert incoming.transfer_id is None
    assert "insurer" in {q.code for q in incoming.proposal.questions}


def test_a_tokurei_chain_keeps_the_first_insurer() -> None:
    """Already 住所地特例 of Kaga (in Komatsu's facility, a resident of Komatsu):
    Komatsu's record of them ends when they move on, Kaga stays insurer."""
    person = _insured(status="tokurei_elsewhere", insurer_town=KAGA, insured_number=None)
    (draft,) = _decide(
        _what("move_out_domestic", D(2026, 11, 3), to_town=NOMI), person, town=KOMATSU
    )
    assert draft[0] is Kind.LOSS
    kaga = _insured(
        tokurei=Tokurei(KAGA, KOMATSU, "f-1", "特養こまつ", D(2025, 4, 1)),
    )
    nomi_home = FacilityRef("f-9", "老健のみ", NOMI, True)
    (chain,) = determinations_for(
        KAGA,
        _what("move_out_confirmed", D(2026, 11, 3), to_town=NOMI),
        kaga,
        [],
        facility_here=_none,
        facility_anywhere=lambda _k: nomi_home,
    )
    assert chain.kind is Kind.TOKUREI_KEEP
    assert chain.proposal.reason == "tokurei_chain"


def test_leaving_the_facility_for_an_ordinary_address_enrolls_here() -> None:
    person = _insured(
        status="tokurei_elsewhere", insurer_town=KAGA, insured_number=None, periods=[]
    )
    (draft,) = _decide(_what("move_within_town", D(2026, 11, 3)), person, here=None, town=KOMATSU)
    assert draft[:2] == (Kind.TOKUREI_ENDS, D(2026, 11, 3))


def test_a_move_in_under_65_waits_for_the_job() -> None:
    assert _decide(_what("move_in_domestic", D(2026, 10, 1), birth_date=D(1970, 1, 1))) == []


def test_registered_younger_and_65_by_the_event_gains_from_the_65_day() -> None:
    result = _decide(
        _what("move_in_domestic", D(2000, 4, 1), birth_date=D(1959, 2, 28)),
    )
    assert result == [(Kind.GAIN, D(2024, 2, 27), [])]


def test_reaching_65_as_second_category_changes_category() -> None:
    second = _insured(
        category=Category.SECOND,
        periods=[Period(KAGA, D(2020, 1, 1), "medical_insurance", category=Category.SECOND)],
    )
    (draft,) = reaching_65(KAGA, D(2026, 7, 14), second, [])
    assert draft.kind is Kind.CATEGORY_CHANGE
    assert (draft.proposal.premium_before, draft.proposal.premium_after) == (0, 9)
    assert reaching_65(KAGA, D(2026, 7, 14), _insured(), []) == []
    (gain,) = reaching_65(KAGA, D(2026, 7, 14), None, [])
    assert gain.kind is Kind.GAIN


def test_apply_loss_then_gain_is_the_period_list() -> None:
    periods = apply(KAGA, [], Kind.GAIN, D(2026, 4, 1), "move_in")
    periods = apply(KAGA, periods, Kind.LOSS, D(2026, 11, 3), "move_out_domestic")
    assert periods == [Period(KAGA, D(2026, 4, 1), "move_in", D(2026, 11, 3), "move_out_domestic")]
