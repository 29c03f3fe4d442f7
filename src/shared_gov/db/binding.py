"""What binds a transaction to one town: the town's identifiers and the SQL.

The db layer knows no tenancy: a :class:`TownBinding` is a value it is handed
(``shared_gov.towns.names.tenant_names`` makes them, from a validated
local government code). Its identifiers match ``t_[0-9]{6}`` and
``<prefix>_t_[0-9]{6}``, which is what lets :func:`binding_sql` inline them in
a simple-protocol statement (such statements take no parameters).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

SCHEMA_PATTERN = re.compile(r"^t_[0-9]{6}$")
ROLE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,30}_t_[0-9]{6}$")


class UnsafeIdentifier(ValueError):
    """An identifier that did not match the pattern of a town's schema or role."""


@dataclass(frozen=True, slots=True)
class TownBinding:
    """The database identifiers of one town: its code, schema and role."""

    code: str
    schema: str
    role: str


def quote_ident(name: str) -> str:
    """Quote an identifier that already matched one of the patterns above."""
    if not (SCHEMA_PATTERN.fullmatch(name) or ROLE_PATTERN.fullmatch(name)):
        raise UnsafeIdentifier("refusing to quote an unchecked identifier")
    return '"' + name + '"'


def dollar_quoted(text: str) -> str:
    """``text`` as a dollar-quoted SQL literal whose tag does not occur in it."""
    while True:
        tag = "$sg" + secrets.token_hex(4) + "$"
        if tag not in text:
            return tag + text + tag


def commit_sql(statements: Sequence[str]) -> str:
    """The deferred statements and COMMIT, as one simple query."""
    return "".join(statement + "; " for statement in statements) + "COMMIT"


def rebinding_sql(names: TownBinding) -> str:
    """Switch the open transaction to another town (same literals as binding_sql)."""
    return binding_sql(names).removeprefix("BEGIN; ")


class BindingCheckFailed(Exception):
    """A check folded into the binding statement failed (SQLSTATE SGA01)."""


CHECK_FAILED = "SGA01"


def read_only_binding_sql(names: TownBinding) -> str:
    """``BEGIN READ ONLY`` plus the tenant binding (a read's transaction).

    No key lock: a read-only transaction never writes with the town's data
    keys, which is what retiring a key waits for (see :func:`binding_sql`).
    """
    return (
        "BEGIN READ ONLY; SELECT set_config('search_path', '"
        + names.schema
        + "', true), set_config('role', '"
        + names.role
        + "', true)"
    )


def binding_sql(
    names: TownBinding,
    extra_locks: Sequence[str] = (),
    extra_calls: Sequence[str] = (),
    *,
    exclusive: bool = False,
) -> str:
    """BEGIN plus the tenant binding, as one simple-protocol round trip.

    The identifiers come from :func:`shared_gov.towns.names.tenant_names`,
    which only produces ``t_[0-9]{6}`` and ``<prefix>_t_[0-9]{6}``, so inlining
    them as literals is safe (and required: simple-protocol queries take no
    parameters).

    ``exclusive``: take the town's key lock exclusively instead (see
    :meth:`Database.tenant <shared_gov.db.engine.Database.tenant>`).
    """
    # The shared advisory lock marks this transaction as a possible writer with
    # the town's current data keys; retiring a key waits for all of them (it
    # binds with ``exclusive``: taken exclusively from the start, never
    # upgraded from shared, so two such jobs queue instead of deadlocking).
    key_lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    # ``extra_locks`` are further shared locks (e.g. the agreement a cross-town
    # read relies on, so that a revocation waits for reads in flight); their
    # names must be made of safe characters only (checked).
    locks = "".join(
        ", pg_advisory_xact_lock_shared(hashtextextended('" + _lock_name(lock) + "', 0))"
        for lock in extra_locks
    )
    # ``extra_calls`` are function calls evaluated after the locks (target
    # list order), e.g. checking that a cached agreement is still current; the
    # caller builds them from validated values only.
    calls = "".join(", " + call for call in extra_calls)
    return (
        "BEGIN; SELECT set_config('search_path', '"
        + names.schema
        + "', true), set_config('role', '"
        + names.role
        + "', true), "
        + key_lock
        + "(hashtextextended('shared_gov.dek."
        + names.code
        + "', 0))"
        + locks
        + calls
    )


_LOCK_NAME = re.compile(r"^[a-z0-9_.\-]{1,100}$")


def _lock_name(name: str) -> str:
    if not _LOCK_NAME.match(name):
        raise ValueError("unsafe advisory lock name")
    return name
