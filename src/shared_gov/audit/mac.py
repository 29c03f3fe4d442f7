"""The application's seal on each audit event: a MAC under the town's audit key.

A database superuser can insert, delete or change rows of ``audit.events``
behind the triggers' back. What they cannot do is compute an HMAC-SHA256
under the town's audit key, which only the key provider can unwrap (an HSM
where configured; ``catalog.data_keys`` holds it wrapped, kind ``amac``).
So every event the application writes carries ``mac``:

    mac = HMAC-SHA256(audit key,
                      "shared-gov/audit-mac/1\\n" || content || "\\n" ||
                      writer || "\\n" || wseq || "\\n" || prev_mac)

- ``content``: the event's canonical bytes (:func:`~shared_gov.audit.tlog.canonical_values`,
  the leaf's encoding) with ``occurred_at`` and ``xid`` replaced by fixed
  placeholders: the database assigns those two when it stores the event, so
  the application cannot know them. Everything the application said — the
  event id it chose, the town, actor, action, subjects, outcome… — is covered.
- ``writer``, ``wseq``, ``prev_mac`` (empty for events written in a write's
  own transaction): the chain of the process's audit writer
  (:mod:`shared_gov.audit.writer`). A deleted event leaves a gap in its
  chain; events swapped between positions no longer verify.

``audit verify`` (:mod:`shared_gov.audit.verify`) recomputes every MAC and
walks every chain.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any, Final

from shared_gov.audit.tlog import (
    EVENT_COLUMNS,
    PLACEHOLDER_TIME,
    SELECT_COLUMNS,
    canonical_values,
)

__all__ = ["MAC_VERSION", "content_mac", "event_mac", "mac_of_values", "payload_values"]

MAC_VERSION: Final = b"shared-gov/audit-mac/1\n"
_EPOCH: Final = PLACEHOLDER_TIME
_AT: Final = EVENT_COLUMNS.index("occurred_at")
_XID: Final = EVENT_COLUMNS.index("xid")
_N: Final = len(SELECT_COLUMNS)


def event_mac(
    key: bytes,
    values: Sequence[Any],
    writer: str | None = None,
    wseq: int | None = None,
    prev_mac: bytes | None = None,
) -> bytes:
    """The MAC of an event given its values in :data:`SELECT_COLUMNS` order.

    ``values[occurred_at]`` and ``values[xid]`` are ignored (placeholders).
    """
    fixed = list(values[:_N])
    fixed[_AT] = _EPOCH
    fixed[_XID] = 0
    return content_mac(key, canonical_values(fixed), writer, wseq, prev_mac)


def content_mac(
    key: bytes,
    content: bytes,
    writer: str | None = None,
    wseq: int | None = None,
    prev_mac: bytes | None = None,
) -> bytes:
    """:func:`event_mac` from the event's canonical bytes with the placeholders
    already in (``canonical_pair``'s second: ``audit verify`` encodes once)."""
    message = b"".join(
        (
            MAC_VERSION,
            content,
            b"\n",
            (writer or "").encode("ascii"),
            b"\n",
            b"" if wseq is None else str(wseq).encode("ascii"),
            b"\n",
            prev_mac or b"",
        )
    )
    return hmac.digest(key, message, "sha256")


def mac_of_values(
    key: bytes, values: Sequence[Any], writer: Any, wseq: int | None, prev_mac: Any
) -> bytes:
    """:func:`event_mac` of a stored row (``writer`` a UUID or None, ``prev_mac`` bytes or None)."""
    return event_mac(
        key,
        values,
        None if writer is None else str(writer),
        wseq,
        None if prev_mac is None else bytes(prev_mac),
    )


def payload_values(payload: dict[str, Any], tenant: str) -> list[Any]:
    """The values :func:`event_mac` takes, from what the recorder sends ``audit.record``.

    Exactly what the database will store (``audit.record`` copies the
    payload's values), so that ``audit verify`` recomputes the same bytes
    from the stored row.
    """
    # Missing keys as audit.record stores them (NULL, or its COALESCE defaults).
    get = payload.get
    by_column = {
        "action": get("action"),
        "actor": get("actor"),
        "actor_tenant": get("actor_tenant"),
        "agreement_id": get("agreement_id"),
        "auth_strength": get("auth_strength"),
        "client_addr": get("client_addr"),
        "department": get("department"),
        "event_id": payload["event_id"],
        "fields": get("fields") or [],
        "individual_number": bool(get("individual_number", False)),
        "occurred_at": _EPOCH,
        "outcome": get("outcome"),
        "policy_ids": get("policy_ids") or [],
        "purpose": get("purpose"),
        "reason": get("reason"),
        "request_id": get("request_id"),
        "resource_type": get("resource_type"),
        "roles": get("roles") or [],
        "rows_returned": int(get("rows") or 0),
        "subjects": [int(s) for s in get("subjects") or []],
        "tenant": tenant,
        "user_agent": get("user_agent"),
        "xid": 0,
        "client_request_id": get("client_request_id"),
    }
    return [by_column[c] for c in SELECT_COLUMNS]
