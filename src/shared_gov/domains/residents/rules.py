"""The rules a resident change's input is held to, and record versions.

Kana, dates not in the future and not before :data:`~shared_gov.validation.EARLIEST_DATE`,
届出日 against 異動日 (:data:`MOVE_OUT_NOTICE_AHEAD`), which fields each move
event changes; ids as requests name them; the ETag / If-Match of a record's
version. Each problem is a :class:`~shared_gov.errors.FieldError` at its
pointer; the use cases (:mod:`.service`) raise them together.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import date, timedelta
from typing import Any

import msgspec

from shared_gov import errors
from shared_gov.crypto.blind import compose_marks
from shared_gov.domains.residents import messages as m
from shared_gov.domains.residents.models import (
    HEAD,
    RELATIONSHIPS,
    ChangeEvent,
    Resident,
)
from shared_gov.domains.residents.schemas import MoveCreate
from shared_gov.errors import FieldError
from shared_gov.validation import EARLIEST_DATE


def etag(resident: Resident) -> str:
    return f'"v{resident.version}"'


def parse_if_match(header: str | None) -> int | None:
    """The version an If-Match header names; None for ``*``. 428 when absent."""
    if header is None or not header.strip():
        raise errors.precondition_required(m.IF_MATCH_REQUIRED)
    value = header.strip()
    if value == "*":
        return None
    digits = value[2:-1]
    if (
        value.startswith('"v')
        and value.endswith('"')
        and 0 < len(digits) <= 9
        and digits.isascii()
        and digits.isdigit()
    ):
        return int(digits)
    raise errors.precondition_failed(m.IF_MATCH_UNKNOWN)


def normalize_kana(value: str) -> str:
    """NFKC (half-width to full-width), hiragana to katakana, no spaces, marks
    typed apart composed (``crypto.blind.normalize_kana``)."""
    text = unicodedata.normalize("NFKC", value).replace(" ", "").replace("\u3000", "")
    return compose_marks("".join(chr(ord(c) + 0x60) if "ぁ" <= c <= "ゖ" else c for c in text))


def _is_katakana(value: str) -> bool:
    return bool(value) and all("ァ" <= c <= "ヺ" or c in "ー・" for c in value)


def _check_kana(problems: list[FieldError], pointer: str, value: str | None) -> str | None:
    if value is None:
        return None
    kana = normalize_kana(value)
    if not _is_katakana(kana):
        problems.append(FieldError(pointer, m.KANA_ONLY))
    return kana


def _check_not_future(problems: list[FieldError], pointer: str, value: date, today: date) -> None:
    if value > today:
        problems.append(FieldError(pointer, m.NOT_IN_FUTURE))


def _check_not_too_early(problems: list[FieldError], pointer: str, value: date) -> None:
    if value < EARLIEST_DATE:
        problems.append(FieldError(pointer, m.NOT_BEFORE(date=EARLIEST_DATE.isoformat())))


MOVE_OUT_NOTICE_AHEAD = timedelta(days=14)
"""How long before the move a 転出届 may be made.

