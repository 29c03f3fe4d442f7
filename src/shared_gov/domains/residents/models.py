"""Domain vocabulary of resident records (住民基本台帳法 §7; 住民記録システム標準仕様書).

Event codes are English for the API; each maps to its 異動事由 name, which is
what staff see on a 住民票 and what the history keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from enum import StrEnum
from typing import Any


class EntryEvent(StrEnum):
    """記載: how a person enters the register."""

    BIRTH = "birth"
    MOVE_IN_DOMESTIC = "move_in_domestic"
    MOVE_IN_FROM_ABROAD = "move_in_from_abroad"
    EX_OFFICIO_ENTRY = "ex_officio_entry"


class ChangeEvent(StrEnum):
    """修正 and 消除: what can happen to a registered person."""

    MOVE_WITHIN_TOWN = "move_within_town"
    HEAD_OF_HOUSEHOLD_CHANGE = "head_of_household_change"
    NAME_CHANGE = "name_change"
    HOUSEHOLD_SPLIT = "household_split"
    MOVE_OUT_DOMESTIC = "move_out_domestic"
    MOVE_OUT_ABROAD = "move_out_abroad"
    DEATH = "death"
    EX_OFFICIO_REMOVAL = "ex_officio_removal"


REASON_JA: dict[str, str] = {
    "birth": "出生",
    "move_in_domestic": "国内転入",
    "move_in_from_abroad": "国外転入",
    "ex_officio_entry": "職権記載",
    "move_within_town": "転居",
    "head_of_household_change": "世帯主変更",
    "name_change": "氏名変更",
    "household_split": "世帯分離",
    "move_out_domestic": "国内転出",
    "move_out_abroad": "国外転出",
    "death": "死亡",
    "ex_officio_removal": "職権消除",
    "import": "データ移行",
    "move_out_confirmed": "転出確定（転入通知）",
}
# A planned 転出 confirmed by the new town's 転入通知 (one-stop move between tenants).
CONFIRMED_REASON = "move_out_confirmed"

# Removal events and the state they leave the record in. The record stays.
REMOVAL_STATE: dict[ChangeEvent, str] = {
    ChangeEvent.MOVE_OUT_DOMESTIC: "moved_out",
    ChangeEvent.MOVE_OUT_ABROAD: "moved_out",
    ChangeEvent.DEATH: "deceased",
    ChangeEvent.EX_OFFICIO_REMOVAL: "removed",
}

HEAD = "世帯主"

# 続柄 as printed on a 住民票 (a practical subset of the standard's code list).
RELATIONSHIPS = frozenset(
    {
        "世帯主",
        "妻",
        "夫",
        "子",
        "父",
        "母",
        "孫",
        "祖父",
        "祖母",
        "兄",
        "姉",
        "弟",
        "妹",
        "子の妻",
        "子の夫",
        "縁故者",
        "同居人",
        "妻（未届）",
        "夫（未届）",
    }
)


@dataclass(slots=True)
class Resident:
    """The current state of one person's record (the highest 履歴番号)."""

    id: str
    atena_no: str
    version: int
    state: str
    resident_type: str
    household_no: str
    relationship: str
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: date
    sex: str
    address: str
    postal_code: str | None
    individual_number: str | None
    juminhyo_code: str | None
    phone: str | None
    former_surname: str | None
    domicile: str | None
    previous_address: str | None
    forward_address: str | None
    resident_since: date
    address_since: date
    notified_on: date
    removed_on: date | None
    history_no: int
    support_measure: bool = False
    """支援措置: whereabouts withheld from all but 市民課's registration work."""

    def snapshot(self) -> dict[str, Any]:
        """The full record as JSON-ready values, kept with each history entry."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, date) else value
        return out
