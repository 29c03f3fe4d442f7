"""Who acts, as the town's log records them."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

from shared_gov import errors
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.auth.principal import Principal
from shared_gov.policy.purposes import purpose_from_header

from .gates import Gate


def audit_actor(
    request: ASGIConnection[Any, Any, Any, Any], principal: Principal, purpose: str | None
) -> AuditActor:
    """Who acts, as the log records it; ``purpose``: one the platform decided on, or None."""
    return AuditActor(
        subject=principal.subject,
        tenant=principal.tenant,
        department=principal.department,
        roles=tuple(sorted(principal.roles)),
        auth_strength="mfa" if principal.mfa else "single",
        client_addr=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        purpose=purpose,
    )


def known_purpose(header: str | None) -> str | None:
    """The purpose an X-Purpose names when the platform knows it, else None.

    An arbitrary X-Purpose is the caller's text, and the record may be about
    a refusal of exactly that: the log holds only purposes that exist.
    """
    try:
        return purpose_from_header(header).code
    except errors.DomainError:
        return None


def recorded_purpose(gate: Gate, header: str | None) -> str | None:
    """The purpose an event on ``gate``'s routes records: the one they serve, or
    a known X-Purpose when the gate reads it, else none."""
    if gate.serves is not None:
        return gate.serves
    return known_purpose(header) if gate.purpose is not None else None
