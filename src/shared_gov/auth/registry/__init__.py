"""Towns' own OpenID Connect issuers, as the token verifier sees them.

:class:`IssuerRegistry` holds every registered issuer (``catalog.issuers``)
in memory, keyed by issuer URL, so the verifier resolves a token's ``iss``
with a dict lookup. The whole table is read in ONE query, on first use,
after an invalidation (a ``shared_gov_policy`` notification, or the local
call the issuer endpoints make after their commit) and at the latest every
``ttl`` seconds as a safety net for a missed notification. An unknown
``iss`` never causes a query, so made-up issuers cannot hammer the database.

Each issuer's keys live in a :class:`JwksSource`: an inline JWKS, or one
fetched from ``jwks_uri`` with httpx — on first use, when a token names an
unknown ``kid`` (key rotation at the IdP), and when older than ``max_age``.
Every fetch attempt for an issuer is at least ``min_refetch_interval``
(30 s) after the previous one, so forged ``kid`` values cannot make us
hammer the IdP; each fetch is bounded in time (3 s in total) and size. A
failed fetch keeps the last good keys; with none, the token is refused
(401). Nothing of a token or a JWKS is ever logged — only the town, a reason
and counts.

A reload keeps an issuer's entry object (with its fetched keys and its
refetch limit) when its configuration did not change, so verified tokens
stay cached; a changed configuration gets a new entry and a removed one
none, and the verifier's cache notices because it compares entry identity.

Modules: :mod:`.checks` (the configuration and its keys), :mod:`.addresses`
(where a ``jwks_uri`` may point), :mod:`.jwks` (fetching keys),
:mod:`.catalog` (the registry).
"""

from .addresses import internal_address_problem
from .catalog import IssuerEntry, IssuerRegistry, Loader, catalog_loader, fingerprint
from .checks import (
    ALLOWED_ALGORITHMS,
    MAX_JWKS_KEYS,
    MIN_RSA_BITS,
    JwksError,
    issuer_problems,
    keyset_from_jwks,
    parse_issuer_config,
)
from .jwks import MAX_JWKS_BYTES, Clock, Fetcher, FetchPolicy, JwksSource, fetch_jwks

__all__ = [
    "ALLOWED_ALGORITHMS",
    "MAX_JWKS_BYTES",
    "MAX_JWKS_KEYS",
    "MIN_RSA_BITS",
    "Clock",
    "FetchPolicy",
    "Fetcher",
    "IssuerEntry",
    "IssuerRegistry",
    "JwksError",
    "JwksSource",
    "Loader",
    "catalog_loader",
    "fetch_jwks",
    "fingerprint",
    "internal_address_problem",
    "issuer_problems",
    "keyset_from_jwks",
    "parse_issuer_config",
]
