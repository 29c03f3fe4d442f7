"""Turning msgspec validation messages into RFC 9457 field errors, and input
rules shared by several request schemas.

msgspec's messages can quote the offending value (``Invalid enum value
'…'``); a client may have sent a personal value there, so we keep only the
location and a reason with every quoted value removed.
"""

from __future__ import annotations

import json
import re
from datetime import MAXYEAR, MINYEAR, date, datetime
from typing import Any

import msgspec

from shared_gov.errors import FieldError
from shared_gov.messages import validation as mv
from shared_gov.messages.core import Joined

# Characters no text field of the API (names, kana, addresses, notes, reasons…)
# may contain, by Unicode general category: every Cc, Cf, Cs, Zl and Zp code
# point (tests/domains/residents/test_validation.py holds this list to the running
# Unicode database). Allowed is everything else: printable text, full-width
# Japanese, the ideographic space U+3000, variation selectors (異体字 IVS,
# category Mn) and private-use 外字 (Co), which migrated registers still carry.
#
# - C0 controls, DEL and C1 controls (U+0000–U+001F, U+007F–U+009F): a name or
#   address is one line; U+0000 cannot be stored in PostgreSQL ``text`` and
#   travelled into the CSV export as a NUL byte; TAB/CR/LF/NEL split CSV rows,
#   log lines and a printed 住民票.
# - U+2028/U+2029 (line/paragraph separators): line breaks to JavaScript and
#   many renderers, so the same splitting by another name.
# - Format characters (Cf), among them the bidi embeddings, overrides and
#   isolates U+202A–U+202E, U+2066–U+2069 and the marks U+200E/U+200F/U+061C:
#   they make a screen or certificate show text in another order than stored
#   ("Trojan Source", CVE-2021-42574); and the invisible ones (U+200B–U+200D,
#   U+2060, U+FEFF, U+00AD, tag characters) make two names that look the same
#   differ, so a search or a duplicate check misses.
# - Lone surrogates (U+D800–U+DFFF): not text; they cannot be encoded as UTF-8
#   (a 500 when written, or an export no reader can open).
_NOT_TEXT = (
    "\\x00-\\x1f\\x7f-\\x9f\\xad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890\\u0891"
    "\\u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u206f"
    "\\ud800-\\udfff\\ufeff\\ufff9-\\ufffb\\U000110bd\\U000110cd\\U00013430-\\U00013438"
    "\\U0001bca0-\\U0001bca3\\U0001d173-\\U0001d17a\\U000e0001\\U000e0020-\\U000e007f"
)
TEXT_PATTERN = "^[^" + _NOT_TEXT + "]*\\Z"
"""Text without control, format or separator characters (see ``_NOT_TEXT``).
``\\Z``, not ``$``: msgspec searches with Python's re, where ``$`` also
matches before a final newline."""

NOT_TEXT = re.compile("[" + _NOT_TEXT + "]")
"""Finds the first character :data:`TEXT_PATTERN` refuses (the CSV import's check)."""

Text = msgspec.Meta(pattern=TEXT_PATTERN)
"""Annotate every free-text ``str`` of a request with this."""

TEXT_REFUSED = mv.NOT_TEXT

# Free text that ends up in a PostgreSQL ``text`` column could not hold U+0000
# (a 500 instead of a 422); these names stay for the schemas that use them and
# now refuse every character :data:`Text` refuses.
NO_NUL_PATTERN = TEXT_PATTERN
NoNul = Text

EARLIEST_DATE = date(1845, 1, 1)
"""No date of a resident record (birth, move, notification, …) is earlier.

Everyone a register holds was alive on or after 1967-11-10, when the
住民基本台帳法 took effect (carrying over the living residents of the 1952
住民登録; foreign residents joined in 2012), and the longest verified human
life is 122 years: 1967 − 122 = 1845. (The oldest verified Japanese person
ever, born 1903, reached 119.) So every real record fits, and typing slips
such as 0001-01-01 or 1098-04-01, which used to be stored, are refused.
"""


