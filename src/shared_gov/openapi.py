"""The OpenAPI document's error responses: every operation lists the RFC 9457
problems it can answer with.

Litestar documents a handler's success response from its annotations and,
for a handler that takes parameters, a 400 in the shape of its own
``ValidationException`` (``application/json`` with ``status_code``) — not what
this service sends (:mod:`shared_gov.errors`: ``application/problem+json``,
422 for invalid fields, 404 for "not yours"). :func:`document_problems` gives
every route handler the problem responses its traits make possible, so the
document is the contract clients and the API fuzzer (``tests/fuzz``) hold the
service to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.routes import HTTPRoute

from shared_gov.errors import PROBLEM_JSON


@dataclass
class FieldProblem:
    """One invalid field of a 422: where (RFC 6901 JSON pointer) and why."""

    pointer: str
    detail: str


@dataclass
class Problem:
    """RFC 9457 problem details, as :meth:`shared_gov.errors.DomainError.problem` renders them."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] | None = None
    """422 only: every invalid field."""
    reason: str | None = None
    """403 only: the failed condition."""
    policies: list[str] | None = None
    """403 only: ids of the determining policies."""


DESCRIPTIONS = {
    400: "Malformed request: the body is not JSON, or an unknown purpose of use",
    401: "No valid bearer token",
    403: "Not allowed here; `reason` names the failed condition",
    404: "No such resource, or not the caller's town (one answer for both)",
    409: "Conflicts with the current state",
    412: "If-Match does not name the current version",
    413: "The request body is too large",
    422: "Invalid input; `errors` names each field by JSON pointer",
    428: "This change needs If-Match",
    503: "The database is unavailable or busy; retry after Retry-After",
}

# Arguments Litestar injects that are not client input (``body``, the raw
# request body, is: a handler taking it documents it with :func:`sent_as`).
_INJECTED = frozenset({"request", "principal", "state", "scope", "entry"})


def problem_statuses(methods: Iterable[str], arguments: Iterable[str], *, public: bool) -> set[int]:
    """The problem statuses an operation can answer with, from what it takes."""
    methods, inputs = set(methods), set(arguments) - _INJECTED
    statuses: set[int] = set()
    if not public:
        # Every authenticated route verifies a token, decides by policy, hides
        # other towns' things behind 404 and needs the database.
        statuses |= {401, 403, 404, 503}
    if inputs:
        statuses |= {400, 422}
    if inputs & {"data", "body"}:
        statuses |= {413}
    if "if_match" in inputs:
        statuses |= {412, 428}
    if not public and methods - {"GET", "HEAD"}:
        statuses |= {409}
    return statuses


def document_problems(app: Litestar, public_paths: Iterable[str]) -> None:
    """Add the problem responses to every handler of ``app`` included in the schema.

    Runs before the document is first built (Litestar builds it lazily), and
    keeps any ``responses=`` a handler declares itself.
    """
    public = [re.compile(pattern) for pattern in public_paths]
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not isinstance(handler, HTTPRouteHandler) or not handler.resolve_include_in_schema():
                continue
            statuses = problem_statuses(
                handler.http_methods,
                # What the route's guarded entry takes (api.entry.audited) counts too.
                [*handler.parsed_fn_signature.parameters, *handler.opt.get("inputs", ())],
                public=any(p.search(route.path) for p in public),
            )
            documented = {
                status: ResponseSpec(
                    data_container=Problem,
                    description=DESCRIPTIONS[status],
                    media_type=PROBLEM_JSON,
                    generate_examples=False,
                )
                for status in sorted(statuses)
            }
            handler.responses = {**documented, **(handler.responses or {})}


def served_also_as(*media_types: str) -> type[Operation]:
    """An ``operation_class`` for a handler whose success response may also come
    as these (text) media types, e.g. an export chosen by a query parameter.

    Litestar documents one media type per response, from the annotation.
    """

    @dataclass
    class AlsoServedAs(Operation):
        def __post_init__(self) -> None:
            for status, response in (self.responses or {}).items():
                if not status.startswith("2") or not isinstance(response, OpenAPIResponse):
                    continue
                content = response.content or {}
                for media_type in media_types:
                    content.setdefault(
                        media_type, OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
                    )
                response.content = content

    return AlsoServedAs


def sent_as(*media_types: str, description: str) -> type[Operation]:
    """An ``operation_class`` for a handler that takes its body as sent
    (``body: RawBody``: a CSV file, an XML document), in these media types.

    Litestar decodes ``data`` as JSON (or a form) only, and documents no
    request body for the raw ``body`` it hands over: this documents it.
    """

    @dataclass
    class SentAs(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                content={
                    media_type: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
                    for media_type in media_types
                },
                description=description,
                required=True,
            )

    return SentAs
