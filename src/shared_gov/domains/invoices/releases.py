"""The official rule releases the platform knows, and installing them.

The JP PINT rules (OpenPeppol's Schematron and its compiled XSLT 2.0) and the
OASIS UBL 2.1 schemas are not part of this project: OpenPeppol's packages
carry no licence that allows redistributing them. An operator installs them
from a release package (the zip as published, or its unpacked folder, or a
folder holding several) with ``shared-gov invoices rules install PATH``:

1. every file of the package whose name a known release uses is hashed, and
   each must match a known release's SHA-256 (:data:`KNOWN`); a file with a
   known name and an unknown hash refuses the whole install — a tampered or
   newer release is reviewed and added here first;
2. a release is installed only when all its files are there;
3. it is compiled before it is installed (the XSLT by Saxon, the XSD by
   libxml2) and, for the rules, run once on an empty invoice: a package that
   does not compile is never put in place;
4. it is copied into ``<data_dir>/invoices/rules/<name>/<version>/`` through a
   temporary folder and a rename, and ``installed.json`` records each file's
   hash. Loading checks the hashes again (:func:`load`), so a file altered in
   the data directory is refused, not run.

Reading a zip reads only the members it needs, each at most
:data:`MAX_MEMBER` bytes, and writes them under names of its own: a member's
path never becomes a path on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PINT_STYLESHEETS = ("PINT-UBL-validation-preprocessed.xslt", "PINT-jurisdiction-aligned-rules.xslt")
"""The two compiled rule sets of a JP PINT release, run in this order:
the shared PINT rules (ibr-…), then the Japan-aligned ones (aligned-ibr-jp-…)."""
PINT_SOURCES = ("PINT-UBL-validation-preprocessed.sch", "PINT-jurisdiction-aligned-rules.sch")
UBL_INVOICE_XSD = "xsd/maindoc/UBL-Invoice-2.1.xsd"
MAX_MEMBER = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Release:
    """One known release: its files (path as installed → SHA-256)."""

    name: str
    """``pint-jp``, ``pint-jp-ntr``, ``pint-jp-sb`` (the CustomizationID's key with
    ``pint-`` before it) or ``ubl``."""
    version: str
    files: dict[str, str]
    optional: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def _pint(name: str, hashes: tuple[str, str, str, str]) -> Release:
    files = dict(zip((*PINT_STYLESHEETS, *PINT_SOURCES), hashes, strict=True))
    return Release(name, "1.1.3", files)


_UBL_COMMON = {
    "CCTS_CCT_SchemaModule-2.1.xsd": (
        "dd546e4809df86b6445589f69f0d6c9df162840ae386574ddfc1da7638103e15"
    ),
    "UBL-CommonAggregateComponents-2.1.xsd": (
        "939172ad8dd057cd403e7f763f6532184dd5ed4b9de24c42ebb35db4792ba613"
    ),
    "UBL-CommonBasicComponents-2.1.xsd": (
        "bd4ad043ee1d9da1c7f8018dabf739cfafdfb59143d0d16b9ef769e6b7c408a7"
    ),
    "UBL-CommonExtensionComponents-2.1.xsd": (
        "ad7a4e490978adfbcfc5ec0bb20941cf11ac960ccf0c4de8791a7c731a8dbe87"
    ),
    "UBL-CommonSignatureComponents-2.1.xsd": (
        "3db472305f029bba5c1ae157bfd0178f715c3f9b94bd8e6c557dbce5e88da874"
    ),
    "UBL-CoreComponentParameters-2.1.xsd": (
        "8be3379dbdcbcc7802fafdd16bac72c48fff1c0bb364213a31a17911dd06100b"
    ),
    "UBL-ExtensionContentDataType-2.1.xsd": (
        "fcee77a11870208e6377ea6311b9f2a050bca24bdad8606ea02d71e9f9e72f8d"
    ),
    "UBL-QualifiedDataTypes-2.1.xsd": (
        "7dcb156e610239c97ae70940cf4653b88e48c3595bf5f56a2204a32e2893e6cf"
    ),
    "UBL-SignatureAggregateComponents-2.1.xsd": (
        "17bb6b62d709b4fd81449a37655af36aa6a1276ad4fdb1b2e249a5ed4b7c2172"
    ),
    "UBL-SignatureBasicComponents-2.1.xsd": (
        "cef924d7ba3d1d8ade14469325cde1364f8c174e46f0198ec02da8e9e748a489"
    ),
    "UBL-UnqualifiedDataTypes-2.1.xsd": (
        "09052d406b4293e2a5f9c2bfee6df10ad4d8d5f0b36e24a6349d7f7936d89eb6"
    ),
    "UBL-XAdESv132-2.1.xsd": ("a4f726bcf8cc3f7d9ffa4dab99e005535a8e8b60dced1e5d94578d2e05afa96e"),
    "UBL-XAdESv141-2.1.xsd": ("1fa4625e9cefcb7a9abb5ac1b64315547450031eece8a55bd584e4ba4b79dbc1"),
    "UBL-xmldsig-core-schema-2.1.xsd": (
        "101909c9f06456d61ddcc4fb982f1d40dc357b439f393b1a2eb46e42acd60809"
    ),
}
_UBL_NOTICE = "NOTICE-OASIS-UBL-2.1.txt"

KNOWN: tuple[Release, ...] = (
    # JP PINT 1.1.3 (OpenPeppol, released 2026-05-18): pint-jp*-resources-dev-1.1.3.zip,
    # trn-invoice/schematron/. Order: the two .xslt, then the two .sch.
    _pint(
        "pint-jp",
        (
            "1b239af213b29f1127099bc0af7335689cfe45c6e6b11144f1316c52a0fed381",
            "1f10e9d7b81db047f9158005c008c4cad025ea08cea903caf025bdf6084ead7d",
            "4e66ec0e7659e82ca98f3b57f653583fba4697c99e9b79d29ce7c46aa81ed010",
            "222df76439f04fcfdc531889b281d01cc6f924a017a8394cedef24da8fffd9c0",
        ),
    ),
    _pint(
        "pint-jp-ntr",
        (
            "db22837ea129e7bff1332d25ff85aa3d3a4d1352e221adc7f0ac729829534a90",
            "8105f51800d17c26b5b498009fe3ca350b48d6c36431e13ac316ee66d558366b",
            "ba8eb7c171a1ea1f647e3c016eb30f23a00be9b2d4453ccdf74b6f87f1938dbc",
            "dc6ddee5a65d421b62a65462dbc2217c69e6c668caae42a523e80195a0c95a6e",
        ),
    ),
    _pint(
        "pint-jp-sb",
        (
            "01fc4db6d709c1ed47e87bd092d1530a9068e8ee44a2692f11776f31ed1bda6c",
            "5f31ebcc49cf050d2315fd51e611652380d24adec70aa6bef94df088668228ae",
            "b7bd42db327e4a04d0b3b3ece04534b791775919739c8e46d7a3457bdd16bd66",
            "61ed9c95702c210efbd1c307c9ec4de1367d4f3a1d0dc0f5edc9bd599169c4a2",
        ),
    ),
    # OASIS UBL 2.1 OS (2013-11-04), UBL-2.1.zip: installed unmodified; the
    # notice travels in each file's header (and NOTICE-…txt when given).
    Release(
        "ubl",
        "2.1",
        {
            **{f"xsd/common/{n}": h for n, h in _UBL_COMMON.items()},
            UBL_INVOICE_XSD: ("40fae8cb436f3a9506d7acce65ba162caef3b0bed4d5cbc0992b2153ded4edf4"),
            _UBL_NOTICE: "f375f50a30cf216cf721e20d2f824d675ea3475d6727ad419caae4516340c811",
        },
        optional=frozenset({_UBL_NOTICE}),
    ),
)

_BY_HASH: dict[str, tuple[Release, str]] = {
    h: (release, path) for release in KNOWN for path, h in release.files.items()
}
_NAMES = frozenset(PurePosixPath(p).name for r in KNOWN for p in r.files)
INSTALLED = "installed.json"


class ReleaseError(Exception):
    """A package that cannot be installed, or installed rules that cannot be used."""


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- reading a package -----------------------------------------------------------


def _members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(name shown, bytes) of every file in ``path`` a known release could use."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.name in _NAMES:
                if file.stat().st_size > MAX_MEMBER:
                    raise ReleaseError(f"{file.relative_to(path)} is too large")
                yield str(file.relative_to(path)), file.read_bytes()
            elif file.is_file() and file.suffix == ".zip":
                yield from _members(file)
        return
    if not zipfile.is_zipfile(path):
        raise ReleaseError(f"{path.name} is neither a folder nor a zip file")
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = PurePosixPath(info.filename).name
            if info.is_dir() or name not in _NAMES:
                continue
            if info.file_size > MAX_MEMBER:
                raise ReleaseError(f"{info.filename} is too large")
            with archive.open(info) as fh:
                data = fh.read(MAX_MEMBER + 1)
            if len(data) > MAX_MEMBER:
                raise ReleaseError(f"{info.filename} is too large")
            yield f"{path.name}!{info.filename}", data


@dataclass
class Found:
    """A release found complete in a package: its files' bytes by installed path."""

    release: Release
    files: dict[str, bytes]


