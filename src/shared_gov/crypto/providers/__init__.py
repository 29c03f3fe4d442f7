"""Key providers: where each town's key-encryption keys and signing key live.

Top of the key hierarchy (DESIGN.md, "Field-level encryption"). A provider
holds, per town:

- versioned key-encryption keys (KEKs) that wrap and unwrap the town's data
  and blind-index keys (AES-256-GCM, the caller's associated data bound in);
- an Ed25519 signing key for audit-log checkpoints.

Two providers implement :class:`KeyProvider`:

- :class:`LocalKeyProvider`: key files in a private directory. The embedded
  default, for laptops, demos and tests: whoever reads the directory reads
  the keys.
- :class:`Pkcs11KeyProvider`: non-extractable keys inside an HSM reached
  through PKCS#11 (SoftHSM2 in tests). Keys never leave the token; the
  process only asks it to encrypt, decrypt and sign.

A town "exists" for a provider while it has at least one KEK: :meth:`destroy`
removes every KEK version and the signing key (crypto-shredding), after
which wrapped keys fail with :class:`KeyNotFound` and nothing recreates the
old keys.

Exception messages name towns and versions, never key material, plaintext
or PINs.
"""

from __future__ import annotations

from pathlib import Path

from shared_gov.crypto.providers.interface import (
    KeyNotFound,
    KeyProvider,
    KeyProviderError,
    WrapError,
    validate_tenant,
)
from shared_gov.crypto.providers.local import LocalKeyProvider, _publish
from shared_gov.crypto.providers.pkcs11 import Pkcs11KeyProvider

__all__ = [
    "KeyNotFound",
    "KeyProvider",
    "KeyProviderError",
    "LocalKeyProvider",
    "Pkcs11KeyProvider",
    "WrapError",
    "_publish",
    "load_provider",
    "validate_tenant",
]


def load_provider(
    name: str,
    *,
    data_dir: Path,
    pkcs11_library: str | None = None,
    pkcs11_token: str | None = None,
    pkcs11_pin: str | None = None,
) -> KeyProvider:
    """The provider ``name`` ("local" or "pkcs11") configured from settings.

    ``data_dir`` is the local provider's key directory. The PKCS#11 provider
    needs the library path, the token label and the user PIN; it opens (and
    logs in to) the token now, so a wrong setting fails at start-up.
    """
    if name == "local":
        return LocalKeyProvider(data_dir)
    if name == "pkcs11":
        if not (pkcs11_library and pkcs11_token and pkcs11_pin):
            missing = [
                setting
                for setting, value in (
                    ("library", pkcs11_library),
                    ("token", pkcs11_token),
                    ("pin", pkcs11_pin),
                )
                if not value
            ]
            raise ValueError(f"the pkcs11 key provider needs: {', '.join(missing)}")
        return Pkcs11KeyProvider(pkcs11_library, pkcs11_token, pkcs11_pin)
    raise ValueError(f"unknown key provider {name!r} (expected 'local' or 'pkcs11')")
