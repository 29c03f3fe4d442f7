"""What the generator returns: invented people and households, and the 続柄 it writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

Sex = Literal["male", "female"]


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    """One invented resident. Kana fields are full-width katakana."""

    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: date
    sex: Sex
    relationship: str
    """続柄 relative to the head of household; one of :data:`RELATIONSHIPS`."""
    individual_number: str
    """12 digits with a valid check digit, unique within the generated town."""
    juminhyo_code: str
    """11 digits, unique within the generated town."""
    phone: str | None
    """Landline in the town's area code, a mobile number, or None."""


@dataclass(frozen=True, slots=True)
class SyntheticHousehold:
    """One invented household (世帯) at one invented address."""

    address: str
    """Prefecture + city + 町名 + 丁目・番・号, sometimes a building and room."""
    postal_code: str
    """7 ASCII digits, starting with the town's postal prefix."""
    resident_since: date
    """When the household moved to this address."""
    members: tuple[SyntheticPerson, ...]
    """The head (続柄 世帯主) comes first."""


RELATIONSHIPS: Final[frozenset[str]] = frozenset(
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
    }
)
