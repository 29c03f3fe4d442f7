"""Helpers of the offboarding tests: offboard a town the way an operator does (the CLI)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared_gov.settings import Settings


async def offboard_cli(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, code: str, export_dir: Path
) -> Path:
    """`shared-gov tenants offboard CODE --yes --export-dir DIR`; the export file."""
    from shared_gov.cli.main import app as cli
    from shared_gov.settings import get_settings

    assert settings.database_url
    monkeypatch.setenv("SHARED_GOV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHARED_GOV_ROLE_PREFIX", settings.role_prefix)
    # The local key provider keeps the towns' keys in the data directory: the
    # command must destroy the keys the app uses.
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "400")
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            ["tenants", "offboard", code, "--yes", "--export-dir", str(export_dir)],
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    (path,) = await asyncio.to_thread(lambda: sorted(export_dir.glob(f"{code}-*.json")))
    return path
