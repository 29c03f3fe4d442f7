"""Where the domain keeps its files: installed rules under the data directory, and
where a development checkout finds the reference packages (``../shared``)."""

from __future__ import annotations

import os
from pathlib import Path

from shared_gov.settings import Settings


def rules_dir(settings: Settings) -> Path:
    """``<data_dir>/invoices/rules``: what ``shared-gov invoices rules install`` fills."""
    return settings.data_dir / "invoices" / "rules"


def reference_packages() -> Path | None:
    """``../shared/einvoice`` beside a development checkout (or under
    ``SHARED_GOV_SHARED_DIR``), when it holds the JP PINT release packages.

    Only development uses it: ``make run`` installs from it when no rules are
    installed yet, so a newcomer sees the intake work. Nothing is copied into
    the project; production installs a release package it has downloaded.
    """
    candidates = [Path(__file__).resolve().parents[4] / ".." / "shared"]
    env = os.environ.get("SHARED_GOV_SHARED_DIR")
    if env:
        candidates.append(Path(env))
    for base in candidates:
        folder = base / "einvoice"
        if (folder / "pint-jp-1.1.3").is_dir():
            return folder.resolve()
    return None