def instant_in_range(moment: datetime) -> bool:
    """Whether an aware date-time can be moved to UTC, and a year either way.

    PostgreSQL compares in UTC, where 0001-01-01T00:00+09:00 falls in year 0
    and 9999-12-31T23:59-09:00 in year 10000: outside what ``datetime`` and
    asyncpg can represent, which used to end in a 500.
    """
    return MINYEAR < moment.year < MAXYEAR


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_QUOTED = re.compile(r"'[^']*'")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]*)`")
_TYPE = re.compile(r"^Expected `(?P<expected>[a-z]+(?: \| [a-z]+)*)`, got `(?P<got>[a-z]+)`$")
_LENGTH = re.compile(
    r"^Expected `(?P<type>str|array|object)` of length (?P<op>>=|<=)? ?(?P<n>\d+)$"
)
_BOUND = re.compile(
    r"^Expected `(?P<type>int|float|decimal)` (?P<op>>=|<=|>|<) (?P<n>-?[0-9.e+]+)$"
)
_MULTIPLE = re.compile(
    r"^Expected `(?P<type>int|float|decimal)` that's a multiple of (?P<n>[0-9.e+]+)$"
)

# msgspec's fixed sentences, and their catalogue entries.
_FIXED = {
    "Invalid RFC3339 encoded date": mv.INVALID_DATE,
    "Invalid RFC3339 encoded datetime": mv.INVALID_DATETIME,
    "Invalid RFC3339 encoded time": mv.INVALID_TIME,
    "Expected `datetime` with a timezone component": mv.NEEDS_TIMEZONE,
    "Expected `datetime` with no timezone component": mv.NO_TIMEZONE,
    "Expected `time` with a timezone component": mv.NEEDS_TIMEZONE,
    "Invalid UUID": mv.INVALID_UUID,
    "Invalid base64 encoded string": mv.INVALID_BASE64,
    "Integer value out of range": mv.INTEGER_OUT_OF_RANGE,
}
_LENGTHS = {
    ("str", ">="): mv.TOO_SHORT_TEXT,
    ("str", "<="): mv.TOO_LONG_TEXT,
    ("array", ">="): mv.TOO_FEW_ITEMS,
    ("array", "<="): mv.TOO_MANY_ITEMS,
    ("array", None): mv.EXACT_ITEMS,
    ("object", ">="): mv.TOO_FEW_MEMBERS,
    ("object", "<="): mv.TOO_MANY_MEMBERS,
}

KEY_SHOWN = re.compile(r"[a-z_][a-z0-9_]{0,63}\Z")
"""A member name a problem may repeat: snake_case ASCII, as every field of the API.

Any other key (``山田花子``, ``MARKER``, a long one) is the client's own text
and might be a personal value, so a pointer stops at the object holding it."""


def _to_pointer(path: str) -> str:
    """``.data.family_name`` / ``.items[3].x`` -> ``/family_name`` style pointers."""
    pointer = ""
    for part in re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]", path):
        name, index = part
        pointer += "/" + (name or index)
    return pointer or ""


def _type_name(name: str) -> str:
    """A JSON type as msgspec names it (``str``, ``str | null``), per language."""
    names = name.split(" | ")
    if len(names) == 1:
        return mv.TYPES.get(name, name)
    return Joined([mv.TYPES.get(n, n) for n in names], " | ", ja="または")


def field_error_detail(message: str) -> str:
    """msgspec's sentence (its location removed) as a catalogue message of its kind."""
    if message.startswith("Invalid enum value"):
        return mv.NOT_ALLOWED_VALUE
    if repr(TEXT_PATTERN) in message:
        return mv.NOT_TEXT
    if message.startswith("Expected `str` matching regex"):
        return mv.PATTERN
    fixed = _FIXED.get(message)
    if fixed is not None:
        return fixed
    if match := _TYPE.match(message):
        return mv.WRONG_TYPE(expected=_type_name(match["expected"]), got=_type_name(match["got"]))
    if (match := _LENGTH.match(message)) and (match["type"], match["op"]) in _LENGTHS:
        return _LENGTHS[match["type"], match["op"]](n=match["n"])
    if match := _BOUND.match(message):
        return mv.BOUND(type=_type_name(match["type"]), op=mv.BOUNDS[match["op"]], n=match["n"])
    if match := _MULTIPLE.match(message):
        return mv.MULTIPLE_OF(type=_type_name(match["type"]), n=match["n"])
    detail = _QUOTED.sub("", message).strip()
    return mv.OTHER(detail=detail) if detail else mv.INVALID_VALUE


def msgspec_error_to_field(message: str, strip_prefix: str = "", base: str = "") -> FieldError:
    """Parse a msgspec ``ValidationError`` message into a safe :class:`FieldError`.

    ``base``: the pointer of the object the message is about when the message
    itself does not say (Litestar moves msgspec's location into its own
    ``key``). A missing field's pointer names the field; so does an unknown
    field's, when its name is one a problem may repeat (:data:`KEY_SHOWN`).
    """
    path = ""
    match = _AT.search(message)
    if match:
        path = match.group("path")
        message = message[: match.start()]
    pointer = _to_pointer(path) or base
    if strip_prefix and pointer.startswith(strip_prefix):
        pointer = pointer[len(strip_prefix) :]
    missing = _MISSING.match(message)
    if missing:
        return FieldError(pointer + "/" + missing.group("name"), mv.REQUIRED)
    if message.startswith("Object contains unknown field"):
        unknown = _UNKNOWN.match(message)
        if unknown and KEY_SHOWN.match(unknown["name"]):
            return FieldError(pointer + "/" + unknown["name"], mv.UNKNOWN)
        return FieldError(pointer or "/", mv.UNKNOWN_UNNAMED)
    return FieldError(pointer or "/", field_error_detail(message))


# --- duplicate keys in a JSON body ------------------------------------------------


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as the (key, value) pairs it was written with."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


class _DuplicateKey(ValueError):
    pass


def _first_duplicate(value: Any, pointer: str) -> str | None:
    """The pointer of the first repeated key, in document order, or None.

    Keys are the schema's field names, all snake_case; any other key is the
    client's own text and might be personal, so a pointer stops at the object
    that holds it.
    """
    if isinstance(value, _Pairs):
        seen: set[str] = set()
        for key, _ in value:
            if key in seen:
                return pointer + "/" + key if KEY_SHOWN.match(key) else pointer or "/"
            seen.add(key)
        items = [(k if KEY_SHOWN.match(k) else None, v) for k, v in value]
    elif isinstance(value, list):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return None
    for step, item in items:
        found = _first_duplicate(item, pointer + "/" + (step or ""))
        if found is not None:
            return found if step else pointer or "/"
    return None


def duplicate_key(body: bytes) -> str | None:
    """The JSON pointer of a key that occurs twice in one object of ``body``, or None.

    RFC 8259 §4 leaves duplicate names to the parser: msgspec keeps the last,
    other parsers the first, so two components reading one body could act on
    different values (and a reviewer sees one, the service stores the other).
    A body with a repeated key is refused instead. The check is one pass of the
    standard library's C parser (about 5 µs for a registration, measured);
    a body it cannot parse is left to msgspec, which says why.
    """
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except _DuplicateKey:
        pass
    except (ValueError, RecursionError):
        return None
    else:
        return None
    # Only for a refused body: where the key is, for the problem's pointer.
    return _first_duplicate(json.loads(body, object_pairs_hook=_Pairs), "") or "/"


def refuse_non_text_path_parameters(path_params: Any) -> None:
    """A path parameter with a character :data:`Text` refuses is a 422.

    A ``%00`` in ``…/issuer/pending/{proposal_id}`` reached the handler as a
    NUL and was written into the refusal's audit event; a NUL in a staff id
    or a household number reached the database (a 500). Path parameters are
    refused for every route at once (:func:`text_path_parameters`), before
    any guard, handler or scope reads them: the 422 names the parameter (its
    declared name), never the value, and the application's audit hook records
    it like every other refusal.
    """
    if not path_params:
        return
    bad = [
        FieldError(f"/path/{name}", TEXT_REFUSED)
        for name, value in path_params.items()
        if isinstance(value, str) and NOT_TEXT.search(value)
    ]
    if bad:
        from shared_gov.errors import invalid

        raise invalid(bad)


def text_path_parameters(app: Any) -> Any:
    """Route middleware: :func:`refuse_non_text_path_parameters` on every request.

    A middleware (inside authentication, before every guard) rather than an
    application-wide guard: Litestar calls each guard with a copy of the
    route handler, ~35 µs per request on a 2-core machine, for a check
    that needs no handler (bench/README.md, issue #16).
    """

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        refuse_non_text_path_parameters(scope.get("path_params"))
        await app(scope, receive, send)

    return middleware
