"""The README tells a newcomer what exists: every purpose of use (the platform's
and every installed domain's), every search mode, every role, and how to verify
a town's audit log. When one is added, this test names what the README misses."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from shared_gov.auth.principal import ROLES
from shared_gov.domains.invoices.schemas import SearchIn
from shared_gov.domains.kaigo.schemas import InsuredSearch
from shared_gov.domains.residents.schemas import ResidentSearch
from shared_gov.policy.purposes import purposes

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    """The text of the README section headed ``title`` (up to the next heading)."""
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", README, re.M | re.S)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def test_every_purpose_is_listed() -> None:
    listed = _section("Purposes of use (利用目的)")
    missing = [code for code in purposes() if f"`{code}`" not in listed]
    assert missing == []
    assert "`juki.disclosure`" in listed


def test_every_search_mode_is_listed() -> None:
    modes = _section("Search modes")
    for struct in (ResidentSearch, InsuredSearch, SearchIn):
        fields = [f.name for f in msgspec.structs.fields(struct)]
        missing = [name for name in fields if name not in modes]
        assert missing == [], struct.__name__


def test_every_role_says_what_it_may_call() -> None:
    roles = _section("Who may call what (roles)")
    assert [role for role in sorted(ROLES) if f"| `{role}` |" not in roles] == []


def test_the_first_hour_is_in_it() -> None:
    assert "shared-gov audit verify --tenant 172065" in README
    assert "SHARED_GOV_PORT=8001 make run" in README
    assert "Ctrl-C" in README
    assert "Accept-Language: ja" in README
