"""Typed settings read from ``SHARED_GOV_*`` environment variables.

Every setting has one variable; ``get_settings()`` is cached so the hot path
never re-reads the environment. Outside development (``SHARED_GOV_ENV`` other
than ``dev``/``test``) the defaults that are only safe on a laptop — the
embedded database, the built-in token issuer on loopback, key files instead
of an HSM, the audit log switched off — are refused, so a production
deployment cannot start on them by accident. Secrets may come from files
(``SHARED_GOV_PKCS11_PIN_FILE``) instead of the environment.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_ENVIRONMENTS = ("dev", "test", "prod")

DEV_ISSUER = "urn:shared-gov:dev"
"""The built-in issuer's ``iss`` in development unless ``SHARED_GOV_ISSUER`` says.

Not the URL the service listens on: a token from ``shared-gov token`` then
works whatever ``SHARED_GOV_HOST``/``SHARED_GOV_PORT`` the service runs
with (and keeps working when the port changes). What binds a token to a
server is the signing key in the data directory. Outside development the
issuer must be set: the service's public https URL."""
_ROLE_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe for the chosen environment."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"SHARED_GOV_{name}")
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"SHARED_GOV_{name} must be an integer") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    """All settings of one process. Build with :func:`get_settings`."""

    env: str
    data_dir: Path
    database_url: str | None
    """None means: start the embedded PostgreSQL (pgserver) in ``data_dir``."""
    role_prefix: str
    """Prefix of tenant database roles (roles are cluster-wide, schemas are not)."""
    issuer: str
    audience: str
    host: str
    port: int
    pool_min: int
    pool_max: int
    pool_max_queries: int
    """Queries before a pooled connection is recycled (a backstop; see pool_max_towns)."""
    pool_max_towns: int
    """Towns a pooled connection serves before it is retired: bounds the per-town
    caches its backend keeps (~110 KB per town) without discarding them while a
    deployment's towns all fit."""
    pool_max_inactive: float
    statement_cache_size: int
    """Prepared statements kept per pooled connection (asyncpg's LRU cache).
    Hot reads are prepared once per town (``TenantUnitOfWork.town_statement``),
    so this should exceed the number of towns times a few."""
    pool_acquire_timeout: float
    migrate_concurrency: int
    log_level: str
    access_log: bool
    audit: bool = True
    """Record every access in the audit log (off only for benchmarks' baselines)."""
    audit_linger: float = 0.002
    """Seconds the audit writer may wait for more events while other requests are
    still in flight, so that one commit carries more of them (0: never wait)."""
    key_provider: str = "local"
    """Where towns' key-encryption keys live: "local" (key files) or "pkcs11" (an HSM)."""
    pkcs11_library: str | None = None
    pkcs11_token: str | None = None
    pkcs11_pin: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    statement_timeout: float = 30.0
    """Seconds any one statement of the service may run (0: no limit). A stuck
    query then ends with an error (a 503 for the caller) instead of holding
    its connection, and the locks it took, until the pool runs dry."""
    """Addresses/networks of TLS-terminating proxies whose X-Forwarded-For is believed."""
    max_token_lifetime: int = 12 * 3600
    """Longest accepted bearer-token lifetime in seconds (``exp`` − ``iat``, or
    ``exp`` − now without ``iat``) for people: staff, admins, auditors, operators."""
    max_integration_token_lifetime: int = 24 * 3600
    """The same for tokens whose only role is ``integration`` (department systems)."""
    console_idle_timeout: int = 15 * 60
    """Seconds a web-console session may stay unused before it ends (sign in again)."""
    console_lifetime: int = 8 * 3600
    """Seconds a web-console session lasts at most, however busy (a working day)."""
    console_client_id: str = "shared-gov-console"
    """The console's OpenID Connect client id, registered at each town's IdP."""

    @property
    def is_dev(self) -> bool:
        return self.env in ("dev", "test")

    @property
    def local_url(self) -> str:
        """Where this machine reaches the service (``http://HOST:PORT``; a wildcard
        bind address is reached on loopback)."""
        # A wildcard bind address is not where to connect to.
        wildcard = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}  # noqa: S104
        host = wildcard.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def check_safe(self) -> None:
        """Refuse laptop-only defaults outside development."""
        if self.is_dev:
            return
        if self.database_url is None:
            raise SettingsError(
                "SHARED_GOV_DATABASE_URL is required outside development; "
                "the embedded PostgreSQL is for local use only"
            )
        if self.issuer == DEV_ISSUER:
            raise SettingsError(
                "SHARED_GOV_ISSUER is required outside development: the service's public "
                "https:// URL"
            )
        if re.match(r"^https?://(127\.0\.0\.1|localhost)", self.issuer):
            raise SettingsError(
                "SHARED_GOV_ISSUER points at loopback; set the public URL of the issuer"
            )
        if not self.issuer.startswith("https://") or "://0.0.0.0" in self.issuer:
            raise SettingsError(
                "SHARED_GOV_ISSUER must be the service's public https:// URL outside development"
            )
        if self.key_provider != "pkcs11":
            # Key files next to the data protect nothing from whoever reads the
            # disk or its backups: keys must live in an HSM.
            raise SettingsError(
                "SHARED_GOV_KEY_PROVIDER=pkcs11 is required outside development; "
                "the local key files are for laptops and demos"
            )
        if not (self.pkcs11_library and self.pkcs11_token and self.pkcs11_pin):
            raise SettingsError(
                "SHARED_GOV_PKCS11_LIBRARY, SHARED_GOV_PKCS11_TOKEN and SHARED_GOV_PKCS11_PIN "
                "(or SHARED_GOV_PKCS11_PIN_FILE) are required for pkcs11"
            )
        if not self.audit:
            raise SettingsError(
                "SHARED_GOV_AUDIT=0 is for benchmarks only; every access must be audited"
            )
        if not 1 <= self.pool_min <= self.pool_max:
            raise SettingsError("need 1 <= SHARED_GOV_POOL_MIN <= SHARED_GOV_POOL_MAX")