住民基本台帳法 第24条: the person moving out notifies "あらかじめ" (before
the move; afterwards is accepted too, like every 届出). The law sets no
earliest day; towns take a 転出届 from about 14 days before the planned
move, and a planned move further away is still too uncertain to record. Every
other event is notified after it happened: 転入 (第22条), 転居 (第23条) and
世帯変更 (第25条) within 14 days after, a birth or death under 戸籍法 after the
fact, and a late notification (期間経過) is still recorded. So: ``notified_on``
is never before ``move_date``, except up to this long for a 転出.
"""
_NOTIFIED_AHEAD = {
    ChangeEvent.MOVE_OUT_DOMESTIC: MOVE_OUT_NOTICE_AHEAD,
    ChangeEvent.MOVE_OUT_ABROAD: MOVE_OUT_NOTICE_AHEAD,
}


def _check_notified(
    problems: list[FieldError], event: ChangeEvent | None, move_date: date, notified_on: date
) -> None:
    """届出日 against 異動日 (see :data:`MOVE_OUT_NOTICE_AHEAD`); None: an entry event.

    Not when 異動日 is refused itself: that is the one problem to report.
    """
    if any(p.pointer == "/move_date" for p in problems):
        return
    ahead = _NOTIFIED_AHEAD.get(event, timedelta(0)) if event is not None else timedelta(0)
    if notified_on < move_date - ahead:
        problems.append(
            FieldError(
                "/notified_on",
                m.NOTIFIED_TOO_EARLY(days=ahead.days) if ahead else m.NOTIFIED_BEFORE_MOVE,
            )
        )


def parse_id(resident_id: str) -> str:
    try:
        return str(uuid.UUID(resident_id))
    except ValueError:
        raise errors.not_found(m.NO_SUCH_RESIDENT) from None


def subject_of(resident_id: str) -> str | None:
    """The resident id a request names, when it is one (for the audit record).

    A refused or failed attempt on a resident is still about that resident:
    the tenant scope records this id (hashed) whatever the outcome, so the
    auditor's search by resident and the resident's access report show it.
    """
    try:
        return str(uuid.UUID(resident_id))
    except ValueError:
        return None


# The fields of a move that each event changes; any other one given is refused
# (a move states what changes: a stated change that is not made is as wrong as
# an unstated one that is).
_NAME_FIELDS = ("family_name", "given_name", "family_name_kana", "given_name_kana")
_EVENT_FIELDS: dict[str, frozenset[ChangeEvent]] = {
    "address": frozenset({ChangeEvent.MOVE_WITHIN_TOWN}),
    "postal_code": frozenset({ChangeEvent.MOVE_WITHIN_TOWN}),
    **dict.fromkeys((*_NAME_FIELDS, "former_surname"), frozenset({ChangeEvent.NAME_CHANGE})),
    "forward_address": frozenset({ChangeEvent.MOVE_OUT_DOMESTIC, ChangeEvent.MOVE_OUT_ABROAD}),
    "previous_head_relationship": frozenset({ChangeEvent.HEAD_OF_HOUSEHOLD_CHANGE}),
}


# Optional record fields a move may clear with null (omitted: UNSET, kept).
_CLEARABLE = frozenset({"postal_code", "former_surname", "forward_address"})


def _given(data: MoveCreate, name: str) -> bool:
    value = getattr(data, name)
    if value is msgspec.UNSET:
        return False
    return value is not None or name in _CLEARABLE


def _event_changes(data: MoveCreate, problems: list[FieldError]) -> dict[str, Any]:
    """Validate the fields an event needs and return the record changes they make.

    Only what the move states changes: an optional field it omits keeps its
    value (``null`` clears it), so a 転居 without ``postal_code`` keeps the
    stored one.
    """
    event = data.event
    for name, events_of in _EVENT_FIELDS.items():
        if event not in events_of and _given(data, name):
            problems.append(FieldError(f"/{name}", m.NOT_CHANGED_BY(event=event.value)))
    changes: dict[str, Any] = {}
    if event is ChangeEvent.MOVE_WITHIN_TOWN:
        if data.address is None:
            problems.append(FieldError("/address", m.ADDRESS_REQUIRED))
        changes["address"] = data.address
        if data.postal_code is not msgspec.UNSET:
            changes["postal_code"] = data.postal_code
    elif event is ChangeEvent.NAME_CHANGE:
        for name in _NAME_FIELDS:
            value = getattr(data, name)
            if name.endswith("_kana"):
                value = _check_kana(problems, f"/{name}", value)
            if value is not None:
                changes[name] = value
        if not changes:
            problems.append(FieldError("/family_name", m.NAME_CHANGE_NEEDS_NAME))
        if data.former_surname is not msgspec.UNSET:
            changes["former_surname"] = data.former_surname
    elif event is ChangeEvent.HEAD_OF_HOUSEHOLD_CHANGE:
        rel = data.previous_head_relationship
        if rel is None or rel not in RELATIONSHIPS or rel == HEAD:
            problems.append(FieldError("/previous_head_relationship", m.FORMER_HEAD_RELATIONSHIP))
    elif event in (ChangeEvent.MOVE_OUT_DOMESTIC, ChangeEvent.MOVE_OUT_ABROAD) and (
        data.forward_address is not msgspec.UNSET
    ):
        changes["forward_address"] = data.forward_address
    return changes


def _check_name_changes(current: Resident, changes: dict[str, Any]) -> None:
    """A name_change whose every given name is the current one changes nothing: 422."""
    given = [name for name in _NAME_FIELDS if name in changes]
    if given and all(changes[name] == getattr(current, name) for name in given):
        raise errors.invalid([FieldError(f"/{name}", m.IS_CURRENT_NAME) for name in given])
