"""Kept for the tests and benches that import it: see :mod:`shared_gov.towns.names`."""

from shared_gov.towns.names import (
    InvalidTenantCode,
    TenantNames,
    quote_ident,
    tenant_names,
    validate_code,
)

__all__ = ["InvalidTenantCode", "TenantNames", "quote_ident", "tenant_names", "validate_code"]
