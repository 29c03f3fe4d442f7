"""Run the service under granian with worker processes: what ``shared-gov serve`` starts.

Each worker builds its own app (:func:`shared_gov.app.create_app`): its own
database pool, LISTEN connection, key provider session and sealer candidate.
This module prepares what the workers share before the first one starts:

- Prometheus multi-process mode. With ``PROMETHEUS_MULTIPROC_DIR`` set, the
  directory is created or emptied of a previous run's files; with several
  workers and no directory set, a private temporary one is used (and removed
  at exit), so ``/metrics`` never reports one worker's share as the total.
- Workers are started with the ``spawn`` method: a fresh interpreter imports
  the app after the variable is set (prometheus_client chooses its storage at
  import, and this process imported it before), and no PKCS#11 library state
  is inherited across ``fork``.
- Logs: JSON lines on stdout from the workers (structlog) and from granian's
  own supervisor (its start-up and respawn messages), so a log collector gets
  one format.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Final, cast

from litestar.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from shared_gov import metrics
from shared_gov.logs import configure_logging, get_logger, stdlib_json_logging
from shared_gov.settings import Settings

__all__ = ["WORKER_KILL_TIMEOUT", "behind_proxies", "serve"]

log = get_logger("shared_gov.serve")

WORKER_KILL_TIMEOUT: Final = 30
"""Seconds a worker gets to finish its requests after SIGTERM before it is killed."""


def behind_proxies(app: ASGIApp, trusted: tuple[str, ...]) -> ASGIApp:
    """Take the client address (and scheme) from X-Forwarded-* set by a trusted proxy.

    Behind a TLS-terminating proxy every connection comes from the proxy, and
    the audit log would record its address for every access. Only the
    addresses in ``trusted`` (``SHARED_GOV_TRUSTED_PROXIES``) are believed:
    anyone else could write any X-Forwarded-For. Without it, nothing changes.
    """
    if not trusted:
        return app
    # uvicorn's middleware is plain ASGI and independent of the server; it
    # walks X-Forwarded-For from the right, past trusted hops only.
    return cast(ASGIApp, ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=list(trusted)))


def _metrics_dir(workers: int) -> Path | None:
    """Prepare the shared metrics directory; returns one to remove at exit, if ours."""
    configured = metrics.multiprocess_dir()
    if configured is not None:
        metrics.prepare_multiprocess_dir(configured)
        return None
    if workers < 2:
        return None
    private = Path(tempfile.mkdtemp(prefix="shared-gov-metrics-"))
    os.environ[metrics.MULTIPROC_ENV] = str(private)
    return private


def serve(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Serve ``shared_gov.app:create_app`` on ``host:port`` until SIGINT/SIGTERM."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    if workers < 1:
        raise ValueError("workers must be at least 1")
    private_dir = _metrics_dir(workers)
    configure_logging(settings.log_level, stream="stdout")
    multiprocessing.set_start_method("spawn", force=True)
    level = settings.log_level if settings.log_level in LogLevels.__members__ else "info"
    log.info(
        "serve.start",
        host=host,
        port=port,
        workers=workers,
        env=settings.env,
        key_provider=settings.key_provider,
        metrics_dir=os.environ.get(metrics.MULTIPROC_ENV),
    )
    try:
        Granian(
            "shared_gov.app:create_app",
            factory=True,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            workers=workers,
            # Our access log (one JSON line per request, with its request id)
            # replaces granian's.
            log_access=False,
            log_level=LogLevels(level),
            log_dictconfig=stdlib_json_logging(level),
            # A worker that dies (out of memory, a crashed native library) is
            # replaced instead of leaving the service with fewer workers.
            respawn_failed_workers=not settings.is_dev,
            workers_kill_timeout=WORKER_KILL_TIMEOUT,
        ).serve()
    finally:
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
