"""The only writer of the audit log.

One event per access to personal data, through the SECURITY DEFINER
functions ``audit.record`` / ``audit.record_many``; no audit, no access:

- a write's event (register, move, support measure, agreements,
  administration, key jobs) is written in the SAME transaction as the write
  (:func:`record`, :func:`record_as_town`): if the audit write fails, the
  write fails;
- a read's event, and a refused or failed attempt's, goes to the process's
  audit writer (:mod:`shared_gov.audit.writer`), which commits every pending
  event in one round trip (group commit); the request answers only after its
  event's batch has committed (:func:`submit`, :func:`record_apart`).

Every event is MACed with the town's audit key (:mod:`shared_gov.audit.mac`);
the writer's events are chained as well. Resident ids are recorded as keyed
hashes (the town's ``audit_subject`` key), so auditors can search by resident
while the log names nobody.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import msgspec
import structlog

from shared_gov.audit.mac import event_mac, payload_values
from shared_gov.crypto.keyring import keys_of
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.db.binding import TownBinding
from shared_gov.db.engine import PairedUnitOfWork, dollar_quoted
from shared_gov.domains import registry


@dataclass(slots=True)
class AuditEvent:
    """What one request did (or tried to do) to personal data."""

    action: str
    resource_type: str = "resident"
    subjects: list[str] = field(default_factory=list)
    """Resident ids; hashed before they are written."""
    fields: list[str] = field(default_factory=list)
    rows: int = 0
    outcome: str = "allowed"
    reason: str | None = None
    policy_ids: list[str] = field(default_factory=list)
    agreement_id: str | None = None

    @property
    def individual_number(self) -> bool:
        """The access touched an individual number (個人番号): the log flags it
        (which fields are one is declared by the domains)."""
        return not registry.individual_number_fields().isdisjoint(self.fields)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted, as the log records it (no names: ids, roles, department)."""

    subject: str
    tenant: str | None
    department: str | None
    roles: tuple[str, ...]
    auth_strength: str
    client_addr: str | None
    user_agent: str | None
    purpose: str | None


READ_ACTIONS: frozenset[str] = frozenset(
    {
        "resident.read",
        "resident.search",
        "resident.history",
        "resident.access_log",
        "household.read",
        "events.read",
        "audit.query",
        "audit.export",
        "audit.analyses",
    }
)
"""Actions that change nothing: their transaction writes nothing, and their
granted event is group-committed by the audit writer (:func:`submit`) after
the read's transaction ended. Every other action (register, move, support
measure, agreements, administration, key jobs) writes its event inside its
own transaction. A domain adds its own (``DomainSpec.read_actions``): see
:func:`is_read`."""


def is_read(action: str) -> bool:
    """Whether ``action`` changes nothing (the platform's reads, or a domain's)."""
    return action in READ_ACTIONS or action in registry.read_actions()


_WRITTEN: ContextVar[list[int] | None] = ContextVar("audit_written", default=None)
"""The current request's count of events written (a box, so that tasks the
request starts, which run in a copy of its context, count into the same one)."""


def track_request() -> None:
    """Start counting the events the current request writes (one box per request).

    The HTTP middleware calls this first thing; outside a request (command
    line jobs, the sealer) nothing is counted.
    """
    _WRITTEN.set([0])


def written_in_request() -> int:
    """How many events the current request wrote (or tried to write) so far.

    Every writer of this module — :func:`record`, :func:`record_apart`,
    :func:`record_as_town`, and through them the scopes' failure records and
    the administrative changes — counts here. The last-resort refusal record
    (:func:`shared_gov.api.refusals.audit_unrecorded`) reads it: a request whose
    handler already recorded its outcome gets no second event.
    """
    box = _WRITTEN.get()
    return box[0] if box is not None else 0


def _payload(keys_hash: Any, actor: Actor, event: AuditEvent) -> dict[str, Any]:
    box = _WRITTEN.get()
    if box is not None:
        # Counted when the write is attempted: a write that then fails fails
        # the request (no record, no answer), and must not be tried again.
        box[0] += 1
    # A dict: the connection's jsonb codec encodes it (a str would become a
    # JSON string scalar).
    context = structlog.contextvars.get_contextvars()
    return {
        # The service's own id; a client's X-Request-ID only ever goes to the
        # separate, clearly named field (logs.request_ids checked it).
        # Chosen here, not by the database: the MAC covers it.
        "event_id": str(uuid.uuid4()),
        "request_id": context.get("request_id"),
        "client_request_id": context.get("client_request_id"),
        "actor": _printable(actor.subject),
        "actor_tenant": actor.tenant,
        "department": _printable(actor.department or "") or None,
        "roles": list(actor.roles),
        "auth_strength": actor.auth_strength,
        "client_addr": actor.client_addr,
        "user_agent": _printable(actor.user_agent or "")[:200] or None,
        "action": event.action,
        "resource_type": event.resource_type,
        "subjects": [str(keys_hash(s)) for s in event.subjects],
        "fields": sorted(set(event.fields)),
        "rows": event.rows,
        "individual_number": event.individual_number,
        "purpose": _printable(actor.purpose or "") or None,
        "agreement_id": event.agreement_id,
        "outcome": event.outcome,
        # Our English wording (a catalogue message is a str subclass msgspec cannot encode).
        "reason": None if event.reason is None else str(event.reason),
        "policy_ids": event.policy_ids,
    }


