"""The words of 介護保険 the domain uses, and the small pure rules that go with them.

Facility kinds and whether 住所地特例 covers them (介護保険法 第13条), the kinds
and states of a determination, the insured number (被保険者番号) and its check
digit, the legal basis quoted for each kind, and the address key facilities
are matched by. No I/O.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Final

from shared_gov.checkdigits import is_valid_serial, serial_check_digit

# --- facilities (介護保険法 第13条) --------------------------------------------------


class FacilityKind(StrEnum):
    TOKUYO = "tokuyo"
    """介護老人福祉施設 (特別養護老人ホーム, 特養)."""
    ROKEN = "roken"
    """介護老人保健施設 (老健)."""
    IRYOIN = "iryoin"
    """介護医療院."""
    YURYO = "yuryo"
    """有料老人ホーム (incl. a サービス付き高齢者向け住宅 that counts as one)."""
    KEIHI = "keihi"
    """軽費老人ホーム / ケアハウス."""
    YOGO = "yogo"
    """養護老人ホーム (also when entered by 措置)."""
    CHIIKI = "chiiki"
    """地域密着型 (29 places or fewer): 地域密着型介護老人福祉施設, 地域密着型特定施設."""
    GROUP_HOME = "group_home"
    """認知症対応型共同生活介護 (グループホーム)."""


FACILITY_KIND_JA: Final[dict[FacilityKind, str]] = {
    FacilityKind.TOKUYO: "特別養護老人ホーム（介護老人福祉施設）",
    FacilityKind.ROKEN: "介護老人保健施設",
    FacilityKind.IRYOIN: "介護医療院",
    FacilityKind.YURYO: "有料老人ホーム",
    FacilityKind.KEIHI: "軽費老人ホーム（ケアハウス）",
    FacilityKind.YOGO: "養護老人ホーム",
    FacilityKind.CHIIKI: "地域密着型施設（定員29人以下）",
    FacilityKind.GROUP_HOME: "グループホーム（認知症対応型共同生活介護）",
}

SMALL_FACILITY_PLACES: Final = 29
"""A facility of 29 places or fewer is 地域密着型 (介護保険法 第8条; FACTS.md)."""

_COVERED: Final = frozenset(
    {
        FacilityKind.TOKUYO,
        FacilityKind.ROKEN,
        FacilityKind.IRYOIN,
        FacilityKind.YURYO,
        FacilityKind.KEIHI,
        FacilityKind.YOGO,
    }
)


def coverage(kind: FacilityKind, places: int) -> tuple[bool, str]:
    """Whether 住所地特例 covers a facility, and the reason (介護保険法 第13条第1項).

    Covered: 介護保険施設 (特養, 老健, 介護医療院) and 特定施設 (有料老人ホーム,
    軽費老人ホーム/ケアハウス, 養護老人ホーム). Not covered: 地域密着型 facilities
    (29 places or fewer) and グループホーム — their residents are the town's own.
    """
    if kind is FacilityKind.GROUP_HOME:
        return False, "グループホームは住所地特例の対象外（介護保険法第13条）"
    if kind is FacilityKind.CHIIKI:
        return False, "地域密着型施設は住所地特例の対象外（介護保険法第13条）"
    if kind is FacilityKind.TOKUYO and places <= SMALL_FACILITY_PLACES:
        return False, "定員29人以下の特養は地域密着型（住所地特例の対象外）"
    if kind in _COVERED:
        return True, f"{FACILITY_KIND_JA[kind]}は住所地特例対象施設（介護保険法第13条第1項）"
    raise ValueError(f"unknown facility kind {kind}")  # pragma: no cover - enum exhausted


_SPACES = re.compile(r"\s+")
_DASHES = str.maketrans(dict.fromkeys("‐‑‒–—―−ーｰ－", "-"))


def address_key(address: str) -> str:
    """An address as facilities are matched by: NFKC, no spaces, one kind of dash.

    "石川県小松市 〇〇町１－２" and "石川県小松市〇〇町1-2" give the same key. The
    long vowel mark (ー) is a dash only between digits (番地 "1ー2"), never in a name.
    """
    text = _SPACES.sub("", unicodedata.normalize("NFKC", address))
    out = []
    for i, c in enumerate(text):
        if c in "ーｰ" and not (0 < i < len(text) - 1 and text[i - 1].isdigit()):
            out.append(c)
        else:
            out.append(c.translate(_DASHES))
    return "".join(out)


# --- the insured number (被保険者番号) -----------------------------------------------

INSURED_NUMBER_LENGTH: Final = 10
"""被保険者番号: ten digits, assigned by the town (the card's form is set by the
ministry; the number's layout is the town's own)."""


def make_insured_number(serial: int) -> str:
    """The ``serial``-th insured number: nine digits and a modulus-11 check digit
    (weights 2–7 from the right, as the town's 宛名番号), so a mistyped number is
    refused before any lookup."""
    if not 1 <= serial <= 999_999_999:
        raise ValueError("insured number serial out of range")
    base = f"{serial:09d}"
    return base + serial_check_digit(base)


def is_valid_insured_number(value: str) -> bool:
    return len(value) == INSURED_NUMBER_LENGTH and is_valid_serial(value)


# --- determinations ------------------------------------------------------------------


class Kind(StrEnum):
    """What a determination proposes."""

    GAIN = "gain"
    """資格取得 (第1号): 転入 at 65 or over, or reaching 65 while resident."""
    CATEGORY_CHANGE = "category_change"
    """第2号 → 第1号 on reaching 65 (no new qualification, a new category)."""
    LOSS = "loss"
    """資格喪失: 転出, 国外転出, 死亡, 職権消除."""
    TOKUREI_KEEP = "tokurei_keep"
    """Moving into a covered facility of another town: no loss, this town stays
    insurer (住所地特例)."""
    TOKUREI_INCOMING = "tokurei_incoming"
    """Moved into a covered facility here from another town: not enrolled here,
    a 住所地特例者 of the other town."""
    TOKUREI_ENDS = "tokurei_ends"
    """A 住所地特例者 of another town leaves the facility for an ordinary address
    here: enrolled here from that day."""
    RECORD_UPDATE = "record_update"
    """No change of qualification: the record or the card changes (転居, 氏名変更,
    世帯変更: card reissue, premium stage review)."""


KIND_JA: Final[dict[Kind, str]] = {
    Kind.GAIN: "資格取得",
    Kind.CATEGORY_CHANGE: "第2号から第1号への区分変更",
    Kind.LOSS: "資格喪失",
    Kind.TOKUREI_KEEP: "住所地特例（資格継続）",
    Kind.TOKUREI_INCOMING: "住所地特例者の転入（当市町村の被保険者としない）",
    Kind.TOKUREI_ENDS: "住所地特例の終了（資格取得）",
    Kind.RECORD_UPDATE: "記載事項の変更（資格の変動なし）",
}

QUALIFYING: Final = frozenset(
    {
        Kind.GAIN,
        Kind.CATEGORY_CHANGE,
        Kind.LOSS,
        Kind.TOKUREI_KEEP,
        Kind.TOKUREI_INCOMING,
        Kind.TOKUREI_ENDS,
    }
)
"""Kinds that change qualification: a later one of these supersedes an open one."""


class Status(StrEnum):
    OPEN = "open"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


LEGAL_BASIS: Final[dict[str, str]] = {
    "move_in": "介護保険法 第10条第4号（他市町村からの転入: 住所を有するに至った日）",
    "reached_65": (
        "介護保険法 第10条第3号; 年齢計算ニ関スル法律, 民法 第143条（誕生日の前日に到達）"
    ),
    "category_change": "介護保険法 第9条第1号, 第10条（65歳到達により第1号被保険者）",
    "move_out_domestic": (
        "介護保険法 第11条第1項 ただし書（他市町村に住所を有するに至った日に喪失）"
    ),
    "move_out_abroad": "介護保険法 第11条第1項（住所を有しなくなった日の翌日に喪失）",
    "death": "介護保険法 第11条第1項（死亡した日の翌日に喪失）",
    "ex_officio_removal": "介護保険法 第11条第1項（住所を有しなくなった日の翌日に喪失）",
    "tokurei_keep": "介護保険法 第13条第1項（住所地特例: 従前の市町村が保険者）",
    "tokurei_chain": "介護保険法 第13条（継続入所: 最初の施設入所前の市町村が保険者）",
    "tokurei_incoming": "介護保険法 第13条第1項（住所地特例者は当市町村の被保険者としない）",
    "tokurei_ends": "介護保険法 第10条, 第13条（施設を退所し当市町村に住所: 住所地特例の終了）",
    "record_update": (
        "介護保険法 第12条; 同法施行規則（氏名・住所等の変更の届出、被保険者証の再交付）"
    ),
    "premium": "介護保険法 第129条; 介護保険条例（賦課期日4月1日、月割賦課）",
}
