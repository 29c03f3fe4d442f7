"""What the console's pages over the API's other gates share: sign-in first,
forms read into the API's own request types, refusals shown beside the form.

The auditors' gate is decided in a guard (``in_guard``), after the
controller's ``signed_in`` guard. The administration, agreement and records
gates are decided by the entry in the handler, after a route middleware of
the API (``town_first``) that already needs the caller — so a controller of
such pages declares :func:`signed_in_first`: the same ``signed_in`` check,
as a controller middleware (:func:`.domainpages.signed_in_first`, which a
domain's pages use too), which runs before the route's own.

A form is read into the API's request struct (:func:`parsed`): the same
checks, the same 422 naming the field. A refusal that happens after the gate
let the person in (their own permissions, a conflict, bad input) is shown on
the page beside the form (:func:`shown_inline`), with the API's reason;
everything else (not signed in, another town, not an admin) is the error
page.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from litestar.datastructures import FormMultiDict

from shared_gov import errors
from shared_gov.api.entry import Entry
from shared_gov.messages import validation as mv
from shared_gov.validation import msgspec_error_to_field

from .domainpages import signed_in_first

T = TypeVar("T")
_NUL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text(form: FormMultiDict, name: str, limit: int = 2000) -> str:
    """One form value as typed (trimmed; cut at ``limit`` characters, well above
    what the API's request type allows, so that a value too long is refused
    by the API's own check, never silently shortened)."""
    return str(form.get(name) or "").strip()[:limit]


def texts(form: FormMultiDict, name: str) -> list[str]:
    """Every value of a repeated field (checkboxes), in order, without blanks."""
    return [v for v in (str(x).strip() for x in form.getall(name, [])) if v]


def checked(form: FormMultiDict, name: str) -> bool:
    return form.get(name) in ("1", "on", "yes", "true")


def identifier(form: FormMultiDict, name: str, limit: int = 128) -> str:
    """A staff id or proposal id from a form, or 422 naming the field."""
    value = str(form.get(name) or "").strip()
    if not value:
        raise errors.invalid_field(f"/{name}", mv.REQUIRED)
    if len(value) > limit or _NUL.search(value):
        raise errors.invalid_field(f"/{name}", mv.INVALID_VALUE)
    return value


def parsed(kind: type[T], data: dict[str, Any]) -> T:
    """``data`` as the API's request struct ``kind``, with the API's field errors."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise errors.invalid([msgspec_error_to_field(str(exc))]) from None


async def refused_input(entry: Entry, exc: errors.DomainError) -> None:
    """Record a form refused before any change was attempted (as the API records
    a body it refuses): only once the gate let the person in."""
    await entry.admit()
    await entry.refused(exc)


def shown_inline(exc: errors.DomainError) -> bool:
    """Whether a refusal is shown on the page beside its form (else the error page)."""
    if exc.concealed:
        return False
    return exc.status in (400, 403, 404, 409, 422)


def problems_of(exc: errors.DomainError) -> list[Any]:
    found = exc.extra.get("errors") or []
    return list(found) if isinstance(found, list) else []


def refusal(exc: errors.DomainError | None) -> dict[str, Any]:
    """What a page's template shows of a refusal (``error``, ``problems``)."""
    if exc is None:
        return {}
    return {"error": exc.detail, "problems": problems_of(exc)}


__all__ = [
    "checked",
    "identifier",
    "parsed",
    "problems_of",
    "refusal",
    "refused_input",
    "shown_inline",
    "signed_in_first",
    "text",
    "texts",
]
