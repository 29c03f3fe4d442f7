"""Who acts, as the town's log records them.

The purpose an event records is one the platform decided on for that
caller: the X-Purpose a records gate bound the request's ``Access`` to
(every Cedar decision of the request is on it), or the one purpose a gate's
routes serve when it let the caller in (:attr:`.gates.Gate.serves`). A
refusal before that — another town, an operator, a body or parameter the
route refused, the gate's own denial — records none, whatever the caller
stated: the stated text is the caller's word, and an X-Purpose a gate does
not read is never recorded (docs/audit.md, "What a failure records").
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

from shared_gov import errors
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.auth.principal import Principal
from shared_gov.policy.purposes import purpose_from_header


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
