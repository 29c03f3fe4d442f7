"""Tenant manifests: one TOML file per municipality under ``tenants/``.

A manifest is the whole description of a town the platform needs at
onboarding: its local government code (checked with its check digit), names,
prefecture, expected population (which later sizes blind indexes) and
departments. The same structure is accepted as JSON by ``POST /api/v1/tenants``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec

from shared_gov import errors
from shared_gov.auth.config import IssuerConfig
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.messages import access as ma
from shared_gov.messages import identity as mi
from shared_gov.messages import operations as mo
from shared_gov.policy.purposes import purposes
from shared_gov.validation import NoNul

__all__ = ["Department", "IssuerConfig", "Manifest", "load_manifest", "parse_manifest"]

DeptCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{1,31}\Z", max_length=32)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=64), NoNul]


class Department(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A department (課) of the town: a short ASCII code, its Japanese name, and
    the purposes it starts with (later changed through the admin API)."""

    code: DeptCode
    name: ShortText
    purposes: Annotated[list[str], msgspec.Meta(max_length=50)] = []


class Manifest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What ``tenants/<town>.toml`` holds."""

    code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}\Z")]
    name: ShortText
    name_kana: ShortText
    prefecture: ShortText
    population: Annotated[int, msgspec.Meta(ge=1, le=20_000_000)]
    departments: Annotated[list[Department], msgspec.Meta(min_length=1, max_length=200)]
    postal_prefix: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{3,5}\Z")] = "100"
    """First digits of the town's postal codes, used by the demo seeder only."""
    phone_area_code: Annotated[str, msgspec.Meta(pattern=r"^0[0-9]{1,4}\Z")] = "03"
    """Telephone area code, used by the demo seeder only."""
    issuer: IssuerConfig | None = None
    """The town's own identity provider; without it, only the built-in issuer."""

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.to_builtins(self)
        return result


def validate_manifest(manifest: Manifest) -> Manifest:
    """Checks beyond field types: check digit, unique department codes."""
    problems: list[errors.FieldError] = []
    if not is_valid_lgcode(manifest.code):
        problems.append(errors.FieldError("/code", mi.CHECK_DIGIT))
    seen: set[str] = set()
    known = purposes()
    for i, dept in enumerate(manifest.departments):
        if dept.code in seen:
            problems.append(errors.FieldError(f"/departments/{i}/code", mi.DUPLICATE_DEPARTMENT))
        seen.add(dept.code)
        for j, code in enumerate(dept.purposes):
            if code not in known:
                problems.append(
                    errors.FieldError(f"/departments/{i}/purposes/{j}", ma.UNKNOWN_PURPOSE)
                )
    issuer = manifest.issuer
    if issuer is not None and (issuer.jwks_uri is None) == (issuer.jwks is None):
        problems.append(errors.FieldError("/issuer", mi.ONE_OF_JWKS))
    if problems:
        raise errors.invalid(problems)
    return manifest


def parse_manifest(data: object) -> Manifest:
    """Convert decoded TOML/JSON into a validated :class:`Manifest`."""
    try:
        manifest = msgspec.convert(data, Manifest)
    except msgspec.ValidationError as exc:
        raise errors.invalid([errors.FieldError(*_pointer_and_reason(str(exc)))]) from None
    return validate_manifest(manifest)


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file (400 when it cannot be read or parsed)."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise errors.bad_request(mo.MANIFEST_NOT_TOML(file=path.name, why=exc)) from None
    except OSError as exc:
        # No such file, a directory, no permission: one line, not a traceback.
        why = exc.strerror or type(exc).__name__
        raise errors.bad_request(mo.MANIFEST_UNREADABLE(why=why.lower())) from None
    return parse_manifest(data)


def _pointer_and_reason(message: str) -> tuple[str, str]:
    # Local import: the helper lives with the HTTP error shaping.
    from shared_gov.validation import msgspec_error_to_field

    field = msgspec_error_to_field(message)
    return field.pointer, field.detail
