"""Turning msgspec validation messages into RFC 9457 field errors, and input
rules shared by several request schemas.

msgspec's messages can quote the offending value (``Invalid enum value
'…'``); a client may have sent a personal value there, so we keep only the
location and a reason with every quoted value removed.
"""

from __future__ import annotations

import re
from datetime import MAXYEAR, MINYEAR, datetime

import msgspec

from shared_gov.errors import FieldError

NO_NUL_PATTERN = r"^[^\x00]*$"
"""Free text that ends up in a PostgreSQL ``text`` column: it cannot hold U+0000,
and a value with one failed in the database (a 500) instead of here (a 422).
``$`` suffices: a trailing newline is allowed anyway."""

NoNul = msgspec.Meta(pattern=NO_NUL_PATTERN)


def instant_in_range(moment: datetime) -> bool:
    """Whether an aware date-time can be moved to UTC, and a year either way.

    PostgreSQL compares in UTC, where 0001-01-01T00:00+09:00 falls in year 0
    and 9999-12-31T23:59-09:00 in year 10000: outside what ``datetime`` and
    asyncpg can represent, which used to end in a 500.
    """
    return MINYEAR < moment.year < MAXYEAR


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_QUOTED = re.compile(r"'[^']*'")
_UNKNOWN = re.compile(r"^Object contains unknown field `[^`]*`")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]*)`")


def _to_pointer(path: str) -> str:
    """``.data.family_name`` / ``.items[3].x`` -> ``/family_name`` style pointers."""
    pointer = ""
    for part in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", path):
        name, index = part
        pointer += "/" + (name or index)
    return pointer or ""


def msgspec_error_to_field(message: str, strip_prefix: str = "") -> FieldError:
    """Parse a msgspec ``ValidationError`` message into a safe :class:`FieldError`."""
    path = ""
    match = _AT.search(message)
    if match:
        path = match.group("path")
        message = message[: match.start()]
    pointer = _to_pointer(path)
    if strip_prefix and pointer.startswith(strip_prefix):
        pointer = pointer[len(strip_prefix) :]
    missing = _MISSING.match(message)
    if missing:
        return FieldError(pointer + "/" + missing.group("name"), "required field is missing")
    if _UNKNOWN.match(message):
        return FieldError(pointer or "/", "unknown field")
    if message.startswith("Invalid enum value"):
        return FieldError(pointer or "/", "not one of the allowed values")
    detail = _QUOTED.sub("", message).strip() or "invalid value"
    return FieldError(pointer or "/", detail)
