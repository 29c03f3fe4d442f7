"""Run the two Alembic trees programmatically, without alembic.ini or env.py.

The script directories are parsed once per process (Alembic re-reads them on
every ``command.upgrade``, which dominates a no-op run over many tenants).
A tenant upgrade runs inside the caller's transaction with ``search_path``
set to the tenant schema, keeps its version table in that schema, and writes
the new revision to ``catalog.tenants.schema_revision`` in the same
transaction, so the catalog mirror can never disagree with the schema.

An installed domain may bring tenant revisions from its own folder
(``DomainSpec.migrations``): they join the tenant tree through Alembic's
``version_locations`` as a branch of their own (``branch_labels``), so the
tree may have several heads. The caller (tenancy, which reads the domain
registry; this layer knows no domain) passes those folders as ``domains``.
Upgrades go to ``heads``, and the catalog mirror is the sorted heads joined
with ``+`` (just the platform's head when no domain brings migrations, as
before).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.util import await_only

from shared_gov.db.binding import TownBinding, quote_ident

CATALOG_SCHEMA = "catalog"
_HERE = Path(__file__).resolve().parent


Folders = Sequence[Path]
"""Domains' tenant revision folders, joined to the tenant tree."""


def _locations(tree: str, domains: Folders = ()) -> tuple[str, ...]:
    """The tree's version folders: the platform's, then (tenant) each domain's."""
    own = (str(_HERE / tree / "versions"),)
    if tree != "tenant":
        return own
    return own + tuple(str(path.resolve()) for path in domains)


def _script(tree: str, domains: Folders = ()) -> ScriptDirectory:
    return _script_at(tree, _locations(tree, domains))


@cache
def _script_at(tree: str, locations: tuple[str, ...]) -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(_HERE / tree))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(locations))
    return ScriptDirectory.from_config(config)


def head(tree: str, domains: Folders = ()) -> str:
    """The head revision of ``tree`` (``catalog`` or ``tenant``).

    Several heads (domains' branches): sorted, joined with ``+``.
    """
    heads = sorted(_script(tree, domains).get_heads())
    if not heads:
        raise RuntimeError(f"the {tree} migration tree has no head")
    return "+".join(heads)


def _upgrade(conn: Connection, tree: str, version_schema: str, domains: Folders = ()) -> None:
    script = _script(tree, domains)

    def upgrade_steps(rev: Any, _context: Any) -> Any:
        return script._upgrade_revs("heads", rev)

    config = Config()
    with EnvironmentContext(config, script, fn=upgrade_steps, destination_rev="heads") as env:
        env.configure(
            connection=conn,
            version_table_schema=version_schema,
            transactional_ddl=True,
        )
        env.run_migrations()


def upgrade_catalog(conn: Connection, role_prefix: str) -> None:
    """Bring the catalog schema to head (in the caller's transaction)."""
    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{CATALOG_SCHEMA}"'))
    # Catalog migrations that create platform roles (the audit owner) name
    # them with the deployment's prefix.
    conn.execute(text("SELECT set_config('shared_gov.role_prefix', :p, true)"), {"p": role_prefix})
    _upgrade(conn, "catalog", CATALOG_SCHEMA)


def fresh_tenant_script(domains: Folders = ()) -> str:
    """Every tenant migration from nothing to head, as one SQL script.

    Rendered once per process by Alembic's offline mode (the same operations,
    the same version-table rows) with unqualified names, so it builds
    whichever schema ``search_path`` names. Provisioning a new town sends it
    in one round trip instead of some forty statements, each prepared and
    executed separately (0.03 s instead of ~0.07 s of a town's ~0.1 s).
    Tenant migrations therefore must not read data in Python
    (``op.get_bind()``): what they need at run time goes in SQL.
    """
    return _fresh_script(_locations("tenant", domains))


@cache
def _fresh_script(locations: tuple[str, ...]) -> str:
    script = _script_at("tenant", locations)
    buffer = io.StringIO()

    def upgrade_steps(rev: Any, _context: Any) -> Any:
        return script._upgrade_revs("heads", rev)

    with EnvironmentContext(
        Config(), script, fn=upgrade_steps, as_sql=True, starting_rev=None, destination_rev="heads"
    ) as env:
        env.configure(
            dialect_name="postgresql",
            # Not the default pyformat: that would double every "%" in the
            # migrations' SQL (format('... %I', ...) in t0005).
            dialect_opts={"paramstyle": "named"},
            output_buffer=buffer,
            transactional_ddl=False,
            literal_binds=True,
        )
        env.run_migrations()
    return buffer.getvalue()


def _is_fresh(conn: Connection, names: TownBinding) -> bool:
    """No version table yet: the schema was just created, nothing to upgrade from."""
    found = conn.execute(
        text(
            "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = :s "
            "AND tablename = 'alembic_version'"
        ),
        {"s": names.schema},
    ).scalar()
    return found is None


def upgrade_tenant(
    conn: Connection, names: TownBinding, domains: Folders, append_only: Sequence[str]
) -> str:
    """Bring one tenant schema to head and mirror the revision in the catalog.

    ``domains``: the installed domains' revision folders (``registry.migration_dirs()``).
    ``append_only``: the tables the town's role may only add rows to
    (``registry.append_only_tables()``); required, so that no caller can
    forget them and leave a history writable.
    """
    # Same key as provisioning: two migrators never work on one town at once.
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('shared_gov.tenant.' || :c, 0))"),
        {"c": names.code},
    )
    conn.execute(text(f"SET LOCAL search_path TO {quote_ident(names.schema)}"))
    if _is_fresh(conn, names):
        # One simple-protocol query on the driver connection (SQLAlchemy's
        # asyncpg adapter prepares every statement, and a prepared statement
        # holds one command), inside the caller's transaction.
        driver = conn.connection.driver_connection
        if driver is None:  # pragma: no cover - a checked-out connection has one
            raise RuntimeError("no driver connection")
        await_only(driver.execute(fresh_tenant_script(domains)))
    else:
        _upgrade(conn, "tenant", names.schema, domains)
    _lock_down(conn, names, append_only)
    revision = head("tenant", domains)
    conn.execute(
        text(
            "UPDATE catalog.tenants SET schema_revision = :rev, updated_at = now() "
            "WHERE code = :code"
        ),
        {"rev": revision, "code": names.code},
    )
    conn.execute(text("SET LOCAL search_path TO DEFAULT"))
    return revision


_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _lock_down(conn: Connection, names: TownBinding, append_only: Sequence[str]) -> None:
    """Revoke what default privileges gave the town role but it must not have.

    Runs after every upgrade, so a migration that recreates a table cannot
    silently hand the town role more than before.
    """
    role = quote_ident(names.role)
    schema = quote_ident(names.schema)
    # The migration bookkeeping is the platform's.
    conn.execute(text(f"REVOKE ALL ON {schema}.alembic_version FROM {role}"))
    # The outbox is append-only: integrations trust that an event they read
    # stays as it was. So are the histories the domains declare (their
    # envelopes are rotated through the town's reseal_envelopes function).
    for table in ("events", *append_only):
        if not _TABLE.match(table):
            raise ValueError("not a plain table name")
        conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {schema}.{table} FROM {role}"))
    # Bulk import moves the serial-number sequences past the imported numbers.
    conn.execute(
        text(
            f"GRANT USAGE, SELECT, UPDATE ON SEQUENCE {schema}.atena_seq, "
            f"{schema}.household_seq TO {role}"
        )
    )
