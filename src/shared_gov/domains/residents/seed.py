"""Deterministic generator of SYNTHETIC residents for a demo town.

Every value produced here is invented: names are drawn at random from lists of
common Japanese names, addresses from a list of generic 町名 with random
丁目・番・号, and identifiers (個人番号, 住民票コード, telephone numbers) are
random digits. No real person's data is used or reproduced on purpose. A random
number or name may coincide with a real one by chance, so these values must
never be used to contact, identify or look up anyone, and must never be loaded
into a production tenant.

The output imitates the shape of a Japanese town in the 2020s so that demos and
benchmarks exercise realistic data: household types (single elderly, single
young, couples, couples with one to three children, single parents,
three-generation homes, …), about 29 % of residents aged 65 and over and about
11 % under 15, spouses sharing a family name, parents 20–45 years older than
their children, 続柄 as written on a 住民票, and given names that fit the
person's birth year.

The generator is pure: it returns plain data (no database access) and depends
only on its arguments. The same arguments always give the same output; it
uses its own ``random.Random(seed)`` and never the global random state or the
current date (``today`` is an argument).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from typing import Final, Literal

from shared_gov.checkdigits import make_individual_number

__all__ = [
    "FAMILY_NAMES",
    "FEMALE_GIVEN_NAMES",
    "MALE_GIVEN_NAMES",
    "RELATIONSHIPS",
    "TOWN_DISTRICTS",
    "SyntheticHousehold",
    "SyntheticPerson",
    "generate_town",
]

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


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """Parse whitespace-separated ``表記:フリガナ`` pairs."""
    pairs = []
    for item in text.split():
        written, kana = item.split(":")
        pairs.append((written, kana))
    return tuple(pairs)


# --- Names --------------------------------------------------------------------
# (表記, フリガナ). Family names roughly in order of frequency nationwide; the
# generator draws the first ones more often.

FAMILY_NAMES: Final[tuple[tuple[str, str], ...]] = _pairs(
    """
    佐藤:サトウ  鈴木:スズキ  高橋:タカハシ  田中:タナカ  伊藤:イトウ  渡辺:ワタナベ
    山本:ヤマモト  中村:ナカムラ  小林:コバヤシ  加藤:カトウ  吉田:ヨシダ  山田:ヤマダ
    佐々木:ササキ  山口:ヤマグチ  松本:マツモト  井上:イノウエ  木村:キムラ  林:ハヤシ
    斎藤:サイトウ  清水:シミズ  山崎:ヤマザキ  森:モリ  池田:イケダ  橋本:ハシモト
    阿部:アベ  石川:イシカワ  山下:ヤマシタ  中島:ナカジマ  石井:イシイ  小川:オガワ
    前田:マエダ  岡田:オカダ  長谷川:ハセガワ  藤田:フジタ  後藤:ゴトウ  近藤:コンドウ
    村上:ムラカミ  遠藤:エンドウ  青木:アオキ  坂本:サカモト  斉藤:サイトウ  福田:フクダ
    太田:オオタ  西村:ニシムラ  藤井:フジイ  金子:カネコ  岡本:オカモト  藤原:フジワラ
    中野:ナカノ  三浦:ミウラ  原田:ハラダ  中川:ナカガワ  松田:マツダ  竹内:タケウチ
    小野:オノ  田村:タムラ  中山:ナカヤマ  和田:ワダ  石田:イシダ  森田:モリタ
    上田:ウエダ  原:ハラ  内田:ウチダ  柴田:シバタ  酒井:サカイ  宮崎:ミヤザキ
    横山:ヨコヤマ  高木:タカギ  安藤:アンドウ  宮本:ミヤモト  大野:オオノ  小島:コジマ
    谷口:タニグチ  今井:イマイ  工藤:クドウ  高田:タカダ  増田:マスダ  丸山:マルヤマ
    杉山:スギヤマ  村田:ムラタ  大塚:オオツカ  新井:アライ  小山:コヤマ  平野:ヒラノ
    藤本:フジモト  河野:コウノ  上野:ウエノ  野口:ノグチ  武田:タケダ  松井:マツイ
    千葉:チバ  岩崎:イワサキ  菅原:スガワラ  木下:キノシタ  久保:クボ  野村:ノムラ
    松尾:マツオ  北村:キタムラ  中西:ナカニシ  山岸:ヤマギシ
    """
)

# Given names by birth cohort, so that a grandmother is 和子 and a baby is 陽葵.
_BORN_BEFORE_1956: Final = 0
_BORN_1956_TO_1989: Final = 1
_BORN_1990_OR_LATER: Final = 2

_MALE_NAMES_BY_COHORT: Final[tuple[tuple[tuple[str, str], ...], ...]] = (
    # born before 1956
    _pairs(
        """
        清:キヨシ  茂:シゲル  博:ヒロシ  実:ミノル  勇:イサム
        進:ススム  勝:マサル  正:タダシ  武:タケシ  昭:アキラ
        隆:タカシ  正雄:マサオ  一郎:イチロウ  和夫:カズオ  義男:ヨシオ
        幸雄:ユキオ  三郎:サブロウ  久雄:ヒサオ  秀夫:ヒデオ  敏夫:トシオ
        """
    ),
    # born 1956-1989
    _pairs(
        """
        誠:マコト  浩:ヒロシ  健一:ケンイチ  大輔:ダイスケ  直樹:ナオキ
        哲也:テツヤ  剛:ツヨシ  拓也:タクヤ  和也:カズヤ  達也:タツヤ
        聡:サトシ  学:マナブ  修:オサム  秀樹:ヒデキ  隆之:タカユキ
        洋平:ヨウヘイ  健二:ケンジ  浩二:コウジ  裕介:ユウスケ  雅人:マサト
        """
    ),
    # born 1990 or later
    _pairs(
        """
        蓮:レン  陽翔:ハルト  湊:ミナト  大翔:ヒロト  悠真:ユウマ
        颯太:ソウタ  陽向:ヒナタ  樹:イツキ  悠斗:ユウト  翔:ショウ
        大和:ヤマト  律:リツ  蒼:アオイ  朝陽:アサヒ  健太:ケンタ
        拓海:タクミ  翔太:ショウタ  陸:リク  海斗:カイト  大輝:ダイキ
        """
    ),
)

_FEMALE_NAMES_BY_COHORT: Final[tuple[tuple[tuple[str, str], ...], ...]] = (
    # born before 1956
    _pairs(
        """
        和子:カズコ  幸子:サチコ  節子:セツコ  洋子:ヨウコ  恵子:ケイコ
        京子:キョウコ  美代子:ミヨコ  久子:ヒサコ  静子:シズコ  文子:フミコ
        敏子:トシコ  千代子:チヨコ  君子:キミコ  悦子:エツコ  弘子:ヒロコ
        光子:ミツコ  春子:ハルコ  登美子:トミコ  信子:ノブコ  ミツ:ミツ
        """
    ),
    # born 1956-1989
    _pairs(
        """
        裕子:ユウコ  真由美:マユミ  智子:トモコ  恵美:エミ  久美子:クミコ
        明美:アケミ  由美子:ユミコ  直美:ナオミ  陽子:ヨウコ  美穂:ミホ
        愛:アイ  恵:メグミ  香織:カオリ  麻衣:マイ  典子:ノリコ
        千尋:チヒロ  綾香:アヤカ  沙織:サオリ  由佳:ユカ  純子:ジュンコ
        """
    ),
    # born 1990 or later
    _pairs(
        """
        陽葵:ヒマリ  凛:リン  結衣:ユイ  結菜:ユイナ  芽依:メイ
        紬:ツムギ  葵:アオイ  さくら:サクラ  美咲:ミサキ  莉子:リコ
        杏:アン  楓:カエデ  結愛:ユア  心春:コハル  彩花:アヤカ
        七海:ナナミ  花音:カノン  優奈:ユウナ  美羽:ミウ  澪:ミオ
        """
    ),
)

MALE_GIVEN_NAMES: Final[tuple[tuple[str, str], ...]] = tuple(
    name for cohort in _MALE_NAMES_BY_COHORT for name in cohort
)
FEMALE_GIVEN_NAMES: Final[tuple[tuple[str, str], ...]] = tuple(
    name for cohort in _FEMALE_NAMES_BY_COHORT for name in cohort
)

# --- Places -------------------------------------------------------------------

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

_MAX_AGE: Final = 100


# --- Household shapes -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Draft:
    """A member before names, dates and numbers are filled in."""

    relationship: str
    age: int
    sex: Sex
    own_family: bool = True
    """False for 同居人 / unrelated 縁故者, who carry another family name."""


def _other(sex: Sex) -> Sex:
    return "female" if sex == "male" else "male"


def _spouse(rng: random.Random, head_age: int, head_sex: Sex) -> _Draft:
    # Husbands are on average about two years older than their wives.
    gap = rng.choice((-2, -1, 0, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6, 8))
    if head_sex == "male":
        age = head_age - gap
        relationship = "妻"
    else:
        age = head_age + gap
        relationship = "夫"
    return _Draft(relationship, max(18, min(_MAX_AGE, age)), _other(head_sex))


def _child_ages(
    rng: random.Random, parent_ages: Sequence[int], count: int, *, min_age: int, max_age: int
) -> list[int] | None:
    """Ages of ``count`` children, eldest first, so that every parent is 20–45 years older.

    The eldest is born when the younger parent is around 29 (the usual age at
    a first birth in Japan); siblings follow one to four years apart.
    """
    lo = max(min_age, max(parent_ages) - 45)
    hi = min(max_age, min(parent_ages) - 20)
    if hi < lo:
        return None
    eldest = min(parent_ages) - round(rng.triangular(20, 42, 29))
    ages = [max(lo, min(hi, eldest))]
    for _ in range(count - 1):
        ages.append(max(lo, ages[-1] - rng.randint(1, 4)))
    return ages


def _children(
    rng: random.Random,
    relationship: str,
    parent_ages: Sequence[int],
    count: int,
    *,
    min_age: int = 0,
    max_age: int = 35,
) -> list[_Draft] | None:
    ages = _child_ages(rng, parent_ages, count, min_age=min_age, max_age=max_age)
    if ages is None:
        return None
    return [_Draft(relationship, age, rng.choice(("male", "female"))) for age in ages]


def _elderly_age(rng: random.Random, lo: int = 65) -> int:
    return min(_MAX_AGE, round(rng.triangular(lo, 98, 76)))


def _single_elderly(rng: random.Random, room: int) -> list[_Draft] | None:
    # Most people living alone past 65 are widowed women.
    sex: Sex = "female" if rng.random() < 0.68 else "male"
    return [_Draft("世帯主", _elderly_age(rng), sex)]


def _single_adult(rng: random.Random, room: int) -> list[_Draft] | None:
    # Young people after leaving home, and a good share of middle-aged singles.
    age = rng.randint(18, 34) if rng.random() < 0.5 else rng.randint(35, 64)
    sex: Sex = "male" if rng.random() < 0.58 else "female"
    return [_Draft("世帯主", age, sex)]


def _couple_elderly(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    head_sex: Sex = "male" if rng.random() < 0.95 else "female"
    head_age = round(rng.triangular(65, 92, 72))
    return [_Draft("世帯主", head_age, head_sex), _spouse(rng, head_age, head_sex)]


def _couple_working_age(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    head_sex: Sex = "male" if rng.random() < 0.92 else "female"
    # Mostly couples whose children have left home, some newly-weds.
    head_age = round(rng.triangular(23, 66, 60))
    return [_Draft("世帯主", head_age, head_sex), _spouse(rng, head_age, head_sex)]


def _nuclear(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 3:
        return None
    count = min(room - 2, rng.choices((1, 2, 3), weights=(50, 40, 10))[0])
    head_sex: Sex = "male" if rng.random() < 0.95 else "female"
    head_age = round(rng.triangular(26, 64, 48))
    spouse = _spouse(rng, head_age, head_sex)
    kids = _children(rng, "子", (head_age, spouse.age), count)
    if kids is None:
        return None
    return [_Draft("世帯主", head_age, head_sex), spouse, *kids]


def _single_parent(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    count = min(room - 1, rng.choices((1, 2, 3), weights=(55, 38, 7))[0])
    head_sex: Sex = "female" if rng.random() < 0.86 else "male"
    head_age = rng.randint(25, 58)
    kids = _children(rng, "子", (head_age,), count)
    if kids is None:
        return None
    return [_Draft("世帯主", head_age, head_sex), *kids]


def _three_generations(rng: random.Random, room: int) -> list[_Draft] | None:
    """Head and spouse with children, living with the head's parent(s)."""
    if room < 4:
        return None
    parents_kind = rng.choices(("both", "mother", "father"), weights=(55, 35, 10))[0]
    n_parents = 2 if parents_kind == "both" else 1
    count = min(room - 2 - n_parents, rng.choices((1, 2, 3), weights=(35, 45, 20))[0])
    head_age = round(rng.triangular(30, 60, 44))
    spouse = _spouse(rng, head_age, "male")
    kids = _children(rng, "子", (head_age, spouse.age), count)
    if kids is None:
        return None
    members = [_Draft("世帯主", head_age, "male"), spouse]
    mother = min(_MAX_AGE, head_age + rng.randint(22, 38))
    father = max(head_age + 20, min(_MAX_AGE, head_age + 45, mother + rng.randint(-1, 6)))
    if parents_kind in ("both", "father"):
        members.append(_Draft("父", father, "male"))
    if parents_kind in ("both", "mother"):
        members.append(_Draft("母", mother, "female"))
    return members + kids


