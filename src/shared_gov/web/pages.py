"""Rendering a console page: the language, the labels, the error pages.

Japanese first: a page is in Japanese unless the ``sg_console_lang`` cookie
says ``en`` (the switch in every page's header sets it, through
``/console/language``: a query parameter on an audited page would be an
unknown parameter there, refused like the API's). Labels come from the
message catalogue (:mod:`shared_gov.messages.console`), and so do the
reasons a refusal gives, in the same words as the API's problem+json.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from shared_gov import errors
from shared_gov.messages import console as L
from shared_gov.messages import language
from shared_gov.messages.core import Language, render

from .security import PREFIX
from .signin import NotSignedIn, current
from .timefmt import jst_text

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
LANG_COOKIE = "sg_console_lang"


def language_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Language:
    return "en" if connection.cookies.get(LANG_COOKIE) == "en" else "ja"


@cache
def asset_version() -> str:
    """A digest of the static files: their URLs change when they do (cache busting)."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@pass_context
def jst(context: Context, value: object, seconds: bool = False) -> str:
    """Jinja filter ``jst``: a time as a clerk reads it, in the page's language.

    ``{{ event.occurred_at | jst }}`` gives ``令和8年12月7日 14:05`` on a
    Japanese page and ``2026-12-07 14:05 JST`` on an English one;
    ``| jst(seconds=True)`` to the second. Takes a datetime, a date or an
    ISO 8601 string (:func:`.timefmt.jst_text`); None gives ``—``.
    """
    lang = "en" if context.get("lang") == "en" else "ja"
    if value is None or isinstance(value, (datetime, date, str)):
        return jst_text(value, lang, seconds=seconds)
    return str(value)


def template_config(directories: list[Path] | None = None) -> TemplateConfig[JinjaTemplateEngine]:
    """The templates: the console's own folder and any a domain brings."""

    def configure(engine: JinjaTemplateEngine) -> None:
        env = engine.engine
        env.autoescape = True
        env.globals["L"] = L
        env.filters["jst"] = jst

    return TemplateConfig(
        directory=[TEMPLATES, *(directories or [])],
        engine=JinjaTemplateEngine,
        engine_callback=configure,
    )


def page(
    request: ASGIConnection[Any, Any, Any, Any],
    name: str,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """A console page in the request's language, with what every page shows."""
    lang = language_of(request)
    language.begin(lang)  # rendered messages (reasons) in the page's language

    def t(value: object, **params: object) -> str:
        text = render(value, lang)
        return text.format(**params) if params else text

    return Template(
        template_name=name,
        status_code=status_code,
        media_type="text/html",
        context={
            "t": t,
            "lang": lang,
            "other_lang": "en" if lang == "ja" else "ja",
            "me": current(request),
            "prefix": PREFIX,
            "here": request.url.path,
            "static": f"{PREFIX}/static/{asset_version()}",
            **context,
        },
    )


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Every error on a console page, as a page (never problem+json)."""
    if isinstance(exc, NotSignedIn):
        return Redirect(f"{PREFIX}/?expired=1" if exc.expired else f"{PREFIX}/")
    if isinstance(exc, errors.DomainError):
        status, title, detail = exc.status, exc.title, exc.detail
        if exc.concealed or status == 404:
            title, detail = L.NOT_FOUND, ""
    elif isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        status, title, detail = 403, L.ERROR, L.CSRF_REFUSED
    elif isinstance(exc, HTTPException):
        status, title, detail = exc.status_code, L.ERROR, ""
    else:
        status, title, detail = 500, L.ERROR, ""
    if status >= 500:
        detail = ""
    return page(request, "error.html", status_code=status, title=title, detail=detail)


EXCEPTION_HANDLERS: Mapping[Any, Any] = {
    NotSignedIn: error_page,
    errors.DomainError: error_page,
    HTTPException: error_page,
    Exception: error_page,
}
