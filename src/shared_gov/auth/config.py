"""A town's OpenID Connect issuer as configured: what a manifest, the issuer
catalogue and the issuer endpoints share, and what an audit event says of it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from shared_gov.validation import NoNul

Algorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
ClaimName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}\Z")]


class IssuerConfig(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The town's own OpenID Connect issuer for staff tokens."""

    # No NUL either: PostgreSQL text cannot hold one (it was a 500).
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s\x00]+\Z", max_length=300)]
    audience: Annotated[str, msgspec.Meta(min_length=1, max_length=200), NoNul]
    jwks_uri: (
        Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s\x00]+\Z", max_length=500)] | None
    ) = None
    jwks: dict[str, Any] | None = None
    """Inline JWKS, for IdPs that cannot be reached from the platform."""
    algorithms: Annotated[list[Algorithm], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["RS256"]
    )
    staff_claim: ClaimName = "sub"
    department_claim: ClaimName = "dept"
    roles_claim: ClaimName = "roles"


def issuer_summary(config: IssuerConfig | None) -> dict[str, object] | None:
    """What an audit event says of an issuer: settings and key ids, never whole keys."""
    if config is None:
        return None
    kids = None
    if config.jwks is not None:
        kids = sorted(
            str(k.get("kid")) for k in config.jwks.get("keys") or [] if isinstance(k, dict)
        )
    return {
        "url": config.url,
        "audience": config.audience,
        "jwks_uri": config.jwks_uri,
        "inline_kids": kids,
        "algorithms": list(config.algorithms),
        "claims": [config.staff_claim, config.department_claim, config.roles_claim],
    }
