"""Request and response bodies of the 介護保険 API (msgspec): bodies refuse unknown
fields, free text is ``validation.Text`` (no control or format characters)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from shared_gov.validation import Text

InsuredNumber = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{10}\Z")]
Uuid = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
    ),
]
TownCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}\Z")]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=400), Text]
Answer = Annotated[str, msgspec.Meta(min_length=1, max_length=200), Text]
FacilityName = Annotated[str, msgspec.Meta(min_length=1, max_length=120), Text]
FacilityAddress = Annotated[str, msgspec.Meta(min_length=1, max_length=200), Text]
QuestionCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z_]{1,40}\Z")]
FacilityKindName = Literal[
    "tokuyo", "roken", "iryoin", "yuryo", "keihi", "yogo", "chiiki", "group_home"
]
CorrectableKind = Literal["loss", "tokurei_keep", "gain", "tokurei_incoming", "tokurei_ends"]


class InsuredSearch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Exactly one of the two (personal values travel in a body, never a URL)."""

    insured_number: InsuredNumber | None = None
    resident_id: Uuid | None = None


class PeriodOut(msgspec.Struct):
    insurer: str
    gained: date
    gain_reason: str
    lost: date | None
    loss_reason: str | None
    category: str
    facility_town: str | None


class TokureiOut(msgspec.Struct):
    insurer_town: str
    facility_town: str
    facility_id: str | None
    facility_name: str
    since: date
    insurer_number: str | None


class CardOut(msgspec.Struct):
    issued_on: date | None
    returned_on: date | None


class InsuredOut(msgspec.Struct, omit_defaults=True):
    id: str
    resident_id: str
    insurer_town: str
    version: int
    insured_number: str | None = None
    category: str | None = None
    status: str | None = None
    periods: list[PeriodOut] | None = None
    tokurei: TokureiOut | None = None
    card: CardOut | None = None
    notes: str | None = None
    withheld: list[str] = msgspec.field(default_factory=list)
    withheld_reasons: dict[str, str] = msgspec.field(default_factory=dict)


class InsuredList(msgspec.Struct):
    insured: list[InsuredOut]


class QuestionOut(msgspec.Struct):
    code: str
    text: str


class ProposalOut(msgspec.Struct):
    date: date
    reason: str
    legal_basis: str
    summary: str
    category: str
    insurer_town: str | None
    fiscal_year: int
    premium_before: int
    premium_after: int
    questions: list[QuestionOut]
    notes: list[str]


class FacilityRefOut(msgspec.Struct):
    facility_id: str | None
    name: str
    town: str
    covered: bool


class CorrectionOut(msgspec.Struct):
    by: str
    reason: str
    date: date | None
    kind: str | None
    facility: FacilityRefOut | None
    insurer_town: str | None
    premium_after: int | None


class NoticeOut(msgspec.Struct):
    """The insurer's 住所地特例 notice this town received for the person."""

    insurer_town: str
    insurer_number: str


class DeterminationOut(msgspec.Struct, omit_defaults=True):
    id: str
    resident_id: str
    kind: str
    kind_ja: str
    status: str
    proposed_on: date
    deadline: date
    overdue: bool
    version: int
    supersedes: str | None = None
    superseded_by: str | None = None
    corrected_by: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    proposal: ProposalOut | None = None
    facility: FacilityRefOut | None = None
    correction: CorrectionOut | None = None
    answers: dict[str, str] | None = None
    notice: NoticeOut | None = None
    withheld: list[str] = msgspec.field(default_factory=list)
    withheld_reasons: dict[str, str] = msgspec.field(default_factory=dict)


class DeterminationList(msgspec.Struct):
    determinations: list[DeterminationOut]
    next: str | None
    """``after`` for the next page (None: this was the last)."""


class Confirm(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Staff's answers to the determination's questions (by question code)."""

    answers: dict[QuestionCode, Answer] = msgspec.field(default_factory=dict)


class FacilityChoice(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A facility of a town of the deployment (``facility_id``) or, for a town that
    is not one, its name and town code (handled on this town's side alone)."""

    facility_id: Uuid | None = None
    name: FacilityName | None = None
    town: TownCode | None = None


class Correct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Reason
    date: date | None = None
    kind: CorrectableKind | None = None
    facility: FacilityChoice | None = None
    insurer_town: TownCode | None = None


class Reject(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    reason: Reason


class FacilityIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: FacilityName
    address: FacilityAddress
    kind: FacilityKindName
    places: Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class FacilityOut(msgspec.Struct):
    id: str
    town: str
    name: str
    address: str
    kind: str
    kind_ja: str
    places: int
    covered: bool
    covered_reason: str
    version: int


class FacilityList(msgspec.Struct):
    facilities: list[FacilityOut]


class ImportResult(msgspec.Struct):
    created: int
    skipped: int
    """Rows whose address the town already has a facility at."""


class PremiumPerson(msgspec.Struct):
    insured_id: str
    resident_id: str
    months: list[str]
    """``YYYY-MM`` of each month charged."""
    count: int


class PremiumMonths(msgspec.Struct):
    fiscal_year: int
    people: list[PremiumPerson]
    total: int
    next: str | None = None


def jsonable(value: Any) -> Any:
    """msgspec's builtins of ``value`` (for the tests' and reports' comparisons)."""
    return msgspec.to_builtins(value)
