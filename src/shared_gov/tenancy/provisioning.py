"""Onboarding a town: catalog row, role, schema, tables and departments in one go.

Everything happens in one transaction, serialised per town by an advisory
lock, so a failure leaves nothing behind and two concurrent onboardings of the
same town cannot race. Onboarding an unchanged manifest again changes nothing
(and costs one catalog read).

Separation of duties (docs/separation-of-duties.md): a manifest CREATES a
town — platform settings, departments with their first purposes — and a new
town gets a one-time enrolment code through which the town itself registers
its identity provider and first admin (:mod:`.enrolment`). Once the town
exists, a manifest may change its platform settings (names, prefecture,
population, …) only: a manifest whose issuer or departments differ from the
stored one is refused with 409 saying why (:class:`IdentityChangeRefused`),
since an operator who could add a department with ``juki.registration`` or
swap the issuer could make themselves the town's staff. Re-creating an
offboarded town forgets the old incarnation's issuer and permissions.
Every creation and update is an event in the town's audit log, in the same
transaction.

Privileges: the schema belongs to the migrating role. The tenant's NOLOGIN
role gets USAGE on its schema and, through default privileges, DML on the
tables migrations create now or later; it never gets CREATE, never sees the
catalog, and may not rewrite resident history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, text

from shared_gov import errors
from shared_gov.audit.recorder import Actor
from shared_gov.crypto.keyring import Keyring
from shared_gov.db.migrations.runner import head, upgrade_tenant
from shared_gov.domains import registry
from shared_gov.messages import identity as mi
from shared_gov.messages.core import Joined
from shared_gov.policy import agreements
from shared_gov.tenancy.enrolment import EnrolmentCode, enrolled_at_creation, issue_at_creation
from shared_gov.tenancy.manifest import Manifest
from shared_gov.towns.changes import change_event, record_change_sync
from shared_gov.towns.names import TenantNames, quote_ident, tenant_names

Outcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    code: str
    outcome: Outcome
    enrolment: EnrolmentCode | None = None
    """A new town's one-time enrolment code (shown once; only its hash is stored)."""


class IdentityChangeRefused(errors.DomainError):
    """409: a manifest would change an existing town's identity or permissions."""

    def __init__(self, reasons: list[str], requested: dict[str, object]) -> None:
        base = errors.conflict(mi.IDENTITY_IS_TOWNS(reasons=Joined(reasons)))
        super().__init__(base.detail, base.status, base.type_slug, base.title)
        self.reasons = reasons
        self.requested = requested


def _departments_of(document: dict[str, Any] | None) -> dict[str, object]:
    departments = (document or {}).get("departments") or []
    return {
        str(d.get("code")): {"name": d.get("name"), "purposes": sorted(d.get("purposes") or [])}
        for d in departments
        if isinstance(d, dict)
    }


def identity_changes(stored: dict[str, Any] | None, document: dict[str, Any]) -> list[str]:
    """Why ``document`` may not replace ``stored`` for an existing town (empty: it may).

    The operator may change a town's platform settings (names, prefecture,
    population, postal prefix, area code). Its identity provider and its
    departments with their purposes belong to the town once it exists: its
    admins change them through the admin API, never a manifest.
    """
    reasons: list[str] = []
    if (stored or {}).get("issuer") != document.get("issuer"):
        reasons.append(mi.ISSUER_BY_ENROLMENT)
    if _departments_of(stored) != _departments_of(document):
        reasons.append(mi.DEPARTMENTS_BY_ADMINS)
    return reasons


_PLATFORM_FIELDS = (
    "name",
    "name_kana",
    "prefecture",
    "population",
    "postal_prefix",
    "phone_area_code",
)


def _platform(document: dict[str, Any] | None) -> dict[str, object]:
    return {k: (document or {}).get(k) for k in _PLATFORM_FIELDS}


def _identity(document: dict[str, Any]) -> dict[str, object]:
    issuer = document.get("issuer")
    return {
        "issuer": None if not issuer else {"url": issuer.get("url")},
        "departments": _departments_of(document),
    }


