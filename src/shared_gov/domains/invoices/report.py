"""The check report: one entry per finding, whichever check made it.

Every entry names its rule (the official id such as ``aligned-ibr-jp-04``,
``ubl-xsd`` for the schema, or the platform's own ``sg-…``), its severity,
where in the invoice (an XPath for an XML invoice, a JSON pointer for the
JSON form) and a message in Japanese and English. A report with a ``fatal``
entry rejects the invoice (422, the report in the problem); warnings travel
with an accepted invoice. Messages are ours or the rule publisher's text,
never a value from the invoice.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from shared_gov.messages import Message as Said

Severity = Literal["fatal", "warning", "information"]
Source = Literal["xml", "json", "xsd", "pint", "platform"]
"""Which check: well-formedness and safety (XML), the JSON form, the UBL 2.1 schema, the official
JP PINT rules, the platform's rules."""


class Message(msgspec.Struct, frozen=True):
    ja: str
    en: str


class Finding(msgspec.Struct, frozen=True):
    rule: str
    severity: Severity
    location: str
    message: Message
    source: Source


class Report(msgspec.Struct):
    """The outcome of checking one submission."""

    form: Literal["xml", "json"]
    specification: str | None = None
    """The JP PINT release key the CustomizationID chose (``jp``, ``jp-ntr``, ``jp-sb``)."""
    rules: list[str] = msgspec.field(default_factory=list)
    """What was run, e.g. ``["ubl-2.1", "pint-jp 1.1.3", "platform 1"]``."""
    findings: list[Finding] = msgspec.field(default_factory=list)

    @property
    def fatal(self) -> bool:
        return any(f.severity == "fatal" for f in self.findings)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def rule_ids(self, severity: Severity | None = None) -> list[str]:
        """The rules that fired (each once, in report order), optionally of one severity."""
        seen: dict[str, None] = {}
        for f in self.findings:
            if severity is None or f.severity == severity:
                seen.setdefault(f.rule)
        return list(seen)


def finding(
    rule: str, severity: Severity, location: str, ja: str, en: str, source: Source = "platform"
) -> Finding:
    return Finding(rule, severity, location, Message(ja, en), source)


def said(rule: str, severity: Severity, location: str, message: Said) -> Finding:
    """A platform rule's finding, its message from the domain's catalogue in both languages."""
    return Finding(
        rule, severity, location, Message(message.render("ja"), message.render("en")), "platform"
    )
