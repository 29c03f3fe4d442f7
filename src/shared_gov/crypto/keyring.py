"""Each town's data keys: creation, caching, rotation and shredding.

Key hierarchy (DESIGN.md, "Field-level encryption"):

- a key-encryption key (KEK) per town, held by the key provider (a local key
  file, or a non-extractable key in an HSM through PKCS#11);
- under it, a random 256-bit data key (DEK) per (town, column, version) and a
  separate key per blind index, stored only wrapped, in ``catalog.data_keys``
  (tenant roles cannot read the catalog);
- unwrapped once per process and cached (:meth:`Keyring.town`), so the hot
  path never derives or unwraps a key.

Rotation without downtime:

- KEK rotation re-wraps the data keys only; no row is touched.
- DEK rotation adds a new version that becomes the write key at once (every
  worker hears it through LISTEN/NOTIFY); a resumable job re-encrypts rows in
  batches with ``FOR UPDATE SKIP LOCKED`` while reads accept both versions
  (each envelope names its key version); when a final sweep, after a grace
  period for late writers, finds no row on the old version, it is retired
  and its wrapped key deleted.
- Blind-index rotation adds a new index key version too, but an index value
  cannot say which key made it, so the two versions live in two columns
  (:func:`index_column`: odd versions in ``bidx_<name>``, even ones in
  ``bidx_<name>_alt``). While both are live every write stores both values
  and searches look for either; see :mod:`shared_gov.keys.index_rotation`.

Crypto-shredding: :meth:`Keyring.shred` destroys the town's KEK in the
provider and deletes its wrapped keys, which makes every ciphertext of the
town unreadable, in the database and in every backup.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text

from shared_gov import errors, metrics
from shared_gov.crypto.blind import MAX_BITS, BlindIndex, plan_bits
from shared_gov.crypto.envelope import FieldCipher, aad, aad_part
from shared_gov.crypto.providers import (
    KeyNotFound,
    KeyProvider,
    KeyProviderError,
    WrapError,
    load_provider,
)
from shared_gov.db.keys import CatalogOpener
from shared_gov.domains import registry
from shared_gov.logs import get_logger
from shared_gov.messages import http as m
from shared_gov.settings import Settings

if TYPE_CHECKING:
    import asyncpg

    from shared_gov.db import Database, TenantUnitOfWork

log = get_logger(__name__)

# Which columns are envelopes and which blind indexes exist is declared by the
# domains (shared_gov.domains.registry): one data key per encrypted column, one
# index key per blind index, plus the platform's own audit_subject index.
FULL_WIDTH_INDEXES = frozenset(registry.PLATFORM_INDEXES)
"""Keyed hashes of record ids in the audit log: auditors search by record
without the log naming anyone. Full width: they must not collide."""


def dek_names() -> tuple[str, ...]:
    """``table.column`` of every encrypted column of every installed domain."""
    return registry.dek_names()


def index_names() -> tuple[str, ...]:
    """Every blind index with a key (the domains' ones, then the platform's)."""
    return registry.index_names()


def __getattr__(name: str) -> tuple[str, ...]:
    # The former constants, read from the registry when asked for (tests, benches).
    if name == "DEK_NAMES":
        return dek_names()
    if name == "BLIND_INDEXES":
        return index_names()
    raise AttributeError(name)


REENCRYPT_GRACE_SECONDS = 25.0
"""How long a rotation waits for every worker to hear of a key change before it
retires a key. A worker learns of changes through LISTEN/NOTIFY; one whose
listening connection died silently finds out through the listener's heartbeat
within ``2 × db.notify.HEARTBEAT_SECONDS`` (a wait, then a probe with the same
timeout) and drops every cached key. Until then it writes with the keys it
has: a retired data key would make its rows unreadable, a retired index key
unfindable. So the grace covers the heartbeat bound with a margin (a test
keeps the two constants in step)."""


def wrap_aad(tenant: str, kind: str, name: str, version: int) -> bytes:
    # Binds a wrapped key to its town, kind, name and version: a wrapped key
    # copied to another row of data_keys does not unwrap.
    return aad(tenant, kind, name, str(version))


@dataclass(frozen=True, slots=True)
class WriteKeys:
    """The keys a bulk writer needs, as plain bytes (picklable, for worker processes).

    Per data key name its write version and key; per blind index its live
    versions (version, bits, key). Key bytes never appear in the repr, so
    they cannot reach a log or a traceback through it.
    """

    tenant: str
    deks: dict[str, tuple[int, bytes]]
    indexes: dict[str, tuple[tuple[int, int, bytes], ...]]

    def __repr__(self) -> str:
        return (
            f"WriteKeys(tenant={self.tenant!r}, {len(self.deks)} data keys, "
            f"{len(self.indexes)} blind indexes)"
        )


@dataclass(slots=True)
class TownKeys:
    """A town's unwrapped keys, ready for the repository."""

    tenant: str
    ciphers: dict[str, FieldCipher]
    indexes: dict[str, BlindIndex]
    versions: dict[str, int] = field(default_factory=dict)
    """Write version per DEK name (for status and tests)."""
    index_versions: dict[str, tuple[tuple[int, BlindIndex], ...]] = field(default_factory=dict)
    """Every live version of each blind index, oldest first: one, or two while
    the index key is being rotated (both are written and searched)."""
    write_keys: WriteKeys | None = field(default=None, repr=False)
    """The same write keys as bytes, for the import's worker processes."""
    audit_mac: bytes | None = field(default=None, repr=False)
    """The town's audit key: HMAC-SHA256 over each event it writes
    (:mod:`shared_gov.audit.mac`). None only while a town has none yet."""
    _heads: dict[str, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Per ``table.column``: the encoded (town, table, column) of its associated data."""
    _row: tuple[str, bytes] = field(default=("", b""), init=False, repr=False, compare=False)
    """The last row id decrypted for, and its encoding (one tuple: replaced whole)."""

    def encrypt(self, table: str, column: str, row_id: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        cipher = self.ciphers[f"{table}.{column}"]
        return cipher.encrypt(value.encode(), (self.tenant, table, column, row_id))

    def decrypt(self, table: str, column: str, row_id: str, blob: bytes | None) -> str | None:
        if blob is None:
            return None
        name = f"{table}.{column}"
        cipher = self.ciphers[name]
        # A GET decrypts ~20 fields of one row: the (town, table, column) part
        # of each column's associated data is encoded once per column, the row
        # id once per row (the last one is kept), not once per field.
        head = self._heads.get(name)
        if head is None:
            head = self._heads[name] = aad(self.tenant, table, column)
        row = self._row
        if row[0] != row_id:
            row = self._row = (row_id, aad_part(row_id))
        return cipher.decrypt_parts(bytes(blob), head, row[1]).decode()

    def index(self, name: str, normalized: str) -> int:
        """The value under the index's newest key (for indexes that are never rotated)."""
        return self.indexes[name].value(normalized)

    def index_values(self, name: str, normalized: str) -> tuple[tuple[int, int], ...]:
        """(version, value) under every live key of index ``name``, oldest first."""
        return tuple(
            (version, index.value(normalized)) for version, index in self.index_versions[name]
        )


AUDIT_MAC_KIND = "amac"
"""``catalog.data_keys.kind`` of a town's audit MAC key (catalog c0015)."""
AUDIT_MAC_NAME = "audit"

_INSERT_KEY = text(
    "INSERT INTO catalog.data_keys (tenant_code, kind, name, version, wrapped, "
    "kek_version, bits, state) VALUES (:t, :k, :n, :v, :w, :kv, :b, 'active')"
)


class Keyring:
    """Creates, caches, rotates and destroys towns' keys.

    The database's key source (``shared_gov.db.keys.KeySource``): every unit
    of work carries its town's keys from :meth:`town_keys`.
    """

    def __init__(self, provider: KeyProvider) -> None:
        self.provider = provider
        self._towns: dict[str, TownKeys] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Bumped by every invalidation: a load that started before one must not
        # store what it read (it may be the keys from before a rotation).
        self._generation = 0

    # --- provisioning (sync, inside the onboarding transaction) -------------------
    def provision(self, conn: Connection, tenant: str, population: int) -> int:
        """Create the KEK and every missing data/blind-index key; returns keys created."""
        # Serialised with key rotations of the same town (keys.rotation).
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.keyops.' || :t, 0))"),
            {"t": tenant},
        )
        kek_version = self.provider.ensure_kek(tenant)
        existing = {
            (r.kind, r.name)
            for r in conn.execute(
                text(
                    "SELECT kind, name FROM catalog.data_keys "
                    "WHERE tenant_code = :t AND state = 'active'"
                ),
                {"t": tenant},
            )
        }
        wanted = [("dek", n, None) for n in dek_names()] + [
            ("bidx", n, MAX_BITS if n in FULL_WIDTH_INDEXES else plan_bits(population))
            for n in index_names()
        ]
        wanted.append((AUDIT_MAC_KIND, AUDIT_MAC_NAME, None))
        rows = [
            self._new_key(tenant, kind, name, 1, bits, kek_version)
            for kind, name, bits in wanted
            if (kind, name) not in existing
        ]
        if rows:
            # One statement for all of a new town's ~30 keys: the driver sends
            # them in one batch instead of a round trip (and a prepare) each.
            conn.execute(_INSERT_KEY, rows)
        return len(rows)

    def _new_key(
        self,
        tenant: str,
        kind: str,
        name: str,
        version: int,
        bits: int | None,
        kek_version: int,
    ) -> dict[str, object]:
        """A fresh random key, wrapped by the town's KEK, as a catalog row."""
        key = os.urandom(32)
        wrapped = self.provider.wrap(
            tenant, kek_version, key, wrap_aad(tenant, kind, name, version)
        )
        return {
            "t": tenant,
            "k": kind,
            "n": name,
            "v": version,
            "w": wrapped,
            "kv": kek_version,
            "b": bits,
        }

    # --- the hot path: cached unwrapped keys ---------------------------------------
    def invalidate(self, tenant: str = "*") -> None:
        self._generation += 1
        if tenant == "*":
            self._towns.clear()
        else:
            self._towns.pop(tenant, None)

    async def town(self, fetch: Callable[[str], Any], tenant: str) -> TownKeys:
        """The town's keys; ``fetch(tenant)`` returns its catalog rows on a cache miss."""
        cached = self._towns.get(tenant)
        if cached is not None:
            metrics.KEY_CACHE_HIT.inc()
            return cached
        metrics.KEY_CACHE_MISS.inc()
        lock = self._locks.setdefault(tenant, asyncio.Lock())
        async with lock:
            while (cached := self._towns.get(tenant)) is None:
                generation = self._generation
                rows = await fetch(tenant)
                # Unwrapping may talk to an HSM: keep it off the event loop.
                loaded = await asyncio.to_thread(self._unwrap_all, tenant, rows)
                if generation == self._generation:
                    self._towns[tenant] = loaded
                else:
                    # Keys changed while we read them: use nothing stale.
                    continue
        return cached

    async def town_keys(
        self, catalog: CatalogOpener, code: str, held: asyncpg.Connection | None = None
    ) -> TownKeys:
        """The town's unwrapped keys (cached; read from the catalog on first use).

        ``held``: the pooled connection the caller already holds, to read the
        keys on when they are not cached (see :class:`~shared_gov.db.keys.KeySource`).

        Raises :class:`LookupError` when the catalog holds no (complete) keys
        for the town: offboarded, or never set up. A key provider that cannot
        be reached, or that lacks a key the catalog says the town has (a lost
        or wrongly restored HSM partition, the wrong token configured), is
        the platform's fault, not the caller's: 503, and an error in the log.
        """

        async def fetch(tenant: str) -> list[Any]:
            rows: list[Any]
            if held is None:
                async with catalog() as conn:
                    rows = await conn.fetch(FETCH_KEYS_SQL, tenant)
            else:
                rows = await held.fetch(FETCH_KEYS_SQL, tenant)
            if rows and not any(r["kind"] == AUDIT_MAC_KIND for r in rows):
                # Once per town after the upgrade, committed on a connection of
                # its own: the key must exist whatever ``held``'s transaction does.
                rows = await self._add_audit_key(catalog, tenant)
            return rows

        try:
            return await self.town(fetch, code)
        except KeyNotFound as exc:
            log.error("key_provider.key_missing", tenant=code)
            raise errors.unavailable(m.KEY_PROVIDER_UNAVAILABLE) from exc
        except WrapError:
            raise  # damaged or tampered wrapped key: a real error (500), not a retry
        except KeyProviderError as exc:
            log.warning("key_provider.unavailable", error=type(exc).__name__)
            raise errors.unavailable(m.KEY_PROVIDER_UNAVAILABLE) from exc

    async def _add_audit_key(self, catalog: CatalogOpener, tenant: str) -> list[Any]:
        """Give a town onboarded before audit MACs existed its audit key (catalog c0015).

        Once, by whichever worker loads the town's keys first: serialised with
        key operations on the town (the same advisory lock as provisioning
        and rotation), and a key another worker added meanwhile is kept.
        """
        provider = self.provider
        kek_version = await asyncio.to_thread(provider.current_kek_version, tenant)
        row = await asyncio.to_thread(self.new_audit_key_row, tenant, kek_version)
        async with catalog() as conn:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.keyops.' || $1, 0))",
                tenant,
            )
            await conn.execute(
                "INSERT INTO catalog.data_keys (tenant_code, kind, name, version, wrapped, "
                "kek_version, bits, state) SELECT $1, $2, $3, $4, $5, $6, NULL, 'active' "
                "WHERE EXISTS (SELECT 1 FROM catalog.data_keys WHERE tenant_code = $1) "
                "AND NOT EXISTS (SELECT 1 FROM catalog.data_keys WHERE tenant_code = $1 "
                "AND kind = $2)",
                tenant,
                row["k"],
                row["n"],
                row["v"],
                row["w"],
                row["kv"],
            )
            log.info("audit.mac_key_created", tenant=tenant)
            rows: list[Any] = await conn.fetch(FETCH_KEYS_SQL, tenant)
        return rows

    def _unwrap_all(self, tenant: str, rows: list[Any]) -> TownKeys:
        dek_keys: dict[str, dict[int, bytes]] = {}
        write: dict[str, int] = {}
        indexes: dict[str, BlindIndex] = {}
        live: dict[str, list[tuple[int, BlindIndex]]] = {}
        audit_mac: bytes | None = None
        for r in rows:
            if r["kind"] != "dek" and r["state"] not in ("active", "decrypt"):
                continue  # retired index keys are erased; skip any left
            key = self.provider.unwrap(
                tenant,
                r["kek_version"],
                bytes(r["wrapped"]),
                wrap_aad(tenant, r["kind"], r["name"], r["version"]),
            )
            if r["kind"] == AUDIT_MAC_KIND:
                if r["state"] == "active":
                    audit_mac = key
            elif r["kind"] == "dek":
                dek_keys.setdefault(r["name"], {})[r["version"]] = key
                if r["state"] == "active":
                    write[r["name"]] = r["version"]
            else:
                index = BlindIndex(key, r["bits"])
                live.setdefault(r["name"], []).append((r["version"], index))
                if r["state"] == "active":
                    indexes[r["name"]] = index
        ciphers = {name: FieldCipher(keys, write[name]) for name, keys in dek_keys.items()}
        missing = set(dek_names()) - set(ciphers) or set(index_names()) - set(indexes)
        if missing:
            raise LookupError(f"town {tenant} lacks keys: {sorted(missing)}")
        versions = {name: tuple(sorted(pairs, key=lambda p: p[0])) for name, pairs in live.items()}
        write_keys = WriteKeys(
            tenant,
            {name: (write[name], keys[write[name]]) for name, keys in dek_keys.items()},
            {
                name: tuple((v, index.bits, index.key_bytes()) for v, index in pairs)
                for name, pairs in versions.items()
            },
        )
        return TownKeys(tenant, ciphers, indexes, write, versions, write_keys, audit_mac)

    def new_audit_key_row(self, tenant: str, kek_version: int) -> dict[str, object]:
        """A town's audit MAC key (for a town onboarded before it existed), as a catalog row."""
        return self._new_key(tenant, AUDIT_MAC_KIND, AUDIT_MAC_NAME, 1, None, kek_version)


