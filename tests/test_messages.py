"""The message catalogues: every sentence in both languages, with the same
placeholders, by id; domains bring their own through the registry; and no
error the service raises for people to read is a literal left outside them."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest

from shared_gov import errors, messages
from shared_gov.domains import registry
from shared_gov.domains.registry import DomainSpec, Label
from shared_gov.messages import Catalogue, FieldName, Message
from shared_gov.messages.core import Entry, Joined

SRC = Path(__file__).resolve().parents[1] / "src" / "shared_gov"
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")

# Entries whose Japanese is rightly the English (a symbol or a name).
SAME_IN_BOTH = {"sg.field.type_name.null"}
# Entries whose Japanese rightly has no kana or kanji (an acronym).
NO_KANA = {"sg.field.type_name.uuid"}


def _entries() -> list[Entry]:
    return [e for c in messages.catalogues() for e in c.entries.values()]


def test_every_entry_is_written_in_japanese() -> None:
    """Each entry of the platform's and the installed domains' catalogues has a
    Japanese sentence of its own (not the English copied) with the same placeholders."""
    entries = _entries()
    assert len(entries) > 150
    assert {"sg", "residents"} <= {c.name for c in messages.catalogues()}
    for entry in entries:
        assert entry.placeholders == frozenset(
            n for n in re.findall(r"(?<!\{)\{([a-z_]+)\}(?!\})", entry.ja)
        ), entry.id
        if entry.id in SAME_IN_BOTH:
            continue
        assert entry.ja != entry.en, entry.id
        assert JAPANESE.search(entry.ja) or entry.id in NO_KANA, entry.id


def test_ids_are_unique_across_catalogues() -> None:
    ids = [e.id for e in _entries()]
    assert len(ids) == len(set(ids))
    for catalogue in messages.catalogues():
        assert all(i.startswith(catalogue.name + ".") for i in catalogue.entries)


def test_a_message_is_its_english_text() -> None:
    """As a string a message reads in English (what the audit log records); it
    renders in either language, survives pickling (worker processes), and its
    parameters may be messages or field names themselves."""
    from shared_gov.messages import access

    reason = access.PURPOSE_DOES_NOT_COVER(purpose="kaigo.premium", what=FieldName("phone"))
    assert reason == "purpose kaigo.premium does not cover phone"
    assert isinstance(reason, str)
    assert type(str(reason)) is str
    assert reason.render("ja") == "利用目的 kaigo.premium は 電話番号（phone） を対象としていません"
    copy = pickle.loads(pickle.dumps(reason))  # noqa: S301 - our own bytes, just made
    assert isinstance(copy, Message)
    assert copy.render("ja") == reason.render("ja")
    joined = Joined([access.MFA_REQUIRED, access.NO_PURPOSE])
    assert joined == "two-factor authentication required; no purpose of use was stated"
    assert joined.render("ja") == "二要素認証が必要です; 利用目的が示されていません"
    assert messages.lookup("sg.access.mfa_required") is access.MFA_REQUIRED.entry
    assert messages.lookup("sg.no.such") is None


def test_entries_are_checked_when_defined() -> None:
    """A missing language, other placeholders, a repeated id, parameters to a text
    or none to a template: refused at import, never at the first request."""
    with pytest.raises(ValueError, match="both languages"):
        Entry("t.x", "english", "")
    with pytest.raises(ValueError, match="placeholders"):
        Entry("t.x", "at most {n}", "{m}以下")
    with pytest.raises(ValueError, match="lower case"):
        Entry("Bad Id", "x", "エックス")
    catalogue = Catalogue("t")
    catalogue.text("once", en="once", ja="一度")
    with pytest.raises(ValueError, match="twice"):
        catalogue.text("once", en="once", ja="一度")
    with pytest.raises(ValueError, match="template"):
        catalogue.text("p", en="{n}", ja="{n}")
    with pytest.raises(ValueError, match="text"):
        catalogue.template("q", en="none", ja="なし")
    entry = catalogue.template("n", en="at most {n}", ja="{n}以下")
    with pytest.raises(TypeError):
        entry(m=1)
    assert entry(n=3).render("ja") == "3以下"
    assert catalogue.text("brace", en="{{code}}", ja="「{{code}}」") == "{code}"


def test_a_domains_catalogue_is_named_after_it() -> None:
    """The registry hands a domain's catalogue to the messages, and refuses one
    named after another domain (ids could then collide with its)."""
    own = Catalogue("pets")
    own.text("none", en="no pet", ja="該当するペットはいません")
    spec = DomainSpec(
        name="pets", label=Label("ペット", "pets"), record_types=(), messages=lambda: own
    )
    registry.install(spec)
    try:
        assert messages.lookup("pets.none") is not None
    finally:
        registry.uninstall(spec)
    assert messages.lookup("pets.none") is None
    wrong = DomainSpec(
        name="cats", label=Label("猫", "cats"), record_types=(), messages=lambda: own
    )
    registry.install(wrong)
    try:
        with pytest.raises(ValueError, match="catalogue is named pets"):
            registry.domains()
    finally:
        registry.uninstall(wrong)


def test_problem_renders_every_text_in_the_language() -> None:
    """Title, detail, reason and field errors; the rest of the problem as it is."""
    from shared_gov.messages import access, validation

    problem = errors.invalid([errors.FieldError("/x", validation.REQUIRED)]).problem(language="ja")
    assert problem["title"] == "入力内容に誤りがあります"
    assert problem["errors"] == [{"pointer": "/x", "detail": "必須の項目がありません"}]
    refused = errors.forbidden(access.MFA_REQUIRED, ["p1"]).problem(language="ja")
    assert (refused["reason"], refused["policies"]) == ("二要素認証が必要です", ["p1"])
    assert errors.forbidden(access.MFA_REQUIRED).problem()["reason"] == (
        "two-factor authentication required"
    )


# --- no sentence outside the catalogues -------------------------------------------------

_RAISERS = {
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "precondition_failed",
    "precondition_required",
    "unavailable",
    "invalid_field",
}


def _literal(node: ast.expr) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


# Domains whose sentences are still English literals: each moves them into a
# catalogue of its own (``DomainSpec.messages``, docs/adding-a-domain.md) and
# leaves this list. Nothing else may join it.
ENGLISH_ONLY_DOMAINS: set[str] = set()


def test_errors_people_read_come_from_the_catalogues() -> None:
    """No ``errors.forbidden("…")`` or ``FieldError(…, "…")`` with a literal sentence
    in the service: each would answer in English only. (``concealed`` reasons go to
    the audit log alone and stay English.)"""
    found: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).parts
        if parts[0] == "domains" and parts[1] in ENGLISH_ONLY_DOMAINS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _RAISERS:
                args = node.args[1:] if name == "invalid_field" else node.args[:1]
            elif name == "FieldError":
                args = node.args[1:2]
            else:
                continue
            if any(_literal(a) for a in args):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == []
