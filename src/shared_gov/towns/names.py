"""Names of a tenant's database objects, derived only from a validated code.

A schema or role name is never built from unchecked input: the code must be
six ASCII digits with a valid check digit (全国地方公共団体コード, JIS X 0402),
and the result must match ``^t_[0-9]{6}$``. Names are then safe to place in
SQL text (they are still quoted), which the one-statement tenant binding in
:mod:`shared_gov.db.binding` relies on: a :class:`TenantNames` is the db
layer's :class:`~shared_gov.db.binding.TownBinding`, made here.
"""

from __future__ import annotations

from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.db.binding import ROLE_PATTERN as _ROLE
from shared_gov.db.binding import SCHEMA_PATTERN as _SCHEMA
from shared_gov.db.binding import TownBinding, quote_ident

TenantNames = TownBinding
"""The database identifiers of one tenant (the db layer's binding)."""

__all__ = ["InvalidTenantCode", "TenantNames", "quote_ident", "tenant_names", "validate_code"]


class InvalidTenantCode(ValueError):
    """The code is not a valid local government code."""


def validate_code(code: str) -> str:
    if not is_valid_lgcode(code):
        raise InvalidTenantCode("not a valid 6-digit local government code")
    return code


def tenant_names(code: str, role_prefix: str) -> TenantNames:
    """Schema ``t_<code>`` and role ``<prefix>_t_<code>`` for a valid code."""
    validate_code(code)
    schema = f"t_{code}"
    role = f"{role_prefix}_{schema}"
    if not _SCHEMA.fullmatch(schema) or not _ROLE.fullmatch(role):
        raise InvalidTenantCode("derived identifiers failed their pattern")
    return TenantNames(code=code, schema=schema, role=role)
