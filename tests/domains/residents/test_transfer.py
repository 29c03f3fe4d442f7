"""Bulk import and export of a register (CSV): validation, atomicity, round trip."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shared_gov.checkdigits import make_individual_number, make_serial
from shared_gov.cli.main import app as cli
from shared_gov.db import Database
from shared_gov.domains.residents import repository
from shared_gov.domains.residents.transfer import (
    HEADER,
    ImportRejected,
    export_csv,
    import_csv,
    to_csv_text,
)
from shared_gov.settings import get_settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from shared_gov.tenancy.names import tenant_names

SAPPORO, CHUO = "011002", "011011"
runner = CliRunner()


def _row(n: int, **overrides: str) -> list[str]:
    values = {
        "id": "",
        "atena_no": make_serial(5000 + n),
        "household_no": make_serial(7000 + n),
        "relationship": "世帯主",
        "family_name": "移行",
        "given_name": f"太郎{n}",
        "family_name_kana": "イコウ",
        "given_name_kana": "タロウ",
        "birth_date": "1950-01-15",
        "sex": "1",
        "address": f"北海道札幌市中央区北一条西{n}丁目",
        "postal_code": "0600001",
        "individual_number": make_individual_number(f"{55_000_000_000 + n:011d}"),
        "juminhyo_code": f"{66_000_000_000 + n:011d}",
        "phone": "",
        "former_surname": "",
        "domicile": "",
        "previous_address": "",
        "forward_address": "",
        "resident_type": "1",
        "state": "active",
        "resident_since": "1980-04-01",
        "address_since": "1990-05-01",
        "notified_on": "1990-05-02",
        "removed_on": "",
    }
    values.update(overrides)
    return [values[c] for c in HEADER]


async def _town(db: Database, code: str, name: str) -> None:
    await tenancy.onboard(
        db,
        parse_manifest(
            {
                "code": code,
                "name": name,
                "name_kana": "さっぽろし",
                "prefecture": "北海道",
                "population": 1_900_000,
                "departments": [{"code": "shimin", "name": "市民課"}],
            }
        ),
    )


async def _count(db: Database, code: str) -> int:
    async with db.tenant(tenant_names(code, db.settings.role_prefix)) as uow:
        return await repository.count(uow)


async def test_import_then_export_round_trips(db: Database) -> None:
    """A valid file loads in one go; exporting and importing the export elsewhere
    reproduces the same records, byte for byte."""
    await _town(db, SAPPORO, "札幌市")
    await _town(db, CHUO, "札幌市中央区")
    rows = [_row(i) for i in range(1, 41)]
    rows.append(
        _row(
            41,
            relationship="妻",
            household_no=make_serial(7001),
            given_name="花子",
            sex="2",
            given_name_kana="ハナコ",
        )
    )
    rows.append(_row(42, state="moved_out", removed_on="2020-03-31", forward_address="東京都"))
    async with db.tenant(tenant_names(SAPPORO, db.settings.role_prefix)) as uow:
        assert await import_csv(uow, io.StringIO(to_csv_text(rows))) == 42
    first = io.StringIO()
    async with db.tenant(tenant_names(SAPPORO, db.settings.role_prefix)) as uow:
        assert await export_csv(uow, first) == 42
    async with db.tenant(tenant_names(CHUO, db.settings.role_prefix)) as uow:
        await import_csv(uow, io.StringIO(first.getvalue()))
    second = io.StringIO()
    async with db.tenant(tenant_names(CHUO, db.settings.role_prefix)) as uow:
        await export_csv(uow, second)
    assert second.getvalue() == first.getvalue()
    exported = list(csv.DictReader(io.StringIO(first.getvalue())))
    assert exported[0]["family_name"] == "移行"
    assert {r["state"] for r in exported} == {"active", "moved_out"}
    # Imported people are searchable through the blind indexes.
    async with db.tenant(tenant_names(CHUO, db.settings.role_prefix)) as uow:
        found = await repository.find_by_individual_number(
            uow, rows[0][HEADER.index("individual_number")]
        )
        assert [r.atena_no for r in found] == [rows[0][HEADER.index("atena_no")]]
        # New registrations continue after the imported serial numbers.
        assert await repository.next_atena_no(uow) > max(r[HEADER.index("atena_no")] for r in rows)


async def test_a_bad_file_writes_nothing_and_reports_without_values(db: Database) -> None:
    """Every problem is reported with row and column; not one row is written."""
    await _town(db, SAPPORO, "札幌市")
    before = await _count(db, SAPPORO)
    bad_number = "983205673210"
    rows = [
        _row(101),
        _row(102, individual_number=bad_number),
        _row(103, birth_date="2999-01-01"),
        _row(104, family_name_kana="漢字"),
        _row(105, sex="9"),
        _row(106, atena_no=make_serial(5101)),  # duplicate of row 1
        _row(107, household_no="12345678"),
        _row(108, family_name=""),
        _row(109, state="deceased"),  # removed_on missing
    ]
    with pytest.raises(ImportRejected) as info:
        async with db.tenant(tenant_names(SAPPORO, db.settings.role_prefix)) as uow:
            await import_csv(uow, io.StringIO(to_csv_text(rows)))
    found = {(e.row, e.column) for e in info.value.errors}
    assert found == {
        (2, "individual_number"),
        (3, "birth_date"),
        (4, "family_name_kana"),
        (5, "sex"),
        (6, "atena_no"),
        (7, "household_no"),
        (8, "family_name"),
        (9, "removed_on"),
    }
    assert all(bad_number not in e.reason and "漢字" not in e.reason for e in info.value.errors)
    assert await _count(db, SAPPORO) == before


async def test_control_characters_and_implausible_dates_are_reported_per_row(
    db: Database,
) -> None:
    """The import holds text and dates to the API's rules: a control, format or line
    separator character in a text column, or a date before 1845-01-01, is a row
    problem (row, column, reason without the value); nothing is written."""
    await _town(db, SAPPORO, "札幌市")
    before = await _count(db, SAPPORO)
    marker = "ZZMARKERZZ"
    rows = [
        _row(301),
        _row(302, family_name="移\x00" + marker),
        _row(303, address="北海道\n" + marker),
        _row(304, given_name="太郎\u202e" + marker),
        _row(305, domicile="北海道\u2028" + marker),
        _row(306, phone="0155\x7f"),
        _row(307, birth_date="0001-01-01"),
        _row(308, notified_on="1844-12-31"),
        _row(309, given_name="太郎\u3000" + "\U000e0100"),  # allowed: U+3000, an IVS
    ]
    with pytest.raises(ImportRejected) as info:
        async with db.tenant(tenant_names(SAPPORO, db.settings.role_prefix)) as uow:
            await import_csv(uow, io.StringIO(to_csv_text(rows), newline=""))
    assert [(e.row, e.column) for e in info.value.errors] == [
        (2, "family_name"),
        (3, "address"),
        (4, "given_name"),
        (5, "domicile"),
        (6, "phone"),
        (7, "birth_date"),
        (8, "notified_on"),
    ]
    assert all(marker not in e.reason and "0001" not in e.reason for e in info.value.errors)
    assert await _count(db, SAPPORO) == before


async def test_importing_twice_is_refused(db: Database) -> None:
    """Records already in the town (same 宛名番号, numbers, households) are errors."""
    await _town(db, SAPPORO, "札幌市")
    rows = [_row(201), _row(202)]
    async with db.tenant(tenant_names(SAPPORO, db.settings.role_prefix)) as uow:
        await import_csv(uow, io.StringIO(to_csv_text(rows)))
    before = await _count(db, SAPPORO)
    with pytest.raises(ImportRejected) as info:
        async with db.tenant(tenant_names(SAPPORO, db.settings.role_prefix)) as uow:
            await import_csv(uow, io.StringIO(to_csv_text(rows)))
    assert {e.column for e in info.value.errors} >= {"atena_no", "individual_number"}
    assert await _count(db, SAPPORO) == before


def test_cli_import_and_export(
    db: Database, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`residents import` refuses a bad file with a report (exit 2); `export` writes 0600."""
    assert settings.database_url
    monkeypatch.setenv("SHARED_GOV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHARED_GOV_ROLE_PREFIX", settings.role_prefix)
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        bad = tmp_path / "bad.csv"
        bad.write_text(to_csv_text([_row(301, sex="x")]), encoding="utf-8")
        refused = runner.invoke(cli, ["residents", "import", str(bad), "--tenant", SAPPORO])
        assert refused.exit_code == 2
        assert "row 1, sex" in refused.output
        good = tmp_path / "good.csv"
        good.write_text(to_csv_text([_row(302), _row(303)]), encoding="utf-8")
        loaded = runner.invoke(cli, ["residents", "import", str(good), "--tenant", SAPPORO])
        assert loaded.exit_code == 0, loaded.output
        assert "2 residents imported" in loaded.stdout
        out = tmp_path / "out.csv"
        exported = runner.invoke(cli, ["residents", "export", str(out), "--tenant", SAPPORO])
        assert exported.exit_code == 0, exported.output
        assert out.stat().st_mode & 0o777 == 0o600
        assert make_serial(5302) in out.read_text(encoding="utf-8")
    finally:
        get_settings.cache_clear()
