"""Key files in a private directory: the embedded default provider.

For laptops, demos and tests: whoever reads the directory reads the keys.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared_gov.crypto.providers.interface import (
    ED25519_SEED_BYTES,
    KEK_BYTES,
    NONCE_BYTES,
    TAG_BYTES,
    KeyNotFound,
    KeyProviderError,
    WrapError,
    _check_key,
    _check_version,
    validate_tenant,
)

# --------------------------------------------------------------------------------------
# Local key files
# --------------------------------------------------------------------------------------

_KEK_FILE: Final = re.compile(r"kek-v([1-9][0-9]{0,9})\.key")
_SIGNING_FILE: Final = "signing.key"
_OPEN_FLAGS: Final = os.O_CLOEXEC | os.O_NOFOLLOW


def _fsync_dir(path: Path) -> None:
    # A new or removed name is only durable once its directory is synced.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) if missing, and make sure it is 0700."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    # mkdir's mode passes through the umask, and an existing directory may
    # have been created wider by hand: set it exactly.
    if stat.S_IMODE(os.lstat(path).st_mode) != 0o700:
        os.chmod(path, 0o700)


def _publish(path: Path, data: bytes) -> bool:
    """Create ``path`` (mode 0600) holding ``data``, unless it exists; True if we created it.

    Two processes may create the same key at once. Opening the final name
    with O_EXCL alone would let the loser read a half-written file, so the
    key is written and synced under a private temporary name (itself
    O_EXCL) and then hard-linked into place: link() fails atomically if the
    name exists, and a name that exists always holds a complete key. The
    loser then reads the winner's key.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600)
    published = False
    try:
        try:
            os.fchmod(fd, 0o600)  # exact mode whatever the umask
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        published = True
        return True
    finally:
        if published:
            # Same inode as the published key now: drop the extra name only
            # (overwriting it would change the key under its readers).
            tmp.unlink()
        else:
            # An unused copy of a key: overwrite it, not just unlink it.
            _shred(tmp)
        _fsync_dir(path.parent)


def _shred(path: Path) -> None:
    """Overwrite a key file with random bytes, sync, and unlink it.

    Best effort against disk forensics: journaling and copy-on-write file
    systems and SSD wear levelling may keep old blocks. What makes shredding
    dependable is the HSM provider, whose keys never touch this disk.
    """
    try:
        fd = os.open(path, os.O_WRONLY | _OPEN_FLAGS)
    except FileNotFoundError:
        return
    except OSError:
        # A symlink (O_NOFOLLOW) or something else that is not our key file:
        # remove the name without writing through it.
        path.unlink(missing_ok=True)
        return
    try:
        size = os.fstat(fd).st_size
        _write_all(fd, os.urandom(max(size, 1)))
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)


def _read_key_file(path: Path, size: int, what: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)
    except FileNotFoundError:
        raise KeyNotFound(f"no {what}") from None
    except OSError as exc:
        # O_NOFOLLOW: a symlink planted in place of a key is refused.
        raise KeyProviderError(f"{what} is not a regular file") from exc
    try:
        data = os.read(fd, size + 1)
    finally:
        os.close(fd)
    if len(data) != size:
        raise KeyProviderError(f"{what} is damaged (wrong length)")
    return data


