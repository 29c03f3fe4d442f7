"""Request and response bodies of the resident API (msgspec structs).

Structural checks (types, lengths, formats) live here; rules that need the
calendar, check digits or the database live in the service.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from shared_gov.domains.residents.models import ChangeEvent, EntryEvent
from shared_gov.validation import Text

# Free text carries `Text`: no control, format or line-separator characters
# (validation.TEXT_PATTERN says which and why).
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=50), Text]
Kana = Annotated[str, msgspec.Meta(min_length=1, max_length=100), Text]
Address = Annotated[str, msgspec.Meta(min_length=1, max_length=200), Text]
# \Z, not $: msgspec searches with Python's re, where $ also matches before a
# final newline ("12345678901\n" would pass and dodge uniqueness).
Digits7 = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{7}\Z")]
Digits8 = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{8}\Z")]
Digits11 = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{11}\Z")]
Digits12 = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{12}\Z")]
Phone = Annotated[str, msgspec.Meta(pattern=r"^[0-9+\-() ]{6,20}\Z")]
Relationship = Annotated[str, msgspec.Meta(min_length=1, max_length=20), Text]
Sex = Literal["male", "female"]
ResidentType = Literal["japanese", "foreign"]


class ResidentCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A person entering the register (記載) through an entry event."""

    event: EntryEvent
    family_name: Name
    given_name: Name
    family_name_kana: Kana
    given_name_kana: Kana
    birth_date: date
    sex: Sex
    address: Address
    move_date: date
    """異動日: the day of the birth or move-in."""
    notified_on: date
    """届出日."""
    postal_code: Digits7 | None = None
    individual_number: Digits12 | None = None
    juminhyo_code: Digits11 | None = None
    household_no: Digits8 | None = None
    """Join this household; omit to create a new household headed by this person."""
    relationship: Relationship | None = None
    resident_since: date | None = None
    """住民となった年月日; defaults to ``move_date``."""
    resident_type: ResidentType = "japanese"
    phone: Phone | None = None
    former_surname: Name | None = None
    domicile: Address | None = None
    previous_address: Address | None = None


class OneStopMoveIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A 転入届 citing the old town's record, when that town is a tenant here.

    Name, birth date, sex, 個人番号, 住民票コード, 本籍 … come from the old town's
    record under its standing move agreement; the body carries only what the
    resident declares at the new town's counter.
    """

    from_tenant: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}\Z")]
    """The old town's local government code."""
    resident_id: Annotated[str, msgspec.Meta(max_length=64), Text] | None = None
    """The resident's id in the old town; or give ``juminhyo_code``."""
    juminhyo_code: Digits11 | None = None
    address: Address
    postal_code: Digits7 | None = None
    move_date: date
    """異動日: the day the person moved in (also the actual 転出 date in the old town)."""
    notified_on: date
    household_no: Digits8 | None = None
    relationship: Relationship | None = None
    phone: Phone | None = None


class MoveCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A change (修正) or removal (消除) event for a registered person.

    A move states what changes: a field it omits keeps its value, ``null``
    clears an optional one (``postal_code``, ``former_surname``,
    ``forward_address``), and a field the event does not change is refused.
    """

    event: ChangeEvent
    move_date: date
    notified_on: date
    address: Address | None = None
    postal_code: Digits7 | msgspec.UnsetType | None = msgspec.UNSET
    family_name: Name | None = None
    given_name: Name | None = None
    family_name_kana: Kana | None = None
    given_name_kana: Kana | None = None
    former_surname: Name | msgspec.UnsetType | None = msgspec.UNSET
    forward_address: Address | msgspec.UnsetType | None = msgspec.UNSET
    """転出先 for ``move_out_domestic``; country for ``move_out_abroad``."""
    to_tenant: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}\Z")] | None = None
    """``move_out_domestic`` to a town of this deployment: its local government code.
    Only that town may then register the move-in one-stop (and read the 転出証明書)."""
    previous_head_relationship: Relationship | None = None
    """For ``head_of_household_change``: the former head's new 続柄."""


