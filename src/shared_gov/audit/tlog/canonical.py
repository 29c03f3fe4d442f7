"""The canonical form of an audit event: the bytes its Merkle leaf hashes.

:func:`canonical_event` (and :func:`canonical_values`, the same from a row's
values) writes the deterministic JSON ``docs/audit.md`` documents for
auditors who verify with their own code; :func:`event_leaf_hash` is the
event's leaf. :func:`b64` and :func:`format_time` are the spellings every
hash, key and time of the log is shown in (checkpoints and proofs too).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring as _encode_string  # C-accelerated when available
from typing import Any, Final

from shared_gov.audit import merkle

# Version 1 of the canonical form covers exactly these columns of
# audit.events, in this (sorted) order. A column added to the table later is
# NOT part of version 1: old leaves must keep their hashes, so a new column
# needs a new version of the encoding.
EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "action",
    "actor",
    "actor_tenant",
    "agreement_id",
    "auth_strength",
    "client_addr",
    "department",
    "event_id",
    "fields",
    "individual_number",
    "occurred_at",
    "outcome",
    "policy_ids",
    "purpose",
    "reason",
    "request_id",
    "resource_type",
    "roles",
    "rows_returned",
    "subjects",
    "tenant",
    "user_agent",
    "xid",
)
if list(EVENT_COLUMNS) != sorted(EVENT_COLUMNS):  # pragma: no cover - a guard for edits
    raise RuntimeError("EVENT_COLUMNS must stay sorted: the canonical form relies on it")

OPTIONAL_COLUMNS: Final[tuple[str, ...]] = ("client_request_id",)
"""Columns added later that the canonical form covers only when they are not
null: the key is then inserted at its sorted place. An event that leaves them
null has exactly its version 1 bytes, so every older leaf keeps its hash."""

SELECT_COLUMNS: Final[tuple[str, ...]] = EVENT_COLUMNS + OPTIONAL_COLUMNS
"""What :func:`canonical_values` takes, in this order (:data:`EVENT_SELECT`)."""

EVENT_SELECT: Final = ", ".join(f"e.{c}" for c in SELECT_COLUMNS)
"""The columns of the canonical form, for ``SELECT ... FROM audit.events AS e``."""


def b64(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 §4), as every hash and key is shown."""
    return base64.b64encode(data).decode("ascii")


def format_time(value: datetime) -> str:
    """UTC, always six fractional digits and a ``Z``: one spelling per instant."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("audit times are timezone-aware")
    if offset:
        value = value.astimezone(UTC)
    # isoformat always writes a four-digit year and, with this timespec, six
    # fractional digits (strftime's %Y does not pad before year 1000).
    return value.isoformat(timespec="microseconds")[:26] + "Z"


def _text(value: str | None) -> str:
    # json's own string encoder (what json.dumps(ensure_ascii=False) uses);
    # it refuses anything but a str, so a type surprise fails loudly.
    return "null" if value is None else _encode_string(value)


def _texts(values: Sequence[str | None]) -> str:
    try:
        # Arrays hold no NULL elements in practice: the fast path.
        return "[" + ",".join(map(_encode_string, values)) + "]"  # type: ignore[arg-type]
    except TypeError:
        return "[" + ",".join(["null" if v is None else _encode_string(v) for v in values]) + "]"


def _int64s(values: Sequence[int | None]) -> str:
    # 64-bit integers as decimal strings: JSON numbers beyond 2^53 lose
    # precision in many verifiers' parsers (JavaScript's, for one).
    return "[" + ",".join(["null" if v is None else f'"{_int(v)}"' for v in values]) + "]"


def _int(value: int) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return value


PLACEHOLDER_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""The ``occurred_at`` a MAC covers (the database sets the real one: audit/mac.py)."""
_PLACEHOLDER_TIME_JSON: Final = '"' + format_time(PLACEHOLDER_TIME) + '"'


def _time_json(value: datetime) -> str:
    # Every event's MAC formats the placeholder: its text is a constant.
    if value is PLACEHOLDER_TIME:
        return _PLACEHOLDER_TIME_JSON
    return '"' + format_time(value) + '"'


def _bool(value: bool) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    raise TypeError(f"expected a bool, got {type(value).__name__}")


# The JSON object of EVENT_COLUMNS, keys in order, one placeholder per value.
_CANONICAL = "{" + ",".join(f'"{c}":%s' for c in EVENT_COLUMNS) + "}"
# The same with a client's request id (sorted between client_addr and department).
_WITH_CLIENT_ID = "{" + ",".join(f'"{c}":%s' for c in sorted(SELECT_COLUMNS)) + "}"
_CLIENT_ID_AT: Final = sorted(SELECT_COLUMNS).index("client_request_id")


