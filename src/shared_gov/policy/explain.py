"""Explaining decisions to people: which fields a staff member may see for a
purpose, and the one condition that failed for each one they may not.

Used by ``shared-gov policy explain`` and ``GET …/staff/{id}/explain`` — the
tools a town admin reaches for when staff ask why they cannot see something.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from shared_gov import errors
from shared_gov.domains import registry
from shared_gov.messages import access as m
from shared_gov.policy.engine import PolicyEngine
from shared_gov.policy.permissions import PermissionStore
from shared_gov.policy.purposes import purposes
from shared_gov.policy.requests import Actor, Query, Resource


class FieldExplanation(msgspec.Struct, kw_only=True):
    field: str
    allowed: bool
    reason: str | None
    policies: list[str]


@dataclass(frozen=True, slots=True)
class Explanation:
    staff_id: str
    department: str | None
    granted_purposes: list[str]
    purpose: str
    fields: list[FieldExplanation]


async def explain_staff(
    permissions: PermissionStore,
    engine: PolicyEngine,
    *,
    tenant: str,
    staff_id: str,
    purpose_code: str,
    department: str | None = None,
    mfa: bool = False,
    support_measure: bool = False,
    roles: frozenset[str] = frozenset({"staff"}),
    only_field: str | None = None,
) -> Explanation:
    purpose = purposes().get(purpose_code)
    if purpose is None:
        raise errors.invalid_field("/purpose", m.UNKNOWN_PURPOSE)
    if only_field is not None and only_field not in registry.policy_fields():
        raise errors.invalid_field("/field", m.NOT_A_POLICY_FIELD)
    town = await permissions.town(tenant)
    record = town.record_of(staff_id)
    dept = department or (record.department if record else None)
    granted = town.purposes_for(staff_id, dept)
    actor = Actor(
        tenant=tenant,
        department=dept or "",
        roles=roles,
        mfa=mfa,
        purposes=granted,
        staff_id=staff_id,
    )
    names = [only_field] if only_field else list(registry.policy_fields())
    decisions = engine.decide_many(
        actor,
        [Query("read", Resource("Field", tenant, n, support_measure), purpose) for n in names],
    )
    return Explanation(
        staff_id=staff_id,
        department=dept,
        granted_purposes=sorted(granted),
        purpose=purpose.code,
        fields=[
            FieldExplanation(
                field=n, allowed=d.allowed, reason=d.reason, policies=list(d.policy_ids)
            )
            for n, d in zip(names, decisions, strict=True)
        ],
    )