def _file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """What tells one key file from its replacement: device, inode, size, mtime."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class LocalKeyProvider:
    """KEKs and signing keys as files under ``directory`` (embedded default).

    Layout: ``directory/<town>/kek-v<N>.key`` (32 random bytes) and
    ``directory/<town>/signing.key`` (a raw 32-byte Ed25519 private key),
    files 0600, directories 0700. KEKs are never cached in memory, so a KEK
    rotated, retired or destroyed by another process takes effect at once.
    A town's signing key is kept parsed between uses (the sealer signs for
    every active town about once a second, and reading and parsing the file
    cost more than the signature); every use first checks the file's
    identity with one ``lstat``, so a key destroyed or replaced by another
    process takes effect at once too. Safe for concurrent use by threads and
    processes.
    """

    name: str = "local"
    signatures_need_checking: bool = False

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        # town -> (file identity, private key, raw public key)
        self._signing: dict[str, tuple[tuple[int, int, int, int], Ed25519PrivateKey, bytes]] = {}

    # --- paths ---------------------------------------------------------------------
    def _town_dir(self, tenant: str, *, create: bool = False) -> Path:
        folder = self.directory / validate_tenant(tenant)
        if create:
            self.directory.parent.mkdir(parents=True, exist_ok=True)
            _private_dir(self.directory)
            _private_dir(folder)
        return folder

    def _kek_path(self, tenant: str, version: int) -> Path:
        return self._town_dir(tenant) / f"kek-v{_check_version(version)}.key"

    def _read_kek(self, tenant: str, version: int) -> bytes:
        return _read_key_file(
            self._kek_path(tenant, version), KEK_BYTES, f"KEK v{version} for town {tenant}"
        )

    # --- KEKs ----------------------------------------------------------------------
    def kek_versions(self, tenant: str) -> list[int]:
        folder = self._town_dir(tenant)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        return sorted(int(m[1]) for n in names if (m := _KEK_FILE.fullmatch(n)))

    def current_kek_version(self, tenant: str) -> int:
        versions = self.kek_versions(tenant)
        if not versions:
            raise KeyNotFound(f"town {tenant} has no key-encryption key")
        return versions[-1]

    def ensure_kek(self, tenant: str) -> int:
        folder = self._town_dir(tenant, create=True)
        if not self.kek_versions(tenant):
            # Losing the race to another process is fine: its v1 is the KEK.
            _publish(folder / "kek-v1.key", os.urandom(KEK_BYTES))
        self._ensure_signing_key(tenant)
        return self.current_kek_version(tenant)

    def rotate_kek(self, tenant: str) -> int:
        current = self.current_kek_version(tenant)
        folder = self._town_dir(tenant, create=True)
        if _publish(folder / f"kek-v{current + 1}.key", os.urandom(KEK_BYTES)):
            return current + 1
        # Another process rotated at the same moment: its fresh KEK serves.
        return self.current_kek_version(tenant)

    def retire_kek(self, tenant: str, version: int) -> None:
        _check_version(version)
        versions = self.kek_versions(tenant)
        if not versions or version not in versions:
            raise KeyNotFound(f"town {tenant} has no KEK v{version}")
        if version == versions[-1]:
            raise ValueError(f"refusing to retire town {tenant}'s current KEK v{version}")
        _shred(self._kek_path(tenant, version))
        _fsync_dir(self._town_dir(tenant))

    def wrap(self, tenant: str, kek_version: int, key: bytes, aad: bytes) -> bytes:
        kek = self._read_kek(tenant, kek_version)
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(kek).encrypt(nonce, _check_key(key), aad)

    def unwrap(self, tenant: str, kek_version: int, wrapped: bytes, aad: bytes) -> bytes:
        # The KEK first: a destroyed town is KeyNotFound whatever the input.
        kek = self._read_kek(tenant, kek_version)
        if len(wrapped) < NONCE_BYTES + TAG_BYTES:
            raise WrapError(f"wrapped key for town {tenant} is truncated")
        try:
            return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag:
            raise WrapError(
                f"key did not unwrap under town {tenant}'s KEK v{kek_version}: "
                "wrong associated data or tampered"
            ) from None

    def destroy(self, tenant: str) -> None:
        folder = self._town_dir(tenant)
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return  # already destroyed (or never created): idempotent
        for entry in entries:
            # Every file, not only known names: a crashed _publish may have
            # left a temporary copy of a key.
            if entry.is_dir(follow_symlinks=False):
                continue
            _shred(Path(entry.path))
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(folder)
        _fsync_dir(self.directory)

    # --- signing -------------------------------------------------------------------
    def _ensure_signing_key(self, tenant: str) -> None:
        folder = self._town_dir(tenant, create=True)
        if not (folder / _SIGNING_FILE).exists():
            seed = Ed25519PrivateKey.generate().private_bytes_raw()
            _publish(folder / _SIGNING_FILE, seed)

    def _signing_key(self, tenant: str) -> tuple[Ed25519PrivateKey, bytes]:
        """The town's signing key and its raw public key (parsed once per key file)."""
        path = self._town_dir(tenant) / _SIGNING_FILE
        identity = _file_identity(path)
        cached = self._signing.get(tenant)
        if cached is not None and identity is not None and cached[0] == identity:
            return cached[1], cached[2]
        self._signing.pop(tenant, None)
        try:
            seed = _read_key_file(path, ED25519_SEED_BYTES, f"signing key for town {tenant}")
        except KeyNotFound:
            # Towns provisioned before signing keys existed get one on first
            # use; a destroyed town (no KEK) does not come back.
            self.current_kek_version(tenant)
            self._ensure_signing_key(tenant)
            seed = _read_key_file(path, ED25519_SEED_BYTES, f"signing key for town {tenant}")
        key = Ed25519PrivateKey.from_private_bytes(seed)
        public = key.public_key().public_bytes_raw()
        identity = _file_identity(path)
        if identity is not None:
            self._signing[tenant] = (identity, key, public)
        return key, public

    def signing_public_key(self, tenant: str) -> bytes:
        return self._signing_key(tenant)[1]

    def sign(self, tenant: str, message: bytes) -> bytes:
        return self._signing_key(tenant)[0].sign(message)
