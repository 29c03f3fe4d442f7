"""Building a determination's proposal: what confirming it does to the insured
person's periods (:func:`apply`, also used by the confirmation itself), the premium
months before and after, the legal basis, and the questions only staff can answer.
Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from shared_gov.domains.kaigo.models import InsuredPerson, Proposal, Question
from shared_gov.domains.kaigo.rules import Category, Period, fiscal_year, premium_months_of
from shared_gov.domains.kaigo.vocabulary import LEGAL_BASIS, Kind

# --- applying a determination to the insured person's periods --------------------------


def apply(
    town: str,
    periods: Sequence[Period],
    kind: Kind,
    day: date,
    reason: str,
    *,
    category: Category = Category.FIRST,
    facility_town: str | None = None,
) -> list[Period]:
    """The periods after a determination of ``kind`` on ``day`` is confirmed."""
    out = list(periods)
    open_index = next((i for i in range(len(out) - 1, -1, -1) if out[i].lost is None), None)
    if kind in (Kind.GAIN, Kind.TOKUREI_ENDS, Kind.CATEGORY_CHANGE):
        if open_index is not None:
            current = out[open_index]
            if current.category is category and kind is not Kind.CATEGORY_CHANGE:
                return out  # already insured so: nothing to change
            out[open_index] = replace(current, lost=day, loss_reason="category_change")
        out.append(Period(town, day, reason, category=category))
    elif kind is Kind.LOSS:
        if open_index is not None:
            out[open_index] = replace(out[open_index], lost=day, loss_reason=reason)
    elif kind is Kind.TOKUREI_KEEP and open_index is not None:
        out[open_index] = replace(out[open_index], facility_town=facility_town)
    return out


def premium(town: str, periods: Sequence[Period], year: int) -> int:
    return len(premium_months_of(periods, year, town))


def proposal(
    town: str,
    insured: InsuredPerson | None,
    kind: Kind,
    day: date,
    reason: str,
    summary: str,
    *,
    basis: str | None = None,
    category: Category = Category.FIRST,
    insurer: str | None = None,
    questions: Sequence[Question] = (),
    notes: Sequence[str] = (),
) -> Proposal:
    before = list(insured.periods) if insured is not None else []
    after = apply(town, before, kind, day, reason, category=category)
    if kind is Kind.TOKUREI_INCOMING:
        after = before  # not enrolled here: this town charges nothing for it
    year = fiscal_year(day)
    return Proposal(
        date=day,
        reason=reason,
        legal_basis=basis or LEGAL_BASIS.get(reason, LEGAL_BASIS["premium"]),
        summary=summary,
        category=category,
        insurer_town=insurer if insurer is not None else town,
        fiscal_year=year,
        premium_before=premium(town, before, year),
        premium_after=premium(town, after, year),
        questions=list(questions),
        notes=list(notes),
    )


# --- the questions only staff can answer -------------------------------------------------

Q_ACTUAL_DATE = Question(
    "actual_move_out_date",
    "実際の転出日は転入先市町村の転入通知で確認済みか（予定日のままなら確認後に確定）",
)
Q_COVERED = Question(
    "covered_facility", "転出先は住所地特例対象施設ではないか（そうなら訂正: 住所地特例）"
)
Q_CERTIFICATE = Question(
    "certificate", "要介護認定を受けていた場合、受給資格証明書を14日以内に提出したか"
)
Q_CARD_RETURN = Question("card_returned", "被保険者証は返還されたか")
Q_TOKUREI_FORM = Question(
    "tokurei_notification", "住所地特例適用届は提出されたか（入所日は転出日と同じか）"
)
Q_INSURER = Question(
    "insurer", "保険者はどこか（最初の施設入所前に住んでいた市町村: 住所地特例適用届で確認）"
)
Q_INCOME = Question(
    "income", "前住所地の所得情報が届くまで基準段階で仮賦課（届いたら保険料段階を確定）"
)
Q_PAPER_NOTICE = Question(
    "paper_notice",
    "支援措置の対象者（または同一世帯）: 施設所在市町村への連絡は自動で行わない。紙で連絡したか",
)
