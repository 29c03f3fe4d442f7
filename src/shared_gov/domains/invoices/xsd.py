"""Check 1: the UBL 2.1 schema (OASIS XSDs, installed unmodified; ``releases``).

libxml2 validates the tree the hardened parser built; each error becomes a
fatal ``ubl-xsd`` finding at the element's canonical XPath. libxml2 quotes
the offending value in some messages (``'12x' is not a valid value of the
atomic type 'xs:decimal'``): values are removed from the message, element
names and types are kept.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from lxml import etree

from . import messages as m
from .report import Finding, finding
from .ubl import CAC, CBC, EXT, INVOICE, path_of

RULE = "ubl-xsd"
_NS_SHORT = {f"{{{INVOICE}}}": "", f"{{{CAC}}}": "cac:", f"{{{CBC}}}": "cbc:", f"{{{EXT}}}": "ext:"}
_VALUE = re.compile(r"(?:The value |: )'(?!\{)[^']*'")


@cache
def load_schema(path: Path) -> etree.XMLSchema:
    """The compiled schema (once per process); its imports resolve next to it, never online."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def _message(text: str) -> str:
    for ns, short in _NS_SHORT.items():
        text = text.replace(ns, short)
    return _VALUE.sub(lambda m: m.group(0).split("'")[0] + "(value)", text)


def _element(root: etree._Element, error: etree._LogEntry) -> etree._Element:
    """The element an error is about: its node path, else the first element on its line."""
    path = getattr(error, "path", None)
    if path:
        namespaces: dict[str, str] = {}
        for el in root.iter():
            if isinstance(el.tag, str):
                namespaces.update({k: v for k, v in el.nsmap.items() if k})
        try:
            hits = root.getroottree().xpath(path, namespaces=namespaces)
        except etree.XPathError:
            hits = []
        if hits and isinstance(hits[0], etree._Element):
            element: etree._Element = hits[0]
            return element
    for el in root.iter():
        if isinstance(el.tag, str) and el.sourceline == error.line:
            return el
    return root


def validate(schema: etree.XMLSchema, root: etree._Element) -> list[Finding]:
    if schema.validate(root):
        return []
    return [
        finding(
            RULE,
            "fatal",
            path_of(_element(root, error)),
            m.NOT_THE_SCHEMA.render("ja"),
            _message(error.message),
            "xsd",
        )
        for error in schema.error_log
    ]
