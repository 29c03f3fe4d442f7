"""Every error as RFC 9457 problem+json (``application/problem+json``).

:func:`problem_of` is the one translation of an exception into the problem
the caller gets — typed domain errors as they are, Litestar's validation and
HTTP errors, driver timeouts and outages as 503, anything else as a 500 that
names nothing — and the refusal hook (:mod:`.refusals`) records the same
status and reason. :data:`EXCEPTION_HANDLERS` is what the app mounts.

Every problem is rendered in the language ``Accept-Language`` asks for
(:func:`shared_gov.messages.negotiate`: Japanese or, by default, English),
says so in ``Content-Language`` and varies on ``Accept-Language``.
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
from shared_gov.messages import http as m
from shared_gov.messages import negotiate
from shared_gov.messages import validation as mv
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
            raise errors.invalid_field(pointer, m.DUPLICATE_KEY)
        return await super().json()


def _problem(exc: errors.DomainError, request: Request[Any, Any, Any]) -> Response[Any]:
    language = negotiate(request.headers.get("accept-language"))
    return Response(
        content=exc.problem(language=language),
        status_code=exc.status,
        media_type=errors.PROBLEM_JSON,
        headers={**exc.headers, "Content-Language": language, "Vary": "Accept-Language"},
    )


def _domain_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _problem(problem_of(exc), request)


def _validation_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's body/parameter validation -> 422 with JSON pointers, values removed."""
    return _problem(problem_of(exc), request)


_MISSING_PARAMETER = re.compile(
    r"^Missing required (?P<kind>path|query|header|cookie) parameter "
    r"'(?P<name>[A-Za-z0-9_.\-]{1,64})'"
)
_KINDS = {"path": m.PATH_PARAMETER, "query": m.QUERY_PARAMETER, "header": m.HEADER}


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
            # Litestar moves msgspec's "$.data.x" location into `key`.
            base = ""
            if key and key != "data":
                base = "/" + re.sub(r"\[(\d+)\]", r".\1", key).replace(".", "/")
            problems.append(msgspec_error_to_field(message, base=base))
        else:
            where = getattr(source, "value", source) or "request"
            problems.append(errors.FieldError(f"/{where}/{key}", mv.INVALID_VALUE))
    if not problems:
        missing = _MISSING_PARAMETER.match(exc.detail)
        if missing and missing["kind"] in _KINDS:
            # The route's own parameter name (the pattern admits no other text).
            return errors.bad_request(
                m.MISSING_PARAMETER(kind=_KINDS[missing["kind"]], name=missing["name"])
            )
        return errors.bad_request(m.NOT_JSON if "JSON" in exc.detail else m.INVALID_INPUT)
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


_DETAILS = {
    400: m.NOT_JSON_OR_SHAPE,
    404: m.NO_SUCH_RESOURCE,
    405: m.METHOD_NOT_ALLOWED,
    413: m.TOO_LARGE,
}


def _http_problem(exc: HTTPException) -> errors.DomainError:
    status = exc.status_code
    slug = _SLUGS.get(status, "http")
    detail = _DETAILS.get(status, m.NOT_PROCESSED if status < 500 else m.INTERNAL_ERROR)
    # RFC 9457 §3.1.3: the title does not change from occurrence to occurrence
    # (but for its language).
    title = m.TITLES.get(status) or HTTPStatus(status).phrase.capitalize()
    return errors.DomainError(
        detail=detail,
        status=status,
        type_slug=slug,
        title=title,
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
        return errors.unavailable(m.DB_TIMEOUT)
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return errors.unavailable(m.DB_UNREACHABLE)
    if isinstance(exc, KeyProviderError) and not isinstance(exc, WrapError):
        return errors.unavailable(m.KEY_PROVIDER_UNAVAILABLE)
    if isinstance(exc, RecursionError):
        # Litestar decodes untyped JSON recursively: "[[[[…" is bad input, not a bug.
        return errors.bad_request(m.NESTED_TOO_DEEPLY)
    return errors.DomainError(m.INTERNAL_ERROR, 500, "internal", m.TITLE_INTERNAL)


EXCEPTION_HANDLERS = {
    errors.DomainError: _domain_error_handler,
    ValidationException: _validation_handler,
    HTTPException: _http_error_handler,
    Exception: _internal_error_handler,
}
"""The app's exception handlers: every error leaves as problem+json."""
