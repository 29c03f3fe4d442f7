"""The key provider interface: what every provider does, and its errors.

:class:`KeyProvider` is what the keyring, the sealer and readiness see; the
local key files (:mod:`.local`) and the PKCS#11 token (:mod:`.pkcs11`)
implement it. Exception messages name towns and versions, never key
material, plaintext or PINs.
"""

from __future__ import annotations

import re
from typing import Final, Protocol, TypeVar, runtime_checkable

KEK_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
ED25519_SEED_BYTES: Final = 32
_MAX_VERSION: Final = 2**31 - 1  # a PostgreSQL integer column holds it

# ASCII digits only: \d would also accept other scripts' digits.
_TENANT: Final = re.compile(r"[0-9]{6}")

_T = TypeVar("_T")


class KeyProviderError(Exception):
    """Base of the provider's errors. Messages never contain key material."""


class KeyNotFound(KeyProviderError):
    """The town has no key-encryption key (or not that version, or no signing key)."""


class WrapError(KeyProviderError):
    """A key could not be wrapped or unwrapped: wrong associated data, tampering, damage."""


@runtime_checkable
class KeyProvider(Protocol):
    """Per-town, versioned key-encryption keys and a per-town signing key."""

    name: str
    """``"local"`` or ``"pkcs11"``."""

    signatures_need_checking: bool
    """Whether a signature from :meth:`sign` must be verified before it is relied on.

    True for a device (an HSM behind a driver can fail in ways that yield a
    wrong signature, and its public key is read separately); False when this
    process signs with the ``cryptography`` library itself and
    :meth:`signing_public_key` comes from the same key object, where a check
    would only repeat the library's arithmetic (about three times the cost
    of signing, per town and sealing pass).
    """

    def ensure_kek(self, tenant: str) -> int:
        """Create KEK v1 (and the signing key) if the town has none; return the current version."""
        ...

    def current_kek_version(self, tenant: str) -> int:
        """The version new wraps should use; :class:`KeyNotFound` if the town has none."""
        ...

    def wrap(self, tenant: str, kek_version: int, key: bytes, aad: bytes) -> bytes:
        """Encrypt ``key`` under the town's KEK ``kek_version``, binding ``aad``."""
        ...

    def unwrap(self, tenant: str, kek_version: int, wrapped: bytes, aad: bytes) -> bytes:
        """Reverse :meth:`wrap`.

        :class:`KeyNotFound` if that KEK version is gone, :class:`WrapError`
        if ``wrapped`` or ``aad`` is not what :meth:`wrap` was given.
        """
        ...

    def rotate_kek(self, tenant: str) -> int:
        """Create a new current KEK version; older versions unwrap until retired."""
        ...

    def retire_kek(self, tenant: str, version: int) -> None:
        """Destroy one old KEK version; refuses the current one (``ValueError``)."""
        ...

    def destroy(self, tenant: str) -> None:
        """Crypto-shredding: every KEK version and the signing key, gone for good."""
        ...

    def kek_versions(self, tenant: str) -> list[int]:
        """The town's KEK versions, ascending (empty if none)."""
        ...

    def signing_public_key(self, tenant: str) -> bytes:
        """The town's raw 32-byte Ed25519 public key."""
        ...

    def sign(self, tenant: str, message: bytes) -> bytes:
        """A 64-byte Ed25519 signature of ``message`` with the town's signing key."""
        ...


def validate_tenant(tenant: str) -> str:
    """``tenant`` if it is a six-digit town code; ``ValueError`` otherwise.

    Checked before a code becomes part of a path or a key label, so "../x"
    or "123456:kek:v9" can never reach another town's keys.
    """
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise ValueError(f"not a six-digit town code: {str(tenant)[:16]!r}")
    return tenant


def _check_version(version: int) -> int:
    # bool is an int: True would silently mean version 1.
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError("a key version is an int")
    if not 1 <= version <= _MAX_VERSION:
        raise ValueError(f"key version out of range: {version}")
    return version


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray | memoryview) or len(key) == 0:
        raise WrapError("the key to wrap must be non-empty bytes")
    return bytes(key)
