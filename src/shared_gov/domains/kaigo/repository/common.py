"""What every repository module of the domain needs: the town's keys, JSON envelopes."""

from __future__ import annotations

import json
from typing import Any

from shared_gov.crypto.keyring import TownKeys, keys_of
from shared_gov.db import TenantUnitOfWork


def keys(uow: TenantUnitOfWork) -> TownKeys:
    """The town's unwrapped keys the unit of work carries."""
    return keys_of(uow)


def seal(k: TownKeys, table: str, column: str, row_id: str, value: Any) -> bytes | None:
    """``value`` as JSON in an envelope bound to (town, table, column, row id)."""
    if value is None:
        return None
    return k.encrypt(table, column, row_id, json.dumps(value, ensure_ascii=False, sort_keys=True))


def unseal(k: TownKeys, table: str, column: str, row_id: str, blob: bytes | None) -> Any:
    text = k.decrypt(table, column, row_id, blob)
    return None if text is None else json.loads(text)


def affected(status: str) -> int:
    """Rows an UPDATE/DELETE/INSERT status line reports."""
    return int(status.rsplit(" ", 1)[-1])
