"""Authorisation: Cedar decides (see ``policies/`` and :mod:`.engine`).

- :func:`engine` is the process's validated :class:`~.engine.PolicyEngine`.
- :class:`~.access.Access` is what services receive: principal, actor
  attributes, stated purpose; ``require()`` for record actions and
  ``field_view()`` for per-field decisions.
- :func:`may_enter` refuses callers from other towns before any database
  work, with the same 404 a missing resource gets (DESIGN.md rule 3); inside
  their own town, a deny is a 403 with the reason. Town-level decisions (the
  town's administration, its audit log, its event feed) are taken by the
  guarded entry (``shared_gov.api.entry``), each family through its gate.
- Managing tenants (onboarding) is the platform operators' alone and is not a
  town's policy question, so :func:`authorize_operator` is plain code.
"""

from __future__ import annotations

from functools import lru_cache

from shared_gov import errors
from shared_gov.auth.principal import Principal
from shared_gov.domains import registry
from shared_gov.policy.access import Access, FieldView
from shared_gov.policy.engine import PolicyEngine
from shared_gov.policy.loading import PolicyError
from shared_gov.policy.purposes import default_policies_dir
from shared_gov.policy.requests import Actor, Decision, Query, Resource

__all__ = [
    "Access",
    "Actor",
    "Decision",
    "FieldView",
    "PolicyEngine",
    "PolicyError",
    "Query",
    "Resource",
    "actor_of",
    "authorize_operator",
    "engine",
    "may_enter",
]


def engine() -> PolicyEngine:
    """The validated policies of this process (raises PolicyError if invalid).

    One per set of installed domains (their policies and actions are part of it).
    """
    return _engine(registry.generation())


@lru_cache(maxsize=4)
def _engine(_generation: int) -> PolicyEngine:
    return PolicyEngine(default_policies_dir())


def actor_of(principal: Principal, purposes: frozenset[str] = frozenset()) -> Actor:
    """The attributes Cedar reads of ``principal``, with the purposes granted to them."""
    return Actor(
        tenant=principal.tenant,
        department=principal.department or "",
        roles=principal.roles,
        mfa=principal.mfa,
        purposes=purposes,
        operator=principal.is_operator,
        supplier=principal.subject if principal.is_supplier else "",
        staff_id=principal.subject,
    )


def may_enter(principal: Principal, tenant_code: str) -> bool:
    """Whether the principal belongs to ``tenant_code`` (else: 404, no data)."""
    return principal.tenant == tenant_code


def authorize_operator(principal: Principal) -> None:
    """Tenant onboarding and listing: operators only; everyone else gets 404."""
    if not principal.is_operator:
        raise errors.not_found()
