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

import contextlib
import importlib.util
import os
import re
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, TypeVar, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    import pkcs11
    from pkcs11._pkcs11 import lib as Pkcs11Library

__all__ = [
    "KeyNotFound",
    "KeyProvider",
    "KeyProviderError",
    "LocalKeyProvider",
    "Pkcs11KeyProvider",
    "WrapError",
    "load_provider",
    "validate_tenant",
]

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


# --------------------------------------------------------------------------------------
# PKCS#11 (HSM)
# --------------------------------------------------------------------------------------

_LABEL_PREFIX: Final = "shared-gov"
_KEK_LABEL: Final = re.compile(r"shared-gov:([0-9]{6}):kek:v([1-9][0-9]{0,9})")
# DER encoding of OID 1.3.101.112 (id-Ed25519) for CKA_EC_PARAMS.
_ED25519_PARAMS: Final = bytes.fromhex("06032b6570")
_GCM_TAG_BITS: Final = 128


def _session_lost() -> tuple[type[Exception], ...]:
    """PKCS#11 errors meaning the session is gone (not the key or the data): reopen, retry."""
    import pkcs11

    return (
        pkcs11.SessionHandleInvalid,
        pkcs11.SessionClosed,
        pkcs11.UserNotLoggedIn,
        pkcs11.DeviceRemoved,
        pkcs11.TokenNotPresent,
    )


def _owner_id(tenant: str) -> bytes:
    # CKA_ID marks every object of a town, so one exact-match search finds
    # them all (PKCS#11 cannot search label prefixes).
    return f"{_LABEL_PREFIX}:{tenant}".encode()


def _kek_label(tenant: str, version: int) -> str:
    return f"{_LABEL_PREFIX}:{tenant}:kek:v{version}"


def _signing_label_prefix(tenant: str) -> str:
    return f"{_LABEL_PREFIX}:{tenant}:sign:"