def provision(
    conn: Connection,
    manifest: Manifest,
    role_prefix: str,
    keyring: Keyring,
    *,
    actor: Actor | None = None,
    manifest_issuer: bool = False,
    audit: bool = True,
) -> ProvisionResult:
    """Create or update one tenant inside the caller's transaction (sync, for run_sync).

    ``manifest_issuer``: whether a NEW town's manifest may name its issuer
    (development and tests only, where the built-in issuer may act for any
    town anyway); elsewhere a town's issuer comes from its enrolment. Every
    creation and update is an event in the town's audit log, committed with
    it, when ``actor`` is given.
    """
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
    creating = row is None or row.status == "offboarded"
    if creating and manifest.issuer is not None and not manifest_issuer:
        raise errors.conflict(mi.ISSUER_NOT_IN_MANIFEST)
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
        and row.schema_revision == head("tenant", registry.migration_dirs())
    ):
        # Keys are checked even then: a town onboarded before encryption gets them.
        created = keyring.provision(conn, names.code, manifest.population)
        created = agreements.ensure_standing(conn, names.code) or created
        return ProvisionResult(names.code, "updated" if created else "unchanged")
    else:
        if not creating:
            reasons = identity_changes(row.manifest, document)
            if reasons:
                raise IdentityChangeRefused(reasons, _identity(document))
        else:
            # A new incarnation of an offboarded town starts from its manifest:
            # nothing of the previous incarnation's identity or permissions.
            _forget_identity(conn, names.code)
        outcome = "created" if creating else "updated"
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
    upgrade_tenant(conn, names, registry.migration_dirs(), registry.append_only_tables())
    keyring.provision(conn, names.code, manifest.population)
    if creating:
        _sync_departments(conn, manifest)
    agreements.ensure_standing(conn, names.code)
    code: EnrolmentCode | None = None
    if creating:
        if manifest.issuer is not None:
            _sync_issuer(conn, manifest)
            enrolled_at_creation(conn, names.code)
        else:
            code = issue_at_creation(conn, names.code)
    if actor is not None and audit:
        if creating:
            event = change_event(
                "tenant.create",
                "tenant",
                names.code,
                None,
                {**_platform(document), **_identity(document), "enrolment_code": code is not None},
            )
        else:
            event = change_event(
                "tenant.update",
                "tenant",
                names.code,
                _platform(row.manifest if row is not None else None),
                _platform(document),
            )
        record_change_sync(conn, role_prefix, names.code, actor, event)
    # Other workers drop their cached permissions and issuers for this town.
    conn.execute(text("SELECT pg_notify('shared_gov_policy', :c)"), {"c": names.code})
    return ProvisionResult(names.code, outcome, code)


def _forget_identity(conn: Connection, code: str) -> None:
    for statement in (
        "DELETE FROM catalog.issuers WHERE tenant_code = :t",
        "DELETE FROM catalog.staff WHERE tenant_code = :t",
        "DELETE FROM catalog.department_purposes WHERE tenant_code = :t",
    ):
        conn.execute(text(statement), {"t": code})
    conn.execute(
        text("UPDATE catalog.departments SET active = false WHERE tenant_code = :t"), {"t": code}
    )


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
    # The process's audit writer records batches of reads (audit/writer.py).
    conn.execute(text(f"GRANT EXECUTE ON FUNCTION audit.record_many(jsonb) TO {role}"))


def _sync_departments(conn: Connection, manifest: Manifest) -> None:
    codes = [d.code for d in manifest.departments]
    conn.execute(
        text(
            "INSERT INTO catalog.departments (tenant_code, code, name, active) "
            "SELECT :t, d.code, d.name, true FROM unnest(CAST(:codes AS text[]), "
            "CAST(:dnames AS text[])) AS d(code, name) "
            "ON CONFLICT (tenant_code, code) DO UPDATE SET name = EXCLUDED.name, active = true"
        ),
        {"t": manifest.code, "codes": codes, "dnames": [d.name for d in manifest.departments]},
    )
    # Runs when a town is created (or re-created after offboarding, its old
    # purposes forgotten): a manifest's purposes seed the town's departments,
    # and afterwards the town's admins own them (PUT …/departments/{code}).
    for dept in manifest.departments:
        if dept.purposes:
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
        raise errors.conflict(mi.URL_NOT_FOR_TOWN)
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