def identify(path: Path) -> list[Found]:
    """Every known release complete in ``path``; refuses unknown versions of known files."""
    found: dict[tuple[str, str], Found] = {}
    for shown, data in _members(path):
        hit = _BY_HASH.get(digest(data))
        if hit is None:
            raise ReleaseError(
                f"{shown}: sha256 {digest(data)} matches no known release "
                "(tampered, or a release not yet reviewed: see invoices/releases.py)"
            )
        release, installed_path = hit
        entry = found.setdefault((release.name, release.version), Found(release, {}))
        entry.files[installed_path] = data
    complete: list[Found] = []
    for entry in found.values():
        missing = set(entry.release.files) - set(entry.files) - entry.release.optional
        if missing:
            raise ReleaseError(f"{entry.release.label}: missing {', '.join(sorted(missing))}")
        complete.append(entry)
    if not complete:
        raise ReleaseError(f"{path} holds no known JP PINT release or UBL 2.1 schema")
    return sorted(complete, key=lambda f: f.release.name)


# --- compiling and installing ---------------------------------------------------------


def compile_check(folder: Path, release: Release) -> None:
    """Compile what ``folder`` holds of ``release``; raise :class:`ReleaseError` if it fails."""
    if release.name == "ubl":
        from .xsd import load_schema

        try:
            load_schema(folder / UBL_INVOICE_XSD)
        except Exception as exc:
            raise ReleaseError(f"{release.label}: the schema does not compile ({exc})") from None
        return
    from .schematron import smoke_test

    try:
        smoke_test([folder / name for name in PINT_STYLESHEETS])
    except Exception as exc:
        raise ReleaseError(f"{release.label}: the rules do not compile or run ({exc})") from None


