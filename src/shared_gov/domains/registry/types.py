"""The types a domain declares itself with (:class:`DomainSpec` and its parts).

Plain frozen dataclasses, imported through :mod:`shared_gov.domains.registry`
(which re-exports every name here): a domain's ``spec.py`` builds one
``DomainSpec`` from them, and the registry's functions read them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared_gov.messages.core import Catalogue

if TYPE_CHECKING:  # only for annotations
    import asyncio

    from shared_gov.db import Database, TenantUnitOfWork


@dataclass(frozen=True, slots=True)
class Label:
    """A field's or record type's name for people: Japanese first, English too."""

    ja: str
    en: str


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a record type, as the pillars need to know it."""

    name: str
    label: Label
    personal: bool = True
    """Personal data: decided by policy field by field (a purpose must name it)."""
    encrypted: tuple[str, str] | None = None
    """(table, column) of the envelope that stores it; None when stored in plain."""
    redacted: bool = False
    """Its value is replaced in log lines that pass it by key (a second line of
    defence: code logs ids and counts only)."""
    whereabouts: bool = False
    """Withheld from a record under 支援措置 (it leads to where the person lives)."""
    individual_number: bool = False
    """It is the individual number (個人番号): only a legally listed purpose may
    name it, reading it needs two-factor authentication, and the audit record
    flags every access to it."""


@dataclass(frozen=True, slots=True)
class RecordType:
    """A kind of record a domain keeps; a Cedar resource (its ``Field`` and ``Record``)."""

    name: str
    """The Cedar-facing name, e.g. ``Resident``; also the prefix of its fields'
    qualified names (``Resident.family_name``)."""
    label: Label
    fields: tuple[Field, ...]
    actions: tuple[str, ...]
    """Record-level actions Cedar decides on records of this type (the Cedar
    schema must declare each as applying to ``Record``)."""
    unqualified: bool = False
    """Its fields are named bare in purposes.toml, agreements and Cedar (at most
    one record type of all installed domains may say so)."""

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name}")

    def policy_name(self, name: str) -> str:
        """How purposes, agreements and Cedar name field ``name`` of this type."""
        return name if self.unqualified else f"{self.name}.{name}"

    @property
    def personal_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.personal)


@dataclass(frozen=True, slots=True)
class EncryptedTable:
    """A table holding envelopes, as a data-key rotation walks it."""

    table: str
    columns: tuple[str, ...]
    row_id_sql: str
    """SQL expression giving the row id bound into each envelope's AAD (``id::text``)."""
    append_only: bool = False
    """The town's role may only add rows (a history): every upgrade revokes its
    UPDATE, DELETE and TRUNCATE, and a rotation replaces the table's envelopes
    through the town's ``reseal_envelopes`` function (tenant revision t0012)."""


@dataclass(frozen=True, slots=True)
class BlindIndex:
    """A keyed-hash index stored beside a table's rows (``bidx_<name>``, ``_alt``)."""

    name: str
    table: str
    sources: tuple[str, ...]
    """The fields it is computed from, in order."""
    normalisers: tuple[str, ...]
    """How each source is normalised before hashing (``digits``, ``kana``, ``date``),
    in ``sources`` order; compound indexes join them (``crypto.blind.compound``)."""


@dataclass(slots=True)
class IndexFill:
    """What one batch of an index rotation did (returned by :attr:`IndexHooks.fill`)."""

    filled: list[str]
    """Ids that got their value under the new key."""
    last: str | None
    """The batch's highest id: the next batch starts after it (None: end of the table)."""
    unreadable: list[str]
    """Ids whose source fields did not decrypt (tampered or misplaced): left alone."""
    empty: list[str]
    """Ids whose source field holds nothing to index (e.g. an empty phone number)."""


@dataclass(frozen=True, slots=True)
class IndexHooks:
    """How a blind-index rotation reaches a domain's table (through the unit of work)."""

    backlog: Callable[[TenantUnitOfWork, str, int, list[str]], Awaitable[int]]
    """Rows still lacking a value of (index, version), minus the ids given."""
    fill: Callable[..., Awaitable[IndexFill]]
    """``fill(uow, index, version, *, after, limit, skip)``: one batch."""
    clear: Callable[[TenantUnitOfWork, str, int, int], Awaitable[int]]
    """Erase up to ``limit`` values of (index, retired version)."""
    stored: Callable[[TenantUnitOfWork, str, int], Awaitable[int]]
    """Rows holding a value of (index, version)."""


Exporter = Callable[["TenantUnitOfWork"], Awaitable[Mapping[str, Any]]]
"""Offboarding: the domain's records of one town, decrypted, as JSON-ready lists."""


@dataclass(frozen=True, slots=True)
class DemoData:
    """A domain's synthetic demo data (``make run``, ``shared-gov demo seed``)."""

    seed: Callable[..., Awaitable[int]]
    """``seed(db, tenant, count, seed, progress_console=None)`` → records added."""
    records: Callable[[TenantUnitOfWork], Awaitable[int]]
    """How many records the town holds (an empty town is seeded)."""
    sample: Callable[[TenantUnitOfWork], Awaitable[tuple[str, str]]]
    """A request that works as printed: (path under the town, purpose)."""
    upgrade: Callable[[TenantUnitOfWork], Awaitable[None]] | None = None
    """Data upgrades that need the town's keys, run on every demo town before
    serving (after migrating): what an operator runs by hand after an upgrade."""
    department: str = "shimin"
    """The department whose staff token the printed sample request uses."""