_pack_len = struct.Struct(">I").pack


FETCH_KEYS_SQL = (
    "SELECT kind, name, version, wrapped, kek_version, bits, state FROM catalog.data_keys "
    "WHERE tenant_code = $1 AND length(wrapped) > 0 ORDER BY kind, name, version"
)


def index_column(name: str, version: int) -> str:
    """The residents column holding blind index ``name`` under key ``version``.

    Odd versions live in ``bidx_<name>``, even ones in ``bidx_<name>_alt``, so
    the old and the new key of a rotation always have a column each and the
    switch at the end moves no data (see :mod:`shared_gov.keys.index_rotation`).
    """
    return f"bidx_{name}" if version % 2 else f"bidx_{name}_alt"


def iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def provider_from_settings(settings: Settings) -> KeyProvider:
    """The key provider the settings choose (local key files by default)."""
    if settings.key_provider == "local" and not settings.is_dev:
        # Loud on purpose: a key file next to the data is for laptops and demos.
        log.warning(
            "crypto.local_key_provider",
            detail="key-encryption keys are plain files in the data directory; "
            "use SHARED_GOV_KEY_PROVIDER=pkcs11 with an HSM in production",
        )
    return load_provider(
        settings.key_provider,
        data_dir=settings.data_dir / "keys",
        pkcs11_library=settings.pkcs11_library,
        pkcs11_token=settings.pkcs11_token,
        pkcs11_pin=settings.pkcs11_pin,
    )


def keyring_from_settings(settings: Settings) -> Keyring:
    """A keyring over the key provider the settings choose (for a ``Database``)."""
    return Keyring(provider_from_settings(settings))


def keyring_of(db: Database) -> Keyring:
    """The database's key source as the keyring it is (its provider, rotation)."""
    keyring = db.keyring
    if not isinstance(keyring, Keyring):  # pragma: no cover - every Database gets one
        raise TypeError("the database's key source is not a Keyring")
    return keyring


def keys_of(uow: TenantUnitOfWork) -> TownKeys:
    """The unit of work's town keys (the db layer carries them untyped)."""
    keys = uow.keys
    if not isinstance(keys, TownKeys):  # pragma: no cover - Database always provides keys
        raise LookupError("the unit of work carries no town keys")
    return keys


async def town_keys(db: Database, code: str, held: asyncpg.Connection | None = None) -> TownKeys:
    """The town's keys through the database's key source (cached; read on ``held``,
    the connection the caller holds, if given, when not cached)."""
    keys = await db.town_keys(code, held)
    if not isinstance(keys, TownKeys):  # pragma: no cover - the key source is a Keyring
        raise TypeError("the database's key source gave no TownKeys")
    return keys
