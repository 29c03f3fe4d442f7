"""The check pipeline, and the worker processes that run it.

:func:`check` takes one submission (UBL XML or the JSON form) and returns its
:class:`Outcome`: the report and, when the invoice could be read, the model.
In order:

1. safety and well-formedness (``ubl.parse``; ``jsonform.prepare`` renders
   the JSON form to UBL first) — a refusal here ends the check;
2. the specification, from ``CustomizationID`` (``sg-spec-01`` if unknown);
3. the UBL 2.1 schema (``xsd``);
4. the official JP PINT rules of that specification (``schematron``), unless
   the schema failed (the rules assume schema-valid input: an amount that is
   not a number stops Saxon with a dynamic error instead of a finding);
5. the platform rules 01–04 (``rules.check``).

It knows no town and touches no database, so the same function runs in the
intake's worker processes (:class:`CheckPool`), in the CLI and in the
benchmark. Rules that need the town (05, 06, the accounting unit) are the
service's. What is checked comes from the installed releases
(:func:`installed`), whose files' hashes are verified when a worker loads them.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

from . import jsonform, releases, rules, schematron, ubl, xsd
from . import messages as m
from .document import Document, specification
from .report import Finding, Report, said

Form = Literal["xml", "json"]


@dataclass(frozen=True, slots=True)
class Installed:
    """The installed releases a check uses (paths only: cheap to send to a worker)."""

    xsd: Path
    stylesheets: dict[str, tuple[Path, ...]]
    """Specification key (``jp``, ``jp-ntr``, ``jp-sb``) → its two compiled rule sets."""
    labels: dict[str, str]
    """``ubl`` / ``jp`` / … → ``ubl 2.1`` / ``pint-jp 1.1.3`` / …"""


def installed(rules_dir: Path) -> Installed:
    """The installed releases, every file's hash verified (:class:`releases.ReleaseError`)."""
    ubl_release = releases.load(rules_dir, "ubl")
    stylesheets: dict[str, tuple[Path, ...]] = {}
    labels = {"ubl": ubl_release.label}
    for key in ("jp", "jp-ntr", "jp-sb"):
        release = releases.load(rules_dir, f"pint-{key}")
        stylesheets[key] = tuple(release.folder / n for n in releases.PINT_STYLESHEETS)
        labels[key] = release.label
    return Installed(ubl_release.folder / releases.UBL_INVOICE_XSD, stylesheets, labels)


SERVICE_POINTERS = ("/buyer_reference", "/seller/tax_id", "/customization_id", "/number")
"""Where the service's own rules (unit, 05, 06) may point: located in the worker, which
alone holds the tree (an XML invoice's other locations are written when a finding needs them)."""


@dataclass
class Outcome:
    """One submission's check."""

    report: Report
    document: Document | None = None
    xml: bytes | None = None
    """The rendering of a JSON form that was checked (None for XML: the caller holds the
    original, and a worker need not send it back)."""
    locations: dict[str, str] = field(default_factory=dict)
    """JSON pointer of a model value → its location in the submitted form (XML only;
    a JSON form's locations are its pointers)."""

    def locate(self, pointer: str) -> str:
        if self.report.form == "json":
            return pointer or "/"
        probe = pointer
        while probe:
            if probe in self.locations:
                return self.locations[probe]
            probe = probe.rsplit("/", 1)[0]
        return "/Invoice"


def _unknown_specification(location: str) -> Finding:
    return said("sg-spec-01", "fatal", location, m.UNKNOWN_SPECIFICATION)


def _schema_failed() -> Finding:
    return said("sg-pint-00", "information", "/", m.SCHEMA_FAILED)


def _rules_failed() -> Finding:
    return said("sg-pint-01", "fatal", "/", m.RULES_FAILED)