class ResidentSearch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Exactly one of: ``atena_no``; ``individual_number``; ``phone``; kana family name +
    birth date."""

    atena_no: Digits8 | None = None
    individual_number: Digits12 | None = None
    phone: Phone | None = None
    family_name_kana: Kana | None = None
    birth_date: date | None = None


class ResidentOut(msgspec.Struct, kw_only=True):
    """A record as this caller may see it.

    Personal fields the policy withholds for the stated purpose are absent and
    named in ``withheld`` (with the reason for each in ``withheld_reasons``);
    a field present with ``null`` is one the record simply does not have.
    """

    id: str
    atena_no: str
    state: str
    version: int
    history_no: int
    support_measure: bool
    resident_since: date | msgspec.UnsetType = msgspec.UNSET
    address_since: date | msgspec.UnsetType = msgspec.UNSET
    notified_on: date | msgspec.UnsetType = msgspec.UNSET
    removed_on: date | msgspec.UnsetType | None = msgspec.UNSET
    resident_type: str | msgspec.UnsetType = msgspec.UNSET
    household_no: str | msgspec.UnsetType = msgspec.UNSET
    relationship: str | msgspec.UnsetType = msgspec.UNSET
    family_name: str | msgspec.UnsetType = msgspec.UNSET
    given_name: str | msgspec.UnsetType = msgspec.UNSET
    family_name_kana: str | msgspec.UnsetType = msgspec.UNSET
    given_name_kana: str | msgspec.UnsetType = msgspec.UNSET
    birth_date: date | msgspec.UnsetType = msgspec.UNSET
    sex: str | msgspec.UnsetType = msgspec.UNSET
    address: str | msgspec.UnsetType = msgspec.UNSET
    postal_code: str | msgspec.UnsetType | None = msgspec.UNSET
    individual_number: str | msgspec.UnsetType | None = msgspec.UNSET
    juminhyo_code: str | msgspec.UnsetType | None = msgspec.UNSET
    phone: str | msgspec.UnsetType | None = msgspec.UNSET
    former_surname: str | msgspec.UnsetType | None = msgspec.UNSET
    domicile: str | msgspec.UnsetType | None = msgspec.UNSET
    previous_address: str | msgspec.UnsetType | None = msgspec.UNSET
    forward_address: str | msgspec.UnsetType | None = msgspec.UNSET
    withheld: list[str] = msgspec.field(default_factory=list)
    withheld_reasons: dict[str, str] = msgspec.field(default_factory=dict)


class SupportMeasure(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Set (true) or lift (false) 支援措置 on a record."""

    active: bool


class SearchResult(msgspec.Struct, kw_only=True):
    count: int
    residents: list[ResidentOut]


class HistoryEntry(msgspec.Struct, kw_only=True):
    """One 履歴. 異動日 and 届出日 are record dates: shown only to purposes that
    may see them (a birth's 異動日 is the birth date).

    An entry whose stored content does not decrypt (tampered with or
    damaged) has ``unreadable`` instead of its 事由, dates and snapshot: the
    rest of the history is still answered (docs/encryption.md, "An entry
    that does not decrypt").
    """

    history_no: int
    reason: str | msgspec.UnsetType = msgspec.UNSET
    reason_ja: str | msgspec.UnsetType = msgspec.UNSET
    processed_on: date
    recorded_at: datetime
    snapshot: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    move_date: date | msgspec.UnsetType = msgspec.UNSET
    notified_on: date | msgspec.UnsetType = msgspec.UNSET
    unreadable: str | msgspec.UnsetType = msgspec.UNSET
    """Only on an entry that does not decrypt: ``integrity_error``. The
    operators are alerted (metric ``shared_gov_integrity_errors``)."""


class HistoryOut(msgspec.Struct, kw_only=True):
    resident_id: str
    entries: list[HistoryEntry]
    withheld: list[str] = msgspec.field(default_factory=list)
    """Personal fields removed from every snapshot for this caller and purpose."""


class HouseholdMember(msgspec.Struct, kw_only=True):
    """A member as this caller may see them (withheld fields are absent)."""

    id: str
    atena_no: str
    state: str
    family_name: str | msgspec.UnsetType = msgspec.UNSET
    given_name: str | msgspec.UnsetType = msgspec.UNSET
    family_name_kana: str | msgspec.UnsetType = msgspec.UNSET
    given_name_kana: str | msgspec.UnsetType = msgspec.UNSET
    relationship: str | msgspec.UnsetType = msgspec.UNSET


class HouseholdOut(msgspec.Struct, kw_only=True):
    household_no: str
    head_id: str | None
    members: list[HouseholdMember]
