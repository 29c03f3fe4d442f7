"""The acting principal, built from a verified token's claims."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = frozenset({"staff", "admin", "auditor", "integration", "operator", "supplier"})
"""``integration``: a department system's client (reads the town's event feed).
``supplier``: a supplier's system (電子請求): belongs to no town, acts in each
town that registered it, on its own invoices only (its subject is its supplier key)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting: (tenant, staff id, department, roles, auth strength).

    Operators act for the platform and carry no tenant, nor do suppliers (a
    supplier sells to many towns; its subject is its supplier key); everyone
    else belongs to exactly one town, named by the token's ``tenant`` claim.
    """

    subject: str
    tenant: str | None
    department: str | None
    roles: frozenset[str]
    amr: frozenset[str]
    issuer_fingerprint: str | None = None
    """The configuration of the town issuer that verified the token
    (:func:`~shared_gov.auth.registry.fingerprint`); None for the built-in
    issuer. Four-eyes approvals compare it with the issuer in effect, so a
    token verified by a configuration that has just been replaced approves
    nothing."""

    @property
    def is_operator(self) -> bool:
        return "operator" in self.roles

    @property
    def is_supplier(self) -> bool:
        return "supplier" in self.roles

    @property
    def mfa(self) -> bool:
        return "mfa" in self.amr

    @property
    def actor(self) -> str:
        """A log-safe actor label: staff id and town, never a name."""
        if self.is_supplier:
            return f"supplier/{self.subject}"
        return f"{self.tenant or 'platform'}/{self.subject}"