def canonical_values(values: Sequence[Any]) -> bytes:
    """:func:`canonical_event` of the values in :data:`SELECT_COLUMNS` order
    (or the 23 of :data:`EVENT_COLUMNS` alone).

    Written out by hand rather than with ``json.dumps`` (2x faster, which
    ``audit verify`` needs over millions of events); the tests check it
    byte for byte against ``json.dumps(..., sort_keys=True)``.
    """
    return _joined(*_parts(values))


def canonical_pair(values: Sequence[Any]) -> tuple[bytes, bytes]:
    """The canonical bytes of a stored event, and the same with ``occurred_at``
    and ``xid`` set to the MAC's placeholders (:mod:`shared_gov.audit.mac`).

    ``audit verify`` needs both for every event (its leaf, its MAC): encoding
    the other 21 values once for both saves about a quarter of its CPU. Each
    is byte for byte :func:`canonical_values` of the same values, the second
    with the placeholders put in (the tests compare them).
    """
    parts, client_request_id = _parts(values)
    fixed = list(parts)
    fixed[_AT] = _PLACEHOLDER_TIME_JSON
    fixed[_XID] = '"0"'
    return _joined(parts, client_request_id), _joined(fixed, client_request_id)


_AT: Final = EVENT_COLUMNS.index("occurred_at")
_XID: Final = EVENT_COLUMNS.index("xid")


def _joined(parts: Sequence[str], client_request_id: str | None) -> bytes:
    if client_request_id is None:
        return (_CANONICAL % tuple(parts)).encode("utf-8")
    extended = (*parts[:_CLIENT_ID_AT], _text(client_request_id), *parts[_CLIENT_ID_AT:])
    return (_WITH_CLIENT_ID % extended).encode("utf-8")


def _parts(values: Sequence[Any]) -> tuple[tuple[str, ...], Any]:
    """Each value of :data:`EVENT_COLUMNS` as JSON, and the client's request id."""
    client_request_id = None
    if len(values) == len(SELECT_COLUMNS):
        client_request_id = values[len(EVENT_COLUMNS)]
        values = values[: len(EVENT_COLUMNS)]
    (
        action,
        actor,
        actor_tenant,
        agreement_id,
        auth_strength,
        client_addr,
        department,
        event_id,
        fields,
        individual_number,
        occurred_at,
        outcome,
        policy_ids,
        purpose,
        reason,
        request_id,
        resource_type,
        roles,
        rows_returned,
        subjects,
        tenant,
        user_agent,
        xid,
    ) = values
    parts = (
        _text(action),
        _text(actor),
        _text(actor_tenant),
        _text(agreement_id),
        _text(auth_strength),
        _text(client_addr),
        _text(department),
        _encode_string(str(event_id)),
        _texts(fields),
        _bool(individual_number),
        _time_json(occurred_at),
        _text(outcome),
        _texts(policy_ids),
        _text(purpose),
        _text(reason),
        _text(request_id),
        _text(resource_type),
        _texts(roles),
        str(_int(rows_returned)),
        _int64s(subjects),
        _text(tenant),
        _text(user_agent),
        f'"{_int(xid)}"',
    )
    return parts, client_request_id


def canonical_event(event: Mapping[str, Any]) -> bytes:
    """Version 1 canonical bytes of an audit event (a row with :data:`EVENT_COLUMNS`).

    A JSON object with exactly the columns of :data:`EVENT_COLUMNS` as keys,
    sorted, no whitespace, UTF-8 without escaping non-ASCII — what
    ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
    writes, and RFC 8785 (JCS) output for these value types:

    - ``event_id``: lowercase hyphenated UUID; ``occurred_at``:
      ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC); ``xid`` and each of ``subjects``
      (64-bit integers): decimal strings;
    - ``rows_returned``: a JSON number; ``individual_number``: a boolean;
    - text arrays (``roles``, ``fields``, ``policy_ids``) in stored order;
    - SQL NULL: ``null``;
    - plus ``client_request_id`` (:data:`OPTIONAL_COLUMNS`) when the event has
      one that is not null.
    """
    values = [event[c] for c in EVENT_COLUMNS]
    values += [event.get(c) for c in OPTIONAL_COLUMNS]
    return canonical_values(values)


def event_leaf_hash(event: Mapping[str, Any]) -> bytes:
    """The event's leaf: ``SHA-256(0x00 || canonical_event(event))``."""
    return merkle.leaf_hash(canonical_event(event))


def values_leaf_hash(values: Sequence[Any]) -> bytes:
    """:func:`event_leaf_hash` of the values in :data:`EVENT_COLUMNS` order."""
    return merkle.leaf_hash(canonical_values(values))
