"""A bounded load generator for the fault tests, and the classification of what came back.

Requests run with bounded concurrency and a deadline each; every request
carries a unique ``X-Request-ID`` (the audit log records it), so afterwards
each answer can be matched with what the database holds. An answer is one of:

- ``ok``: 2xx;
- ``unavailable``: 503 ``application/problem+json`` with ``Retry-After``, the
  answer promised while the database is away;
- ``failure``: anything else — another status (a 500 above all), a 503 without
  its problem body or header, a transport error, or no answer before the
  deadline (a hang).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared_gov.checkdigits import make_individual_number
from tests.conftest import KAGA
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"
_serial = itertools.count(1)


def synthetic_resident() -> dict[str, Any]:
    """A registration body with numbers no other test uses (this cluster is ours anyway)."""
    n = next(_serial)
    return resident_body(
        individual_number=make_individual_number(f"{n + 90_000_000_000:011d}"),
        juminhyo_code=f"{n + 95_000_000_000:011d}",
    )


@dataclass
class Outcome:
    """One request and what came of it."""

    kind: str
    """``read`` or ``register``."""
    request_id: str
    started: float
    ended: float
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.status is not None and 200 <= self.status < 300:
            return "ok"
        if (
            self.status == 503
            and self.headers.get("content-type", "").startswith("application/problem+json")
            and self.headers.get("retry-after", "").isdigit()
            and isinstance(self.body, dict)
            and self.body.get("status") == 503
        ):
            return "unavailable"
        return "failure"

    @property
    def commit_unknown(self) -> bool:
        """A 503 for a COMMIT that was sent but never answered: it may have committed."""
        return (
            self.verdict == "unavailable"
            and isinstance(self.body, dict)
            and "during commit" in str(self.body.get("detail", ""))
        )

    def describe(self) -> str:
        text = self.error or f"{self.status} {str(self.body)[:300]}"
        return f"{self.kind} {self.request_id} at {self.started:.2f}s: {text}"


@dataclass
class Run:
    """Everything a load run saw, times relative to its start (seconds)."""

    outcomes: list[Outcome] = field(default_factory=list)

    def verdicts(self) -> Counter[str]:
        return Counter(o.verdict for o in self.outcomes)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.verdict == "failure"]

    def first_ok_started_after(self, t: float) -> Outcome | None:
        after = [o for o in self.outcomes if o.verdict == "ok" and o.started >= t]
        return min(after, key=lambda o: o.ended, default=None)


class Load:
    """Drive the service with ``concurrency`` loops until told to stop."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        token: str,
        residents: list[str],
        *,
        concurrency: int = 8,
        timeout: float = 10.0,
        register_share: int = 3,
    ) -> None:
        self.client = client
        self.token = token
        self.residents = residents
        self.concurrency = concurrency
        self.timeout = timeout
        self.register_share = register_share
        self.run = Run()
        self.tag = secrets.token_hex(3)
        self._ids = itertools.count()
        self._stop = asyncio.Event()
        self._t0 = 0.0

    def now(self) -> float:
        return time.monotonic() - self._t0

    def _headers(self, request_id: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "X-Purpose": "juki.registration",
            "X-Request-ID": request_id,
        }

    async def _one(self, kind: str, send: Callable[[dict[str, str]], Awaitable[httpx.Response]]):
        request_id = f"fault-{self.tag}-{next(self._ids)}"
        outcome = Outcome(kind, request_id, self.now(), 0.0)
        try:
            # The deadline covers connecting, sending and the whole answer: a
            # request the service leaves hanging is a failure, not a wait.
            response = await asyncio.wait_for(send(self._headers(request_id)), self.timeout)
            outcome.status = response.status_code
            outcome.headers = {k.lower(): v for k, v in response.headers.items()}
            try:
                outcome.body = response.json()
            except ValueError:
                outcome.body = response.text[:500]
        except TimeoutError:
            outcome.error = f"no answer within {self.timeout:.0f} s"
        except httpx.HTTPError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.ended = self.now()
        self.run.outcomes.append(outcome)

    async def _loop(self, worker: int) -> None:
        for i in itertools.count():
            if self._stop.is_set():
                return
            if (i + worker) % self.register_share == 0:
                body = synthetic_resident()
                await self._one(
                    "register",
                    lambda h, body=body: self.client.post(
                        f"{BASE}/residents", json=body, headers=h
                    ),
                )
            else:
                rid = self.residents[(i * 7 + worker) % len(self.residents)]
                await self._one(
                    "read", lambda h, rid=rid: self.client.get(f"{BASE}/residents/{rid}", headers=h)
                )

    async def __aenter__(self) -> Load:
        self._t0 = time.monotonic()
        self._tasks = [asyncio.create_task(self._loop(w)) for w in range(self.concurrency)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        # Each loop ends after its current request, which has its own deadline.
        await asyncio.wait_for(asyncio.gather(*self._tasks), self.timeout + 5)
