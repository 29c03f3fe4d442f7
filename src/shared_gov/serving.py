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
- A worker that dies (killed by the OOM killer, a crash in a native library)
  is replaced by a new one outside development; granian gives up and the
  service exits non-zero if a replaced worker dies again within 5.5 s (a
  crash loop, e.g. a worker that cannot start). ``SHARED_GOV_RESPAWN_WORKERS``
  (``1``/``0``) overrides the default, so tests can run the production
  behaviour in the ``test`` environment.
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

__all__ = ["RESPAWN_ENV", "WORKER_KILL_TIMEOUT", "behind_proxies", "respawn_workers", "serve"]

log = get_logger("shared_gov.serve")

WORKER_KILL_TIMEOUT: Final = 30
"""Seconds a worker gets to finish its requests after SIGTERM before it is killed."""

RESPAWN_ENV: Final = "SHARED_GOV_RESPAWN_WORKERS"


def respawn_workers(settings: Settings) -> bool:
    """Replace workers that die: outside development, unless ``SHARED_GOV_RESPAWN_WORKERS`` says.

    In development a dead worker stops the service, so a crash is seen at
    once rather than papered over by a replacement.
    """
    value = os.environ.get(RESPAWN_ENV, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    if value:
        raise ValueError(f"{RESPAWN_ENV} must be 1 or 0, not {value!r}")
    return not settings.is_dev


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
    respawn = respawn_workers(settings)
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
        respawn=respawn,
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
            respawn_failed_workers=respawn,
            workers_kill_timeout=WORKER_KILL_TIMEOUT,
        ).serve()
    finally:
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)
