"""Builders of valid request bodies for tests (synthetic values only)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

from shared_gov.checkdigits import make_individual_number
from shared_gov.clock import today_jst

_counter = itertools.count(1)


def individual_number() -> str:
    return make_individual_number(f"{next(_counter) + 40_000_000_000:011d}")


def juminhyo_code() -> str:
    return f"{next(_counter) + 70_000_000_000:011d}"


def resident_body(**overrides: Any) -> dict[str, Any]:
    today = today_jst()
    body: dict[str, Any] = {
        "event": "move_in_domestic",
        "family_name": "山田",
        "given_name": "花子",
        "family_name_kana": "ヤマダ",
        "given_name_kana": "ハナコ",
        "birth_date": "1980-04-01",
        "sex": "female",
        "address": "石川県加賀市大聖寺南町1-1",
        "postal_code": "9220000",
        "individual_number": individual_number(),
        "juminhyo_code": juminhyo_code(),
        "move_date": (today - timedelta(days=3)).isoformat(),
        "notified_on": (today - timedelta(days=1)).isoformat(),
    }
    body.update(overrides)
    return body


def iso(d: date) -> str:
    return d.isoformat()
