"""Where a served resident GET's Python CPU goes, stage by stage (``profile_get.py --stages``).

``py-spy record --format raw`` writes one line per distinct stack
(``frame;frame;… count``, root first). Each sample is put in ONE stage: the
first stage, in the order of :data:`STAGES`, one of whose markers occurs
anywhere in the stack. The order makes the attribution "whose work is this":
a pooled-connection round trip made by the audit writer is audit, a JSON
encode inside the access log is the access log, and what is left over in
Litestar, granian's Python glue and the event loop is HTTP and routing.

The stages are the ones issue #16 names: HTTP and routing, token, policy,
binding and read, decryption, serialisation, access log, metrics, audit
(and the sealer, a background task of one worker, apart).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HTTP = "HTTP and routing (Litestar, granian glue, event loop)"

# (stage, markers): a marker matches a frame when it occurs in "function (file:line)".
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("audit: sealer (background)", ("audit/sealer.py",)),
    (
        "audit",
        (
            "audit/writer.py",
            "audit/recorder.py",
            "audit/mac.py",
            "audit/tlog.py",
            "audit_actor (",
            "record_failure (",
            "_event (shared_gov/api/entry.py",
        ),
    ),
    ("access log", ("shared_gov/logs.py", "structlog/")),
    ("metrics", ("shared_gov/metrics.py", "prometheus_client/")),
    # Not the whole of api/pipeline.py: its single_valued() middleware wraps the
    # app, so every sample would be "token" (it is in every stack).
    (
        "token",
        (
            "shared_gov/auth/",
            "joserfc/",
            "authenticate_request (shared_gov/api/pipeline.py",
            "provide_principal (shared_gov/api/pipeline.py",
        ),
    ),
    (
        "policy",
        (
            "shared_gov/policy/",
            "cedarpy",
            "access_for (",
            "shared_gov/towns/permissions",
        ),
    ),
    (
        "decryption",
        ("shared_gov/crypto/", "cryptography/", "_resident (shared_gov/domains/residents"),
    ),
    # Handing the finished response to granian is HTTP, not serialisation.
    (HTTP, ("ASGIResponse.send_body", "ASGIResponse.start_response")),
    (
        "serialisation",
        (
            "_with_etag (",
            "_out (shared_gov/domains/residents/controllers.py",
            "etag (shared_gov/domains/residents/rules.py",
            "litestar/response/",
            "litestar/serialization/",
            "to_response (",
            "msgspec",
        ),
    ),
    (
        "binding and read",
        (
            "shared_gov/db/",
            "asyncpg/",
            "shared_gov/domains/residents/",
            "shared_gov/api/entry.py",
            "shared_gov/towns/registry",
        ),
    ),
)
ORDER = [
    HTTP,
    "token",
    "policy",
    "binding and read",
    "decryption",
    "serialisation",
    "access log",
    "metrics",
    "audit",
    "audit: sealer (background)",
]


def stage_of(frames: Iterable[str]) -> str:
    stack = list(frames)
    for stage, markers in STAGES:
        for frame in stack:
            if any(m in frame for m in markers):
                return stage
    return HTTP


_WAITING = "_worker (concurrent/futures/thread.py:81)"


@dataclass(frozen=True, slots=True)
class Stages:
    samples: Counter[str]
    total: int
    leftovers: Counter[str]
    """Leaf frames of the HTTP-and-routing samples (to check the attribution)."""


def read_folded(paths: Iterable[Path]) -> Stages:
    samples: Counter[str] = Counter()
    leftovers: Counter[str] = Counter()
    total = 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            if frames[-1].startswith(_WAITING):
                # A thread-pool thread waiting for work (py-spy --gil sometimes
                # samples it): no work of any stage.
                continue
            stage = stage_of(frames)
            samples[stage] += count
            total += count
            if stage == HTTP:
                leftovers[frames[-1]] += count
    return Stages(samples, total, leftovers)


_TICK = os.sysconf("SC_CLK_TCK")


def main_thread_cpu(pids: Iterable[int]) -> float:
    """CPU seconds of the main threads of ``pids`` (where a granian worker runs
    the event loop and every line of the app's Python)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def report(
    stages: Stages, *, rate: float, requests: int, main_cpu: float, server_cpu: float
) -> None:
    """Print the table: share of the samples and µs of CPU per request per stage.

    The samples (``py-spy --gil``: the thread holding the GIL) give each
    stage's SHARE of the Python work; on a loaded machine a GIL holder is
    often not on a CPU, so the sample count is not CPU time. CPU time comes
    from /proc: ``main_cpu``, the workers' main threads (the event loop and
    the app), is split by those shares; ``server_cpu`` − ``main_cpu`` is
    granian's runtime threads (HTTP parsing, sockets, in Rust) and the main
    process.
    """
    if not stages.total or not requests:
        print("  no samples")
        return
    per_req = main_cpu / requests * 1e6
    print(
        f"  {stages.total} samples at {rate:.0f}/s over {requests} requests; "
        f"server CPU {server_cpu / requests * 1e6:.0f} µs/req, of which the workers' "
        f"main threads {per_req:.0f}"
    )
    print(f"  {'stage':58} {'share':>6} {'µs/req':>7}")
    for stage in ORDER:
        share = stages.samples.get(stage, 0) / stages.total
        print(f"  {stage:58} {100 * share:5.1f}% {share * per_req:7.0f}")
    rest = (server_cpu - main_cpu) / requests * 1e6
    label = "granian runtime threads (Rust: HTTP, sockets), main process"
    print(f"  {label:58} {'':6} {rest:7.0f}")
    print("  most frequent leaf frames left in HTTP and routing:")
    for frame, count in stages.leftovers.most_common(12):
        print(f"    {100 * count / stages.total:5.1f}%  {frame}")
