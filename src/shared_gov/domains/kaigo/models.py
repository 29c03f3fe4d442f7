"""The 介護保険 records as the services and the repository pass them around (plaintext).

Dates inside a determination's proposal and an insured person's periods are
ISO strings in their JSON form (what the envelope holds); these classes give
them their types.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from shared_gov.domains.kaigo.rules import Category, Period


@dataclass(slots=True)
class Tokurei:
    """住所地特例 of an insured person (介護保険法 第13条)."""

    insurer_town: str
    """The town that insures (the one of before the first facility)."""
    facility_town: str
    """Where the facility is (not a tenant: the facility is named in ``facility_name``)."""
    facility_id: str | None
    facility_name: str
    since: date
    insurer_number: str | None = None
    """The insurer's 被保険者番号 of the person (known to the facility's town from
    the insurer's notice)."""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "since": self.since.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tokurei:
        return cls(**{**data, "since": date.fromisoformat(data["since"])})


@dataclass(slots=True)
class Card:
    """被保険者証: issued on qualification, returned on loss."""

    issued_on: date | None = None
    returned_on: date | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "issued_on": self.issued_on.isoformat() if self.issued_on else None,
            "returned_on": self.returned_on.isoformat() if self.returned_on else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Card:
        return cls(
            date.fromisoformat(data["issued_on"]) if data.get("issued_on") else None,
            date.fromisoformat(data["returned_on"]) if data.get("returned_on") else None,
        )


def period_to_json(p: Period) -> dict[str, Any]:
    return {
        "insurer": p.insurer,
        "gained": p.gained.isoformat(),
        "gain_reason": p.gain_reason,
        "lost": p.lost.isoformat() if p.lost else None,
        "loss_reason": p.loss_reason,
        "category": p.category.value,
        "facility_town": p.facility_town,
    }


def period_from_json(data: dict[str, Any]) -> Period:
    return Period(
        insurer=data["insurer"],
        gained=date.fromisoformat(data["gained"]),
        gain_reason=data["gain_reason"],
        lost=date.fromisoformat(data["lost"]) if data.get("lost") else None,
        loss_reason=data.get("loss_reason"),
        category=Category(data.get("category", "1")),
        facility_town=data.get("facility_town"),
    )


@dataclass(slots=True)
class InsuredPerson:
    """被保険者: one per resident the town keeps a 介護保険 record of."""

    id: str
    resident_id: str
    status: str
    """insured (this town insures), lost, tokurei_elsewhere (lives here in a covered
    facility, insured by ``insurer_town``: not enrolled here)."""
    category: Category
    insurer_town: str
    insured_number: str | None
    """The town's own 被保険者番号; None for a 住所地特例者 of another town."""
    periods: list[Period] = field(default_factory=list)
    tokurei: Tokurei | None = None
    card: Card = field(default_factory=Card)
    notes: str | None = None
    version: int = 1

    @property
    def current(self) -> Period | None:
        """The open period (no loss date), if any."""
        return next((p for p in reversed(self.periods) if p.lost is None), None)


@dataclass(slots=True)
class Question:
    """What only staff can answer before confirming (e.g. 受給資格証明書 handed in?)."""

    code: str
    text: str


@dataclass(slots=True)
class Proposal:
    """What a determination proposes: the envelope ``proposal`` holds it as JSON."""

    date: date
    """The legal date: 取得日, 喪失日, or the day 住所地特例 starts or ends."""
    reason: str
    """The rule applied (``move_in``, ``reached_65``, ``death`` …, see LEGAL_BASIS)."""
    legal_basis: str
    summary: str
    """One sentence for staff, in Japanese."""
    category: Category = Category.FIRST
    insurer_town: str | None = None
    fiscal_year: int = 0
    premium_before: int = 0
    """第1号 months this town charges in ``fiscal_year`` before the change."""
    premium_after: int = 0
    questions: list[Question] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """E.g. what it supersedes and why."""

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["date"] = self.date.isoformat()
        out["category"] = self.category.value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Proposal:
        return cls(
            date=date.fromisoformat(data["date"]),
            reason=data["reason"],
            legal_basis=data["legal_basis"],
            summary=data["summary"],
            category=Category(data.get("category", "1")),
            insurer_town=data.get("insurer_town"),
            fiscal_year=int(data.get("fiscal_year", 0)),
            premium_before=int(data.get("premium_before", 0)),
            premium_after=int(data.get("premium_after", 0)),
            questions=[Question(**q) for q in data.get("questions", [])],
            notes=list(data.get("notes", [])),
        )


@dataclass(slots=True)
class FacilityRef:
    """The facility a determination names (an envelope: it is where the person lives)."""

    facility_id: str | None
    name: str
    town: str
    covered: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FacilityRef:
        return cls(**data)


@dataclass(slots=True)
class Correction:
    """What a corrector changed, and why (the confirmer is someone else)."""

    by: str
    reason: str
    date: date | None = None
    kind: str | None = None
    facility: FacilityRef | None = None
    insurer_town: str | None = None
    premium_after: int | None = None
    """The months charged after the corrected change (the proposal's fiscal year)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "reason": self.reason,
            "date": self.date.isoformat() if self.date else None,
            "kind": self.kind,
            "facility": self.facility.to_json() if self.facility else None,
            "insurer_town": self.insurer_town,
            "premium_after": self.premium_after,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Correction:
        return cls(
            by=data["by"],
            reason=data["reason"],
            date=date.fromisoformat(data["date"]) if data.get("date") else None,
            kind=data.get("kind"),
            facility=FacilityRef.from_json(data["facility"]) if data.get("facility") else None,
            insurer_town=data.get("insurer_town"),
            premium_after=data.get("premium_after"),
        )


@dataclass(slots=True)
class Determination:
    id: str
    resident_id: str
    kind: str
    status: str
    source_key: str
    proposed_on: date
    deadline: date
    proposal: Proposal
    facility: FacilityRef | None = None
    correction: Correction | None = None
    event_id: str | None = None
    event_at: datetime | None = None
    transfer_id: str | None = None
    supersedes: str | None = None
    superseded_by: str | None = None
    corrected_by: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    version: int = 1
    created_at: datetime | None = None
    answers: dict[str, str] = field(default_factory=dict)
    notify_town: str | None = None
    """The other town a confirmation notifies (住所地特例 in a facility there)."""

    @property
    def effective_kind(self) -> str:
        """The kind a correction settled on, else the proposed one."""
        return (self.correction.kind if self.correction and self.correction.kind else None) or (
            self.kind
        )

    @property
    def effective_date(self) -> date:
        return (
            self.correction.date if self.correction and self.correction.date else None
        ) or self.proposal.date

    @property
    def effective_facility(self) -> FacilityRef | None:
        if self.correction and self.correction.facility:
            return self.correction.facility
        return self.facility

    @property
    def effective_insurer(self) -> str | None:
        if self.correction and self.correction.insurer_town:
            return self.correction.insurer_town
        return self.proposal.insurer_town or None


@dataclass(slots=True)
class Facility:
    """A care facility of one town (non-personal)."""

    id: str
    town: str
    name: str
    address: str
    kind: str
    places: int
    covered: bool
    covered_reason: str
    version: int = 1
