"""What an event may carry besides its type: field names and ids of known shapes.

Only shapes that cannot hold a personal value pass: field names of the
resident record, UUIDs (``*_id``), 8-digit serial numbers with their check
digit (``atena_no``), a history number (``history_no``) and local government
codes (``*_town``). A value of another shape is a bug in the caller
(ValueError), never a client's input; an offending value is never echoed.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from shared_gov.checkdigits import is_valid_lgcode, is_valid_serial
from shared_gov.domains.residents.events.kinds import KINDS, RESIDENT_FIELDS

KEY = re.compile(r"\A[a-z][a-z0-9_]{0,39}\Z")
# The canonical text form str(uuid.UUID(...)) produces: checked without parsing.
CANONICAL_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_COUNT = re.compile(r"\A[1-9][0-9]{0,8}\Z")
MAX_IDS: Final = 8


def _count(value: str) -> str | None:
    return value if _COUNT.match(value) else None


def _serial(value: str) -> str | None:
    # The register's 宛名番号 are 8 digits (7 + check digit). Any other length
    # is refused: a 12-digit 個人番号 passes the modulus-11 check one time in
    # eleven.
    return value if len(value) == 8 and is_valid_serial(value) else None


def _uuid(value: str) -> str | None:
    if CANONICAL_UUID.match(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _town(value: str) -> str | None:
    return value if is_valid_lgcode(value) else None


@functools.lru_cache(maxsize=256)
def checker(key: str) -> Callable[[str], str | None]:
    """How values of id ``key`` are checked (and normalised), or ValueError.

    Only shapes that cannot carry a personal value are accepted: UUIDs
    (``*_id``), 8-digit serial numbers with their check digit (``atena_no``), a
    history number (``history_no``) and local government codes (``*_town``).
    A personal field's name is refused as a key whatever its value.
    """
    if not KEY.match(key):
        # Not echoed: a caller's mistake may have put a value here.
        raise ValueError("an event id key is not an identifier")
    if key == "household_no":
        raise ValueError(
            "household_no is withheld with the address under 支援措置; "
            "consumers read it through the record API"
        )
    if key == "history_no":
        return _count
    if key == "atena_no":
        return _serial
    if key in RESIDENT_FIELDS:
        raise ValueError(f"{key} is a field of the record, not an event id")
    if key.endswith("_id"):
        return _uuid
    if key.endswith("_town"):
        return _town
    raise ValueError(f"event id {key} is not a known kind of id (*_id, *_town, ...)")


def id_value(key: str, value: object, check: Callable[[str], str | None] | None = None) -> str:
    """The value of id ``key`` in its stored form, or ValueError."""
    check = check or checker(key)
    checked = check(value) if isinstance(value, str) else None
    if checked is None:
        raise ValueError(f"event id {key} does not have the shape of that id")
    return checked


def checked_resident_id(value: object) -> str:
    checked = _uuid(value) if isinstance(value, str) else None
    if checked is None:
        raise ValueError("resident_id must be a UUID")
    return checked


def field_names(kind: str, field_names: Iterable[str]) -> list[str]:
    if kind not in KINDS:
        raise ValueError(f"unknown event type {kind!r}")
    names = sorted(set(field_names))
    unknown = [n for n in names if n not in RESIDENT_FIELDS]
    if unknown:
        # Name the offenders only if they look like names: a value passed by
        # mistake must not end up in a log or a traceback.
        shown = ", ".join(n for n in unknown if KEY.match(n)) or "(not names)"
        raise ValueError(f"not fields of a resident record: {shown}")
    return names


def checked_ids(ids: Mapping[str, object], known: dict[tuple[str, str], str]) -> dict[str, str]:
    """Checked ids; ``known`` remembers pairs already checked (bulk: shared ids)."""
    if len(ids) > MAX_IDS:
        raise ValueError(f"an event carries at most {MAX_IDS} ids")
    out: dict[str, str] = {}
    for key, value in ids.items():
        if not isinstance(value, str):
            checker(key)  # an unknown key is the first thing to report
            raise ValueError(f"event id {key} does not have the shape of that id")
        pair = (key, value)
        checked = known.get(pair)
        if checked is None:
            checked = id_value(key, value)
            if len(known) < 1000:
                known[pair] = checked
        out[key] = checked
    return out


def id_check(key: str) -> Callable[[str], str | None]:
    """How values of id ``key`` are checked: the value in its stored form, or None.

    For a caller that checks ids as it reads them (an import, its 宛名番号)
    and then passes them in :func:`batch`'s ``checked_each``. ValueError for
    a key that is not a known kind of id.
    """
    return checker(key)
