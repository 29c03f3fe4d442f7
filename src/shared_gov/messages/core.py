"""Messages people read, in Japanese and English, kept in catalogues by id.

Every sentence the service answers with — a problem's title and detail, a
denial's reason, a field error, why a field is withheld — is an
:class:`Entry` of a :class:`Catalogue`: an id, the English text and the
Japanese text, with the same ``{placeholders}``. Code raises and returns
:class:`Message` values made from entries, never literal sentences.

A :class:`Message` **is** its English text (a ``str`` subclass): everything
that already handled a reason as a string — the audit event's ``reason``,
log lines, tests comparing text, ``in`` checks — keeps working and keeps
the English wording, which is the stable one the audit log records. Only
what leaves towards a person is rendered in the language the request asked
for (:meth:`Localized.render`): the problem+json handlers and the app's JSON
encoder do that, nothing else has to.

Parameters are our own words only — codes, field and purpose names, states,
limits — never a submitted value, so no message can echo a personal value.
A parameter may itself be a :class:`Localized` (a nested message, or a
:class:`FieldName`, which Japanese renders with the field's label).

This module is the base of the code base: it imports nothing of it. The
domain registry hands it the domains' catalogues and field labels when it is
imported (:func:`catalogues_from`, :func:`field_labels_from`), as it hands
the log module the keys to redact.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

Language = Literal["en", "ja"]
LANGUAGES: tuple[Language, ...] = ("en", "ja")
DEFAULT_LANGUAGE: Language = "en"
"""English stays the default: what clients that ask for nothing have always read."""

_ID = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
"""``catalogue.what`` ids: lower case, dotted, the catalogue's name first."""


class Localized(str):
    """A string that has a rendering in each language; its value is the English one."""

    def render(self, language: Language) -> str:
        raise NotImplementedError


class Message(Localized):
    """One catalogue entry with its parameters, rendered (as ``str``) in English."""

    entry: Entry
    params: Mapping[str, object]

    def __new__(cls, entry: Entry, params: Mapping[str, object] | None = None) -> Message:
        values = dict(params or {})
        self = super().__new__(cls, entry.format("en", values))
        self.entry = entry
        self.params = values
        return self

    @property
    def id(self) -> str:
        return self.entry.id

    def render(self, language: Language) -> str:
        return self.entry.format(language, self.params)

    def __reduce__(self) -> tuple[Any, ...]:
        # Worker processes pickle errors; keep the entry, not just the text.
        return (Message, (self.entry, dict(self.params)))

    def __repr__(self) -> str:
        return f"Message({self.entry.id!r}, {str(self)!r})"


class FieldName(Localized):
    """A field's policy name as a message parameter: Japanese adds its label.

    ``individual_number`` reads "個人番号（individual_number）" in Japanese:
    staff know the label, admins and auditors grep for the name.
    """

    def render(self, language: Language) -> str:
        if language == "en":
            return str(self)
        label = field_label(str(self), language)
        return f"{label}（{self}）" if label else str(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FieldName, (str(self),))


class Joined(Localized):
    """Several messages read as one, joined by ``separator`` (``ja``: in Japanese)."""

    parts: tuple[object, ...]
    separator: str
    ja: str

    def __new__(
        cls, parts: Iterable[object], separator: str = "; ", ja: str | None = None
    ) -> Joined:
        items = tuple(parts)
        self = super().__new__(cls, separator.join(str(p) for p in items))
        self.parts = items
        self.separator = separator
        self.ja = separator if ja is None else ja
        return self

    def render(self, language: Language) -> str:
        separator = self.ja if language == "ja" else self.separator
        return separator.join(render(p, language) for p in self.parts)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Joined, (self.parts, self.separator, self.ja))


