"""What an agreement proposal is, and what it must satisfy before it is stored.

Party towns active (locked against a concurrent offboarding), departments,
purposes, fields and actions known, a legal basis, a valid window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from shared_gov import errors
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.domains import registry
from shared_gov.errors import FieldError
from shared_gov.messages import access as m
from shared_gov.messages import identity as mi
from shared_gov.policy.agreements.terms import ACTIONS
from shared_gov.policy.purposes import purposes
from shared_gov.validation import instant_in_range


@dataclass(frozen=True, slots=True)
class Proposal:
    provider: str
    recipient: str
    recipient_departments: Sequence[str]
    purposes: Sequence[str]
    fields: Sequence[str]
    actions: Sequence[str]
    legal_basis: str
    valid_from: datetime
    valid_until: datetime


async def _active_towns(conn: asyncpg.Connection, codes: Sequence[str]) -> set[str]:
    """The towns of ``codes`` that are active, locked FOR SHARE until commit.

    Offboarding updates the town's row first (status ``inactive``) and then
    revokes its agreements in the same transaction: a proposal or acceptance
    holding this lock commits before that update (and is revoked with the
    rest), or waits for it and finds the town inactive.
    """
    rows = await conn.fetch(
        "SELECT code::text AS code FROM catalog.tenants WHERE code = ANY($1) AND status = 'active' "
        "ORDER BY code FOR SHARE",
        sorted(set(codes)),
    )
    return {r["code"] for r in rows}


async def _validate(conn: asyncpg.Connection, p: Proposal) -> None:
    problems: list[FieldError] = []
    if p.provider not in await _active_towns(conn, [p.provider]):
        raise errors.not_found(mi.NO_SUCH_ACTIVE_TENANT)
    if not is_valid_lgcode(p.recipient):
        problems.append(FieldError("/recipient", m.NOT_A_TOWN_CODE))
    elif p.recipient == p.provider:
        problems.append(FieldError("/recipient", m.NOT_WITH_ITSELF))
    elif p.recipient not in await _active_towns(conn, [p.recipient]):
        problems.append(FieldError("/recipient", m.NO_SUCH_TOWN))
    else:
        known = {
            r["code"]
            for r in await conn.fetch(
                "SELECT code FROM catalog.departments WHERE tenant_code = $1 AND active",
                p.recipient,
            )
        }
        for i, dept in enumerate(p.recipient_departments):
            if dept not in known:
                problems.append(
                    FieldError(f"/recipient_departments/{i}", m.NO_SUCH_DEPARTMENT_THERE)
                )
    known_purposes = purposes()
    for i, code in enumerate(p.purposes):
        if code not in known_purposes:
            problems.append(FieldError(f"/purposes/{i}", m.NO_SUCH_PURPOSE))
    for i, name in enumerate(p.fields):
        if name not in registry.all_policy_fields():
            problems.append(FieldError(f"/fields/{i}", m.NO_SUCH_FIELD))
    for i, action in enumerate(p.actions):
        if action not in ACTIONS:
            problems.append(FieldError(f"/actions/{i}", m.READ_OR_SEARCH))
    for pointer, values in (
        ("/recipient_departments", p.recipient_departments),
        ("/purposes", p.purposes),
        ("/fields", p.fields),
        ("/actions", p.actions),
    ):
        if not values:
            problems.append(FieldError(pointer, m.NAME_AT_LEAST_ONE))
        elif len(set(values)) != len(values):
            problems.append(FieldError(pointer, m.NAMES_ONE_TWICE))
    for pointer, moment in (("/valid_from", p.valid_from), ("/valid_until", p.valid_until)):
        if moment.tzinfo is None:
            problems.append(FieldError(pointer, m.NEEDS_OFFSET))
        elif not instant_in_range(moment):
            problems.append(FieldError(pointer, m.OUT_OF_RANGE))
    if not problems and p.valid_until <= p.valid_from:
        problems.append(FieldError("/valid_until", m.UNTIL_AFTER_FROM))
    if not p.legal_basis.strip():
        problems.append(FieldError("/legal_basis", m.NOT_BLANK))
    if problems:
        raise errors.invalid(problems)
