"""Every error as RFC 9457 problem+json (``application/problem+json``).

:func:`problem_of` is the one translation of an exception into the problem
the caller gets — typed domain errors as they are, Litestar's validation and
HTTP errors, driver timeouts and outages as 503, anything else as a 500 that
names nothing — and the refusal hook (:mod:`.refusals`) records the same
status and reason. :data:`EXCEPTION_HANDLERS` is what the app mounts.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from shared_gov import errors
from shared_gov.crypto.providers import KeyProviderError, WrapError
from shared_gov.db.engine import UNAVAILABLE_ERRORS
from shared_gov.logs import get_logger
from shared_gov.validation import duplicate_key, msgspec_error_to_field

log = get_logger("shared_gov.http")


class StrictJSONRequest(Request[Any, Any, Any]):
    """Every request: a JSON body whose object repeats a key is refused (422).

    Litestar decodes every JSON body of the API (structs and plain bodies
    alike) through ``Request.json()`` before converting it to the handler's
    type, so this is the one place all of them pass; GETs have no body.
    """

    async def json(self) -> Any:
        body = await self.body()
        pointer = duplicate_key(body) if body else None
        if pointer is not None:
            # The key (a field name), never a value.
            raise errors.invalid_field(pointer, "occurs more than once in its object")
        return await super().json()


def _problem(exc: errors.DomainError, request: Request[Any, Any, Any]) -> Response[Any]:
    return Response(
        content=exc.problem(),
        status_code=exc.status,
        media_type=errors.PROBLEM_JSON,
        headers=exc.headers,
    )


def _domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _problem(problem_of(exc), request)


def _validation_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's body/parameter validation -> 422 with JSON pointers, values removed."""
    return _problem(problem_of(exc), request)


def _validation_problem(exc: ValidationException) -> errors.DomainError:
    problems: list[errors.FieldError] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        source = item.get("source")
        key = str(item.get("key", ""))
        if source == "body" or key == "data":
            field = msgspec_error_to_field(message)
            if key and key != "data" and field.pointer in ("", "/"):
                # Litestar moves msgspec's "$.data.x" location into `key`.
                pointer = "/" + re.sub(r"\[(\d+)\]", r".\1", key).replace(".", "/")
                field = errors.FieldError(pointer, field.detail)
            problems.append(field)
        else:
            where = getattr(source, "value", source) or "request"
            problems.append(errors.FieldError(f"/{where}/{key}", "invalid value"))
    if not problems:
        detail = "the request body is not valid JSON" if "JSON" in exc.detail else "invalid input"
        return errors.bad_request(detail)
    return errors.invalid(problems)


_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
}


def _http_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _problem(problem_of(exc), request)


def _http_problem(exc: HTTPException) -> errors.DomainError:
    status = exc.status_code
    slug = _SLUGS.get(status, "http")
    detail = {
        400: "the request body is not valid JSON or not the expected shape",
        404: "no such resource",
        405: "method not allowed",
        413: "the request body is too large",
    }.get(status, "the request could not be processed" if status < 500 else "internal error")
    # RFC 9457 §3.1.3: the title does not change from occurrence to occurrence.
    return errors.DomainError(
        detail=detail,
        status=status,
        type_slug=slug,
        title=HTTPStatus(status).phrase.capitalize(),
        headers=dict(exc.headers or {}),
    )


def _internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    problem = problem_of(exc)
    if problem.type_slug == "internal":
        # Log the type only: exception messages from drivers can quote values.
        log.error("request.failed", error=type(exc).__name__)
    elif isinstance(exc, KeyProviderError):
        # The HSM is unreachable (or lacks a key) on a path that called the
        # keyring directly (audit queries, sealing): the platform's fault.
        log.warning("key_provider.unavailable", error=type(exc).__name__)
    return _problem(problem, request)


def problem_of(exc: BaseException) -> errors.DomainError:
    """The problem+json an exception is answered with (what every handler renders).

    Pure: the exception handlers render it, and the audit hook records the
    same status and reason the caller gets.
    """
    if isinstance(exc, errors.DomainError):
        return exc
    if isinstance(exc, ValidationException):
        return _validation_problem(exc)
    if isinstance(exc, HTTPException):
        return _http_problem(exc)
    if isinstance(exc, asyncpg.QueryCanceledError):
        # statement_timeout: e.g. waiting behind a lock another session holds.
        return errors.unavailable("the database did not answer in time; retry")
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return errors.unavailable("the database is unreachable; retry")
    if isinstance(exc, KeyProviderError) and not isinstance(exc, WrapError):
        return errors.unavailable("the key provider is unavailable; retry")
    if isinstance(exc, RecursionError):
        # Litestar decodes untyped JSON recursively: "[[[[…" is bad input, not a bug.
        return errors.bad_request("the request body is nested too deeply")
    return errors.DomainError("internal error", 500, "internal", "Internal error")


EXCEPTION_HANDLERS = {
    errors.DomainError: _domain_error_handler,
    ValidationException: _validation_handler,
    HTTPException: _http_error_handler,
    Exception: _internal_error_handler,
}
"""The app's exception handlers: every error leaves as problem+json."""
