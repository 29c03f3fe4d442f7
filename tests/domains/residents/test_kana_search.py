"""Searching by フリガナ as staff type it: hiragana, half-width katakana (with
separate voiced marks), full- and half-width mixed, any spaces — every spelling
finds the record stored in full-width katakana, through the HTTP API; what is
not kana is a 422 at ``/family_name_kana`` (in Japanese too), never a 500 and
never an echo."""

from __future__ import annotations

import itertools
import secrets
from datetime import date, timedelta

import httpx
import pytest

from tests.conftest import KAGA, auth
from tests.factories import resident_body

RESIDENTS = f"/api/v1/tenants/{KAGA}/residents"
SEARCH = f"{RESIDENTS}/search"
# Birth dates no other test of the session uses (the search key is kana + birth
# date, and the towns are shared): a random run of days in the 1900s.
_days = itertools.count(secrets.randbelow(30_000))


async def _register(client: httpx.AsyncClient, token: str, kana: str) -> tuple[str, str]:
    """A resident with family name kana ``kana`` and a birth date of their own."""
    birth = (date(1900, 1, 1) + timedelta(days=next(_days) % 36_500)).isoformat()
    r = await client.post(
        RESIDENTS,
        json=resident_body(family_name_kana=kana, birth_date=birth),
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    assert r.json()["family_name_kana"] == kana
    return r.json()["id"], birth


async def _search(
    client: httpx.AsyncClient, token: str, kana: str, birth: str, **headers: str
) -> httpx.Response:
    return await client.post(
        SEARCH,
        json={"family_name_kana": kana, "birth_date": birth},
        headers=auth(token, **headers),
    )


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("ヤマダ", "ヤマダ"),
        ("ヤマダ", "やまだ"),  # hiragana (the IME before conversion)
        ("ヤマダ", "ﾔﾏﾀﾞ"),  # half-width, separate dakuten
        ("ヤマダ", "やマﾀﾞ"),  # all three mixed
        ("ヤマダ", "ヤマダ　"),  # a trailing ideographic space
        ("ヤマダ", " や ま だ "),  # ASCII spaces anywhere
        ("ヤマダ", "ﾔ ﾏ　ﾀﾞ"),  # half-width with ASCII and ideographic spaces
        ("ヤマダ", "やま\u00a0だ"),  # a no-break space (pasted from a web page)
        ("キョウコ", "きょうこ"),  # small kana stay small
        ("キョウコ", "ｷｮｳｺ"),
        ("ヴァレンタイン", "ゔぁれんたいん"),  # ゔ becomes ヴ
        ("ヴァレンタイン", "ｳﾞｧﾚﾝﾀｲﾝ"),
        ("ヴァレンタイン", "ウ゛ァレンタイン"),  # a full-width voiced mark typed apart
        ("パーカー", "ハ゜ーカー"),
        ("パーカー", "ﾊﾟｰｶｰ"),  # handakuten, half-width long vowel mark
        ("パーカー", "ぱーかー"),
        ("ド・ゴール", "ﾄﾞ･ｺﾞｰﾙ"),  # half-width middle dot
    ],
)
async def test_every_spelling_staff_type_finds_the_katakana_record(
    client: httpx.AsyncClient, tokens: dict[str, str], stored: str, typed: str
) -> None:
    resident, birth = await _register(client, tokens["kaga"], stored)
    r = await _search(client, tokens["kaga"], typed, birth)
    assert r.status_code == 200, r.text
    assert [p["id"] for p in r.json()["residents"]] == [resident]
    assert r.json()["residents"][0]["family_name_kana"] == stored


async def test_a_record_registered_in_hiragana_is_found_in_katakana(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """What staff typed at registration is stored as katakana: both spellings find it."""
    birth = (date(1900, 1, 1) + timedelta(days=next(_days) % 36_500)).isoformat()
    r = await client.post(
        RESIDENTS,
        json=resident_body(family_name_kana="すずき　ﾀﾛｳ", birth_date=birth),
        headers=auth(tokens["kaga"]),
    )
    assert r.status_code == 201, r.text
    assert r.json()["family_name_kana"] == "スズキタロウ"
    for typed in ("スズキタロウ", "すずきたろう", "ｽｽﾞｷ ﾀﾛｳ"):
        found = await _search(client, tokens["kaga"], typed, birth)
        assert [p["id"] for p in found.json()["residents"]] == [r.json()["id"]], typed


async def test_another_name_or_birth_date_finds_nobody(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """Normalising does not widen the match: a different kana or day is no hit."""
    _, birth = await _register(client, tokens["kaga"], "タナカ")
    other_day = (date.fromisoformat(birth) + timedelta(days=1)).isoformat()
    for kana, day in (("たなか", other_day), ("たなが", birth), ("ﾀﾅｶｶ", birth)):
        r = await _search(client, tokens["kaga"], kana, day)
        assert r.status_code == 200, r.text
        assert r.json()["residents"] == [], (kana, day)


@pytest.mark.parametrize(
    "typed",
    ["山田", "Yamada", "ﾔﾏﾀﾞ1", "ヤマダ\t", "　"],
    ids=["kanji", "latin", "digit", "tab", "only-space"],
)
async def test_what_is_not_kana_is_a_422_at_the_field(
    client: httpx.AsyncClient, tokens: dict[str, str], typed: str
) -> None:
    """Kanji, latin letters, digits, a control character or nothing but spaces: 422
    pointing at ``/family_name_kana``, in English and in Japanese, the value not echoed."""
    en = await _search(client, tokens["kaga"], typed, "1950-01-01")
    ja = await _search(client, tokens["kaga"], typed, "1950-01-01", **{"Accept-Language": "ja"})
    for r in (en, ja):
        assert r.status_code == 422, r.text
        assert [e["pointer"] for e in r.json()["errors"]] == ["/family_name_kana"]
        if typed.strip("\t　"):
            assert typed.strip("\t") not in r.text
    assert "カナ" in ja.json()["errors"][0]["detail"] or "文字" in ja.json()["errors"][0]["detail"]
