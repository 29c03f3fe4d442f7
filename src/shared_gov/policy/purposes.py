"""Purposes of use (利用目的), read from ``policies/purposes.toml``.

A purpose names the fields it may need, the record actions it covers, its
legal basis, and whether it is a legally listed use of the individual number
(番号法 別表). Requests state one in ``X-Purpose``; Cedar receives the
purpose's fields and actions in its context.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shared_gov import errors

# The personal fields a policy decides on, one by one. Identifiers and record
# dates (id, atena_no, state, version, resident_since, …) are not personal on
# their own and come with any permitted field.
POLICY_FIELDS: tuple[str, ...] = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "sex",
    "address",
    "postal_code",
    "individual_number",
    "juminhyo_code",
    "phone",
    "former_surname",
    "domicile",
    "previous_address",
    "forward_address",
    "household_no",
    "relationship",
    "resident_type",
    # Record dates: for a birth they are the birth date, for a death the date
    # of death, so they are decided like any other personal field.
    "resident_since",
    "address_since",
    "notified_on",
    "removed_on",
)
RECORD_ACTIONS = frozenset({"search", "register", "move", "history", "household", "protect"})


@dataclass(frozen=True, slots=True)
class Purpose:
    code: str
    name: str
    legal_basis: str
    individual_number: bool
    actions: frozenset[str]
    fields: frozenset[str]


def default_policies_dir() -> Path:
    """``policies/`` next to the source tree, or ``SHARED_GOV_POLICIES_DIR``."""
    import os

    configured = os.environ.get("SHARED_GOV_POLICIES_DIR")
    if configured:
        return Path(configured)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "policies"
        if (candidate / "schema.cedarschema").exists():
            return candidate
    return Path("policies").resolve()


def load_purposes(path: Path) -> dict[str, Purpose]:
    """Parse and check purposes.toml; unknown fields or actions are errors."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    result: dict[str, Purpose] = {}
    for code, item in data.get("purposes", {}).items():
        fields = frozenset(item.get("fields", []))
        actions = frozenset(item.get("actions", []))
        unknown = (fields - set(POLICY_FIELDS)) | (actions - RECORD_ACTIONS)
        if unknown:
            raise ValueError(f"purpose {code}: unknown fields or actions {sorted(unknown)}")
        if "individual_number" in fields and not item.get("individual_number", False):
            raise ValueError(f"purpose {code}: lists individual_number but is not a listed use")
        result[code] = Purpose(
            code=code,
            name=str(item["name"]),
            legal_basis=str(item["legal_basis"]),
            individual_number=bool(item.get("individual_number", False)),
            actions=actions,
            fields=fields,
        )
    return result


@cache
def purposes() -> dict[str, Purpose]:
    """The platform's purposes (read once per process)."""
    return load_purposes(default_policies_dir() / "purposes.toml")


def purpose_from_header(value: str | None) -> Purpose:
    """The purpose named by an ``X-Purpose`` header; 400 when absent or unknown."""
    if value is None or not value.strip():
        raise errors.bad_request("the X-Purpose header is required for personal data")
    purpose = purposes().get(value.strip())
    if purpose is None:
        raise errors.bad_request("X-Purpose names no known purpose (see policies/purposes.toml)")
    return purpose
