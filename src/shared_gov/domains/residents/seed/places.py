"""Invented places: generic 町名, building names, phone prefixes, and the formats the
generator accepts for a town's postal prefix and area code.
"""

from __future__ import annotations

import re
from typing import Final

TOWN_DISTRICTS: Final[tuple[str, ...]] = (
    "本町",
    "中央",
    "栄町",
    "緑町",
    "旭町",
    "新町",
    "東町",
    "西町",
    "南町",
    "北町",
    "大和町",
    "寿町",
    "幸町",
    "松ヶ丘",
    "桜台",
    "若葉町",
    "泉町",
    "昭和町",
    "日の出町",
    "末広町",
    "春日町",
    "花園町",
)
"""Generic 町名 found in many towns; none is tied to a particular place."""

_KANJI_NUMERALS: Final = ("一", "二", "三", "四", "五")
_BUILDING_STYLES: Final = (
    "コーポ",
    "ハイツ",
    "メゾン",
    "グリーンハイツ",
    "サンライズ",
    "パークサイド",
    "レジデンス",
    "ハイム",
)
_MOBILE_PREFIXES: Final = ("090", "080", "070")

_POSTAL_PREFIX: Final = re.compile(r"[0-9]{1,6}")
_PHONE_AREA_CODE: Final = re.compile(r"0[0-9]{1,4}")
