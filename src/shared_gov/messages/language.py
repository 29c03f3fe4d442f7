"""Which language a request is answered in: ``Accept-Language`` (RFC 9110 §12.5.4).

English unless the client prefers Japanese: ``ja``, ``ja-JP``,
``ja;q=0.9, en;q=0.8`` and ``fr, ja;q=0.5`` pick Japanese; no header,
``en-US``, ``*``, ``ja;q=0`` and anything unparsable pick English. The
highest quality wins; between equal qualities the range listed first; a
range matches a language when it is the language or starts with it and a
``-`` (``ja-JP`` matches ``ja``); ``*`` stands for every language the client
did not name. The service never answers 406: a language it does not speak
falls back to English.

The request's language is kept in a context variable for the duration of the
request (set by the app's outermost middleware), so that whatever renders a
:class:`~shared_gov.messages.core.Localized` for the response — the JSON
encoder, above all — knows it without every signature carrying it; and it
notes that the response said something in that language (``Content-Language``).
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

from shared_gov.messages.core import DEFAULT_LANGUAGE, LANGUAGES, Language

_TAG = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_QVALUE = re.compile(r"^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")
MAX_HEADER = 1024
"""Longer ``Accept-Language`` headers are not parsed (English): no browser sends one."""


def _ranges(header: str) -> list[tuple[str, float, int]]:
    """``(range, quality, position)`` of every well-formed item; malformed ones are skipped."""
    found: list[tuple[str, float, int]] = []
    for position, item in enumerate(header.split(",")):
        tag, *params = (part.strip() for part in item.split(";"))
        if not tag or not _TAG.match(tag):
            continue
        quality = 1.0
        ok = True
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() != "q":
                continue  # accept-ext: ignored
            value = value.strip()
            if not _QVALUE.match(value):
                ok = False
                break
            quality = float(value)
        if ok:
            found.append((tag.lower(), quality, position))
    return found


def _matches(language_range: str, language: str) -> bool:
    return language_range == language or language_range.startswith(language + "-")


def negotiate(header: str | None) -> Language:
    """The language to answer a request whose ``Accept-Language`` is ``header``."""
    if not header or len(header) > MAX_HEADER:
        return DEFAULT_LANGUAGE
    ranges = _ranges(header)
    best: tuple[float, int, bool, Language] | None = None
    for language in LANGUAGES:
        named = [(q, -p) for r, q, p in ranges if r != "*" and _matches(r, language)]
        if named:
            # We speak one Japanese (and one English): any range naming the
            # language or a variant of it counts, at its highest quality.
            quality, order = max(named)
        else:
            star = [(q, -p) for r, q, p in ranges if r == "*"]
            if not star:
                continue
            quality, order = max(star)
        if quality <= 0:
            continue
        # Equal preference: the default wins (the client cares for neither more).
        key = (quality, order, language == DEFAULT_LANGUAGE)
        if best is None or key > best[:3]:
            best = (*key, language)
    return best[3] if best is not None else DEFAULT_LANGUAGE


@dataclass(slots=True)
class Negotiated:
    """One request's language, and whether anything was rendered in it."""

    language: Language = DEFAULT_LANGUAGE
    used: bool = False


_CURRENT: ContextVar[Negotiated | None] = ContextVar("shared_gov_language", default=None)


def begin(header: str | None) -> Negotiated:
    """Start a request answered in the language ``header`` asks for."""
    negotiated = Negotiated(negotiate(header))
    _CURRENT.set(negotiated)
    return negotiated


def current() -> Language:
    """The current request's language (English outside a request); marks it used."""
    negotiated = _CURRENT.get()
    if negotiated is None:
        return DEFAULT_LANGUAGE
    negotiated.used = True
    return negotiated.language
