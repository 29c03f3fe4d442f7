"""The platform's kaigo purposes, extended by the domain's own purposes.toml: the
resident fields stay the platform's, the domain adds only its own fields and actions."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared_gov.domains import registry
from shared_gov.policy.purposes import load_purposes, purposes


def test_kaigo_purposes_cover_resident_and_domain_fields() -> None:
    qualification = purposes()["kaigo.qualification"]
    assert qualification.name == "介護保険の資格管理"  # the platform's
    assert qualification.individual_number
    assert {"birth_date", "address", "individual_number"} <= qualification.fields
    assert {"InsuredPerson.insured_number", "Determination.proposal"} <= qualification.fields
    assert {"search", "determine", "correct", "facility_manage"} <= qualification.actions
    premium = purposes()["kaigo.premium"]
    assert "InsuredPerson.periods" in premium.fields
    assert "InsuredPerson.notes" not in premium.fields
    assert "determine" not in premium.actions
    assert not premium.individual_number


def _domain() -> registry.DomainSpec:
    return next(s for s in registry.domains() if s.name == "kaigo")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # An extension may not name another domain's (the residents') fields.
        (
            '[purposes."kaigo.qualification"]\nextends = "platform"\nactions = []\n'
            'fields = ["phone"]\n',
            "unknown fields",
        ),
        # ... nor change the legal basis or the listed use of 個人番号.
        (
            '[purposes."kaigo.qualification"]\nextends = "platform"\nactions = []\n'
            "fields = []\nindividual_number = true\n",
            "names only fields and actions",
        ),
        # ... nor extend anything but the platform's.
        (
            '[purposes."kaigo.qualification"]\nextends = "juki.registration"\n'
            "actions = []\nfields = []\n",
            "extends",
        ),
    ],
    ids=["other-domains-field", "more-than-fields", "not-the-platform"],
)
def test_an_extension_adds_only_the_domains_own(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "purposes.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=problem):
        load_purposes(path, _domain())


def test_the_platform_file_cannot_extend(tmp_path: Path) -> None:
    path = tmp_path / "purposes.toml"
    path.write_text(
        '[purposes."x.y"]\nextends = "platform"\nactions = []\nfields = []\n', encoding="utf-8"
    )
    with pytest.raises(ValueError, match="only a domain's purpose extends"):
        load_purposes(path)
