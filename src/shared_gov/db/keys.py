"""The key interface the db layer is handed: it knows no key, only where keys come from.

Every unit of work carries its town's unwrapped keys (repositories encrypt
and decrypt with them), so :meth:`Database.tenant` asks a :class:`KeySource`
for them before it binds. The implementation is ``shared_gov.crypto.keyring.
Keyring``, given to the :class:`~shared_gov.db.engine.Database` by whoever
assembles the process (``app.py``, the CLI, tests); what the keys are is the
crypto layer's business, so here they are an opaque object.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import asyncpg

CatalogOpener = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]
"""Opens a plain transaction on catalog tables (``Database.catalog``)."""


class KeySource(Protocol):
    """Where a town's keys come from."""

    async def town_keys(
        self, catalog: CatalogOpener, code: str, held: asyncpg.Connection | None = None
    ) -> object:
        """The town's keys, read through ``catalog`` when not cached.

        A caller that holds a pooled connection passes it as ``held``: a cache
        miss then reads the keys on it rather than taking a second connection
        (never hold two pooled connections at once: callers that each hold one
        and wait for another would exhaust the pool). ``held``'s transaction
        must not have changed the town's keys (they would be cached before it
        commits).

        Raises :class:`LookupError` when the town has no (complete) keys
        (offboarded, or never set up), and ``errors.Unavailable`` when the
        key provider cannot be reached.
        """
        ...

    def invalidate(self, tenant: str = "*") -> None:
        """Forget the cached keys of one town (or of all)."""
        ...
