"""Domain errors: one type per kind of refusal or failure, each with its
RFC 9457 problem+json rendering and the outcome it has in the audit log.

Services raise these; the problem handlers in :mod:`shared_gov.api.problems`
turn them (and Litestar's own HTTP errors) into ``application/problem+json``.
Messages are written by us and never include a submitted value, so no
personal value can be echoed back to a client or into a log.

The audit outcome is the type's, never a caller's reading of the status
(:func:`audit_outcome` is the one map from status to outcome):

- :class:`NotFound` (404) is ``not_found``: the thing asked for is not there.
- :class:`Concealed` (404 too) is a refusal answered as "not found" — a
  caller from another town, an operator, anything an agreement does not
  cover (DESIGN.md rule 3). The caller cannot tell it from
  :class:`NotFound`; the log records it as ``denied`` with its reason.
- Every other 4xx (:class:`BadRequest`, :class:`Unauthorized`,
  :class:`Forbidden`, :class:`Conflict`, :class:`PreconditionFailed`,
  :class:`PreconditionRequired`, :class:`Invalid`) is ``denied``.
- :class:`Unavailable` (503) decided nothing: no audit event (``None``).

Titles, details, reasons and field errors are catalogue messages
(:mod:`shared_gov.messages`): :meth:`DomainError.problem` renders them in
the language the request negotiated; as strings they read in English, which
is what the audit log and the logs record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from shared_gov.messages import http as m
from shared_gov.messages import tokens as mt
from shared_gov.messages.core import DEFAULT_LANGUAGE, Language, Localized, localize, render

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://shared-gov.example/problems/"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid input field: a JSON pointer (RFC 6901) and a reason."""

    pointer: str
    detail: str
    """A catalogue message (:class:`~shared_gov.messages.core.Message`), rendered per language."""


@dataclass
class DomainError(Exception):
    """Base of every error a service may raise on purpose."""

    detail: str
    status: int = 400
    type_slug: str = "bad-request"
    title: str = m.TITLE_BAD_REQUEST
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    """Reason and policy ids for the audit record only (never in the response)."""

    concealed: ClassVar[bool] = False
    """A refusal answered as a plain 404 (see :class:`Concealed`)."""

    def __str__(self) -> str:
        return self.detail

    @property
    def outcome(self) -> str | None:
        """This error's outcome in the audit log (None: an outage, nothing to record)."""
        return "denied" if self.concealed else audit_outcome(self.status)

    @property
    def reason(self) -> str:
        """What the audit event says: our own text, never a submitted value."""
        return str(self.audit.get("reason") or self.extra.get("reason") or self.detail)

    @property
    def policies(self) -> list[str]:
        """The policies that decided a refusal (for the audit event)."""
        return list(self.audit.get("policies") or self.extra.get("policies", []))

    def problem(
        self, instance: str | None = None, language: Language = DEFAULT_LANGUAGE
    ) -> dict[str, Any]:
        """The problem+json body, its texts in ``language`` (English by default)."""
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.type_slug,
            "title": render(self.title, language),
            "status": self.status,
            "detail": render(self.detail, language),
        }
        if instance:
            body["instance"] = instance
        body.update(localize(self.extra, language))
        return body

    @property
    def localized(self) -> bool:
        """Whether the detail is a catalogue message (it has a Japanese rendering)."""
        return isinstance(self.detail, Localized)


def audit_outcome(status: int) -> str | None:
    """The audit outcome of an answer with ``status``: the one map of the code base.

    Every 4xx is a refusal (``denied``) but a plain 404 (``not_found``); a
    5xx decided nothing the log could hold as a decision: an outage (503, or
    any 5xx raised on purpose) writes nothing — an unexpected exception is
    recorded as ``error`` by the refusal hook, from its type.
    """
    if status >= 500:
        return None
    return "not_found" if status == 404 else "denied"


@dataclass
class BadRequest(DomainError):
    detail: str = m.BAD_REQUEST
    status: int = 400
    type_slug: str = "bad-request"
    title: str = m.TITLE_BAD_REQUEST


@dataclass
class Unauthorized(DomainError):
    detail: str = mt.TOKEN_REQUIRED
    status: int = 401
    type_slug: str = "unauthorized"
    title: str = m.TITLE_UNAUTHORIZED


@dataclass
class Forbidden(DomainError):
    """403 inside the caller's own town, with ``reason`` naming the failed condition."""

    detail: str = m.FORBIDDEN
    status: int = 403
    type_slug: str = "forbidden"
    title: str = m.TITLE_FORBIDDEN


