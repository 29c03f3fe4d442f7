"""The official JP PINT examples give exactly the outcome the official rules give.

For every example of the three release packages, the report's ``pint``
findings are exactly the failed assertions Saxon reports when the
specification's two compiled rule sets are run on it directly (computed here,
independently of the domain's SVRL reading); every example is accepted under
its own specification (no fatal finding at all: the only platform finding is
the T-number's check-digit warning the examples are known to earn); and an
example changed to break an official rule is rejected by exactly that rule.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
from pathlib import Path

import pytest

from shared_gov.domains.invoices import checks, document, releases, rules

from .conftest import examples

_ASSERT = re.compile(r"<svrl:failed-assert\b[^>]*?\bid=\"([^\"]+)\"[^>]*?\bflag=\"([^\"]+)\"")


def _official(folder: Path, text: str) -> collections.Counter[tuple[str, str]]:
    """(rule id, flag) of every failed assertion, Saxon run directly on the stylesheets."""
    from saxonche import PySaxonProcessor

    found: collections.Counter[tuple[str, str]] = collections.Counter()
    proc = PySaxonProcessor(license=False)
    node = proc.parse_xml(xml_text=text)
    for name in releases.PINT_STYLESHEETS:
        xslt = proc.new_xslt30_processor()
        executable = xslt.compile_stylesheet(stylesheet_file=str(folder / name))
        found.update(_ASSERT.findall(executable.transform_to_string(xdm_node=node)))
    return found


def _spec_folder(einvoice: Path, spec: str) -> Path:
    return einvoice / f"pint-{spec}-1.1.3" / "schematron"


def _pint(outcome: checks.Outcome) -> collections.Counter[tuple[str, str]]:
    return collections.Counter(
        (f.rule, f.severity) for f in outcome.report.findings if f.source == "pint"
    )


@pytest.mark.parametrize("example", examples(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_each_official_example_gets_the_official_outcome(
    example: Path, einvoice: Path, installed: checks.Installed
) -> None:
    data = example.read_bytes()
    outcome = checks.check("xml", data, installed, rules.Options())
    spec = outcome.report.specification
    assert spec is not None
    assert f"pint-{spec}-1.1.3" == example.parent.parent.name  # chosen by CustomizationID
    official = _official(_spec_folder(einvoice, spec), data.decode("utf-8"))
    assert _pint(outcome) == official
    assert official == collections.Counter()  # each example passes its own specification
    assert not outcome.report.fatal
    assert outcome.report.rule_ids() in ([], ["sg-jp-01"])
    assert {f.severity for f in outcome.report.findings} <= {"warning"}
    assert outcome.document is not None


def test_the_same_example_checked_by_another_specifications_rules_fails_as_officially(
    einvoice: Path, installed: checks.Installed
) -> None:
    """The standard example given the non-registered seller's CustomizationID."""
    original = einvoice / "pint-jp-1.1.3/example/Japan PINT Invoice UBL Example1-minimum.xml"
    data = original.read_bytes().replace(
        b">urn:peppol:pint:billing-1@jp-1<", b">urn:peppol:pint:nontaxinvoice-1@jp-1<"
    )
    outcome = checks.check("xml", data, installed, rules.Options())
    assert outcome.report.specification == "jp-ntr"
    official = _official(_spec_folder(einvoice, "jp-ntr"), data.decode("utf-8"))
    assert official  # the official rules reject it ...
    assert _pint(outcome) == official  # ... with exactly these findings
    assert outcome.report.fatal


def test_a_broken_example_is_rejected_by_the_official_rule_it_breaks(
    einvoice: Path, installed: checks.Installed
) -> None:
    original = einvoice / "pint-jp-1.1.3/example/Japan PINT Invoice UBL Example1-minimum.xml"
    data = original.read_bytes().replace(b"<cbc:InvoiceTypeCode>380<", b"<cbc:InvoiceTypeCode>381<")
    outcome = checks.check("xml", data, installed, rules.Options())
    assert _pint(outcome) == _official(_spec_folder(einvoice, "jp"), data.decode("utf-8"))
    assert ("aligned-ibrp-cl-02-jp", "fatal") in _pint(outcome)
    (entry,) = [f for f in outcome.report.findings if f.rule == "aligned-ibrp-cl-02-jp"]
    assert entry.location == "/Invoice/cbc:InvoiceTypeCode"
    assert entry.message.en == "The document type code (ibt-003) MUST be 380."
    assert "aligned-ibrp-cl-02-jp" in entry.message.ja
    assert outcome.report.rules == ["ubl 2.1", "pint-jp 1.1.3", rules.VERSION]


async def test_worker_processes_give_the_same_outcome_as_in_process(
    pool: checks.CheckPool, installed: checks.Installed, einvoice: Path
) -> None:
    data = (einvoice / "pint-jp-1.1.3/example/Japan PINT Invoice UBL Example.xml").read_bytes()
    remote = await asyncio.gather(*(pool.check("xml", data, rules.Options()) for _ in range(4)))
    local = checks.check("xml", data, installed, rules.Options())
    for outcome in remote:
        assert outcome.report.findings == local.report.findings
        assert outcome.document == local.document
    executor = pool._executor
    assert executor is not None
    workers = set(executor._processes)
    assert workers
    assert os.getpid() not in workers  # processes, not threads


def test_json_form_of_each_example_gives_the_same_document_and_outcome(
    installed: checks.Installed,
) -> None:
    for example in examples():
        from_xml = checks.check("xml", example.read_bytes(), installed, rules.Options())
        assert from_xml.document is not None
        from_json = checks.check(
            "json", document.encode(from_xml.document), installed, rules.Options()
        )
        assert from_json.document == from_xml.document, example.name
        assert from_json.report.rule_ids() == from_xml.report.rule_ids(), example.name
        assert not from_json.report.fatal
