"""The resident GET's read: one round trip through the town's read function.

A resident GET at home reads one row. In a bound transaction that took three
round trips on the pooled connection (``BEGIN`` and the binding, the
``SELECT``, ``COMMIT``), which were most of the request's cost (bench/README.md,
"Where a resident GET's CPU goes"). The town's read function
``<schema>.resident_read(id)`` (tenant migration ``t0013``) is owned by the
town's role and runs with its rights, ``search_path`` pinned, so calling it
alone reads what the bound ``SELECT`` read, as the town's role, and nothing
of any other town; the call is its own read-only transaction.

Decrypting stays in the repository (:func:`repository._resident`), which
remains the one place where personal columns are turned into values.
"""

from __future__ import annotations

from typing import Final

from shared_gov.crypto.keyring import keys_of
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.models import Resident

READ_FUNCTION: Final = "resident_read"
"""The town's read function (t0013): ``resident_read(uuid) RETURNS SETOF residents``."""

COLUMNS: Final = ", ".join(repo.PLAIN + repo.ENCRYPTED) + ", protection_linked"
"""What the GET needs of the row: the repository's read columns, in its order
(the function returns the whole row type; these are picked from it)."""


async def get(uow: TenantUnitOfWork, resident_id: str) -> Resident | None:
    """The current record (with its rule-1 flag), or None.

    In a read-only unit of work through the town's read function; otherwise
    (a two-town transaction under an agreement, a write) the repository's
    bound ``SELECT``.
    """
    if not uow.read_only:
        return await repo.get(uow, resident_id)
    rows = await uow.call_read(READ_FUNCTION, COLUMNS, resident_id)
    return repo._resident(keys_of(uow), rows[0]) if rows else None
