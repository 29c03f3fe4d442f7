"""The registry itself: every active town's issuer, read from ``catalog.issuers``
in one query and kept in memory by issuer URL (package docstring)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from shared_gov import errors
from shared_gov.auth.config import IssuerConfig
from shared_gov.db.engine import Database
from shared_gov.logs import get_logger
from shared_gov.validation import msgspec_error_to_field

from .checks import issuer_problems, keyset_from_jwks
from .jwks import FetchPolicy, JwksSource

log = get_logger(__name__)


@dataclass(eq=False, slots=True)
class IssuerEntry:
    """One town's issuer, ready for verification."""

    issuer: str
    tenant: str
    audience: str
    algorithms: tuple[str, ...]
    staff_claim: str
    department_claim: str
    roles_claim: str
    keys: JwksSource
    fingerprint: str = field(repr=False)


def fingerprint(row: Mapping[str, Any]) -> str:
    """A ``catalog.issuers`` row's configuration as one string (equal iff unchanged)."""
    return json.dumps(
        [
            row["issuer"],
            row["tenant_code"],
            row["audience"],
            row["jwks_uri"],
            row["jwks"],
            list(row["algorithms"]),
            row["staff_claim"],
            row["department_claim"],
            row["roles_claim"],
        ],
        sort_keys=True,
        separators=(",", ":"),
    )


Loader = Callable[[], Awaitable[list[Mapping[str, Any]]]]

_LOAD_SQL = """
SELECT i.issuer, i.tenant_code, i.audience, i.jwks_uri, i.jwks, i.algorithms,
       i.staff_claim, i.department_claim, i.roles_claim
FROM catalog.issuers i JOIN catalog.tenants t ON t.code = i.tenant_code
WHERE t.status = 'active'
"""


def catalog_loader(db: Database) -> Loader:
    """Read every active town's issuer in one query."""

    async def load() -> list[Mapping[str, Any]]:
        async with db.catalog() as conn:
            rows: list[Mapping[str, Any]] = await conn.fetch(_LOAD_SQL)
        return rows

    return load


class IssuerRegistry:
    """Every registered town issuer, by issuer URL, cached in memory."""

    def __init__(
        self, loader: Loader, *, policy: FetchPolicy | None = None, ttl: float = 60.0
    ) -> None:
        self._loader = loader
        self.policy = policy or FetchPolicy()
        self._ttl = ttl
        self._entries: dict[str, IssuerEntry] = {}
        self._generation = 0
        self._loaded_generation = -1
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    def invalidate(self, tenant: str = "*") -> None:
        """Reload on next use (``tenant``: the town that changed, or ``"*"``).

        The reload reads every town, so the argument only documents the
        caller. Entries whose configuration is unchanged are kept with their
        fetched keys and refetch limit: a notification about a town's staff
        permissions must not reset the 30 s limit or cost a JWKS fetch.
        """
        del tenant
        self._generation += 1

    def _fresh(self) -> bool:
        return (
            self._loaded_generation == self._generation
            and self.policy.clock() - self._loaded_at < self._ttl
        )

    async def get(self, issuer: str) -> IssuerEntry | None:
        """The entry for ``issuer``, or None if no active town registered it."""
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    await self._reload()
        return self._entries.get(issuer)

    async def trusts(self, tenant: str, configuration: str) -> bool:
        """Whether ``tenant``'s registered issuer still has the configuration
        ``configuration`` (its :func:`fingerprint`): a console session opened
        through an issuer the town has since replaced or removed ends."""
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    await self._reload()
        return any(
            e.tenant == tenant and e.fingerprint == configuration for e in self._entries.values()
        )

    async def _reload(self) -> None:
        generation = self._generation
        rows = await self._loader()
        previous = self._entries
        entries: dict[str, IssuerEntry] = {}
        for row in rows:
            configuration = fingerprint(row)
            old = previous.get(row["issuer"])
            if old is not None and old.fingerprint == configuration:
                entries[old.issuer] = old
                continue
            entry = self._build(row, configuration)
            if entry is not None:
                entries[entry.issuer] = entry
        self._entries = entries
        self._loaded_generation = generation
        self._loaded_at = self.policy.clock()

    def _build(self, row: Mapping[str, Any], configuration: str) -> IssuerEntry | None:
        tenant = str(row["tenant_code"]).strip()
        problems: list[errors.FieldError]
        try:
            config = msgspec.convert(
                {
                    "url": row["issuer"],
                    "audience": row["audience"],
                    "jwks_uri": row["jwks_uri"],
                    "jwks": row["jwks"],
                    "algorithms": list(row["algorithms"]),
                    "staff_claim": row["staff_claim"],
                    "department_claim": row["department_claim"],
                    "roles_claim": row["roles_claim"],
                },
                IssuerConfig,
            )
            problems = issuer_problems(config)
        except msgspec.ValidationError as exc:
            problems = [msgspec_error_to_field(str(exc))]
        if problems:
            # A row written around the API (manual SQL): never trust it.
            log.warning(
                "auth.issuer_ignored", issuer_tenant=tenant, fields=[p.pointer for p in problems]
            )
            return None
        inline = keyset_from_jwks(config.jwks) if config.jwks is not None else None
        return IssuerEntry(
            issuer=config.url,
            tenant=tenant,
            audience=config.audience,
            algorithms=tuple(dict.fromkeys(config.algorithms)),
            staff_claim=config.staff_claim,
            department_claim=config.department_claim,
            roles_claim=config.roles_claim,
            keys=JwksSource(tenant, uri=config.jwks_uri, inline=inline, policy=self.policy),
            fingerprint=configuration,
        )
