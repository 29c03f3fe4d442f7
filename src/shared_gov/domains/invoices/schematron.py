"""Check 2: the official JP PINT rules, run with Saxon (``saxonche``).

OpenPeppol publishes the rules as Schematron with ``queryBinding="xslt2"``
and their compilation to XSLT 2.0 (which emits SVRL); an XSLT 2.0 processor
is needed, and Saxon-HE is the one Python can drive. This module runs in the
checker's worker processes (``checks.CheckPool``), never in the event loop's
process: a transformation holds its thread for milliseconds, Saxon's native
heap is per process, and processes are what use both cores.

Each process keeps one Saxon processor and compiles each installed
stylesheet once (:func:`compiled`, cached by path); a check parses the
invoice text once and runs both stylesheets of its specification on it. The
SVRL's ``failed-assert`` and ``successful-report`` elements become findings
with the rule's own id, its flag as severity, its location (made canonical
against our tree) and its text; the Japanese message names the rule, since
the published texts are English only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lxml import etree

from . import messages as m
from .report import Finding, Severity, finding
from .ubl import canonical_location

SVRL = "http://purl.oclc.org/dsdl/svrl"
_SEVERITIES: dict[str, Severity] = {
    "fatal": "fatal",
    "error": "fatal",
    "warning": "warning",
    "info": "information",
    "information": "information",
}
_PREFIX = re.compile(r"^\s*\[[^\]]*\]\s*-?\s*")

_processor: Any = None
_compiled: dict[Path, Any] = {}


def processor() -> Any:
    """This process's Saxon processor (created on first use, kept for the process)."""
    global _processor
    if _processor is None:
        from saxonche import PySaxonProcessor

        _processor = PySaxonProcessor(license=False)
    return _processor


def compiled(path: Path) -> Any:
    """The compiled stylesheet at ``path`` (compiled once per process)."""
    executable = _compiled.get(path)
    if executable is None:
        xslt = processor().new_xslt30_processor()
        executable = xslt.compile_stylesheet(stylesheet_file=str(path))
        _compiled[path] = executable
    return executable


def svrl_findings(svrl: str, root: etree._Element | None) -> list[Finding]:
    """Findings from one SVRL report (locations canonical against ``root`` when given)."""
    if "failed-assert" not in svrl and "successful-report" not in svrl:
        return []  # the usual case: the report only lists the rules that fired
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    report = etree.fromstring(svrl.encode("utf-8"), parser)
    found: list[Finding] = []
    for el in report.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        rule = el.get("id") or "pint"
        flag = (el.get("flag") or el.get("role") or "fatal").lower()
        location = el.get("location") or "/"
        if root is not None:
            location = canonical_location(root, location)
        text_el = el.find(f"{{{SVRL}}}text")
        text = " ".join("".join(text_el.itertext()).split()) if text_el is not None else ""
        found.append(
            finding(
                rule,
                _SEVERITIES.get(flag, "fatal"),
                location,
                m.OFFICIAL_RULE(rule=rule).render("ja"),
                _PREFIX.sub("", text) or str(m.OFFICIAL_RULE(rule=rule)),
                "pint",
            )
        )
    return found


def run(stylesheets: Sequence[Path], text: str, root: etree._Element | None) -> list[Finding]:
    """Run a specification's stylesheets on the invoice ``text``."""
    node = processor().parse_xml(xml_text=text)
    found: list[Finding] = []
    for path in stylesheets:
        svrl = compiled(path).transform_to_string(xdm_node=node)
        if svrl is None:
            raise RuntimeError(f"{path.name} produced no report")
        found.extend(svrl_findings(svrl, root))
    return found


_EMPTY = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>'
)


def smoke_test(stylesheets: Sequence[Path]) -> None:
    """Compile the stylesheets and run them once: each must emit an SVRL report."""
    for path in stylesheets:
        xslt = processor().new_xslt30_processor()
        executable = xslt.compile_stylesheet(stylesheet_file=str(path))
        node = processor().parse_xml(xml_text=_EMPTY)
        svrl = executable.transform_to_string(xdm_node=node)
        if not svrl or "schematron-output" not in svrl:
            raise RuntimeError(f"{path.name} did not produce an SVRL report")