def _three_generations_elder_head(rng: random.Random, room: int) -> list[_Draft] | None:
    """An older head and spouse, a married child with spouse, and grandchildren."""
    if room < 3:
        return None
    head_age = round(rng.triangular(58, 88, 68))
    members = [_Draft("世帯主", head_age, "male")]
    parent_ages = [head_age]
    if room >= 4 and rng.random() < 0.75:
        spouse = _spouse(rng, head_age, "male")
        members.append(spouse)
        parent_ages.append(spouse.age)
    child_ages = _child_ages(rng, parent_ages, 1, min_age=25, max_age=55)
    if child_ages is None:
        return None
    child_age = child_ages[0]
    child_sex: Sex = "male" if rng.random() < 0.8 else "female"
    child_in_law = _spouse(rng, child_age, child_sex)
    members.append(_Draft("子", child_age, child_sex))
    members.append(
        _Draft("子の妻" if child_sex == "male" else "子の夫", child_in_law.age, child_in_law.sex)
    )
    count = min(room - len(members), rng.choices((0, 1, 2, 3), weights=(30, 35, 27, 8))[0])
    if count > 0:
        grandchildren = _children(rng, "孫", (child_age, child_in_law.age), count)
        if grandchildren is None:
            return None
        members.extend(grandchildren)
    return members


