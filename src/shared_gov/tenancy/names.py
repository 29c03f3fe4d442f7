"""Names of a tenant's database objects, derived only from a validated code.

A schema or role name is never built from unchecked input: the code must be
six ASCII digits with a valid check digit (全国地方公共団体コード, JIS X 0402),
and the result must match ``^t_[0-9]{6}$``. Names are then safe to place in
SQL text (they are still quoted), which the one-statement tenant binding in
:mod:`shared_gov.db.uow` relies on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared_gov.checkdigits import is_valid_lgcode

_SCHEMA = re.compile(r"^t_[0-9]{6}$")
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,30}_t_[0-9]{6}$")


class InvalidTenantCode(ValueError):
    """The code is not a valid local government code."""


@dataclass(frozen=True, slots=True)
class TenantNames:
    """The database identifiers of one tenant."""

    code: str
    schema: str
    role: str


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


def quote_ident(name: str) -> str:
    """Quote an identifier that already matched one of the patterns above."""
    if not (_SCHEMA.fullmatch(name) or _ROLE.fullmatch(name)):
        raise InvalidTenantCode("refusing to quote an unchecked identifier")
    return '"' + name + '"'