def _secret(name: str) -> str | None:
    """``SHARED_GOV_<name>``, or the first line of the file ``SHARED_GOV_<name>_FILE`` names.

    A file keeps the secret out of the process environment (readable in
    /proc by the same user, shown by ``docker inspect``): systemd credentials
    and container secrets are files.
    """
    path = _env(f"{name}_FILE")
    if path is None:
        return _env(name)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SettingsError(f"SHARED_GOV_{name}_FILE cannot be read ({exc.strerror})") from None
    return lines[0] if lines and lines[0] else None


def _networks(name: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses or networks (CIDR)."""
    items = [item.strip() for item in (_env(name) or "").split(",") if item.strip()]
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"SHARED_GOV_{name} takes IP addresses or networks, e.g. 10.0.0.0/24"
            ) from None
    return tuple(items)


def load_settings() -> Settings:
    """Read the environment now (tests use this to build variants)."""
    env = _env("ENV", "dev") or "dev"
    if env not in _ENVIRONMENTS:
        raise SettingsError(f"SHARED_GOV_ENV must be one of {', '.join(_ENVIRONMENTS)}")
    role_prefix = _env("ROLE_PREFIX", "sg") or "sg"
    if not _ROLE_PREFIX.match(role_prefix):
        raise SettingsError("SHARED_GOV_ROLE_PREFIX must match ^[a-z][a-z0-9_]{0,30}$")
    port = _int("PORT", 8000)
    host = _env("HOST", "127.0.0.1") or "127.0.0.1"
    linger_us = _int("AUDIT_LINGER_US", 2000)
    if not 0 <= linger_us <= 100_000:
        raise SettingsError("SHARED_GOV_AUDIT_LINGER_US must be between 0 and 100000")
    settings = Settings(
        env=env,
        data_dir=Path(_env("DATA_DIR", ".shared-gov") or ".shared-gov").resolve(),
        database_url=_env("DATABASE_URL"),
        role_prefix=role_prefix,
        issuer=_env("ISSUER", DEV_ISSUER) or "",
        audience=_env("AUDIENCE", "shared-gov") or "shared-gov",
        host=host,
        port=port,
        pool_min=_int("POOL_MIN", 2),
        pool_max=_int("POOL_MAX", 10),
        pool_max_queries=_int("POOL_MAX_QUERIES", 50000),
        pool_max_towns=_int("POOL_MAX_TOWNS", 500),
        pool_max_inactive=float(_int("POOL_MAX_INACTIVE_SECONDS", 300)),
        statement_cache_size=_int("STATEMENT_CACHE_SIZE", 2000),
        pool_acquire_timeout=float(_int("POOL_ACQUIRE_TIMEOUT_SECONDS", 5)),
        statement_timeout=float(_int("STATEMENT_TIMEOUT_SECONDS", 30)),
        migrate_concurrency=_int("MIGRATE_CONCURRENCY", 8),
        log_level=(_env("LOG_LEVEL", "info") or "info").lower(),
        access_log=(_env("ACCESS_LOG", "1") or "1") not in ("0", "false", "no"),
        audit=(_env("AUDIT", "1") or "1") not in ("0", "false", "no"),
        audit_linger=linger_us / 1e6,
        key_provider=_env("KEY_PROVIDER", "local") or "local",
        pkcs11_library=_env("PKCS11_LIBRARY"),
        pkcs11_token=_env("PKCS11_TOKEN"),
        pkcs11_pin=_secret("PKCS11_PIN"),
        trusted_proxies=_networks("TRUSTED_PROXIES"),
        max_token_lifetime=_int("MAX_TOKEN_LIFETIME_SECONDS", 12 * 3600),
        max_integration_token_lifetime=_int("MAX_INTEGRATION_TOKEN_LIFETIME_SECONDS", 24 * 3600),
        console_idle_timeout=_int("CONSOLE_IDLE_SECONDS", 15 * 60),
        console_lifetime=_int("CONSOLE_LIFETIME_SECONDS", 8 * 3600),
        console_client_id=_env("CONSOLE_CLIENT_ID", "shared-gov-console") or "shared-gov-console",
    )
    if settings.max_token_lifetime < 60 or settings.max_integration_token_lifetime < 60:
        raise SettingsError("token lifetimes (SHARED_GOV_MAX_*TOKEN_LIFETIME_SECONDS) are >= 60")
    if not 1 <= settings.console_idle_timeout <= settings.console_lifetime:
        raise SettingsError("need 1 <= SHARED_GOV_CONSOLE_IDLE_SECONDS <= CONSOLE_LIFETIME_SECONDS")
    if settings.key_provider not in ("local", "pkcs11"):
        raise SettingsError("SHARED_GOV_KEY_PROVIDER must be local or pkcs11")
    settings.check_safe()
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
