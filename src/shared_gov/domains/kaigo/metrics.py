"""The 介護保険 consumer's Prometheus metrics (on ``/metrics`` with the service's).

No label carries a town or a person (``shared_gov.metrics``' rule): the lag
is the largest over the towns a pass visited.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_LAG: Final = Gauge(
    "shared_gov_kaigo_outbox_lag_seconds",
    "Age of the oldest resident event the 介護保険 consumer has not read yet, over all "
    "towns, at its last pass (0 when caught up).",
    multiprocess_mode="mostrecent",
)
LAST_PASS: Final = Gauge(
    "shared_gov_kaigo_consumer_last_pass_timestamp_seconds",
    "Unix time of the 介護保険 consumer's last completed pass over the towns (stale: "
    "it has stopped).",
    multiprocess_mode="mostrecent",
)
EVENT_LAG: Final = Histogram(
    "shared_gov_kaigo_event_lag_seconds",
    "From a resident event's transaction to its determination in the queue.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)
EVENTS: Final = Counter(
    "shared_gov_kaigo_events",
    "Resident events the 介護保険 consumer read.",
)
DETERMINATIONS: Final = Counter(
    "shared_gov_kaigo_determinations",
    "Determinations written, by kind and source (event or the daily 65 job).",
    ["kind", "source"],
)
