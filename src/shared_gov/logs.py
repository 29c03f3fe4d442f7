"""Structured JSON logging with structlog.

Each request binds ``request_id``, ``tenant`` and ``actor`` through
``structlog.contextvars`` so that every line of that request carries them.
``request_id`` is always the service's own (:func:`request_ids`); a client's
``X-Request-ID`` is kept only as ``client_request_id``, and only when it is
short printable ASCII.
Personal values are never logged: code logs ids and counts only, and as a
second line of defence :func:`_drop_personal_keys` replaces the value of any
key that names a personal field, in case someone logs a dict by mistake.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, TextIO

import msgspec
import structlog

# Keys whose values are secret or personal. A log call that passes one of these
# gets the value replaced; the key stays so the mistake is visible in review.
# The personal ones are the fields the domains declare ``redacted``: the
# domain registry hands them over (redact_keys_from) when it is imported, so
# this base module imports no layer above it; the platform adds its own secrets.
SECRET_KEYS = frozenset({"authorization", "token"})

_REDACTED_BY: list[Callable[[], Iterable[str]]] = []


def redact_keys_from(source: Callable[[], Iterable[str]]) -> None:
    """Also redact the keys ``source()`` names (read when a line is first logged)."""
    _REDACTED_BY.append(source)
    personal_keys.cache_clear()


@cache
def personal_keys() -> frozenset[str]:
    """Every key whose value a log line must not carry (read once, on first use)."""
    keys = set(SECRET_KEYS)
    for source in _REDACTED_BY:
        keys.update(source())
    return frozenset(keys)


def __getattr__(name: str) -> frozenset[str]:
    # The former constant, for readers that still ask for it.
    if name == "PERSONAL_KEYS":
        return personal_keys()
    raise AttributeError(name)


def _drop_personal_keys(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in personal_keys().intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


CLIENT_REQUEST_ID_MAX = 64
"""Longest client-supplied request id kept (longer ones are dropped, not cut)."""


def client_request_id(raw: bytes | None) -> str | None:
    """A client's ``X-Request-ID`` if it is 1–64 visible ASCII characters, else None.

    Visible ASCII only (``!`` to ``~``): no control characters (a NUL would
    break the audit write, a newline a log line), no spaces, nothing a
    terminal or a CSV reader interprets. An id that fails is dropped whole:
    a truncated or cleaned id would name another request.
    """
    if not raw or len(raw) > CLIENT_REQUEST_ID_MAX:
        return None
    if not all(0x21 <= b <= 0x7E for b in raw):
        return None
    return raw.decode("ascii")


def request_ids(headers: Any) -> tuple[str, str | None]:
    """``(request_id, client_request_id)`` of a request, from its ASGI headers.

    The request id is always generated here: the audit record's and the log
    lines' ``request_id`` is the service's word, never a client's, so no
    caller can give its requests the id of someone else's.
    """
    incoming: bytes | None = None
    for name, value in headers:
        if name == b"x-request-id":
            incoming = value
            break
    return str(uuid.uuid4()), client_request_id(incoming)


def _unencodable(value: object) -> str:
    # What structlog's own JSON renderer does with a type JSON has no word for.
    return repr(value)


_JSON_LINE = msgspec.json.Encoder(enc_hook=_unencodable)


def _render_json(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> str:
    """The event as one JSON object, UTF-8 as it is (no ``\\u`` escapes).

    msgspec, not ``json.dumps``: the access log writes a line per request,
    and this is a tenth of the time (bench/README.md, issue #16).
    """
    return _JSON_LINE.encode(event_dict).decode()


_configured = False
Stream = Literal["stdout", "stderr"]
_stream: Stream = "stderr"


class _CurrentStream:
    """Writes to whatever ``sys.stdout``/``sys.stderr`` is now, not to the one
    seen at set-up (a test runner or a CLI harness may swap and close it in
    between). Which of the two is chosen by :func:`configure_logging`.

    Each line goes out in ONE write: structlog's ``print()`` writes the
    message and its newline separately, and with several worker processes on
    one unbuffered stdout (``PYTHONUNBUFFERED=1``, as in the container) two
    workers' lines could interleave and glue two JSON objects together.
    """

    def __init__(self) -> None:
        self._pending = threading.local()

    def _target(self) -> TextIO:
        return sys.stdout if _stream == "stdout" else sys.stderr

    def write(self, text: str) -> int:
        pending: str = getattr(self._pending, "text", "")
        if not text.endswith("\n"):
            self._pending.text = pending + text
            return len(text)
        self._pending.text = ""
        self._target().write(pending + text)
        return len(text)

    def flush(self) -> None:
        self._target().flush()


def configure_logging(
    level: str = "info", *, force: bool = False, stream: Stream = "stderr"
) -> None:
    """Set up structlog to emit one JSON object per line on ``stream``.

    The service logs to stdout (what container runtimes and journald collect
    as the service's output); CLI commands keep stderr, because their stdout
    is their result (a token, a table). The stream applies at every call,
    also when logging was configured before: the process's latest caller (a
    server worker, a CLI command) decides where its lines go.
    """
    global _configured, _stream
    _stream = stream
    if _configured and not force:
        return
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_personal_keys,
            structlog.processors.format_exc_info,
            _render_json,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line (message and newline together), see _CurrentStream.
        logger_factory=structlog.WriteLoggerFactory(file=_CurrentStream()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for module ``name``; binds nothing personal."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record, shaped like our structlog lines.

    For libraries that log through the standard library (the granian server
    process: start-up, workers spawned and respawned), so every line the
    service writes is JSON. Messages are the library's own text; they carry
    no request data (granian's access log stays off: ours has request ids).
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "event": record.getMessage(),
            "logger": record.name,
            "level": record.levelname.lower(),
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
        return json.dumps(line, ensure_ascii=False)


def stdlib_json_logging(level: str = "info") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` document: JSON lines on stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonLogFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
            # granian's dictConfig names an "access" handler; ours is JSON too.
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level.upper(), "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
        # Other libraries' warnings, as JSON too (their info lines are noise).
        "root": {"handlers": ["console"], "level": "WARNING"},
    }
