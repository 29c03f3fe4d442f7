"""The console's store, shared by every host: ``catalog.console_store`` in PostgreSQL.

The console's only state is its server-side sessions and the development
issuer's one-time codes. Kept in files they served one host; behind a load
balancer each request may reach another host, and every host shares the
database. :class:`DatabaseStore` implements Litestar's store protocol
(:class:`litestar.stores.base.NamespacedStore`) over that table:

- keys are kept as their SHA-256 (a copy of the table holds no session id
  or code that could be replayed);
- expiry is the database's clock (``now()``), the same for every host;
  an expired row is never returned, is deleted when read, and
  :meth:`DatabaseStore.purge` sweeps the rest (run on about one write in
  :data:`PURGE_EVERY`);
- the store has a small pool of its own (:class:`StorePool`, at most
  :data:`POOL_SIZE` connections): the session is saved as a response
  starts, and a streamed export still holds its pooled connection then —
  the service never holds two connections of its main pool at once.

The idle timeout is not the store's: the session keeps its last use and the
guard ends it (:mod:`.signin`), so that the next page can say why.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import timedelta
from typing import Any, Final, Self

import asyncpg
from litestar.stores.base import NamespacedStore

POOL_SIZE: Final = 2
PURGE_EVERY: Final = 64
_TABLE: Final = "catalog.console_store"


class StorePool:
    """A lazily opened pool of the store's own, shared by its namespaces."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.url,
                        min_size=0,
                        max_size=POOL_SIZE,
                        timeout=self.timeout,
                        command_timeout=self.timeout,
                    )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _seconds(value: int | timedelta | None) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return seconds if seconds > 0 else None


class DatabaseStore(NamespacedStore):
    """Litestar's store protocol over ``catalog.console_store``; see the module."""

    __slots__ = ("_pool",)

    def __init__(self, pool: StorePool, namespace: str) -> None:
        self._pool = pool
        self.namespace = namespace

    def with_namespace(self, namespace: str) -> Self:
        return type(self)(self._pool, f"{self.namespace}/{namespace}")

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        pool = await self._pool.pool()
        return await pool.fetchval(sql, *args)

    async def _execute(self, sql: str, *args: Any) -> str:
        pool = await self._pool.pool()
        result: str = await pool.execute(sql, *args)
        return result

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        data = value.encode() if isinstance(value, str) else bytes(value)
        await self._execute(
            f"""
            INSERT INTO {_TABLE} (namespace, key_digest, value, expires_at)
            VALUES ($1, $2, $3, now() + make_interval(secs => $4))
            ON CONFLICT (namespace, key_digest)
            DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
            """,  # noqa: S608 - the table's name is a constant
            self.namespace,
            _digest(key),
            data,
            _seconds(expires_in),
        )
        if secrets.randbelow(PURGE_EVERY) == 0:
            await self.purge()

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        digest = _digest(key)
        renew = _seconds(renew_for)
        if renew is not None:
            # Renewed only when it has an expiry (the protocol's rule), in one statement.
            value = await self._fetchval(
                f"""
                UPDATE {_TABLE} SET expires_at = now() + make_interval(secs => $3)
                WHERE namespace = $1 AND key_digest = $2
                  AND expires_at IS NOT NULL AND expires_at > now()
                RETURNING value
                """,  # noqa: S608 - constant table name
                self.namespace,
                digest,
                renew,
            )
            if value is not None:
                return bytes(value)
        row = await self._fetchval(
            f"""
            WITH gone AS (
                DELETE FROM {_TABLE}
                WHERE namespace = $1 AND key_digest = $2 AND expires_at <= now()
            )
            SELECT value FROM {_TABLE}
            WHERE namespace = $1 AND key_digest = $2
              AND (expires_at IS NULL OR expires_at > now())
            """,  # noqa: S608 - constant table name
            self.namespace,
            digest,
        )
        return None if row is None else bytes(row)

    async def delete(self, key: str) -> None:
        await self._execute(
            f"DELETE FROM {_TABLE} WHERE namespace = $1 AND key_digest = $2",  # noqa: S608
            self.namespace,
            _digest(key),
        )

    async def delete_all(self) -> None:
        """Every value of this namespace and its children (the protocol's rule)."""
        await self._execute(
            f"DELETE FROM {_TABLE} WHERE namespace = $1 OR starts_with(namespace, $1 || '/')",  # noqa: S608
            self.namespace,
        )

    async def exists(self, key: str) -> bool:
        found = await self._fetchval(
            f"""
            SELECT EXISTS (SELECT 1 FROM {_TABLE}
                           WHERE namespace = $1 AND key_digest = $2
                             AND (expires_at IS NULL OR expires_at > now()))
            """,  # noqa: S608 - constant table name
            self.namespace,
            _digest(key),
        )
        return bool(found)

    async def expires_in(self, key: str) -> int | None:
        seconds = await self._fetchval(
            f"""
            SELECT extract(epoch FROM expires_at - now()) FROM {_TABLE}
            WHERE namespace = $1 AND key_digest = $2 AND expires_at > now()
            """,  # noqa: S608 - constant table name
            self.namespace,
            _digest(key),
        )
        return None if seconds is None else int(seconds)

    async def close(self) -> None:
        """Close the pool this store shares with its sibling namespaces."""
        await self._pool.close()

    async def purge(self) -> int:
        """Delete the expired values of every namespace; how many went."""
        status = await self._execute(
            f"DELETE FROM {_TABLE} WHERE expires_at <= now()"  # noqa: S608
        )
        return int(status.rsplit(" ", 1)[-1])
