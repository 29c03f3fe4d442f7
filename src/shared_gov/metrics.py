"""Prometheus metrics of the service: what is counted, and how workers share it.

The metric objects live here, in a module that imports nothing of ours, so
the hot-path modules (keyring, policy engine, sealer) can count with one line
and no import cycle. The HTTP side (``/metrics``, the request middleware) is
in :mod:`shared_gov.observability`.

No label ever carries a personal value, a resident id, a token or a raw URL
path: requests are labelled by their route *template*
(``/api/v1/tenants/{code:str}/residents/{resident_id:uuid}``), decisions by
outcome, cache lookups by result. Town codes are not labels either: with
1,741 municipalities they would multiply every series.

Several worker processes
    Each worker counts in its own memory unless ``PROMETHEUS_MULTIPROC_DIR``
    names a directory, in which case prometheus_client keeps every value in
    per-process files there and :func:`render` adds them up, so whichever
    worker answers a scrape reports the whole service. The variable must be
    set before this module is first imported in a worker, and the directory
    emptied when the service (not a worker) starts: ``shared-gov serve``
    does both (:func:`prepare_multiprocess_dir`). Counters of workers that
    exited stay in the sums (counters never go down); gauges here use the
    ``mostrecent`` mode, which needs no clean-up when a worker dies.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = [
    "AUDIT_BATCH_EVENTS",
    "AUDIT_SEALER_LAG",
    "AUDIT_SEALER_LAST_PASS",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_SECONDS",
    "INTEGRITY_ERRORS",
    "KEY_CACHE",
    "MULTIPROC_ENV",
    "POLICY_DECISIONS",
    "count_decisions",
    "multiprocess_dir",
    "prepare_multiprocess_dir",
    "render",
]

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS: Final = Counter(
    "shared_gov_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_SECONDS: Final = Histogram(
    "shared_gov_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template and status.",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
POLICY_DECISIONS: Final = Counter(
    "shared_gov_policy_decisions",
    "Cedar decisions the policy engine answered (from its cache or Cedar), by outcome.",
    ["outcome"],
)
KEY_CACHE: Final = Counter(
    "shared_gov_key_cache_lookups",
    "Lookups of a town's unwrapped data keys in the process cache, by result (hit or miss).",
    ["result"],
)
INTEGRITY_ERRORS: Final = Counter(
    "shared_gov_integrity_errors",
    "Stored envelopes that did not decrypt when read (tampered with or damaged), by column "
    "(table.column). Anything above zero is an alert: find the rows in the log "
    "(crypto.integrity_error).",
    ["column"],
)
AUDIT_SEALER_LAST_PASS: Final = Gauge(
    "shared_gov_audit_sealer_last_pass_timestamp_seconds",
    "Unix time of the leading sealer's last completed pass (stale: sealing has stopped).",
    multiprocess_mode="mostrecent",
)
AUDIT_SEALER_LAG: Final = Gauge(
    "shared_gov_audit_sealer_lag_seconds",
    "Age of the next audit event waiting to be sealed (0 when none waits), read at scrape time.",
    multiprocess_mode="mostrecent",
)
AUDIT_BATCH_EVENTS: Final = Histogram(
    "shared_gov_audit_batch_events",
    "Events per batch the process's audit writer committed (group commit of reads).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)

# Children resolved once: .labels() takes a lock and a dict lookup per call.
_ALLOW: Final = POLICY_DECISIONS.labels("allow")
_DENY: Final = POLICY_DECISIONS.labels("deny")
KEY_CACHE_HIT: Final = KEY_CACHE.labels("hit")
KEY_CACHE_MISS: Final = KEY_CACHE.labels("miss")


_D = TypeVar("_D", bound=Sequence[object])


def count_decisions(decisions: _D) -> _D:
    """Count a batch of decisions (anything with an ``allowed`` attribute) by outcome.

    Returns ``decisions``, so the engine counts where it returns. Two
    increments per batch, not one per decision: a listing decides hundreds.
    """
    allowed = sum(1 for d in decisions if getattr(d, "allowed", False))
    if allowed:
        _ALLOW.inc(allowed)
    if len(decisions) > allowed:
        _DENY.inc(len(decisions) - allowed)
    return decisions


def multiprocess_dir() -> Path | None:
    """The shared metrics directory, or None when each process counts alone."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def prepare_multiprocess_dir(path: Path) -> None:
    """Create ``path`` (0700) or empty it of a previous run's metric files.

    Run once when the service starts, before any worker does: files left by
    an earlier run would be added to this run's counters. Only prometheus_client's
    own ``*.db`` files are removed, never anything else in the directory.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.is_dir():
        raise NotADirectoryError(f"{MULTIPROC_ENV}={path} is not a directory")
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type: every worker's values when shared."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
