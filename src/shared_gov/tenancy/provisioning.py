"""Onboarding a town: catalog row, role, schema, tables and departments in one go.

Everything happens in one transaction, serialised per town by an advisory
lock, so a failure leaves nothing behind and two concurrent onboardings of the
same town cannot race. Onboarding an unchanged manifest again changes nothing
(and costs one catalog read); a changed manifest updates names and
departments. Departments dropped from a manifest are deactivated, not
deleted: audit records and staff permissions still refer to them.

Privileges: the schema belongs to the migrating role. The tenant's NOLOGIN
role gets USAGE on its schema and, through default privileges, DML on the
tables migrations create now or later; it never gets CREATE, never sees the
catalog, and may not rewrite resident history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, text

from shared_gov import errors
from shared_gov.crypto.keyring import Keyring
from shared_gov.db.migrations.runner import head, upgrade_tenant
from shared_gov.policy import agreements
from shared_gov.tenancy.manifest import Manifest
from shared_gov.tenancy.names import TenantNames, quote_ident, tenant_names

Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    code: str
    outcome: Outcome


def provision(
    conn: Connection, manifest: Manifest, role_prefix: str, keyring: Keyring
) -> ProvisionResult:
    """Create or update one tenant inside the caller's transaction (sync, for run_sync)."""
    names = tenant_names(manifest.code, role_prefix)
    document = manifest.to_json()
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.tenant.' || :c, 0))"),
        {"c": names.code},
    )
    row = conn.execute(
        text(
            "SELECT status, manifest, schema_revision FROM catalog.tenants "
            "WHERE code = :c FOR UPDATE"
        ),
        {"c": names.code},
    ).one_or_none()
    outcome: Outcome
    if row is None:
        conn.execute(
            text(
                "INSERT INTO catalog.tenants (code, name, name_kana, prefecture, "
                "population, status, schema_name, role_name, manifest) VALUES "
                "(:code, :name, :kana, :pref, :pop, 'active', :schema, :role, "
                "CAST(:manifest AS jsonb))"
            ),
            _catalog_params(manifest, names, document),
        )
        outcome = "created"
    elif (
        row.status == "active"
        and row.manifest == document
        and row.schema_revision == head("tenant")
    ):
        # Keys are checked even then: a town onboarded before encryption gets them.
        created = keyring.provision(conn, names.code, manifest.population)
        created = agreements.ensure_standing(conn, names.code) or created
        return ProvisionResult(names.code, "updated" if created else "unchanged")
    else:
        outcome = "created" if row.status == "offboarded" else "updated"
        # An offboarded code onboarded again is a new town: a new incarnation,
        # with an audit log (and keys) of its own (docs/audit.md, "Incarnations").
        conn.execute(
            text(
                "UPDATE catalog.tenants SET name = :name, name_kana = :kana, "
                "prefecture = :pref, population = :pop, status = 'active', schema_name = :schema, "
                "role_name = :role, manifest = CAST(:manifest AS jsonb), offboarded_at = NULL, "
                "incarnation = incarnation + (status = 'offboarded')::int, "
                "updated_at = now() WHERE code = :code"
            ),
            _catalog_params(manifest, names, document),
        )
    _ensure_role_and_schema(conn, names)
    upgrade_tenant(conn, names)
    keyring.provision(conn, names.code, manifest.population)
    _sync_departments(conn, manifest)
    agreements.ensure_standing(conn, names.code)
    if manifest.issuer is not None and (outcome == "created" or not _has_issuer(conn, names.code)):
        # The manifest names the town's first identity provider; afterwards only
        # the town's own admins change it (an operator who could swap it could
        # mint the town's staff tokens).
        _sync_issuer(conn, manifest)
    # Other workers drop their cached permissions and issuers for this town.
    conn.execute(text("SELECT pg_notify('shared_gov_policy', :c)"), {"c": names.code})
    return ProvisionResult(names.code, outcome)


def _catalog_params(
    manifest: Manifest, names: TenantNames, document: dict[str, object]
) -> dict[str, object]:
    return {
        "code": names.code,
        "name": manifest.name,
        "kana": manifest.name_kana,
        "pref": manifest.prefecture,
        "pop": manifest.population,
        "schema": names.schema,
        "role": names.role,
        "manifest": json.dumps(document, ensure_ascii=False),
    }


