"""What a spawned import worker loads (``import_worker``): nothing of the application."""

from __future__ import annotations

import subprocess
import sys


def test_the_worker_module_imports_no_application() -> None:
    """A spawned worker imports import_worker (and what it needs) only: not SQLAlchemy,
    asyncpg, the database layer, the keyring or the events (half a CPU-second each)."""
    code = (
        "import sys; import shared_gov.domains.residents.import_worker; "
        "print(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, a fixed program
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(out.stdout.split())
    for heavy in (
        "sqlalchemy",
        "asyncpg",
        "shared_gov.db",
        "shared_gov.crypto.keyring",
        "shared_gov.domains.residents.events",
        "shared_gov.domains.residents.repository",
        "shared_gov.domains.residents.transfer",
        "shared_gov.policy",
    ):
        assert heavy not in loaded, heavy
