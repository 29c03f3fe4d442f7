"""A fresh SoftHSM2 token for the PKCS#11 tests (no database).

A module rather than a conftest.py, so the tests also run with
``--noconftest``: test modules import the fixture to register it.

The token lives in a temporary directory for the whole test session (a
PKCS#11 library reads its configuration once per process). Without SoftHSM2
or python-pkcs11 the PKCS#11 tests are skipped with the reason — except on
CI (``CI=true``), where they fail, so a green CI run proves they ran.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LIBRARY_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "shared-gov-test"
USER_PIN = "1234"
SO_PIN = "5678"


@dataclass(frozen=True)
class SoftHsm:
    library: str
    token_label: str
    user_pin: str
    conf: Path


def unavailable(reason: str) -> None:
    """Skip, or fail on CI, where every test must really run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: PKCS#11 tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def find_library() -> str | None:
    configured = os.environ.get("SHARED_GOV_PKCS11_LIBRARY")
    if configured:
        return configured if Path(configured).is_file() else None
    return next((p for p in LIBRARY_PATHS if Path(p).is_file()), None)


@pytest.fixture(scope="session", name="softhsm")
def softhsm_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    if importlib.util.find_spec("pkcs11") is None:
        unavailable("python-pkcs11 is not installed (pip install python-pkcs11)")
    library = find_library()
    if library is None:
        unavailable(
            "SoftHSM2 library not found (apt-get install softhsm2, "
            "or set SHARED_GOV_PKCS11_LIBRARY)"
        )
    util = shutil.which("softhsm2-util")
    if util is None:
        unavailable("softhsm2-util not found (apt-get install softhsm2)")
    assert library is not None
    assert util is not None

    root = tmp_path_factory.mktemp("softhsm")
    tokens = root / "tokens"
    tokens.mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))
        subprocess.run(  # noqa: S603 - fixed arguments, tool found on PATH
            [
                util,
                "--init-token",
                "--free",
                "--label",
                TOKEN_LABEL,
                "--pin",
                USER_PIN,
                "--so-pin",
                SO_PIN,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "SOFTHSM2_CONF": str(conf)},
        )
        import pkcs11

        # SoftHSM reads SOFTHSM2_CONF in C_Initialize: if this process
        # loaded the library before, make it read ours.
        pkcs11.lib(library).reinitialize()
        yield SoftHsm(library, TOKEN_LABEL, USER_PIN, conf)


def wipe_token(hsm: SoftHsm) -> None:
    """Delete every object on the test token, so each test starts empty."""
    import pkcs11

    token = pkcs11.lib(hsm.library).get_token(token_label=hsm.token_label)
    try:
        session = token.open(rw=True, user_pin=hsm.user_pin)
    except pkcs11.UserAlreadyLoggedIn:
        session = token.open(rw=True)
    with session:
        for obj in list(session.get_objects()):
            obj.destroy()
