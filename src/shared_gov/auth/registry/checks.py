"""Checks of a town's issuer configuration: the algorithms it may pin and the
public signing keys of its JWKS (a PUT body, a manifest, a row read back)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

import msgspec
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, OKPKey, RSAKey, import_key

from shared_gov import errors
from shared_gov.auth.config import Algorithm, IssuerConfig
from shared_gov.messages import identity as mi
from shared_gov.validation import msgspec_error_to_field

ALLOWED_ALGORITHMS = frozenset(get_args(Algorithm))
"""The asymmetric algorithms an issuer may pin (never ``none``, never HS*)."""
MAX_JWKS_KEYS = 20
MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPE_FOR_PREFIX = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class JwksError(Exception):
    """A JWKS could not be fetched or used; ``str(exc)`` is a log-safe reason."""

    @property
    def reason(self) -> str:
        """The reason as given (a catalogue message when a client reads it)."""
        return self.args[0] if self.args and isinstance(self.args[0], str) else str(self)


def _symmetric_or_none(alg: object) -> bool:
    return isinstance(alg, str) and (alg.lower() == "none" or alg.upper().startswith("HS"))


def parse_issuer_config(data: object, *, require_https: bool = False) -> IssuerConfig:
    """Validate a PUT body (the manifest's ``[issuer]`` shape) or raise 422.

    ``none`` and HMAC algorithms are refused at ``/algorithms``: a public-key
    issuer's keys are public, so an HS* token "signed" with one proves nothing.
    """
    if not isinstance(data, dict):
        raise errors.invalid_field("/", mi.EXPECTED_OBJECT)
    algorithms = data.get("algorithms")
    if isinstance(algorithms, list) and any(_symmetric_or_none(a) for a in algorithms):
        raise errors.invalid_field("/algorithms", mi.NO_SYMMETRIC)
    try:
        config = msgspec.convert(data, IssuerConfig)
    except msgspec.ValidationError as exc:
        raise errors.invalid([msgspec_error_to_field(str(exc))]) from None
    problems = issuer_problems(config, require_https=require_https)
    if problems:
        raise errors.invalid(problems)
    return config


def issuer_problems(
    config: IssuerConfig, *, require_https: bool = False
) -> list[errors.FieldError]:
    """Checks beyond field types; used for PUT bodies and rows read back."""
    problems: list[errors.FieldError] = []
    if any(a not in ALLOWED_ALGORITHMS for a in config.algorithms):
        problems.append(errors.FieldError("/algorithms", mi.ASYMMETRIC_ONLY))
    if (config.jwks_uri is None) == (config.jwks is None):
        problems.append(errors.FieldError("/jwks_uri", mi.ONE_OF_JWKS))
    if require_https and config.jwks_uri is not None and not config.jwks_uri.startswith("https://"):
        problems.append(errors.FieldError("/jwks_uri", mi.HTTPS_ONLY))
    if config.jwks is not None:
        if any(_has_private_members(k) for k in config.jwks.get("keys") or []):
            problems.append(errors.FieldError("/jwks", mi.PUBLIC_KEYS_ONLY))
        else:
            try:
                keys = keyset_from_jwks(config.jwks)
            except JwksError as exc:
                problems.append(errors.FieldError("/jwks", exc.reason))
            else:
                if not any(_usable_with(key, config.algorithms) for key in keys.keys):
                    problems.append(errors.FieldError("/jwks", mi.NO_KEY_FITS))
    return problems


def _has_private_members(item: object) -> bool:
    return isinstance(item, dict) and bool(_PRIVATE_MEMBERS.intersection(item))


def _usable_with(key: Key, algorithms: Sequence[str]) -> bool:
    return any(_KEY_TYPE_FOR_PREFIX.get(a[:2]) == key.key_type for a in algorithms)


def keyset_from_jwks(data: object) -> KeySet:
    """The public signing keys of a JWKS document.

    Keeps RSA (≥ 2048 bits), EC and OKP keys meant for signatures; drops
    symmetric (``oct``) keys, encryption keys, private members and anything
    that does not import. Raises :class:`JwksError` when nothing is left.
    """
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise JwksError(mi.NOT_A_JWKS)
    items: list[Any] = data["keys"]
    if len(items) > MAX_JWKS_KEYS:
        raise JwksError(mi.TOO_MANY_KEYS)
    keys: list[Key] = []
    for item in items:
        if not isinstance(item, dict) or item.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if item.get("use", "sig") != "sig":
            continue
        public = {k: v for k, v in item.items() if k not in _PRIVATE_MEMBERS}
        try:
            key = import_key(public)
        except (JoseError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
            continue
        if not isinstance(key, RSAKey | ECKey | OKPKey):  # pragma: no cover - kty filtered
            continue
        keys.append(key)
    if not keys:
        raise JwksError(mi.NO_USABLE_KEY)
    return KeySet(keys)
