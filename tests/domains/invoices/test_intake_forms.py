"""Reading an invoice: the hardened XML parser, the schema, and the JSON form.

XML from the Internet is refused before anything reads it when it declares
a DOCTYPE (entities: XXE, "billion laughs"), is not UTF-8, is too large or is
not well-formed; a CreditNote is refused (Japan corrects with a negative
380). The JSON form gives the same document as the XML, and every finding on
it — schema, official rule, platform rule — is located by JSON pointer.
"""

from __future__ import annotations

import time
from pathlib import Path

from shared_gov.domains.invoices import checks, rules, ubl
from shared_gov.domains.invoices import document as d

from . import factory

OPTIONS = rules.Options()


def _only(outcome: checks.Outcome) -> tuple[str, str, str]:
    (f,) = outcome.report.findings
    return f.rule, f.severity, f.location


def test_an_external_entity_is_never_resolved(installed: checks.Installed, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET-VALUE")
    data = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<!DOCTYPE Invoice [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        f'<Invoice xmlns="{ubl.INVOICE}"><ID>&x;</ID></Invoice>'
    ).encode()
    outcome = checks.check("xml", data, installed, OPTIONS)
    assert _only(outcome) == ("sg-xml-04", "fatal", "/")
    assert outcome.report.findings[0].source == "xml"
    assert "TOPSECRET" not in repr(outcome)
    assert outcome.document is None


def test_billion_laughs_is_refused_at_once(installed: checks.Installed) -> None:
    entities = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{"&a" + str(i - 1) + ";" * 1}{("&a" + str(i - 1) + ";") * 9}">'
        for i in range(1, 10)
    )
    data = (
        f'<?xml version="1.0"?><!DOCTYPE Invoice [{entities}]>'
        f'<Invoice xmlns="{ubl.INVOICE}"><ID>&a9;</ID></Invoice>'
    ).encode()
    started = time.perf_counter()
    outcome = checks.check("xml", data, installed, OPTIONS)
    assert _only(outcome)[0] == "sg-xml-04"
    assert time.perf_counter() - started < 5  # generous: an expansion would take minutes


def test_not_utf8_too_large_and_malformed_are_refused(installed: checks.Installed) -> None:
    sjis = '<?xml version="1.0" encoding="Shift_JIS"?><Invoice/>'.encode("cp932")
    assert _only(checks.check("xml", sjis, installed, OPTIONS))[0] == "sg-xml-02"
    latin = b'<?xml version="1.0"?><Invoice>\xe9</Invoice>'
    assert _only(checks.check("xml", latin, installed, OPTIONS))[0] == "sg-xml-02"
    big = b"<Invoice>" + b" " * ubl.MAX_BYTES + b"</Invoice>"
    assert _only(checks.check("xml", big, installed, OPTIONS))[0] == "sg-xml-01"
    broken = b'<?xml version="1.0"?>\n<Invoice>\n<ID>1</Invoice>'
    assert _only(checks.check("xml", broken, installed, OPTIONS)) == (
        "sg-xml-03",
        "fatal",
        "line 3",
    )


def test_a_credit_note_is_refused(installed: checks.Installed) -> None:
    data = f'<CreditNote xmlns="{ubl.CREDIT_NOTE}"/>'.encode()
    rule, severity, _ = _only(checks.check("xml", data, installed, OPTIONS))
    assert (rule, severity) == ("sg-doc-01", "fatal")


def test_a_schema_error_is_located_and_its_value_not_echoed(installed: checks.Installed) -> None:
    data = factory.xml(factory.document()).replace(
        b">315</cbc:LineExtensionAmount>", b">31x5</cbc:LineExtensionAmount>", 1
    )
    outcome = checks.check("xml", data, installed, OPTIONS)
    schema = [f for f in outcome.report.findings if f.rule == "ubl-xsd"]
    assert schema
    assert schema[0].location == "/Invoice/cac:InvoiceLine[1]/cbc:LineExtensionAmount"
    assert "31x5" not in schema[0].message.en
    assert "cbc:LineExtensionAmount" in schema[0].message.en
    # The official rules assume a schema-valid invoice: not run, and the report says so.
    assert "sg-pint-00" in outcome.report.rule_ids("information")
    assert all(f.source != "pint" for f in outcome.report.findings)
    assert outcome.report.fatal


def test_an_unknown_customization_id_is_fatal(installed: checks.Installed) -> None:
    doc = factory.document()
    data = factory.xml(doc).replace(d.STANDARD.encode(), b"urn:example:other")
    outcome = checks.check("xml", data, installed, OPTIONS)
    assert ("sg-spec-01", "fatal", "/Invoice/cbc:CustomizationID") in {
        (f.rule, f.severity, f.location) for f in outcome.report.findings
    }
    assert outcome.report.specification is None


def test_the_json_form_gives_the_document_the_xml_gives(installed: checks.Installed) -> None:
    doc = factory.document()
    from_xml = checks.check("xml", factory.xml(doc), installed, OPTIONS)
    from_json = checks.check("json", factory.json(doc), installed, OPTIONS)
    assert from_xml.document == from_json.document == doc
    assert from_xml.report.findings == from_json.report.findings == []
    assert from_json.report.form == "json"
    assert from_json.xml is not None  # what was checked: the rendering


def test_json_findings_are_located_by_json_pointer(installed: checks.Installed) -> None:
    doc = factory.document(seller_t="T7123456789013")
    body = factory.as_dict(doc)
    body["type_code"] = "381"
    outcome = checks.check("json", d.encode(d.Document(**_struct(body))), installed, OPTIONS)
    located = {(f.rule, f.location) for f in outcome.report.findings}
    assert ("aligned-ibrp-cl-02-jp", "/type_code") in located  # an official rule
    assert ("sg-jp-01", "/seller/tax_id") in located  # a platform rule


def _struct(body: dict[str, object]) -> dict[str, object]:
    import msgspec

    return {f: getattr(msgspec.convert(body, d.Document), f) for f in d.Document.__struct_fields__}


def test_a_malformed_json_form_is_fatal_at_its_pointer(installed: checks.Installed) -> None:
    body = factory.json(factory.document())
    repeated = body.replace(b'{"customization_id"', b'{"number":"X","customization_id"', 1)
    assert _only(checks.check("json", repeated, installed, OPTIONS))[:2] == ("sg-json-01", "fatal")
    assert _only(checks.check("json", repeated, installed, OPTIONS))[2] == "/number"
    unknown = body.replace(b'{"customization_id"', b'{"colour":"red","customization_id"', 1)
    assert _only(checks.check("json", unknown, installed, OPTIONS))[:2] == ("sg-json-02", "fatal")
    wrong = body.replace(b'"issue_date":"2026-10-24"', b'"issue_date":"yesterday"', 1)
    rule, _, where = _only(checks.check("json", wrong, installed, OPTIONS))
    assert (rule, where) == ("sg-json-02", "/issue_date")
    control = body.replace("株式会社テスト商事".encode(), "株式会社\u202eテスト".encode(), 1)
    rule, _, where = _only(checks.check("json", control, installed, OPTIONS))
    assert (rule, where) == ("sg-json-02", "/seller/name")
    assert _only(checks.check("json", b"{not json", installed, OPTIONS))[0] == "sg-json-01"
