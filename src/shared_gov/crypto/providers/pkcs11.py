"""Non-extractable keys inside an HSM reached through PKCS#11 (SoftHSM2 in tests).

Keys never leave the token; the process only asks it to encrypt, decrypt and
sign.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from shared_gov.crypto.providers.interface import (
    _T,
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

if TYPE_CHECKING:
    import pkcs11
    from pkcs11._pkcs11 import lib as Pkcs11Library


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
