"""Nothing personal in plaintext: not in the database, its dump, or the logs.

Residents are registered with distinctive marker values, real requests read,
search, move and list them, then ``pg_dump`` dumps the whole test database
(every schema, the catalog included) and the dump and every log event
captured meanwhile are scanned for each marker — as written, in its NFKC,
hiragana and half-width-kana forms, and as the hex of its UTF-8 bytes (how a
plaintext leak into a ``bytea`` column would look in a dump).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import structlog

from shared_gov.checkdigits import make_individual_number
from shared_gov.settings import Settings
from tests.conftest import KAGA, auth

BASE = f"/api/v1/tenants/{KAGA}"

MARKERS = {
    "family_name": "鰐淵ＺＱＸ",
    "given_name": "ZQXGIVEN",
    "family_name_kana": "ワニブチゼット",
    "given_name_kana": "ヌラリヒョンゼット",
    "address": "石川県加賀市ZQXADDR町9-9-9",
    "domicile": "石川県加賀市ZQXDOMI町1",
    "previous_address": "東京都千代田区ZQXPREV1",
    "former_surname": "旧姓ZQXOLD",
    "phone": "0761-98-7654",
    "individual_number": make_individual_number("90817263544"),
    "juminhyo_code": "98761234509",
    "birth_date": "1933-03-07",
}
RENAMED = {"family_name": "改名ZQXNEW", "family_name_kana": "カイメイゼット"}
# A birth: its 異動日, 住民となった日 and 住所を定めた日 all equal the birth date,
# so record dates must be as protected as the birth date itself.
BIRTH_DATE = "2024-02-29"
BIRTH_NOTIFIED = "2024-03-11"
DIGIT_ONLY = {"0761987654"}

_HALF = {
    unicodedata.normalize("NFKC", chr(c)): chr(c)
    for c in range(0xFF61, 0xFFA0)
    if len(unicodedata.normalize("NFKC", chr(c))) == 1
}
_HALF["\u3099"] = "\uff9e"  # combining dakuten
_HALF["\u309a"] = "\uff9f"  # combining handakuten


def _half_width(text: str) -> str:
    return "".join(_HALF.get(c, c) for c in unicodedata.normalize("NFD", text))


def _hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in text)


def variants(marker: str) -> set[str]:
    forms = {marker, unicodedata.normalize("NFKC", marker), _hiragana(marker)}
    forms.add(_half_width(marker))
    return {f for f in forms if len(f) >= 3}


def _pg_dump() -> str:
    import pgserver

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("pg_dump")
    if found is None:
        pytest.skip("no pg_dump available")
    return found


async def _exercise(client: Any, tokens: dict[str, str]) -> None:
    h = auth(tokens["kaga"])
    body = {
        "event": "move_in_domestic",
        "sex": "female",
        "postal_code": "9229999",
        "move_date": "2020-04-01",
        "notified_on": "2020-04-02",
        **MARKERS,
    }
    created = await client.post(f"{BASE}/residents", json=body, headers=h)
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["family_name"] == MARKERS["family_name"]
    url = f"{BASE}/residents/{person['id']}"
    assert (await client.get(url, headers=h)).status_code == 200
    for query in (
        {"individual_number": MARKERS["individual_number"]},
        {"phone": MARKERS["phone"]},
        {"family_name_kana": "わにぶちぜっと", "birth_date": MARKERS["birth_date"]},
        {"atena_no": person["atena_no"]},
    ):
        found = await client.post(f"{BASE}/residents/search", json=query, headers=h)
        assert found.json()["count"] == 1, query
    moved = await client.post(
        f"{url}/moves",
        json={
            "event": "name_change",
            "move_date": "2021-01-01",
            "notified_on": "2021-01-02",
            **RENAMED,
        },
        headers={**h, "If-Match": created.headers["etag"]},
    )
    assert moved.status_code == 200, moved.text
    assert (await client.get(f"{url}/history", headers=h)).json()["entries"][0]["snapshot"][
        "family_name"
    ] == MARKERS["family_name"]
    assert (
        await client.get(f"{BASE}/households/{person['household_no']}", headers=h)
    ).status_code == 200
    baby = {
        "event": "birth",
        "family_name": "鰐淵ＺＱＸ",
        "given_name": "ZQXBABY",
        "family_name_kana": "ワニブチゼット",
        "given_name_kana": "ベビーゼット",
        "birth_date": BIRTH_DATE,
        "sex": "male",
        "address": MARKERS["address"],
        "household_no": person["household_no"],
        "relationship": "子",
        "move_date": BIRTH_DATE,
        "notified_on": BIRTH_NOTIFIED,
    }
    born = await client.post(f"{BASE}/residents", json=baby, headers=h)
    assert born.status_code == 201, born.text
    assert (
        await client.get(f"{BASE}/residents/{born.json()['id']}/history", headers=h)
    ).status_code == 200
    # A failed duplicate registration must not leak the number either.
    dup = await client.post(f"{BASE}/residents", json=body, headers=h)
    assert dup.status_code == 409


async def test_no_marker_in_dump_or_logs(
    client: Any, tokens: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    """Zero hits of any marker form in a full pg_dump or in the captured log events."""
    with structlog.testing.capture_logs() as events:
        await _exercise(client, tokens)
    assert events, "the requests must have logged something"
    assert settings.database_url
    dump = tmp_path / "dump.sql"
    await asyncio.to_thread(
        subprocess.run,  # fixed binary, our own database URL
        [_pg_dump(), "--no-owner", "--file", str(dump), settings.database_url],
        check=True,
        timeout=120,
    )
    text = dump.read_text(encoding="utf-8")
    # Positive control: plaintext catalog text is visible to this scan.
    assert "介護保険課" in text
    assert "residents" in text
    without_hex = re.sub(r"\\\\x[0-9a-f]+", "", text)
    logs = "\n".join(repr(sorted(e.items(), key=lambda kv: kv[0])) for e in events)
    hits: list[str] = []
    for marker in [*MARKERS.values(), *RENAMED.values(), "ZQXBABY", BIRTH_DATE, BIRTH_NOTIFIED]:
        for form in variants(marker):
            if form in text:
                hits.append(f"dump: {form}")
            if form.encode().hex() in text:
                hits.append(f"dump (bytea hex): {form}")
            if form in logs:
                hits.append(f"logs: {form}")
    for digits in DIGIT_ONLY:
        if digits in without_hex or digits in logs:
            hits.append(f"digits: {digits}")
    assert hits == []


def test_variants_cover_width_and_script() -> None:
    """The scan really looks for the other spellings (so the test can fail)."""
    forms = variants("ワニブチゼット")
    assert "わにぶちぜっと" in forms
    assert "ﾜﾆﾌﾞﾁｾﾞｯﾄ" in forms
    assert {"鰐淵ＺＱＸ", "鰐淵ZQX"} <= variants("鰐淵ＺＱＸ")