def check(form: Form, data: bytes, rules_: Installed, options: rules.Options) -> Outcome:
    """Check one submission (module docstring)."""
    report = Report(form=form)
    outcome = Outcome(report)
    if form == "xml":
        try:
            parsed = ubl.parse(data)
        except ubl.XmlRefused as refused:
            report.add(refused.finding)
            return outcome
        root, text, document = parsed.root, parsed.text, parsed.document
        report.findings.extend(parsed.findings)
        outcome.locations = {p: parsed.locate(p) for p in SERVICE_POINTERS}
        locate = parsed.locate

        def where(xpath: str) -> str:
            return xpath

        amounts = parsed.amounts
        customization = root.findtext(f"{{{ubl.CBC}}}CustomizationID")
        spec_location = outcome.locate("/customization_id")
    else:
        try:
            rendered = jsonform.prepare(data)
        except jsonform.JsonRefused as refused:
            report.findings.extend(refused.findings)
            return outcome
        root, text = rendered.root, rendered.xml.decode("utf-8")
        document = rendered.document
        outcome.xml = rendered.xml
        where = rendered.pointer
        amounts = rendered.amounts()
        locate = outcome.locate
        customization = document.customization_id
        spec_location = "/customization_id"
    outcome.document = document
    if any(f.rule == "sg-doc-01" for f in report.findings):
        return outcome  # not an invoice at all: nothing further applies
    spec = specification(customization)
    report.specification = spec
    if spec is None:
        report.add(_unknown_specification(spec_location))
    report.rules.append(rules_.labels["ubl"])
    schema_findings = [
        _relocated(f, where) for f in xsd.validate(xsd.load_schema(rules_.xsd), root)
    ]
    report.findings.extend(schema_findings)
    if spec is not None:
        if schema_findings:
            report.add(_schema_failed())
        else:
            report.rules.append(rules_.labels[spec])
            try:
                found = schematron.run(rules_.stylesheets[spec], text, root)
            except Exception:  # Saxon's dynamic errors (SaxonApiError) and kin
                report.add(_rules_failed())
            else:
                report.findings.extend(_relocated(f, where) for f in found)
    if document is not None:
        report.rules.append(rules.VERSION)
        report.findings.extend(rules.check(document, locate, amounts, options))
    return outcome


def _relocated(f: Finding, where: Callable[[str], str]) -> Finding:
    location = where(f.location)
    return (
        f if location == f.location else Finding(f.rule, f.severity, location, f.message, f.source)
    )


# --- worker processes ---------------------------------------------------------------

_worker_rules: Installed | None = None


def _init_worker(rules_dir: str) -> None:
    """Load (hashes verified) and compile everything once, before the first check."""
    global _worker_rules
    _worker_rules = installed(Path(rules_dir))
    xsd.load_schema(_worker_rules.xsd)
    for paths in _worker_rules.stylesheets.values():
        for path in paths:
            schematron.compiled(path)


def _work(form: Form, data: bytes, options: rules.Options) -> Outcome:
    if _worker_rules is None:  # pragma: no cover - the initializer ran
        raise RuntimeError("worker not initialised")
    return check(form, data, _worker_rules, options)


def default_workers() -> int:
    """``SHARED_GOV_INVOICE_WORKERS``, else one per core."""
    raw = os.environ.get("SHARED_GOV_INVOICE_WORKERS")
    if raw:
        return max(1, int(raw))
    return max(1, os.cpu_count() or 1)


class RulesUnavailable(Exception):
    """No (complete, intact) rules installed: the intake cannot check invoices."""


class CheckPool:
    """Processes that run :func:`check` (spawned, so no lock or thread of the server's
    process is inherited; each loads and compiles the installed rules once)."""

    def __init__(self, rules_dir: Path, workers: int | None = None) -> None:
        self.rules_dir = rules_dir
        self.workers = workers or default_workers()
        self._executor: ProcessPoolExecutor | None = None
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def _manifest_stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.rules_dir / releases.INSTALLED).stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _current(self) -> ProcessPoolExecutor:
        """The executor for the rules installed now (a new one after an install)."""
        stamp = self._manifest_stamp()
        with self._lock:
            if self._executor is not None and stamp == self._stamp:
                return self._executor
            try:
                installed(self.rules_dir)  # refuse early, in this process, with the reason
            except releases.ReleaseError as exc:
                raise RulesUnavailable(str(exc)) from None
            old, self._executor = self._executor, None
            if old is not None:
                old.shutdown(wait=False, cancel_futures=False)
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=get_context("spawn"),
                initializer=_init_worker,
                initargs=(str(self.rules_dir),),
            )
            self._stamp = stamp
            return self._executor

    def ready(self) -> str | None:
        """None when invoices can be checked; otherwise why not."""
        try:
            self._current()
        except RulesUnavailable as exc:
            return str(exc)
        return None

    async def check(self, form: Form, data: bytes, options: rules.Options) -> Outcome:
        executor = self._current()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, _work, form, data, options)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the next check starts a new pool.
            with self._lock:
                if self._executor is executor:
                    self._executor = None
            raise

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