def _gcm(key: pkcs11.SecretKey, data: bytes, params: pkcs11.GCMParams, *, encrypt: bool) -> bytes:
    """C_Encrypt or C_Decrypt with CKM_AES_GCM, typed for one-shot bytes."""
    from pkcs11 import Mechanism
    from pkcs11.types import DecryptMixin, EncryptMixin

    # Objects get their encrypt/decrypt methods from mixins chosen at run
    # time from the key's capabilities; a KEK made by _generate_kek has both.
    out: bytes | object
    if encrypt and isinstance(key, EncryptMixin):
        out = key.encrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    elif not encrypt and isinstance(key, DecryptMixin):
        out = key.decrypt(data, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    else:
        raise KeyProviderError(f"the KEK {key.label!r} on the token lacks encrypt/decrypt")
    if not isinstance(out, bytes):
        raise KeyProviderError("the token returned no ciphertext")
    return out


def _ed25519_raw(point: bytes) -> bytes:
    """The raw public key from CKA_EC_POINT: a DER OCTET STRING or, on some HSMs, raw."""
    if len(point) == 34 and point[0] == 0x04 and point[1] == 0x20:
        return point[2:]
    if len(point) == 32:
        return point
    raise KeyProviderError("the token returned an Ed25519 public key in an unknown encoding")


class _TokenSession:
    """One logged-in session per process for a (library, token), shared under a lock.

    PKCS#11 login state belongs to the process, not the session: when any
    session logs out (closing a logged-in session does), every session of
    the process loses the user's rights, and private objects silently vanish
    from searches. So the providers of a process share one session per token
    and it is closed only when the last of them lets go. The lock serialises
    its use, since a PKCS#11 session must not run two operations at once.
    """

    def __init__(self, library: str, token_label: str, user_pin: str) -> None:
        self.key = (library, token_label)
        self.users = 0
        self.opened = False
        self._user_pin = user_pin
        self._lock = threading.RLock()
        self._session: pkcs11.Session | None = None
        self._pid = 0

    def run(self, operation: Callable[[pkcs11.Session], _T]) -> _T:
        """Run ``operation`` on the session; reopen and retry once if it was lost."""
        lost = _session_lost()
        with self._lock:
            try:
                return operation(self._current())
            except lost:
                self.discard()
            return operation(self._current())

    def _current(self) -> pkcs11.Session:
        import pkcs11

        pid = os.getpid()
        if self._session is not None and self._pid == pid:
            return self._session
        # A session inherited across fork() belongs to the parent: forget it
        # without closing it (that would log the parent out).
        self._session = None
        library, token_label = self.key
        lib = _library(library)
        try:
            token = lib.get_token(token_label=token_label)
        except pkcs11.PKCS11Error as exc:
            raise KeyProviderError(f"no PKCS#11 token labelled {token_label!r}") from exc
        session: pkcs11.Session
        try:
            session = token.open(rw=True, user_pin=self._user_pin)
        except pkcs11.UserAlreadyLoggedIn:
            # Some other code of this process is logged in to the token:
            # this session has the user's rights already.
            session = token.open(rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
            raise KeyProviderError(
                f"PKCS#11 login to token {token_label!r} failed: wrong PIN"
            ) from None
        except pkcs11.PKCS11Error as exc:
            raise KeyProviderError(
                f"cannot open a session on PKCS#11 token {token_label!r}"
            ) from exc
        self._session = session
        self._pid = pid
        self.opened = True
        return session

    def reset_lock(self) -> None:
        self._lock = threading.RLock()

    def discard(self) -> None:
        import pkcs11

        with self._lock:
            session, self._session = self._session, None
            if session is not None and self._pid == os.getpid():
                # Usually already broken: that is why it is discarded.
                with contextlib.suppress(pkcs11.PKCS11Error):
                    session.close()


# Shared sessions by (library, token label), and which process initialised
# each library: PKCS#11 requires a forked child to call C_Initialize again.
_token_sessions: dict[tuple[str, str], _TokenSession] = {}
_library_pids: dict[str, int] = {}
_registry_lock = threading.Lock()


def _reset_locks_after_fork() -> None:
    # A lock held by another thread at fork() stays held forever in the
    # child, where that thread does not exist: start the child with fresh ones.
    global _registry_lock
    _registry_lock = threading.Lock()
    for shared in _token_sessions.values():
        shared.reset_lock()


os.register_at_fork(after_in_child=_reset_locks_after_fork)


def _library(path: str) -> Pkcs11Library:
    import pkcs11

    with _registry_lock:
        try:
            lib = pkcs11.lib(path)
        except pkcs11.PKCS11Error as exc:
            raise KeyProviderError(f"cannot load PKCS#11 library {path}") from exc
        pid = os.getpid()
        if _library_pids.setdefault(path, pid) != pid:
            lib.reinitialize()
            _library_pids[path] = pid
        return lib


def _acquire(library: str, token_label: str, user_pin: str) -> _TokenSession:
    with _registry_lock:
        shared = _token_sessions.get((library, token_label))
        if shared is None:
            shared = _token_sessions[library, token_label] = _TokenSession(
                library, token_label, user_pin
            )
        shared.users += 1
        return shared


def _release(shared: _TokenSession) -> None:
    with _registry_lock:
        shared.users -= 1
        last = shared.users == 0
        if last and _token_sessions.get(shared.key) is shared:
            del _token_sessions[shared.key]
    if last:
        # Outside the registry lock: run() takes the session lock first and
        # the registry lock second (in _library), never the other way round.
        shared.discard()


class Pkcs11KeyProvider:
    """KEKs and signing keys as non-extractable objects on a PKCS#11 token.

    - KEK version N of town T: an AES-256 secret key labelled
      ``shared-gov:T:kek:vN``, sensitive, never extractable, allowed to
      encrypt and decrypt only. Wrap is C_Encrypt with CKM_AES_GCM (random
      12-byte IV, the caller's associated data, 128-bit tag), giving
      IV || ciphertext+tag; unwrap is C_Decrypt.
    - The signing key: an Ed25519 key pair (CKK_EC_EDWARDS, CKM_EDDSA), the
      private half sensitive and never extractable.
    - Every object of a town carries CKA_ID ``shared-gov:T``; :meth:`destroy`
      deletes them all.

    Thread-safe: all providers of a process that use the same token share
    one logged-in session, and their operations take turns on it (see
    :class:`_TokenSession`). HSM calls are rare on the hot path: callers
    unwrap data keys once and cache them. A lost session (token reset) is
    reopened and the operation retried once; a forked child re-initialises
    the library and opens its own session before its first call.

    Concurrent creation by two processes cannot be made atomic in PKCS#11.
    Duplicate KEKs with the same label are harmless: unwrap tries each one,
    and GCM authentication picks the right one. A duplicate signing key pair
    is resolved by create-then-check: a process that finds another signing
    key for the town after creating its own deletes its own.
    """

    name: str = "pkcs11"
    signatures_need_checking: bool = True

    def __init__(self, library: str, token_label: str, user_pin: str) -> None:
        self._library_path = library
        self._token_label = token_label
        self._user_pin = user_pin
        self._shared: _TokenSession | None = None
        self._shared_lock = threading.Lock()
        if importlib.util.find_spec("pkcs11") is None:
            raise KeyProviderError(
                "the pkcs11 key provider needs python-pkcs11 (pip install python-pkcs11)"
            )
        # Fail at start-up, not on the first request, if the library, token
        # or PIN is wrong.
        self._run(lambda session: None)

    def _token_session(self) -> _TokenSession:
        with self._shared_lock:
            if self._shared is None:
                self._shared = _acquire(self._library_path, self._token_label, self._user_pin)
            return self._shared

    def _run(self, operation: Callable[[pkcs11.Session], _T]) -> _T:
        shared = self._token_session()
        try:
            return shared.run(operation)
        except KeyProviderError:
            if self._shared is not None and not self._shared.opened:
                # Never got a session (wrong library, token or PIN): let go.
                self.close()
            raise

    def close(self) -> None:
        """Stop using the token; its session closes when no provider of this process uses it.

        A later call on this provider opens it again.
        """
        with self._shared_lock:
            shared, self._shared = self._shared, None
        if shared is not None:
            _release(shared)

    # --- object lookup -------------------------------------------------------------
    @staticmethod
    def _keks(session: pkcs11.Session, tenant: str) -> dict[int, list[pkcs11.SecretKey]]:
        import pkcs11
        from pkcs11 import Attribute, ObjectClass

        found: dict[int, list[pkcs11.SecretKey]] = {}
        # list(): a find operation must finish before the session does anything else.
        objects = list(
            session.get_objects(
                {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.ID: _owner_id(tenant)}
            )
        )
        for obj in objects:
            if not isinstance(obj, pkcs11.SecretKey):
                continue
            match = _KEK_LABEL.fullmatch(obj.label)
            if match and match[1] == tenant:
                found.setdefault(int(match[2]), []).append(obj)
        return found

    def _kek(self, session: pkcs11.Session, tenant: str, version: int) -> list[pkcs11.SecretKey]:
        keys = self._keks(session, tenant).get(_check_version(version))
        if not keys:
            raise KeyNotFound(f"town {tenant} has no KEK v{version}")
        return keys

    @staticmethod
    def _generate_kek(session: pkcs11.Session, tenant: str, version: int) -> None:
        from pkcs11 import Attribute, KeyType, MechanismFlag

        session.generate_key(
            KeyType.AES,
            KEK_BYTES * 8,
            id=_owner_id(tenant),
            label=_kek_label(tenant, version),
            store=True,
            # Encrypt/decrypt only: no wrapping other keys out, no MACs.
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
            template={
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                # Labels and usage flags are frozen: nobody can relabel a
                # key to pass it off as another town's.
                Attribute.MODIFIABLE: False,
            },
        )

    # --- KEKs ----------------------------------------------------------------------
    def kek_versions(self, tenant: str) -> list[int]:
        validate_tenant(tenant)
        return self._run(lambda s: sorted(self._keks(s, tenant)))

    def current_kek_version(self, tenant: str) -> int:
        versions = self.kek_versions(tenant)
        if not versions:
            raise KeyNotFound(f"town {tenant} has no key-encryption key")
        return versions[-1]

    def ensure_kek(self, tenant: str) -> int:
        validate_tenant(tenant)

        def operation(session: pkcs11.Session) -> int:
            versions = sorted(self._keks(session, tenant))
            if not versions:
                self._generate_kek(session, tenant, 1)
                versions = [1]
            self._signing_pair(session, tenant)
            return versions[-1]

        return self._run(operation)

    def rotate_kek(self, tenant: str) -> int:
        validate_tenant(tenant)

        def operation(session: pkcs11.Session) -> int:
            versions = sorted(self._keks(session, tenant))
            if not versions:
                raise KeyNotFound(f"town {tenant} has no key-encryption key")
            self._generate_kek(session, tenant, versions[-1] + 1)
            return versions[-1] + 1

        return self._run(operation)

    def retire_kek(self, tenant: str, version: int) -> None:
        validate_tenant(tenant)
        _check_version(version)

        def operation(session: pkcs11.Session) -> None:
            keks = self._keks(session, tenant)
            if version not in keks:
                raise KeyNotFound(f"town {tenant} has no KEK v{version}")
            if version == max(keks):
                raise ValueError(f"refusing to retire town {tenant}'s current KEK v{version}")
            for key in keks[version]:
                key.destroy()

        self._run(operation)

    def wrap(self, tenant: str, kek_version: int, key: bytes, aad: bytes) -> bytes:
        import pkcs11

        validate_tenant(tenant)
        plain = _check_key(key)

        def operation(session: pkcs11.Session) -> bytes:
            kek = self._kek(session, tenant, kek_version)[0]
            iv = os.urandom(NONCE_BYTES)
            params = pkcs11.GCMParams(iv, bytes(aad), _GCM_TAG_BITS)
            try:
                sealed = _gcm(kek, plain, params, encrypt=True)
            except _session_lost():
                raise
            except pkcs11.PKCS11Error as exc:
                raise WrapError(f"the token could not wrap a key for town {tenant}") from exc
            return iv + sealed

        return self._run(operation)

    def unwrap(self, tenant: str, kek_version: int, wrapped: bytes, aad: bytes) -> bytes:
        import pkcs11

        validate_tenant(tenant)

        def operation(session: pkcs11.Session) -> bytes:
            keys = self._kek(session, tenant, kek_version)
            if len(wrapped) < NONCE_BYTES + TAG_BYTES:
                raise WrapError(f"wrapped key for town {tenant} is truncated")
            params = pkcs11.GCMParams(bytes(wrapped[:NONCE_BYTES]), bytes(aad), _GCM_TAG_BITS)
            # Usually one key; more only after a creation race (see the class
            # docstring). GCM's tag tells which one wrapped this.
            for key in keys:
                try:
                    return _gcm(key, bytes(wrapped[NONCE_BYTES:]), params, encrypt=False)
                except _session_lost():
                    raise
                except pkcs11.PKCS11Error:
                    # SoftHSM reports a bad tag as CKR_GENERAL_ERROR, others
                    # as CKR_ENCRYPTED_DATA_INVALID: all mean "not this key".
                    continue
            raise WrapError(
                f"key did not unwrap under town {tenant}'s KEK v{kek_version}: "
                "wrong associated data or tampered"
            )

        return self._run(operation)

    def destroy(self, tenant: str) -> None:
        from pkcs11 import Attribute

        validate_tenant(tenant)

        def operation(session: pkcs11.Session) -> None:
            for obj in list(session.get_objects({Attribute.ID: _owner_id(tenant)})):
                obj.destroy()
            if list(session.get_objects({Attribute.ID: _owner_id(tenant)})):
                raise KeyProviderError(f"town {tenant}'s keys could not all be destroyed")

        self._run(operation)

    # --- signing -------------------------------------------------------------------
    def _signing_keys(
        self, session: pkcs11.Session, tenant: str
    ) -> list[tuple[str, pkcs11.PrivateKey]]:
        import pkcs11
        from pkcs11 import Attribute, ObjectClass

        prefix = _signing_label_prefix(tenant)
        objects = list(
            session.get_objects(
                {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: _owner_id(tenant)}
            )
        )
        return sorted(
            (obj.label, obj)
            for obj in objects
            if isinstance(obj, pkcs11.PrivateKey) and obj.label.startswith(prefix)
        )

    def _generate_signing_pair(self, session: pkcs11.Session, tenant: str) -> str:
        import pkcs11
        from pkcs11 import Attribute, KeyType, MechanismFlag

        # A random suffix tells two processes' key pairs apart (see the class
        # docstring); the same label pairs a private key with its public key.
        label = _signing_label_prefix(tenant) + secrets.token_hex(8)
        try:
            session.generate_keypair(
                KeyType.EC_EDWARDS,
                id=_owner_id(tenant),
                label=label,
                store=True,
                capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                public_template={
                    Attribute.EC_PARAMS: _ED25519_PARAMS,
                    Attribute.TOKEN: True,
                    Attribute.MODIFIABLE: False,
                },
                private_template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.MODIFIABLE: False,
                },
            )
        except (pkcs11.MechanismInvalid, pkcs11.FunctionNotSupported) as exc:
            raise KeyProviderError(
                f"PKCS#11 token {self._token_label!r} does not support Ed25519 (CKM_EDDSA)"
            ) from exc
        return label

    def _signing_pair(
        self, session: pkcs11.Session, tenant: str
    ) -> tuple[pkcs11.PrivateKey, pkcs11.PublicKey]:
        """The town's signing key pair, created if missing."""
        import pkcs11
        from pkcs11 import Attribute, ObjectClass

        keys = self._signing_keys(session, tenant)
        if not keys:
            mine = self._generate_signing_pair(session, tenant)
            keys = self._signing_keys(session, tenant)
            if len(keys) > 1:
                # Another process created one at the same time. The later of
                # two lookups sees both, so whoever sees another steps back
                # and every process ends up with the same key.
                for obj in list(session.get_objects({Attribute.LABEL: mine})):
                    obj.destroy()
                keys = [(label, key) for label, key in keys if label != mine]
            if not keys:
                raise KeyProviderError(
                    f"town {tenant}'s signing key was created concurrently; try again"
                )
        label, private = keys[0]
        public = list(
            session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: label})
        )
        if not public or not isinstance(public[0], pkcs11.PublicKey):
            raise KeyNotFound(f"town {tenant}'s signing public key is missing")
        return private, public[0]

    def _town_signing_pair(
        self, session: pkcs11.Session, tenant: str
    ) -> tuple[pkcs11.PrivateKey, pkcs11.PublicKey]:
        # Towns provisioned before signing keys existed get one on first use;
        # a destroyed town (no KEK) does not come back.
        if not self._keks(session, tenant):
            raise KeyNotFound(f"town {tenant} has no keys")
        return self._signing_pair(session, tenant)

    def signing_public_key(self, tenant: str) -> bytes:
        from pkcs11 import Attribute

        validate_tenant(tenant)

        def operation(session: pkcs11.Session) -> bytes:
            _, public = self._town_signing_pair(session, tenant)
            point: bytes = public[Attribute.EC_POINT]
            return _ed25519_raw(point)

        return self._run(operation)

    def sign(self, tenant: str, message: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.types import SignMixin

        validate_tenant(tenant)

        def operation(session: pkcs11.Session) -> bytes:
            private, _ = self._town_signing_pair(session, tenant)
            if not isinstance(private, SignMixin):
                raise KeyProviderError(f"town {tenant}'s signing key on the token cannot sign")
            return private.sign(bytes(message), mechanism=Mechanism.EDDSA)

        return self._run(operation)


# --------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------


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
