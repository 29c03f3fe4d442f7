"""The canonical event encoding (docs/audit.md, "Leaf"): byte for byte what
``json.dumps(..., sort_keys=True)`` writes for the documented conversions,
for any values — and a change to any column changes the bytes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_gov.audit import tlog

TEXT_COLUMNS = (
    "action",
    "actor",
    "actor_tenant",
    "agreement_id",
    "auth_strength",
    "client_addr",
    "department",
    "outcome",
    "purpose",
    "reason",
    "request_id",
    "resource_type",
    "tenant",
    "user_agent",
)

# Text as PostgreSQL can store it: any code point but NUL and lone surrogates.
pg_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
events = st.fixed_dictionaries(
    {
        **{c: st.none() | pg_text for c in TEXT_COLUMNS},
        "event_id": st.uuids(),
        "occurred_at": st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from(
                [UTC, timezone(timedelta(hours=9)), timezone(-timedelta(hours=5))]
            ),
        ),
        "xid": st.integers(min_value=0, max_value=2**63 - 1),
        "subjects": st.lists(st.none() | int64, max_size=4),
        "roles": st.lists(st.none() | pg_text, max_size=3),
        "fields": st.lists(pg_text, max_size=4),
        "policy_ids": st.lists(pg_text, max_size=3),
        "rows_returned": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "individual_number": st.booleans(),
    }
)


def reference(event: dict[str, Any]) -> bytes:
    """The documented encoding, the slow obvious way."""
    doc = dict(event)
    doc["event_id"] = str(event["event_id"])
    doc["occurred_at"] = (
        event["occurred_at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rjust(26, "0") + "Z"
    )
    doc["xid"] = str(event["xid"])
    doc["subjects"] = [None if s is None else str(s) for s in event["subjects"]]
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


@settings(max_examples=400, deadline=None)
@given(events)
def test_the_fast_encoding_is_the_documented_one(event: dict[str, Any]) -> None:
    assert tlog.canonical_event(event) == reference(event)
    assert json.loads(tlog.canonical_event(event))["tenant"] == event["tenant"]


def sample() -> dict[str, Any]:
    return {
        **{c: f"{c}-値" for c in TEXT_COLUMNS},
        "event_id": uuid.UUID("47d5bb83-fad3-4b5d-92ec-daba754c1cf2"),
        "occurred_at": datetime(2026, 11, 26, 8, 31, 36, 5, tzinfo=UTC),
        "xid": 677276,
        "subjects": [2**63 - 1],
        "roles": ["staff"],
        "fields": ["address"],
        "policy_ids": [],
        "rows_returned": 1,
        "individual_number": True,
    }


def test_a_known_encoding() -> None:
    event = sample()
    event.update(reason=None, user_agent='a "quoted"\n\\ \u2028 😀')
    text = tlog.canonical_event(event).decode()
    assert text.startswith('{"action":"action-値","actor":"actor-値",')
    assert '"occurred_at":"2026-11-26T08:31:36.000005Z"' in text
    assert '"subjects":["9223372036854775807"]' in text
    assert '"xid":"677276"' in text
    assert '"reason":null' in text
    assert '"user_agent":"a \\"quoted\\"\\n\\\\ \u2028 😀"' in text
    assert '"individual_number":true,' in text
    assert '"rows_returned":1,' in text


@pytest.mark.parametrize(
    ("column", "value"),
    [
        *[(c, None) for c in TEXT_COLUMNS],
        *[(c, "x") for c in TEXT_COLUMNS],
        ("event_id", uuid.uuid4()),
        ("occurred_at", datetime(2026, 11, 26, 8, 31, 36, 6, tzinfo=UTC)),
        ("xid", 677277),
        ("subjects", [2**63 - 2]),
        ("subjects", []),
        ("roles", ["staff", "admin"]),
        ("fields", []),
        ("policy_ids", ["p"]),
        ("rows_returned", 2),
        ("individual_number", False),
    ],
)
def test_every_column_counts(column: str, value: Any) -> None:
    changed = {**sample(), column: value}
    assert tlog.event_leaf_hash(changed) != tlog.event_leaf_hash(sample())


def test_the_same_instant_in_another_zone_encodes_the_same() -> None:
    jst = {
        **sample(),
        "occurred_at": sample()["occurred_at"].astimezone(timezone(timedelta(hours=9))),
    }
    assert tlog.canonical_event(jst) == tlog.canonical_event(sample())


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("individual_number", 1),
        ("rows_returned", True),
        ("xid", "677276"),
        ("action", 5),
        ("subjects", ["1"]),
        ("occurred_at", datetime(2026, 11, 26)),  # no time zone
    ],
)
def test_unexpected_types_fail_loudly(column: str, value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        tlog.canonical_event({**sample(), column: value})


@settings(max_examples=300, deadline=None)
@given(events, st.none() | pg_text)
def test_the_pair_is_the_leaf_and_the_mac_encodings(
    event: dict[str, Any], client_request_id: str | None
) -> None:
    """``canonical_pair`` (audit verify's one encoding for both checks) gives
    exactly the leaf's bytes and the bytes ``event_mac`` MACs, and so the same MAC."""
    from shared_gov.audit.mac import content_mac, event_mac
    from shared_gov.audit.tlog.canonical import canonical_pair

    values = [event[c] for c in tlog.EVENT_COLUMNS] + [client_request_id]
    leaf, for_mac = canonical_pair(values)
    assert leaf == tlog.canonical_values(values)
    fixed = dict(event, occurred_at=tlog.PLACEHOLDER_TIME, xid=0)
    assert for_mac == tlog.canonical_values(
        [fixed[c] for c in tlog.EVENT_COLUMNS] + [client_request_id]
    )
    key = b"k" * 32
    assert content_mac(key, for_mac, "w", 3, b"p") == event_mac(key, values, "w", 3, b"p")
    assert content_mac(key, for_mac, "w", 3, b"p") != event_mac(key, values, "w", 4, b"p")