def _placeholders(text: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


@dataclass(frozen=True, slots=True)
class Entry:
    """One sentence in every language, by id."""

    id: str
    en: str
    ja: str

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.id):
            raise ValueError(f"message id {self.id!r}: lower case, dotted, catalogue first")
        if not self.en or not self.ja:
            raise ValueError(f"message {self.id}: both languages are required")
        if _placeholders(self.en) != _placeholders(self.ja):
            raise ValueError(f"message {self.id}: English and Japanese name other placeholders")

    @property
    def placeholders(self) -> frozenset[str]:
        return _placeholders(self.en)

    def __call__(self, **params: object) -> Message:
        missing = self.placeholders - params.keys()
        if missing or params.keys() - self.placeholders:
            raise TypeError(f"message {self.id} takes {sorted(self.placeholders)}")
        return Message(self, params)

    def format(self, language: Language, params: Mapping[str, object]) -> str:
        text = self.ja if language == "ja" else self.en
        # Always formatted: ``{{`` and ``}}`` are literal braces in every entry.
        return text.format_map({k: render(v, language) for k, v in params.items()})


class Catalogue:
    """A named set of entries: the platform's, or one domain's own.

    ``text`` defines a sentence without parameters and returns its
    :class:`Message`; ``template`` one with ``{placeholders}`` and returns
    the :class:`Entry` (call it with the parameters). Ids start with the
    catalogue's name and occur once.
    """

    def __init__(self, name: str) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"catalogue name {name!r}: lower case")
        self.name = name
        self.entries: dict[str, Entry] = {}

    def _add(self, id_: str, en: str, ja: str) -> Entry:
        full = f"{self.name}.{id_}"
        if full in self.entries:
            raise ValueError(f"message {full} defined twice")
        entry = Entry(full, en, ja)
        self.entries[full] = entry
        return entry

    def text(self, id_: str, *, en: str, ja: str) -> Message:
        entry = self._add(id_, en, ja)
        if entry.placeholders:
            raise ValueError(f"message {entry.id} has placeholders: define it with template()")
        return Message(entry)

    def template(self, id_: str, *, en: str, ja: str) -> Entry:
        entry = self._add(id_, en, ja)
        if not entry.placeholders:
            raise ValueError(f"message {entry.id} has no placeholders: define it with text()")
        return entry

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Catalogue({self.name!r}, {len(self.entries)} entries)"


PLATFORM = Catalogue("sg")
"""The platform's own messages (``sg.*``); domains bring catalogues of their own."""


# --- what the domain registry hands over -------------------------------------------

_CATALOGUES_BY: list[Callable[[], Iterable[Catalogue]]] = []
_LABELS_BY: list[Callable[[str, Language], str | None]] = []


def catalogues_from(source: Callable[[], Iterable[Catalogue]]) -> None:
    """Also know the catalogues ``source()`` lists (the domains'; read on first use)."""
    _CATALOGUES_BY.append(source)
    catalogues.cache_clear()


def field_labels_from(source: Callable[[str, Language], str | None]) -> None:
    """Ask ``source(policy_name, language)`` for a field's label (the registry's)."""
    _LABELS_BY.append(source)
    field_label.cache_clear()


def forget() -> None:
    """Drop what was read from the sources (the registry changed)."""
    catalogues.cache_clear()
    field_label.cache_clear()


@cache
def catalogues() -> tuple[Catalogue, ...]:
    """The platform's catalogue, then every domain's."""
    found = [PLATFORM]
    for source in _CATALOGUES_BY:
        found.extend(source())
    return tuple(found)


def lookup(message_id: str) -> Entry | None:
    """The entry with this id, in any known catalogue."""
    for catalogue in catalogues():
        entry = catalogue.entries.get(message_id)
        if entry is not None:
            return entry
    return None


@cache
def field_label(name: str, language: Language) -> str | None:
    for source in _LABELS_BY:
        label = source(name, language)
        if label:
            return label
    return None


# --- rendering ---------------------------------------------------------------------


def render(value: object, language: Language) -> str:
    """``value`` as text in ``language`` (a plain string is returned as it is)."""
    if isinstance(value, Localized):
        return value.render(language)
    return str(value)


def localize(value: Any, language: Language) -> Any:
    """``value`` with every :class:`Localized` in it rendered (dicts, lists, tuples)."""
    if isinstance(value, Localized):
        return value.render(language)
    if isinstance(value, dict):
        return {k: localize(v, language) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [localize(v, language) for v in value]
    return value
