"""Tenancy: manifests, provisioning, per-tenant migrations, offboarding, and
the cache of active tenants that the request path consults."""
