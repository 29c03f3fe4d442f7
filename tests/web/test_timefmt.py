"""Times as a clerk reads them (web/timefmt.py and the ``jst`` filter):
Japan time, the Japanese era on Japanese pages, era boundaries exact."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from jinja2 import Environment

from shared_gov.clock import JST
from shared_gov.web.pages import jst
from shared_gov.web.timefmt import era_of, jst_text, wareki


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 12, 7), "令和8年12月7日"),
        (date(2019, 5, 1), "令和元年5月1日"),
        (date(2019, 4, 30), "平成31年4月30日"),
        (date(2020, 1, 1), "令和2年1月1日"),
        (date(1989, 1, 8), "平成元年1月8日"),
        (date(1989, 1, 7), "昭和64年1月7日"),
        (date(1926, 12, 25), "昭和元年12月25日"),
        (date(1926, 12, 24), "大正15年12月24日"),
        (date(1912, 7, 30), "大正元年7月30日"),
        (date(1912, 7, 29), "明治45年7月29日"),
        (date(1873, 1, 1), "明治6年1月1日"),
        (date(1872, 12, 31), "1872年12月31日"),
    ],
)
def test_era_boundaries(day: date, expected: str) -> None:
    assert wareki(day) == expected


def test_era_of_names_the_era_and_its_year() -> None:
    assert era_of(date(2026, 12, 7)) == ("令和", 8)
    assert era_of(date(1800, 1, 1)) is None


def test_a_utc_instant_is_shown_in_japan_time() -> None:
    # 23:30 UTC on 30 April 2019 is already 1 May in Japan: the new era.
    moment = datetime(2019, 4, 30, 23, 30, tzinfo=UTC)
    assert jst_text(moment, "ja") == "令和元年5月1日 08:30"
    assert jst_text(moment, "en") == "2019-05-01 08:30 JST"
    # 14:59:59 UTC is still 30 April in Japan.
    before = datetime(2019, 4, 30, 14, 59, 59, tzinfo=UTC)
    assert jst_text(before, "ja", seconds=True) == "平成31年4月30日 23:59:59"


def test_the_examples_of_the_issue() -> None:
    moment = datetime(2026, 12, 7, 14, 5, 9, tzinfo=JST)
    assert jst_text(moment, "ja") == "令和8年12月7日 14:05"
    assert jst_text(moment, "en") == "2026-12-07 14:05 JST"
    assert jst_text(moment, "ja", seconds=True) == "令和8年12月7日 14:05:09"


def test_strings_dates_naive_times_and_nothing() -> None:
    # The log's own spelling (UTC with a Z) and an offset.
    assert jst_text("2026-12-07T05:05:00.000000Z", "ja") == "令和8年12月7日 14:05"
    assert jst_text("2026-12-07T14:05:00+09:00", "en") == "2026-12-07 14:05 JST"
    # Without an offset, Japan time (as the API reads one).
    assert jst_text(datetime(2026, 12, 7, 14, 5), "en") == "2026-12-07 14:05 JST"
    assert jst_text("2026-12-07", "ja") == "令和8年12月7日"
    assert jst_text(date(2026, 12, 7), "en") == "2026-12-07"
    assert jst_text(None) == "—"
    assert jst_text("not a time") == "—"


def test_the_filter_follows_the_page_language() -> None:
    env = Environment(autoescape=True)
    env.filters["jst"] = jst
    template = env.from_string("{{ when | jst }}|{{ when | jst(seconds=True) }}")
    when = datetime(2026, 12, 7, 5, 5, 9, tzinfo=UTC)
    assert template.render(when=when, lang="ja") == "令和8年12月7日 14:05|令和8年12月7日 14:05:09"
    assert template.render(when=when, lang="en") == "2026-12-07 14:05 JST|2026-12-07 14:05:09 JST"
    # A template without a language (a mail, a PDF) gets Japanese.
    assert template.render(when=when).startswith("令和8年")