def _write_manifest(rules_dir: Path, manifest: dict[str, dict[str, object]]) -> None:
    fd, tmp = tempfile.mkstemp(dir=rules_dir, prefix=".installed-")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
    os.replace(tmp, rules_dir / INSTALLED)


def read_manifest(rules_dir: Path) -> dict[str, dict[str, object]]:
    path = rules_dir / INSTALLED
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ReleaseError(f"{path} is not a rules manifest")
    return data


def install(package: Path, rules_dir: Path) -> list[Release]:
    """Install every known release complete in ``package`` (module docstring)."""
    releases = identify(package)
    rules_dir.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(rules_dir)
    done: list[Release] = []
    for entry in releases:
        release = entry.release
        target = rules_dir / release.name / release.version
        staging = Path(tempfile.mkdtemp(dir=rules_dir, prefix=".staging-"))
        try:
            for installed_path, data in entry.files.items():
                out = staging / installed_path
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(data)
            compile_check(staging, release)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        manifest[release.name] = {
            "version": release.version,
            "files": {p: digest(d) for p, d in entry.files.items()},
        }
        _write_manifest(rules_dir, manifest)
        done.append(release)
    return done


@dataclass(frozen=True, slots=True)
class Installed:
    """One installed release, its files verified against their recorded hashes."""

    name: str
    version: str
    folder: Path

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def load(rules_dir: Path, name: str) -> Installed:
    """The installed release ``name``, hashes checked (:class:`ReleaseError` if absent or
    altered)."""
    entry = read_manifest(rules_dir).get(name)
    if entry is None:
        raise ReleaseError(f"{name} is not installed (shared-gov invoices rules install PATH)")
    version = str(entry["version"])
    files = entry["files"]
    known = next((r for r in KNOWN if r.name == name and r.version == version), None)
    if known is None or not isinstance(files, dict):
        raise ReleaseError(f"{name} {version} is not a known release")
    folder = rules_dir / name / version
    for installed_path, recorded in files.items():
        if known.files.get(installed_path) != recorded:
            raise ReleaseError(f"{name} {version}: {installed_path} is not the known file")
        try:
            data = (folder / installed_path).read_bytes()
        except OSError:
            raise ReleaseError(f"{name} {version}: {installed_path} is missing") from None
        if digest(data) != recorded:
            raise ReleaseError(f"{name} {version}: {installed_path} was altered after install")
    return Installed(name, version, folder)


def status(rules_dir: Path) -> dict[str, str | None]:
    """Each release the intake needs → its installed version, or None."""
    manifest = read_manifest(rules_dir)
    names = sorted({r.name for r in KNOWN})
    return {n: (str(manifest[n]["version"]) if n in manifest else None) for n in names}
