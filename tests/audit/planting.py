"""Planting audit events with chosen times and attributes (test set-up only).

The application can only append through ``audit.record``, which stamps the
server's clock; tests that need events at 23:00 on a holiday insert them
directly as the superuser the test database runs as. The triggers refuse
UPDATE, DELETE and TRUNCATE, not INSERT, so this changes nothing else.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared_gov.audit.mac import event_mac
from shared_gov.audit.tlog import SELECT_COLUMNS
from shared_gov.db import Database

DEFAULTS: dict[str, Any] = {
    "request_id": None,
    "actor": "k-plant",
    "actor_tenant": None,
    "department": "shimin",
    "roles": ["staff"],
    "auth_strength": "mfa",
    "client_addr": "127.0.0.1",
    "user_agent": "planted",
    "action": "resident.read",
    "resource_type": "resident",
    "subjects": [],
    "fields": [],
    "rows_returned": 1,
    "individual_number": False,
    "purpose": "juki.registration",
    "agreement_id": None,
    "outcome": "allowed",
    "reason": None,
    "policy_ids": [],
}
COLUMNS = ("event_id", "tenant", "occurred_at", *DEFAULTS, "mac")


async def plant(db: Database, tenant: str, events: list[dict[str, Any]]) -> list[str]:
    """Insert ``events`` (each needs ``occurred_at``) into ``tenant``'s log; their ids."""
    rows = []
    ids = []
    key = (await db.town_keys(tenant)).audit_mac
    assert key is not None
    for event in events:
        values = {**DEFAULTS, "actor_tenant": tenant, **event}
        event_id = values.pop("event_id", None) or uuid.uuid4()
        occurred_at: datetime = values.pop("occurred_at")
        assert occurred_at.tzinfo is not None
        ids.append(str(event_id))
        # MACed with the town's audit key, as the service's events are.
        stored = {**values, "event_id": event_id, "tenant": tenant, "occurred_at": occurred_at}
        mac = event_mac(key, [stored.get(c, 0 if c == "xid" else None) for c in SELECT_COLUMNS])
        rows.append((event_id, tenant, occurred_at, *(values[c] for c in DEFAULTS), mac))
    placeholders = ", ".join(f"${i}" for i in range(1, len(COLUMNS) + 1))
    async with db.catalog() as conn:
        await conn.executemany(
            f"INSERT INTO audit.events ({', '.join(COLUMNS)}) VALUES ({placeholders})", rows
        )
    return ids