def _elder_with_adult_child(rng: random.Random, room: int) -> list[_Draft] | None:
    """An elderly parent (sometimes a couple) with an unmarried adult child."""
    if room < 2:
        return None
    head_sex: Sex = "female" if rng.random() < 0.6 else "male"
    head_age = _elderly_age(rng, lo=68)
    members = [_Draft("世帯主", head_age, head_sex)]
    parent_ages = [head_age]
    if room >= 3 and rng.random() < 0.3:
        spouse = _spouse(rng, head_age, head_sex)
        members.append(spouse)
        parent_ages.append(spouse.age)
    kids = _children(rng, "子", parent_ages, 1, min_age=25, max_age=70)
    if kids is None:
        return None
    return members + kids


def _siblings(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    head_age = rng.randint(45, 85)
    head_sex: Sex = rng.choice(("male", "female"))
    sibling_sex: Sex = rng.choice(("male", "female"))
    diff = rng.choice((-1, 1)) * rng.randint(1, 10)
    sibling_age = max(18, min(_MAX_AGE, head_age + diff))
    if sibling_age > head_age:
        relationship = "兄" if sibling_sex == "male" else "姉"
    else:
        sibling_age = min(sibling_age, head_age - 1)
        relationship = "弟" if sibling_sex == "male" else "妹"
    return [_Draft("世帯主", head_age, head_sex), _Draft(relationship, sibling_age, sibling_sex)]


def _with_grandparent(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    head_age = rng.randint(20, 38)
    grandparent_age = min(_MAX_AGE, head_age + rng.randint(45, 62))
    if rng.random() < 0.8:
        grandparent = _Draft("祖母", grandparent_age, "female")
    else:
        grandparent = _Draft("祖父", grandparent_age, "male")
    return [_Draft("世帯主", head_age, rng.choice(("male", "female"))), grandparent]


def _cohabitants(rng: random.Random, room: int) -> list[_Draft] | None:
    if room < 2:
        return None
    head_age = rng.randint(20, 45)
    other_age = max(18, head_age + rng.randint(-5, 5))
    head_sex: Sex = rng.choice(("male", "female"))
    other_sex: Sex = rng.choice(("male", "female"))
    return [
        _Draft("世帯主", head_age, head_sex),
        _Draft("同居人", other_age, other_sex, own_family=False),
    ]


def _with_relative(rng: random.Random, room: int) -> list[_Draft] | None:
    """An elderly head living with a more distant relative (a niece, say)."""
    if room < 2:
        return None
    head_age = _elderly_age(rng, lo=70)
    relative_age = rng.randint(25, 65)
    return [
        _Draft("世帯主", head_age, rng.choice(("male", "female"))),
        _Draft(
            "縁故者", relative_age, rng.choice(("male", "female")), own_family=rng.random() < 0.5
        ),
    ]


_Shape = Callable[[random.Random, int], list[_Draft] | None]

# Relative frequencies of household types, per household. Loosely follows the
# 2020 census for a regional town: fewer one-person households than a big
# city, more three-generation homes.
_SHAPES: Final[tuple[tuple[_Shape, float], ...]] = (
    (_single_elderly, 13.0),
    (_single_adult, 18.0),
    (_couple_elderly, 13.0),
    (_couple_working_age, 12.0),
    (_nuclear, 15.0),
    (_single_parent, 4.5),
    (_three_generations, 4.5),
    (_three_generations_elder_head, 4.0),
    (_elder_with_adult_child, 8.0),
    (_siblings, 1.5),
    (_with_grandparent, 0.7),
    (_cohabitants, 1.8),
    (_with_relative, 0.8),
)
_SHAPE_FUNCS: Final = tuple(shape for shape, _ in _SHAPES)
_SHAPE_CUM_WEIGHTS: Final = tuple(accumulate(weight for _, weight in _SHAPES))

# Households that more often live in an apartment building.
_APARTMENT_SHAPES: Final[dict[_Shape, float]] = {
    _single_adult: 0.7,
    _couple_working_age: 0.5,
    _cohabitants: 0.8,
    _single_parent: 0.5,
    _nuclear: 0.15,
    _single_elderly: 0.1,
}


# --- Dates --------------------------------------------------------------------


def _add_years(d: date, years: int) -> date:
    """The same calendar day ``years`` later (or earlier, if negative).

    29 February becomes 28 February in a common year.
    """
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def _birth_date(rng: random.Random, age: int, today: date) -> date:
    """A uniformly random birth date of someone who is ``age`` on ``today``."""
    latest = _add_years(today, -age)
    earliest = _add_years(today, -(age + 1)) + timedelta(days=1)
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


def _random_date(rng: random.Random, earliest: date, latest: date) -> date:
    if latest <= earliest:
        return latest
    return earliest + timedelta(days=rng.randint(0, (latest - earliest).days))


def _cohort(birth: date) -> int:
    if birth.year < 1956:
        return _BORN_BEFORE_1956
    if birth.year < 1990:
        return _BORN_1956_TO_1989
    return _BORN_1990_OR_LATER


# --- The town -----------------------------------------------------------------


class _Town:
    """Mutable state while one town is generated: used numbers and addresses."""

    def __init__(
        self,
        rng: random.Random,
        *,
        prefecture: str,
        city: str,
        postal_prefix: str,
        phone_area_code: str,
        residents: int,
        today: date,
    ) -> None:
        self.rng = rng
        self.today = today
        self.prefix = prefecture + city
        self.phone_area_code = phone_area_code
        self.individual_numbers: set[str] = set()
        self.juminhyo_codes: set[str] = set()
        self.used_lots: set[tuple[str, int, int, int]] = set()
        self.used_phones: set[str] = set()
        self.family_cum_weights = tuple(accumulate(1.0 / (i + 8) for i in range(len(FAMILY_NAMES))))

        # Each 町 has its own postal code and number of 丁目, as in a real town.
        districts = rng.sample(TOWN_DISTRICTS, k=min(len(TOWN_DISTRICTS), rng.randint(12, 20)))
        space = 10 ** (7 - len(postal_prefix))
        suffixes = rng.sample(range(space), k=min(space, len(districts)))
        width = 7 - len(postal_prefix)
        self.districts: list[tuple[str, int, str]] = [
            (
                name,
                rng.randint(1, 5),
                f"{postal_prefix}{suffixes[i % len(suffixes)]:0{width}d}",
            )
            for i, name in enumerate(districts)
        ]
        self.postal_codes = {name: code for name, _, code in self.districts}
        # Enough 番 that at most about a third of the lots are taken.
        chome_total = sum(chome_count for _, chome_count, _ in self.districts)
        self.max_ban = max(30, -(-3 * residents // (chome_total * 25)))

        # Apartment buildings with free rooms: ((町, 丁目, 番, 号), name, free rooms).
        self.buildings: list[tuple[tuple[str, int, int, int], str, list[str]]] = []
        for _ in range(max(2, residents // 80)):
            lot = self._free_lot()
            floors = rng.randint(2, 5)
            per_floor = rng.randint(4, 8)
            rooms = [f"{f}{r:02d}" for f in range(1, floors + 1) for r in range(1, per_floor + 1)]
            rng.shuffle(rooms)
            name = rng.choice(_BUILDING_STYLES) + lot[0].removesuffix("町")
            if rng.random() < 0.4:
                name += rng.choice(("東", "西", "南", "北"))
            self.buildings.append((lot, name, rooms))

    # -- addresses --

    def _free_lot(self) -> tuple[str, int, int, int]:
        rng = self.rng
        while True:
            name, chome_count, _ = rng.choice(self.districts)
            lot = (
                name,
                rng.randint(1, chome_count),
                rng.randint(1, self.max_ban),
                rng.randint(1, 25),
            )
            if lot not in self.used_lots:
                self.used_lots.add(lot)
                return lot

    def _format_lot(self, lot: tuple[str, int, int, int]) -> str:
        name, chome, ban, go = lot
        return f"{self.prefix}{name}{_KANJI_NUMERALS[chome - 1]}丁目{ban}番{go}号"

    def address(self, apartment: bool) -> tuple[str, str, bool]:
        """(address, postal code, is_apartment) of a free dwelling."""
        if apartment and self.buildings:
            index = self.rng.randrange(len(self.buildings))
            lot, name, rooms = self.buildings[index]
            room = rooms.pop()
            if not rooms:
                # Full: drop it from the list (order is irrelevant, the pick is random).
                self.buildings[index] = self.buildings[-1]
                self.buildings.pop()
            return f"{self._format_lot(lot)} {name} {room}号室", self.postal_codes[lot[0]], True
        lot = self._free_lot()
        return self._format_lot(lot), self.postal_codes[lot[0]], False

    # -- numbers --

    def individual_number(self) -> str:
        while True:
            number = make_individual_number(f"{self.rng.randrange(10**11):011d}")
            if number not in self.individual_numbers:
                self.individual_numbers.add(number)
                return number

    def juminhyo_code(self) -> str:
        while True:
            code = f"{self.rng.randrange(10**11):011d}"
            if code not in self.juminhyo_codes:
                self.juminhyo_codes.add(code)
                return code

    def landline(self) -> str:
        area = self.phone_area_code
        exchange_digits = 6 - len(area)
        while True:
            exchange = str(self.rng.randint(2, 9)) + "".join(
                str(self.rng.randrange(10)) for _ in range(exchange_digits - 1)
            )
            number = f"{area}-{exchange}-{self.rng.randrange(10_000):04d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def mobile(self) -> str:
        rng = self.rng
        while True:
            prefix = rng.choices(_MOBILE_PREFIXES, weights=(50, 40, 10))[0]
            number = f"{prefix}-{rng.randint(1000, 9999)}-{rng.randrange(10_000):04d}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    # -- people --

    def family_name(self) -> tuple[str, str]:
        return self.rng.choices(FAMILY_NAMES, cum_weights=self.family_cum_weights)[0]

    def given_name(self, sex: Sex, birth: date, taken: set[str]) -> tuple[str, str]:
        cohorts = _MALE_NAMES_BY_COHORT if sex == "male" else _FEMALE_NAMES_BY_COHORT
        pool = cohorts[_cohort(birth)]
        while True:
            name = self.rng.choice(pool)
            if name[0] not in taken:
                taken.add(name[0])
                return name

    def household(self, shape: _Shape, drafts: list[_Draft]) -> SyntheticHousehold:
        rng = self.rng
        head_age = drafts[0].age
        family = self.family_name()
        landline = self.landline() if rng.random() < (0.8 if head_age >= 65 else 0.3) else None
        taken: set[str] = set()
        members: list[SyntheticPerson] = []
        for draft in drafts:
            birth = _birth_date(rng, draft.age, self.today)
            family_name, family_kana = family if draft.own_family else self.family_name()
            given_name, given_kana = self.given_name(draft.sex, birth, taken)
            phone: str | None
            if draft.age < 13:
                phone = None
            elif rng.random() < (0.9 if draft.age < 70 else 0.55):
                phone = self.mobile()
            else:
                phone = landline
            members.append(
                SyntheticPerson(
                    family_name=family_name,
                    given_name=given_name,
                    family_name_kana=family_kana,
                    given_name_kana=given_kana,
                    birth_date=birth,
                    sex=draft.sex,
                    relationship=draft.relationship,
                    individual_number=self.individual_number(),
                    juminhyo_code=self.juminhyo_code(),
                    phone=phone,
                )
            )

        apartment = rng.random() < _APARTMENT_SHAPES.get(shape, 0.0)
        address, postal_code, in_apartment = self.address(apartment)
        # Moved in once the head was an adult (so after the oldest member was
        # born); apartment dwellers move more often.
        earliest = min(_add_years(members[0].birth_date, 18), self.today)
        if in_apartment:
            earliest = max(earliest, _add_years(self.today, -12))
        resident_since = _random_date(rng, earliest, self.today)
        return SyntheticHousehold(
            address=address,
            postal_code=postal_code,
            resident_since=resident_since,
            members=tuple(members),
        )


def generate_town(
    *,
    prefecture: str,
    city: str,
    postal_prefix: str,
    phone_area_code: str,
    residents: int,
    seed: int,
    today: date,
) -> list[SyntheticHousehold]:
    """Invent the households of a town with exactly ``residents`` people.

    ``prefecture`` and ``city`` are written in front of every address (e.g.
    ``"石川県"``, ``"能美市"``); ``postal_prefix`` (1–6 ASCII digits, e.g.
    ``"923"``) starts every postal code; ``phone_area_code`` (``"0"`` and 1–4
    digits, e.g. ``"0761"``) is used for landlines. The result depends only on
    the arguments: the same arguments give the same households.
    """
    if isinstance(residents, bool) or not isinstance(residents, int):
        raise TypeError("residents must be an int")
    if residents < 0:
        raise ValueError("residents must not be negative")
    if not prefecture or not city:
        raise ValueError("prefecture and city must not be empty")
    if _POSTAL_PREFIX.fullmatch(postal_prefix) is None:
        raise ValueError("postal_prefix must be 1 to 6 ASCII digits")
    if _PHONE_AREA_CODE.fullmatch(phone_area_code) is None:
        raise ValueError("phone_area_code must be 0 followed by 1 to 4 ASCII digits")

    # Not for security: demo data must be reproducible from the seed.
    rng = random.Random(seed)  # noqa: S311
    town = _Town(
        rng,
        prefecture=prefecture,
        city=city,
        postal_prefix=postal_prefix,
        phone_area_code=phone_area_code,
        residents=residents,
        today=today,
    )
    households: list[SyntheticHousehold] = []
    remaining = residents
    while remaining > 0:
        shape = rng.choices(_SHAPE_FUNCS, cum_weights=_SHAPE_CUM_WEIGHTS)[0]
        drafts = shape(rng, remaining)
        if drafts is None:
            continue
        households.append(town.household(shape, drafts))
        remaining -= len(drafts)
    return households
