"""Structured JSON logging with structlog.

Each request binds ``request_id``, ``tenant`` and ``actor`` through
``structlog.contextvars`` so that every line of that request carries them.
Personal values are never logged: code logs ids and counts only, and as a
second line of defence :func:`_drop_personal_keys` replaces the value of any
key that names a personal field, in case someone logs a dict by mistake.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys whose values are personal data. A log call that passes one of these
# gets the value replaced; the key stays so the mistake is visible in review.
PERSONAL_KEYS = frozenset(
    {
        "family_name",
        "given_name",
        "family_name_kana",
        "given_name_kana",
        "birth_date",
        "address",
        "postal_code",
        "individual_number",
        "juminhyo_code",
        "phone",
        "former_surname",
        "domicile",
        "previous_address",
        "forward_address",
        "authorization",
        "token",
    }
)


def _drop_personal_keys(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in PERSONAL_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


_configured = False


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now, not to the one seen at set-up
    (a test runner or a CLI harness may swap and close it in between)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", *, force: bool = False) -> None:
    """Set up structlog to emit one JSON object per line on stderr."""
    global _configured
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
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for module ``name``; binds nothing personal."""
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
