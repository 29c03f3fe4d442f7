"""Failed logins: a denied ``authenticate`` event in the town's audit log, or a log line.

A request whose bearer token is refused (401) reached nothing, but a town's
auditors want to see attempts aimed at it — guessed or forged tokens, stolen
ones that expired, a misconfigured identity provider. So, for every 401 of the
authentication middleware:

- When the token is syntactically a JWT whose unverified claims point at a
  town active on this deployment (the town of the registered issuer named in
  ``iss``, else the ``tenant`` claim), one **denied event** is written to that
  town's log, in a transaction of its own: action ``authenticate``, resource
  type ``token``, actor ``unauthenticated``, the client address and user
  agent, and the failure kind as the reason (``expired``, ``bad signature``,
  ``unknown key``, … — see :data:`shared_gov.auth.verify._KINDS`). Never the
  token, a claim value (a subject can name a person) or a library message.
- Otherwise (no header, not a bearer token, not a JWT, or no town of ours)
  one **log line** ``auth.failed`` at warning level with the failure kind and
  the client address only.

Abuse. Anybody can send forged tokens naming any town, and each would cost a
write in that town's log (and an unbounded stream of log lines otherwise).
:class:`FailedLoginGate` bounds both, per process, in fixed windows (default
60 s): at most ``per_client`` records per client address and town, and at most
``per_town`` per town from all addresses together (the ``None`` town is the
log-line path). What is over a limit is suppressed and counted: the first
suppression of a window logs ``auth.failed.limited`` at once, and when the
window is over its count is logged as ``auth.failed.suppressed`` (at the next
failed login handled by the process, which sweeps finished windows). The
limits are per worker process, so a deployment of W workers admits up to W
times as much; the address is the client's as the app sees it: the TCP peer,
or the X-Forwarded-For of a proxy listed in ``SHARED_GOV_TRUSTED_PROXIES``.

Enrolment (``POST /api/v1/tenants/{code}/enrolment``, where the one-time code
is the credential) has a gate of its own (:func:`enrolment_gate`, app state
key :data:`ENROLMENT_STATE_KEY`, log lines ``enrolment.failed.*``): wrong codes
never use up the budget of a town's failed logins, so a flood of them can
neither hide forged tokens' ``authenticate`` events nor be hidden by them. The
enrolment endpoint checks the code first and counts only failures; a correct
code is never refused by the gate.

Recording a failed login must never change the answer: if the audit write
fails (database unavailable), the failure is logged and the client still gets
its 401.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from shared_gov.audit.recorder import Actor, AuditEvent, record_apart
from shared_gov.db import Database
from shared_gov.logs import get_logger
from shared_gov.towns.registry import TenantRegistry

log = get_logger(__name__)
K = TypeVar("K", bound=Hashable)

ACTION = "authenticate"
RESOURCE_TYPE = "token"
UNAUTHENTICATED = "unauthenticated"
"""The actor of a failed login: the token's own subject is unverified (and may be personal)."""

PER_CLIENT = 20
PER_TOWN = 300
WINDOW_SECONDS = 60.0
ENROLMENT_STATE_KEY = "enrolment_attempts"
"""Where the process's enrolment gate lives on ``app.state`` (apart from failed logins)."""
ENROLMENT_PER_CLIENT = 10
ENROLMENT_PER_TOWN = 100
MAX_KEYS = 10_000
"""Client windows kept at most (oldest dropped first): bounds memory under address floods."""


@dataclass(slots=True)
class _Window:
    started: float
    admitted: int = 0
    suppressed: int = 0