@dataclass(frozen=True, slots=True)
class Background:
    """A loop a domain runs beside the service in every worker (an outbox
    consumer, a daily job): the app starts it with the lifespan and stops it
    with the service."""

    name: str
    run: Callable[[Database, asyncio.Event], Awaitable[None]]
    """``run(db, stop)``: works until ``stop`` is set, then returns soon. It
    handles its own failures (a loop that raises is logged and not restarted)."""


@dataclass(frozen=True, slots=True)
class StandingShare:
    """What a town shares by default with every other (the standing move agreement)."""

    department: str
    purpose: str
    fields: tuple[str, ...]
    """Policy names of the fields shared (e.g. 転出証明書の記載事項)."""
    legal_basis: str


@dataclass(frozen=True, slots=True)
class ConsoleLink:
    """A link on the console's home page to one of a domain's pages."""

    path: str
    """Under ``/console/towns/{code}/``, starting with the domain's name
    (``kaigo/determinations``)."""
    label: Label
    role: str = "staff"
    """Shown to people holding this role (the page itself decides on their purposes)."""


@dataclass(frozen=True, slots=True)
class ConsoleStaff:
    """A synthetic member of staff the development sign-in page offers (never in production)."""

    subject: str
    department: str
    label: Label
    roles: tuple[str, ...] = ("staff",)
    mfa: bool = False


@dataclass(frozen=True, slots=True)
class Console:
    """A domain's pages in the web console (``/console/towns/{code}/<domain>/…``).

    The controllers are mounted in the console's router (its session, CSRF,
    security headers and error pages); each page goes through the API's
    guarded entry with the audit action of the API endpoint behind it. The
    templates folder holds one folder named after the domain (``kaigo/``),
    so no two domains' templates, nor the console's own, share a name.
    """

    controllers: Callable[[], Sequence[Any]]
    """Litestar controllers whose paths start with ``/towns/{code:str}/<domain>``
    (imported when called)."""
    templates: Path
    links: tuple[ConsoleLink, ...] = ()
    staff: tuple[ConsoleStaff, ...] = ()
    """Who the development sign-in page offers besides the platform's demo staff
    (an ordering department's clerk, a second person for separation of duties)."""


@dataclass(frozen=True, slots=True)
class DomainSpec:
    """Everything one domain declares; the pillars read nothing else of it."""

    name: str
    label: Label
    record_types: tuple[RecordType, ...]
    encrypted_tables: tuple[EncryptedTable, ...] = ()
    blind_indexes: tuple[BlindIndex, ...] = ()
    index_hooks: Callable[[], IndexHooks] | None = None
    exporter: Callable[[], Exporter] | None = None
    routers: Callable[[], Sequence[Any]] = tuple
    """Litestar controllers / route handlers to mount (imported when called)."""
    cli_groups: Callable[[], Sequence[tuple[str, Any]]] = tuple
    """``(name, typer.Typer)`` pairs added to the ``shared-gov`` command."""
    demo: Callable[[], DemoData] | None = None
    background: Callable[[], Sequence[Background]] = tuple
    """Loops to run beside the service (imported when called)."""
    standing_share: StandingShare | None = None
    event_record_types: tuple[str, ...] = field(default=())
    """Record types whose changes the domain writes to the town's outbox."""
    migrations: Path | None = None
    """A folder of tenant Alembic revisions (no ``__init__.py``), joined to the
    platform's tenant tree (``version_locations``): the domain's first revision
    has ``down_revision = None`` and ``branch_labels = ("<domain>",)``, and
    ``depends_on`` a platform revision when its tables need one. Revision ids
    start with the domain's name, so two domains never collide."""
    purposes: Path | None = None
    """The domain's ``purposes.toml``: purposes whose codes start with
    ``<domain>.`` and that name only the domain's own fields and actions."""
    policies: Path | None = None
    """A folder of the domain's Cedar policies (``*.cedar``): validated with the
    platform's at start-up; each must decide only the domain's own record
    types (``resource.record_type == "..."`` in its ``when``)."""
    messages: Callable[[], Catalogue] | None = None
    """The domain's message catalogue (imported when called): named after the
    domain, every entry in Japanese and English. The problem+json handlers and
    the response encoder render its messages in the request's language."""
    console: Console | None = None
    """Its pages in the web console, beside its controllers (``<domain>/web/``)."""
    audited_tables: tuple[str, ...] = ()
    """Its tables (in the town's schema) every row change of which is a write
    that records its audit event in its own transaction: ``audit verify``
    finds a row whose last writing transaction has no event (the event was
    deleted), as it does for the register's history rows. Only tables no
    migration, job or seed writes without an event."""
    read_actions: tuple[str, ...] = ()
    """Its audit actions that change nothing (as declared on its routes). Their
    transaction is READ ONLY and their granted event goes to the audit writer:
    group-committed and chained, so deleting one breaks its writer's chain
    (docs/audit.md). A handler of one of them that writes fails."""
