"""The console's store, shared by every host: ``catalog.console_store`` in PostgreSQL.

The console's only state is its server-side sessions and the development
issuer's one-time codes. Kept in files they served one host; behind a load
balancer each request may reach another host, and every host shares the
database. :class:`DatabaseStore` implements Litestar's store protocol
(:class:`litestar.stores.base.NamespacedStore`) over that table:

- keys are kept as their SHA-256 (a copy of the table holds no session id
  or code that could be replayed);
- values are kept with an HMAC-SHA256 (:func:`store_key`, from the console
  secret the CSRF tokens are signed with) over the namespace, the key's hash
  and the value: whoever can write the table but does not hold the secret (a
  database superuser, a leaked database password) cannot mint a session for
  any member of staff of any town, nor move one to another id or namespace.
  A value whose MAC does not verify is no value (logged, without values);
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
import hmac
import secrets
from datetime import timedelta
from typing import Any, Final, Self

import asyncpg
from litestar.stores.base import NamespacedStore

from shared_gov.logs import get_logger

log = get_logger(__name__)

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


_MAC_SIZE: Final = hashlib.sha256().digest_size
_KEY_PURPOSE: Final = b"shared-gov console store v1"


def store_key(secret: str) -> bytes:
    """The values' MAC key, derived from the console secret (``SHARED_GOV_CONSOLE_SECRET``):
    every host that shares the secret reads every other host's values."""
    return hmac.new(secret.encode(), _KEY_PURPOSE, hashlib.sha256).digest()


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _mac(key: bytes, namespace: str, digest: bytes, data: bytes) -> bytes:
    space = namespace.encode()
    # Length-prefixed: no namespace and value can be shifted into another pair.
    message = len(space).to_bytes(4, "big") + space + digest + data
    return hmac.new(key, message, hashlib.sha256).digest()


def _seconds(value: int | timedelta | None) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    return seconds if seconds > 0 else None


class DatabaseStore(NamespacedStore):
    """Litestar's store protocol over ``catalog.console_store``; see the module."""

    __slots__ = ("_key", "_pool")

    def __init__(self, pool: StorePool, namespace: str, key: bytes) -> None:
        """``key``: the values' MAC key (:func:`store_key`)."""
        self._pool = pool
        self._key = key
        self.namespace = namespace

    def with_namespace(self, namespace: str) -> Self:
        return type(self)(self._pool, f"{self.namespace}/{namespace}", self._key)

    def _open(self, digest: bytes, stored: Any) -> bytes | None:
        """The value in ``stored`` if its MAC verifies, else None (a row not written here)."""
        if stored is None:
            return None
        raw = bytes(stored)
        mac, data = raw[:_MAC_SIZE], raw[_MAC_SIZE:]
        if len(raw) < _MAC_SIZE or not hmac.compare_digest(
            mac, _mac(self._key, self.namespace, digest, data)
        ):
            # Never the key or the value: the namespace says which store.
            log.warning("console.store_value_refused", namespace=self.namespace)
            return None
        return data

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
        digest = _digest(key)
        await self._execute(
            f"""
            INSERT INTO {_TABLE} (namespace, key_digest, value, expires_at)
            VALUES ($1, $2, $3, now() + make_interval(secs => $4))
            ON CONFLICT (namespace, key_digest)
            DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
            """,  # noqa: S608 - the table's name is a constant
            self.namespace,
            digest,
            _mac(self._key, self.namespace, digest, data) + data,
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
                return self._open(digest, value)
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
        return self._open(digest, row)

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
        """A value that is there and verifies (:meth:`get`)."""
        return await self.get(key) is not None

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
