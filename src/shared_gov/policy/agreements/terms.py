"""The terms a request relies on: an agreement's current version as Cedar sees it.

Read in the request's own transaction (:func:`terms_in`, through
``sharing.agreement``), cached per agreement and version (:class:`TermsCache`),
and checked again by the binding statement (:func:`check_call`) under the
agreement's advisory lock (:func:`lock_name`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shared_gov.db import TenantUnitOfWork
from shared_gov.policy.requests import AgreementTerms

ACTIONS = ("read", "search")
STANDING_KIND = "standing_move"
# The standing move agreement's terms (転出証明書の記載事項, its department and
# purpose) are the residents domain's: declared in its spec, read here through
# the registry (``registry.standing_share()``).
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)


# The current incarnation of a town (NULL for a code that is not a tenant).
_INCARNATION = "(SELECT t.incarnation FROM catalog.tenants AS t WHERE t.code = {})"
# ``a`` is an agreement the town ``$1`` is party to, made with its current
# incarnation (the standing agreements of every town: the provider's current one).
_PARTY_OF_CURRENT = (
    "((a.provider = $1 AND a.provider_incarnation = " + _INCARNATION.format("$1") + ") "
    "OR (a.recipient = $1 AND a.recipient_incarnation = " + _INCARNATION.format("$1") + ") "
    "OR (a.recipient = '*' AND a.provider_incarnation = " + _INCARNATION.format("a.provider") + "))"
)


def lock_name(agreement_id: uuid.UUID) -> str:
    """The advisory lock a cross-town read holds (shared) and a revocation takes (exclusive)."""
    return f"shared_gov.agreement.{agreement_id}"


def parse_id(value: str | None) -> uuid.UUID | None:
    """The agreement id of an ``X-Agreement`` header or a path; None if malformed."""
    if value is None:
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        return None


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def terms_from_row(row: Any) -> AgreementTerms:
    return AgreementTerms(
        agreement_id=str(row["agreement_id"]),
        version=row["version"],
        provider=row["provider"].strip(),
        recipient=row["recipient"],
        kind=row["kind"],
        status=row["status"],
        departments=frozenset(row["departments"]),
        purposes=frozenset(row["purposes"]),
        fields=frozenset(row["fields"]),
        actions=frozenset(row["actions"]),
        valid_from=_seconds(row["valid_from"]),
        valid_until=_seconds(row["valid_until"]),
    )


async def terms_in(uow: TenantUnitOfWork, agreement_id: uuid.UUID) -> AgreementTerms | None:
    """The agreement in force right now, read inside the town's own transaction.

    ``sharing.agreement`` answers only for agreements the unit of work's town is
    a party to; it reads what is committed at this statement, so a revocation
    committed a moment ago is seen.
    """
    row = await uow.fetchrow("SELECT * FROM sharing.agreement($1)", agreement_id)
    return terms_from_row(row) if row is not None else None


class TermsCache:
    """Agreements' terms as last read by this process, checked on every use.

    Reading the terms costs a round trip and a function call per cross-town
    request. Instead, a request with cached terms folds
    ``sharing.agreement_is(id, version)`` into its binding statement, after
    the agreement's shared lock: if the version changed (accepted, revoked)
    the binding fails with SQLSTATE SGA01 and the request reads afresh. The
    check runs in the request's own transaction, so a revocation committed
    before it is seen exactly as with a fresh read.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._terms: dict[uuid.UUID, AgreementTerms] = {}
        self._size = size

    def get(self, agreement_id: uuid.UUID) -> AgreementTerms | None:
        return self._terms.get(agreement_id)

    def put(self, agreement_id: uuid.UUID, terms: AgreementTerms) -> None:
        if len(self._terms) >= self._size:
            self._terms.clear()
        self._terms[agreement_id] = terms

    def drop(self, agreement_id: uuid.UUID) -> None:
        self._terms.pop(agreement_id, None)


def check_call(agreement_id: uuid.UUID, terms: AgreementTerms) -> str:
    """The binding-statement call that fails unless ``terms`` are still current."""
    # Both values are validated (a UUID object, an int): safe as literals.
    return f"sharing.agreement_is('{agreement_id}'::uuid, {int(terms.version)})"