def _printable(text: str) -> str:
    # A client-chosen header: control characters (NUL above all, which jsonb
    # refuses) must not make the audit write, and so the access, fail. The
    # whole-string check first: almost every value is printable already.
    if text.isprintable():
        return text
    return "".join(c for c in text if c.isprintable())


async def record(uow: TenantUnitOfWork, actor: Actor, event: AuditEvent) -> None:
    """Write ``event`` in the unit of work's own transaction (the access's).

    The call travels with the COMMIT (one round trip, see
    :meth:`TenantUnitOfWork.at_commit`): it runs last, and if it fails the
    access's transaction rolls back and the request fails.
    """
    keys = keys_of(uow)
    payload = _payload(lambda rid: keys.index("audit_subject", rid), actor, event)
    seal(payload, uow.code, keys.audit_mac)
    uow.at_commit(_record_sql(payload))


def seal(
    payload: dict[str, Any],
    tenant: str,
    key: bytes | None,
    writer: str | None = None,
    wseq: int | None = None,
    prev_mac: bytes | None = None,
) -> bytes | None:
    """MAC ``payload`` (and its place in a writer's chain) under the town's audit key.

    Sets ``mac`` (and ``writer``, ``wseq``, ``prev_mac`` for a chained event)
    as ``audit.record`` stores them; returns the MAC (None without a key:
    a town whose key does not exist yet, see docs/audit.md).
    """
    if key is None:
        return None
    mac = event_mac(key, payload_values(payload, tenant), writer, wseq, prev_mac)
    payload["mac"] = "\\x" + mac.hex()
    if writer is not None:
        payload["writer"] = writer
        payload["wseq"] = wseq
        payload["prev_mac"] = None if prev_mac is None else "\\x" + prev_mac.hex()
    return mac


def _record_sql(payload: dict[str, Any]) -> str:
    # Inlined because it shares a simple query (no parameters) with COMMIT.
    # JSON escapes every control character, the connection's encoding is
    # UTF-8, and the dollar-quote tag is chosen so that it does not occur in
    # the text. msgspec encodes a payload in a fifth of json.dumps's time.
    return "SELECT audit.record(" + dollar_quoted(_JSON.encode(payload).decode()) + "::jsonb)"


_JSON = msgspec.json.Encoder()


async def record_both(
    first: PairedUnitOfWork,
    second: PairedUnitOfWork,
    actor: Actor,
    first_event: AuditEvent,
    second_event: AuditEvent,
) -> None:
    """Both towns' events of a cross-town access, each in its own town's log.

    Both travel with the COMMIT of the access's transaction, each preceded
    by its town's binding (``audit.record`` takes the town from the role it
    runs under), with the residents hashed under that town's key.
    """
    await record(first, actor, first_event)
    await record(second, actor, second_event)


async def record_apart(db: Database, names: TownBinding, actor: Actor, event: AuditEvent) -> None:
    """Write ``event`` apart from any access's transaction (denials, failures).

    Through the process's audit writer when it runs one (the service: the
    event is group-committed and chained), else in a transaction of its own
    (command-line jobs). Returns once the event has committed.
    """
    from shared_gov.audit import writer

    running = writer.running(db)
    if running is not None:
        await running.submit(names, actor, event)
        return
    async with db.tenant(names) as uow:
        await record(uow, actor, event)


async def submit(db: Database, names: TownBinding, actor: Actor, event: AuditEvent) -> None:
    """A read's event: group-committed by the process's audit writer.

    Returns once the batch holding the event has committed; raises a 503
    (:func:`shared_gov.errors.unavailable`) if it failed: the read must then
    answer nothing. Without a running writer (command-line jobs, tests of
    one function) the event is written in a transaction of its own.
    """
    await record_apart(db, names, actor, event)


def _town_of(role: str) -> str:
    # ``<prefix>_t_<code>`` (towns.names): the town audit.record will take.
    return role.rsplit("_", 1)[-1]


def operator_actor(command: str) -> Actor:
    """The actor of an operator's command-line job (import, export, rotation)."""
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = "unknown"
    return Actor(
        subject=f"os:{user}"[:64],
        tenant=None,
        department=None,
        roles=("operator",),
        auth_strength="local",
        client_addr=None,
        user_agent=f"shared-gov {command}",
        purpose="operations",
    )


async def record_as_town(conn: Any, keys: Any, role: str, actor: Actor, event: AuditEvent) -> None:
    """Record from a platform-role transaction (key rotation batches): become the
    town's role for the one call, so the event lands in that town's log."""
    payload = _payload(lambda rid: keys.index("audit_subject", rid), actor, event)
    seal(payload, _town_of(role), getattr(keys, "audit_mac", None))
    await conn.execute("SELECT set_config('role', $1, true)", role)
    await conn.execute("SELECT audit.record($1::jsonb)", payload)
    await conn.execute("SELECT set_config('role', 'none', true)")
