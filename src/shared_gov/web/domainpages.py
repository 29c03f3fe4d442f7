"""What a domain's console pages go through: signed in first, then the API's
guarded entry under the audit action of the API endpoint behind the page.

A domain declares its pages in its spec (:class:`registry.Console`); the
console's router mounts them (:mod:`.router`). A page route declares::

    @get("/determinations/{determination_id:str}",
         **page_audited("kaigo.determination.read", "determination",
                        record="determination_id"))
    async def determination(self, request, entry: NamedDependency[Entry], ...):
        await work_under(entry, (QUALIFICATION,))
        async with entry:
            shown = await service.read_determination(entry.uow, entry.access, ...)

— the same action, resource type, subject and gate (records) as the API
route, so the page is decided (Cedar, on the purpose it works under) and
recorded exactly as the API call would be: another town's staff get the 404
(a denial in the town's log) before anything is read, a purpose the person
does not hold is refused with the reason, every read and change is an event.

Two things differ from the API's declaration, on purpose:

- the signed-in check runs first, as route middleware, so that the entry's
  own middleware (which refuses another town before a parameter is decoded)
  finds the session's principal where it finds a bearer token's;
- the purpose and If-Match come from the page, never from a header: the
  page says which purposes it works under (the person picks among those they
  hold), and a change's form carries the version the page showed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.response import Template
from litestar.types import ASGIApp, Receive, Scope, Send

from shared_gov import errors
from shared_gov.api.entry import Entry, TenantCode, audited, guarded_entry
from shared_gov.api.pipeline import services
from shared_gov.auth.principal import Principal
from shared_gov.policy.purposes import Purpose, purposes
from shared_gov.validation import msgspec_error_to_field

from .pages import page
from .signin import signed_in

T = TypeVar("T")


def signed_in_first(app: ASGIApp) -> ASGIApp:
    """Route middleware: :func:`.signin.signed_in` before the entry's own middleware."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope, receive, send)
        await signed_in(connection, scope["route_handler"])
        await app(scope, receive, send)

    return middleware


async def _page_entry(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal], code: TenantCode
) -> Entry:
    # The entry's middleware let the person into the town: the same entry.
    found = guarded_entry(request)
    return found if found is not None else Entry(request, principal, code)


def page_audited(action: str, resource_type: str, *, record: str | None = None) -> dict[str, Any]:
    """A domain page's declaration: the API route's audit action through the records
    gate, the person signed in first, the purpose and If-Match set by the page."""
    declared = audited(action, resource_type, record=record)
    declared["middleware"] = [signed_in_first, *declared.get("middleware", ())]
    declared["dependencies"] = {"entry": Provide(_page_entry)}
    return declared


async def held(entry: Entry) -> frozenset[str]:
    """The purposes the signed-in person holds in the town (department's and own)."""
    town = await services(entry.request).permissions.town(entry.code)
    principal = entry.principal
    return town.purposes_for(principal.subject, principal.department)


async def work_under(entry: Entry, offered: Sequence[str], chosen: str | None = None) -> Purpose:
    """Set the purpose the page works under, and return it.

    The one chosen when the page offers it; else the first offered that the
    person holds; else the page's first — which Cedar then refuses with the
    reason, recorded as the API's refusal of that purpose would be.
    """
    if chosen is not None and chosen in offered:
        picked = chosen
    else:
        mine = await held(entry)
        picked = next((p for p in offered if p in mine), offered[0])
    entry.purpose = picked
    return purposes()[picked]


async def offered_to(entry: Entry, offered: Sequence[str]) -> list[Purpose]:
    """Of ``offered``, the purposes the person holds (what a form lets them pick)."""
    mine = await held(entry)
    known = purposes()
    return [known[p] for p in offered if p in mine and p in known]


def if_match(version: object) -> str | None:
    """The If-Match a form's version stands for (the page showed that version)."""
    text = str(version or "").strip()
    return f'"v{text}"' if text.isdigit() and len(text) <= 9 else None


def decoded(data: dict[str, Any], into: type[T]) -> T:
    """A form's values as the API's request body (the same checks, the same field errors)."""
    try:
        return msgspec.convert(data, into, strict=False)
    except msgspec.ValidationError as exc:
        raise errors.invalid([msgspec_error_to_field(str(exc))]) from None


def text_of(form: Any, name: str, limit: int = 1000) -> str | None:
    """A form field as typed (None when empty); the schemas check the rest."""
    value = form.get(name)
    text = str(value).strip() if value is not None else ""
    return text[:limit] or None


def refusal(
    request: Request[Any, Any, Any], exc: errors.DomainError, template: str, **context: Any
) -> Template:
    """A refusal the entry recorded, as the domain's page: the API's title and reason
    (in the page's language) and the field errors, with the way back.

    What another town or a missing record gets stays the console's plain 404
    page, and an outage its error page: re-raised.
    """
    if exc.concealed or exc.status == 404 or exc.status >= 500:
        raise exc
    found = exc.extra.get("errors") or []
    return page(
        request,
        template,
        exc.status,
        title=exc.title,
        detail=exc.detail,
        problems=list(found) if isinstance(found, list) else [],
        **context,
    )