@dataclass
class NotFound(DomainError):
    """The resource is not there (audit outcome ``not_found``)."""

    detail: str = m.NO_SUCH_RESOURCE
    status: int = 404
    type_slug: str = "not-found"
    title: str = m.TITLE_NOT_FOUND


@dataclass
class Concealed(NotFound):
    """A refusal the caller sees as a plain 404: existence is never revealed.

    Another town's caller, an operator on a town's data, whatever an
    agreement does not cover: the response is :class:`NotFound`'s, the audit
    event a denial with the reason (``audit["reason"]``, never in the response).
    """

    concealed: ClassVar[bool] = True


@dataclass
class Conflict(DomainError):
    detail: str = m.CONFLICT
    status: int = 409
    type_slug: str = "conflict"
    title: str = m.TITLE_CONFLICT


@dataclass
class PreconditionFailed(DomainError):
    detail: str = m.PRECONDITION_FAILED
    status: int = 412
    type_slug: str = "precondition-failed"
    title: str = m.TITLE_PRECONDITION_FAILED


@dataclass
class PreconditionRequired(DomainError):
    detail: str = m.PRECONDITION_REQUIRED
    status: int = 428
    type_slug: str = "precondition-required"
    title: str = m.TITLE_PRECONDITION_REQUIRED


@dataclass
class Invalid(DomainError):
    """422 listing every bad field by JSON pointer (in ``extra["errors"]``)."""

    detail: str = m.INVALID_REQUEST
    status: int = 422
    type_slug: str = "validation"
    title: str = m.TITLE_UNPROCESSABLE


@dataclass
class Unavailable(DomainError):
    """503: the database or the key provider did not answer; nothing was decided."""

    detail: str = m.SERVICE_UNAVAILABLE
    status: int = 503
    type_slug: str = "unavailable"
    title: str = m.TITLE_UNAVAILABLE


def bad_request(detail: str) -> BadRequest:
    return BadRequest(detail)


def unauthorized(detail: str = mt.TOKEN_REQUIRED) -> Unauthorized:
    return Unauthorized(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def forbidden(detail: str, policies: list[str] | None = None) -> Forbidden:
    """403 inside the caller's own town, with ``reason`` naming the failed condition."""
    extra: dict[str, Any] = {"reason": detail}
    if policies is not None:
        extra["policies"] = policies
    return Forbidden(detail, extra=extra)


def not_found(detail: str = m.NO_SUCH_RESOURCE) -> NotFound:
    """The resource is not there (a refusal that looks the same is :func:`concealed`)."""
    return NotFound(detail)


def concealed(reason: str, policies: list[str] | None = None) -> Concealed:
    """A refusal answered with the plain 404; ``reason`` goes to the audit event only."""
    exc = Concealed()
    exc.audit["reason"] = reason
    if policies is not None:
        exc.audit["policies"] = policies
    return exc


def conflict(detail: str) -> Conflict:
    return Conflict(detail)


def precondition_failed(detail: str) -> PreconditionFailed:
    return PreconditionFailed(detail)


def precondition_required(detail: str) -> PreconditionRequired:
    return PreconditionRequired(detail)


def unavailable(detail: str, retry_after: int = 1) -> Unavailable:
    return Unavailable(detail, headers={"Retry-After": str(retry_after)})


_PARAMETER_KINDS = {
    "path": (m.PATH_PARAMETER, m.PATH_PARAMETERS),
    "query": (m.QUERY_PARAMETER, m.QUERY_PARAMETERS),
    "header": (m.HEADER, m.HEADERS),
}


def _invalid_detail(errors: list[FieldError]) -> str:
    """What a 422 says: the body's fields, or which parameters (their declared names)."""
    if not errors:
        return m.INVALID_REQUEST
    kinds = {e.pointer.split("/")[1] if e.pointer.count("/") >= 2 else "" for e in errors}
    if len(kinds) == 1 and (kind := kinds.pop()) in _PARAMETER_KINDS:
        # The names are the route's own (declared parameters), never submitted text.
        names = sorted({e.pointer.split("/", 2)[2] for e in errors})
        one, many = _PARAMETER_KINDS[kind]
        return m.INVALID_PARAMETERS(kind=many if len(names) > 1 else one, names=", ".join(names))
    return m.BODY_HAS_INVALID_FIELDS


def invalid(errors: list[FieldError]) -> Invalid:
    """422 listing every bad field by JSON pointer."""
    return Invalid(
        _invalid_detail(errors),
        extra={"errors": [{"pointer": e.pointer, "detail": e.detail} for e in errors]},
    )


def invalid_field(pointer: str, detail: str) -> Invalid:
    return invalid([FieldError(pointer, detail)])
