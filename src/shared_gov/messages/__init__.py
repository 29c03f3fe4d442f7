"""Every sentence the service says to people, in Japanese and English.

- :mod:`.core`: :class:`Message` (a catalogue entry with its parameters; as a
  ``str``, its English text), :class:`Catalogue`, :class:`FieldName`,
  rendering, and the hooks through which the domain registry adds the
  domains' catalogues and field labels;
- :mod:`.language`: ``Accept-Language`` negotiation and the request's language;
- the platform's catalogue, by concern: :mod:`.http` (titles, the request
  pipeline), :mod:`.validation` (field errors), :mod:`.tokens` (401s),
  :mod:`.access` (denial and withholding reasons, purposes, permissions,
  agreements), :mod:`.identity` (towns' issuers, enrolment, onboarding),
  :mod:`.audit` (the auditors' endpoints), :mod:`.operations` (keys, towns).

A domain keeps its own catalogue beside its code (``Catalogue("<domain>")``,
ids ``<domain>.*``) and lists it in its spec (``DomainSpec.messages``);
docs/adding-a-domain.md says how.
"""

from __future__ import annotations

from shared_gov.messages import (  # noqa: F401 - importing a module defines its entries
    access,
    audit,
    console,
    http,
    identity,
    operations,
    tokens,
    validation,
)
from shared_gov.messages.core import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    PLATFORM,
    Catalogue,
    Entry,
    FieldName,
    Language,
    Localized,
    Message,
    catalogues,
    localize,
    lookup,
    render,
)
from shared_gov.messages.language import current, negotiate

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "PLATFORM",
    "Catalogue",
    "Entry",
    "FieldName",
    "Language",
    "Localized",
    "Message",
    "catalogues",
    "current",
    "localize",
    "lookup",
    "negotiate",
    "render",
]
