"""Domain errors and their RFC 9457 problem+json rendering.

Services raise these; the Litestar exception handlers in :mod:`shared_gov.app`
turn them (and Litestar's own HTTP errors) into ``application/problem+json``.
Messages are written by us and never include a submitted value, so no
personal value can be echoed back to a client or into a log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://shared-gov.example/problems/"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input field: a JSON pointer (RFC 6901) and a reason."""

    pointer: str
    detail: str


@dataclass
class DomainError(Exception):
    """Base of every error a service may raise on purpose."""

    detail: str
    status: int = 400
    type_slug: str = "bad-request"
    title: str = "Bad request"
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    """Reason and policy ids for the audit record only (never in the response)."""

    def __str__(self) -> str:
        return self.detail

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.type_slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def bad_request(detail: str) -> DomainError:
    return DomainError(detail, 400, "bad-request", "Bad request")


def unauthorized(detail: str = "a valid bearer token is required") -> DomainError:
    return DomainError(
        detail,
        401,
        "unauthorized",
        "Unauthorized",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def forbidden(detail: str, policies: list[str] | None = None) -> DomainError:
    """403 inside the caller's own town, with ``reason`` naming the failed condition."""
    extra: dict[str, Any] = {"reason": detail}
    if policies is not None:
        extra["policies"] = policies
    return DomainError(detail, 403, "forbidden", "Forbidden", extra=extra)


def not_found(detail: str = "no such resource") -> DomainError:
    """Also what a caller without rights gets: existence is never revealed."""
    return DomainError(detail, 404, "not-found", "Not found")


def conflict(detail: str) -> DomainError:
    return DomainError(detail, 409, "conflict", "Conflict")


def precondition_failed(detail: str) -> DomainError:
    return DomainError(detail, 412, "precondition-failed", "Precondition failed")


def precondition_required(detail: str) -> DomainError:
    return DomainError(detail, 428, "precondition-required", "Precondition required")


def unavailable(detail: str, retry_after: int = 1) -> DomainError:
    return DomainError(
        detail,
        503,
        "unavailable",
        "Service unavailable",
        headers={"Retry-After": str(retry_after)},
    )


_PARAMETER_KINDS = {"path": "path parameter", "query": "query parameter", "header": "header"}


def _invalid_detail(errors: list[FieldError]) -> str:
    """What a 422 says: the body's fields, or which parameters (their declared names)."""
    if not errors:
        return "invalid request"
    kinds = {e.pointer.split("/")[1] if e.pointer.count("/") >= 2 else "" for e in errors}
    if len(kinds) == 1 and (kind := kinds.pop()) in _PARAMETER_KINDS:
        # The names are the route's own (declared parameters), never submitted text.
        names = sorted({e.pointer.split("/", 2)[2] for e in errors})
        plural = "s" if len(names) > 1 else ""
        return f"invalid {_PARAMETER_KINDS[kind]}{plural}: {', '.join(names)}"
    return "the request body has invalid fields"


def invalid(errors: list[FieldError]) -> DomainError:
    """422 listing every bad field by JSON pointer."""
    return DomainError(
        _invalid_detail(errors),
        422,
        "validation",
        "Unprocessable content",
        extra={"errors": [{"pointer": e.pointer, "detail": e.detail} for e in errors]},
    )


def invalid_field(pointer: str, detail: str) -> DomainError:
    return invalid([FieldError(pointer, detail)])