class FailedLoginGate:
    """Fixed-window limits on recorded failed logins, per (client, town) and per town."""

    def __init__(
        self,
        *,
        per_client: int = PER_CLIENT,
        per_town: int = PER_TOWN,
        window: float = WINDOW_SECONDS,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
        name: str = "auth.failed",
    ) -> None:
        if min(per_client, per_town, max_keys) < 1 or window <= 0:
            raise ValueError("limits and the window must be positive")
        self.name = name
        """Prefix of the gate's log lines (``<name>.limited``, ``<name>.suppressed``)."""
        self.per_client = per_client
        self.per_town = per_town
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        # Insertion order is window start order (a restarted window moves to
        # the end), so finished windows are always at the front.
        self._clients: OrderedDict[tuple[str, str | None], _Window] = OrderedDict()
        self._towns: OrderedDict[str | None, _Window] = OrderedDict()
        self.suppressed_total = 0
        """Every failed login this gate suppressed (for tests and metrics)."""

    def admit(self, client: str, town: str | None) -> bool:
        """Whether this failed login from ``client`` aimed at ``town`` may be recorded."""
        now = self._clock()
        self._sweep(now)
        by_client = self._current(self._clients, (client, town), now)
        by_town = self._current(self._towns, town, now)
        if by_client.admitted >= self.per_client:
            self._suppress(by_client, tenant=town, client_addr=client, limit=self.per_client)
            return False
        if by_town.admitted >= self.per_town:
            self._suppress(by_town, tenant=town, limit=self.per_town)
            return False
        by_client.admitted += 1
        by_town.admitted += 1
        return True

    def _current(self, windows: OrderedDict[K, _Window], key: K, now: float) -> _Window:
        found = windows.get(key)
        if found is not None and now - found.started < self.window:
            return found
        if found is not None:  # finished but not swept yet (clock jumped)
            self._report(windows.pop(key), key)
        fresh = windows[key] = _Window(now)
        return fresh

    def _suppress(self, window: _Window, **where: object) -> None:
        window.suppressed += 1
        self.suppressed_total += 1
        if window.suppressed == 1:
            log.warning(f"{self.name}.limited", window_seconds=self.window, **_without_none(where))

    def _sweep(self, now: float) -> None:
        for windows in (self._clients, self._towns):
            while windows:
                key, first = next(iter(windows.items()))
                if now - first.started < self.window and len(windows) <= self.max_keys:
                    break
                windows.popitem(last=False)
                self._report(first, key)

    def _report(self, window: _Window, key: object) -> None:
        if not window.suppressed:
            return
        if isinstance(key, tuple):
            client, town = key
            where = {"client_addr": client, "tenant": town}
        else:
            where = {"tenant": key}
        log.warning(
            f"{self.name}.suppressed",
            count=window.suppressed,
            window_seconds=self.window,
            **_without_none(where),
        )


def enrolment_gate() -> FailedLoginGate:
    """The limits on recorded failed enrolments, apart from the failed logins'."""
    return FailedLoginGate(
        per_client=ENROLMENT_PER_CLIENT, per_town=ENROLMENT_PER_TOWN, name="enrolment.failed"
    )


def _without_none(values: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in values.items() if v is not None}


def failed_login_actor(client_addr: str | None, user_agent: str | None) -> Actor:
    """The audit actor of a refused token: nobody we know, from this address."""
    return Actor(
        subject=UNAUTHENTICATED,
        tenant=None,
        department=None,
        roles=(),
        auth_strength="none",
        client_addr=client_addr,
        user_agent=user_agent,
        purpose=None,
    )


async def report_failed_login(
    *,
    kind: str,
    town: str | None,
    client_addr: str | None,
    user_agent: str | None,
    gate: FailedLoginGate,
    db: Database,
    registry: TenantRegistry,
    audit: bool,
) -> None:
    """Record (or log) one refused token; never raises.

    ``town`` is the unverified hint from the token; it is used only if it is a
    town active on this deployment (the registry answers from memory, and
    looks a miss up at most once a second).
    """
    client = client_addr or "unknown"
    try:
        names = await registry.get(town) if town is not None and audit else None
    except Exception as exc:  # the registry's catalog query: database trouble
        log.warning("auth.failed.audit_unavailable", error=type(exc).__name__)
        names = None
    target = names.code if names is not None else None
    if not gate.admit(client, target):
        return
    if names is None:
        log.warning("auth.failed", kind=kind, client_addr=client)
        return
    event = AuditEvent(action=ACTION, resource_type=RESOURCE_TYPE, outcome="denied", reason=kind)
    try:
        await record_apart(db, names, failed_login_actor(client_addr, user_agent), event)
    except Exception as exc:
        # A refused login accessed nothing: failing to record it must not turn
        # the 401 into an error. The type only: driver messages can quote values.
        log.warning(
            "auth.failed.audit_unavailable",
            kind=kind,
            client_addr=client,
            tenant=names.code,
            error=type(exc).__name__,
        )