def _ensure_role_and_schema(conn: Connection, names: TenantNames) -> None:
    role = quote_ident(names.role)
    schema = quote_ident(names.schema)
    exists = conn.execute(
        text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": names.role}
    ).scalar()
    if not exists:
        conn.execute(text(f"CREATE ROLE {role} NOLOGIN NOINHERIT"))
    # The service's login role must be able to SET ROLE to the tenant role.
    conn.execute(text(f"GRANT {role} TO CURRENT_USER"))
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    conn.execute(text(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"))
    conn.execute(text(f"GRANT USAGE ON SCHEMA {schema} TO {role}"))
    conn.execute(
        text(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        )
    )
    conn.execute(
        text(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
            f"GRANT USAGE, SELECT ON SEQUENCES TO {role}"
        )
    )
    # The town writes its audit log only through audit.record().
    conn.execute(text(f"GRANT USAGE ON SCHEMA audit TO {role}"))
    conn.execute(text(f"GRANT EXECUTE ON FUNCTION audit.record(jsonb) TO {role}"))


def _sync_departments(conn: Connection, manifest: Manifest) -> None:
    codes = [d.code for d in manifest.departments]
    inserted = conn.execute(
        text(
            "INSERT INTO catalog.departments (tenant_code, code, name, active) "
            "SELECT :t, d.code, d.name, true FROM unnest(CAST(:codes AS text[]), "
            "CAST(:dnames AS text[])) AS d(code, name) "
            "ON CONFLICT (tenant_code, code) DO UPDATE SET name = EXCLUDED.name, active = true "
            "RETURNING code, (xmax = 0) AS created"
        ),
        {"t": manifest.code, "codes": codes, "dnames": [d.name for d in manifest.departments]},
    ).all()
    # A manifest's purposes seed a NEW department only: afterwards the town's
    # admins own them (PUT …/departments/{code}), and re-onboarding must not
    # silently undo their decisions.
    new = {row.code for row in inserted if row.created}
    for dept in manifest.departments:
        if dept.code in new and dept.purposes:
            conn.execute(
                text(
                    "INSERT INTO catalog.department_purposes (tenant_code, department, purpose) "
                    "SELECT :t, :d, unnest(CAST(:p AS text[])) ON CONFLICT DO NOTHING"
                ),
                {"t": manifest.code, "d": dept.code, "p": dept.purposes},
            )
    conn.execute(
        text(
            "UPDATE catalog.departments SET active = false "
            "WHERE tenant_code = :t AND active AND NOT (code = ANY(CAST(:codes AS text[])))"
        ),
        {"t": manifest.code, "codes": codes},
    )


def _sync_issuer(conn: Connection, manifest: Manifest) -> None:
    issuer = manifest.issuer
    if issuer is None:
        return
    owner = conn.execute(
        text("SELECT tenant_code FROM catalog.issuers WHERE issuer = :iss"), {"iss": issuer.url}
    ).scalar()
    if owner is not None and owner != manifest.code:
        raise errors.conflict("this issuer URL cannot be registered for this town")
    conn.execute(text("DELETE FROM catalog.issuers WHERE tenant_code = :t"), {"t": manifest.code})
    conn.execute(
        text(
            "INSERT INTO catalog.issuers (issuer, tenant_code, audience, jwks_uri, jwks, "
            "algorithms, staff_claim, department_claim, roles_claim) VALUES (:iss, :t, :aud, "
            ":uri, CAST(:jwks AS jsonb), CAST(:algs AS text[]), :sc, :dc, :rc)"
        ),
        {
            "iss": issuer.url,
            "t": manifest.code,
            "aud": issuer.audience,
            "uri": issuer.jwks_uri,
            "jwks": None if issuer.jwks is None else json.dumps(issuer.jwks),
            "algs": list(issuer.algorithms),
            "sc": issuer.staff_claim,
            "dc": issuer.department_claim,
            "rc": issuer.roles_claim,
        },
    )


def _has_issuer(conn: Connection, code: str) -> bool:
    return bool(
        conn.execute(
            text("SELECT 1 FROM catalog.issuers WHERE tenant_code = :t"), {"t": code}
        ).scalar()
    )
