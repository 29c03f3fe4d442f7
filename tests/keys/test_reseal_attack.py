"""Hostile-review finding L1, attacked: ``reseal_envelopes`` called as the town's role
during a rotation, and what the rotation and the history endpoint make of it.

The town's function (tenant revision t0012) cannot tell a real envelope from
bytes with the right header: only the data key can. So whoever runs SQL as a
town's role can, while a rotation of a history column drains, replace an
entry still on the old version with garbage on the new one. These tests do
exactly that, in a town of this module's own, and check that the rotation

- never counts a row it did not write with its own envelope (a row changed
  between its read and its write is reported as ``changed``);
- decrypts every row on the new version before retiring the old key, names
  the ones that do not decrypt (``unreadable``, by row id, never a value)
  and keeps the old key, also on a re-run, also for a planted corrupt row
  resealed out of the old version's report, and also for a row changed
  after its verification pass began (the final sweep);

and that the resident's history still answers, the bad entry marked
``unreadable`` (logged as an integrity error, counted for the alert).
"""

from __future__ import annotations

import os
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from prometheus_client import REGISTRY
from structlog.testing import capture_logs
from typer.testing import CliRunner

from shared_gov.audit.verify import verify_tenant
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.cli.main import app as cli
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.keys import envelopes, rotation
from shared_gov.keys.rotation import rotate_dek, status
from shared_gov.settings import Settings, get_settings
from shared_gov.tenancy.names import TenantNames, tenant_names
from tests.conftest import auth
from tests.keys.test_one_way_in import HISTORY, RESEAL, _onboard, _people, _start_only

# This module's own towns, one per test: the garbage planted stays in them.
NEMURO, ABASHIRI, MOMBETSU = "012238", "012114", "012190"
WAKKANAI, BIBAI, ASHIBETSU = "012149", "012157", "012165"


def _garbage(version: int, length: int = 80) -> bytes:
    """What the function accepts: format byte 1, the active version, enough bytes."""
    return bytes([1]) + version.to_bytes(4, "big") + os.urandom(length - 5)


async def _rows(db: Database, names: TenantNames) -> list[asyncpg.Record]:
    """Every history row: ctid, key version, row id."""
    async with db.tenant(names) as uow:
        return await uow.fetch(
            f"SELECT ctid, {envelopes.VERSION_SQL.format(col='snapshot')} AS v, "
            "resident_id::text || '/' || history_no AS rid, resident_id::text AS resident "
            "FROM resident_history ORDER BY resident_id, history_no"
        )


async def _as_town(db: Database, names: TenantNames, ctid: Any, blob: bytes) -> int:
    """The attack: the town's role calls the rotation's door itself."""
    async with db.tenant(names) as uow:
        written: int = await uow.fetchval(RESEAL, "resident_history", "snapshot", [ctid], [blob])
    return written


def _states(statuses: list[Any], name: str) -> dict[int, str]:
    return {s.version: s.state for s in statuses if s.name == name}


def _integrity_errors(column: str) -> float:
    value = REGISTRY.get_sample_value("shared_gov_integrity_errors_total", {"column": column})
    return value or 0.0


@pytest.fixture(scope="module")
async def nemuro(
    db: Database, app: Litestar, issuer: BuiltinIssuer, client: Any
) -> tuple[str, list[str]]:
    token = await _onboard(db, app, issuer, NEMURO)
    return token, await _people(client, NEMURO, token, 4)


async def test_a_resealed_entry_is_named_the_old_key_kept_and_the_history_still_answers(
    db: Database, client: Any, nemuro: tuple[str, list[str]]
) -> None:
    token, people = nemuro
    names = tenant_names(NEMURO, db.settings.role_prefix)
    await _start_only(db, NEMURO, HISTORY)
    rows = await _rows(db, names)
    new = max(r["v"] for r in rows) + 1
    victim = rows[1]  # the second entry of the first resident: still on the old version
    assert victim["v"] == new - 1
    assert await _as_town(db, names, victim["ctid"], _garbage(new)) == 1

    result = await rotate_dek(db, NEMURO, HISTORY, grace_seconds=0)
    # Every other row was re-encrypted and counted; the destroyed one was not,
    # and it is named: the old key stays (as after an old-version corrupt row).
    assert result.unreadable == [victim["rid"]]
    assert result.corrupt == []
    assert result.reencrypted == len(rows) - 1
    assert not result.retired
    assert result.verified == len(rows)
    assert _states(await status(db, NEMURO), HISTORY) == {new - 1: "decrypt", new: "active"}
    # A re-run finds the same row, and still does not retire.
    again = await rotate_dek(db, NEMURO, HISTORY, grace_seconds=0)
    assert (again.unreadable, again.retired, again.reencrypted) == ([victim["rid"]], False, 0)

    # The resident's history: every other entry as before, the destroyed one
    # marked, with its number and plain dates only; logged and counted.
    before = _integrity_errors("resident_history.snapshot")
    with capture_logs() as logs:
        r = await client.get(
            f"/api/v1/tenants/{NEMURO}/residents/{victim['resident']}/history",
            headers=auth(token),
        )
    assert r.status_code == 200, r.text
    first, second = r.json()["entries"]
    assert first["snapshot"]["address"] == "石川県加賀市大聖寺南町1-1"
    assert "unreadable" not in first
    assert second["history_no"] == 2
    assert second["unreadable"] == "integrity_error"
    assert {"snapshot", "reason", "reason_ja", "move_date", "notified_on"}.isdisjoint(second)
    assert {"processed_on", "recorded_at"} <= set(second)
    assert _integrity_errors("resident_history.snapshot") == before + 1
    (line,) = [e for e in logs if e["event"] == "crypto.integrity_error"]
    assert line["log_level"] == "error"
    assert (line["tenant"], line["column"], line["row"]) == (
        NEMURO,
        "resident_history.snapshot",
        victim["rid"],
    )
    # Another resident's history is untouched.
    (someone,) = [p for p in people if p != victim["resident"]][:1]
    other = await client.get(
        f"/api/v1/tenants/{NEMURO}/residents/{someone}/history", headers=auth(token)
    )
    assert other.status_code == 200
    assert all("unreadable" not in e for e in other.json()["entries"])
    # Decrypting to check was audited like re-encrypting.
    async with db.catalog() as conn:
        checks = await conn.fetchval(
            "SELECT count(*) FROM audit.events WHERE tenant = $1 AND action = 'keys.verify' "
            "AND resource_type = 'resident_history'",
            NEMURO,
        )
    assert checks >= 2
    # audit verify: the attacker's write has no audit event; every row the
    # rotation rewrote has its batch's.
    conn = await asyncpg.connect(db.url)
    try:
        report = await verify_tenant(
            conn,
            NEMURO,
            public_key=db.keyring.provider.signing_public_key(NEMURO),
            mac_key=(await db.town_keys(NEMURO)).audit_mac,
        )
    finally:
        await conn.close()
    unlinked = [p.detail for p in report.problems if p.kind == "history_without_event"]
    resident, number = victim["rid"].split("/")
    assert len(unlinked) == 1
    assert f"history row {number} of resident {resident}" in unlinked[0]


async def test_a_row_changed_between_the_jobs_read_and_its_write_is_not_counted(
    db: Database,
    app: Litestar,
    issuer: BuiltinIssuer,
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The town's role reseals a row the job has just read, before the job writes:
    the function writes one row fewer than submitted, and the job says so."""
    token = await _onboard(db, app, issuer, ABASHIRI)
    await _people(client, ABASHIRI, token, 3)
    names = tenant_names(ABASHIRI, db.settings.role_prefix)
    await _start_only(db, ABASHIRI, HISTORY)
    rows = await _rows(db, names)
    new = max(r["v"] for r in rows) + 1
    original = TenantUnitOfWork.fetchval
    attacked: list[str] = []

    async def racing(self: TenantUnitOfWork, query: str, *args: Any, **kw: Any) -> Any:
        if query == envelopes._RESEAL_SQL and not attacked:
            # Between the job's read and its write, on another connection.
            target = args[2][0]
            (victim,) = [r for r in rows if r["ctid"] == target]
            attacked.append(victim["rid"])
            assert await _as_town(db, names, target, _garbage(new)) == 1
        return await original(self, query, *args, **kw)

    monkeypatch.setattr(TenantUnitOfWork, "fetchval", racing)
    result = await rotate_dek(db, ABASHIRI, HISTORY, batch=4, grace_seconds=0)
    monkeypatch.undo()
    assert len(attacked) == 1
    assert result.changed == attacked
    assert result.unreadable == attacked
    assert result.reencrypted == len(rows) - 1
    assert not result.retired
    # The batch's audit event counts what was written, not what was submitted.
    async with db.catalog() as conn:
        written = await conn.fetchval(
            "SELECT sum(rows_returned) FROM audit.events WHERE tenant = $1 "
            "AND action = 'keys.reencrypt' AND resource_type = 'resident_history'",
            ABASHIRI,
        )
    assert written == len(rows) - 1


async def test_a_planted_corrupt_row_resealed_out_of_the_report_is_still_found(
    db: Database, app: Litestar, issuer: BuiltinIssuer, client: Any
) -> None:
    """A corrupt row on the old version keeps the old key. Resealed with garbage
    under the new version, it leaves the old version's report; a re-run used
    to find nothing left and retire the key."""
    token = await _onboard(db, app, issuer, MOMBETSU)
    people = await _people(client, MOMBETSU, token, 2)
    names = tenant_names(MOMBETSU, db.settings.role_prefix)
    # Planted by whoever can write as the tables' owner: another entry's
    # envelope copied in (it does not decrypt at this row).
    planted = f"{people[0]}/2"
    async with db.catalog() as conn:
        await conn.execute(
            f'UPDATE "{names.schema}".resident_history AS h SET snapshot = o.snapshot '
            f'FROM "{names.schema}".resident_history AS o '
            "WHERE h.resident_id = $1 AND h.history_no = 2 "
            "AND o.resident_id = $2 AND o.history_no = 2",
            people[0],
            people[1],
        )
    first = await rotate_dek(db, MOMBETSU, HISTORY, grace_seconds=0)
    assert (first.corrupt, first.unreadable, first.retired) == ([planted], [], False)
    # The attack: as the town's role, the corrupt row leaves the old version.
    (row,) = [r for r in await _rows(db, names) if r["rid"] == planted]
    assert await _as_town(db, names, row["ctid"], _garbage(first.version)) == 1
    rerun = await rotate_dek(db, MOMBETSU, HISTORY, grace_seconds=0)
    assert (rerun.corrupt, rerun.unreadable, rerun.retired) == ([], [planted], False)
    assert _states(await status(db, MOMBETSU), HISTORY) == {
        first.version - 1: "decrypt",
        first.version: "active",
    }


async def test_a_row_resealed_after_the_verification_pass_is_found_by_the_last_sweep(
    db: Database,
    app: Litestar,
    issuer: BuiltinIssuer,
    client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window between the verification pass (beside the town's work) and the
    sweep under the exclusive key lock: an entry on the old version (as a worker
    that missed the rotation writes one) resealed with garbage there is on the
    new version, and no old-version row is left to count. The sweep decrypts
    what was written since the pass began."""
    token = await _onboard(db, app, issuer, WAKKANAI)
    people = await _people(client, WAKKANAI, token, 2)
    names = tenant_names(WAKKANAI, db.settings.role_prefix)
    real_verify = rotation._verify
    sneaked: list[str] = []

    async def then_attack(*args: Any, **kwargs: Any) -> tuple[int, int]:
        found = await real_verify(*args, **kwargs)
        if not sneaked:
            new = max(r["v"] for r in await _rows(db, names))
            async with db.tenant(names) as uow:
                await uow.execute(
                    "INSERT INTO resident_history (resident_id, history_no, reason, move_date, "
                    "notified_on, processed_on, snapshot) SELECT resident_id, 50, reason, "
                    "move_date, notified_on, processed_on, $2 FROM resident_history "
                    "WHERE resident_id = $1 AND history_no = 1",
                    people[0],
                    _garbage(new - 1),
                )
            (row,) = [r for r in await _rows(db, names) if r["rid"] == f"{people[0]}/50"]
            assert await _as_town(db, names, row["ctid"], _garbage(new)) == 1
            sneaked.append(row["rid"])
        return found

    monkeypatch.setattr(rotation, "_verify", then_attack)
    result = await rotate_dek(db, WAKKANAI, HISTORY, grace_seconds=0)
    monkeypatch.undo()
    assert sneaked == [f"{people[0]}/50"]
    assert (result.corrupt, result.unreadable, result.retired) == ([], sneaked, False)


async def test_a_clean_rotation_verifies_every_row_and_retires(
    db: Database, app: Litestar, issuer: BuiltinIssuer, client: Any
) -> None:
    """The control: nothing tampered, every row decrypted once, the key retired."""
    token = await _onboard(db, app, issuer, BIBAI)
    people = await _people(client, BIBAI, token, 3)
    result = await rotate_dek(db, BIBAI, HISTORY, batch=2, grace_seconds=0)
    assert (result.retired, result.corrupt, result.unreadable, result.changed) == (
        True,
        [],
        [],
        [],
    )
    assert result.reencrypted == result.verified == 2 * len(people)


@pytest.fixture(scope="module")
async def tampered(
    db: Database, app: Litestar, issuer: BuiltinIssuer, client: Any
) -> tuple[str, str]:
    """A town mid-rotation with one history entry destroyed: (town, row id)."""
    token = await _onboard(db, app, issuer, ASHIBETSU)
    await _people(client, ASHIBETSU, token, 2)
    names = tenant_names(ASHIBETSU, db.settings.role_prefix)
    await _start_only(db, ASHIBETSU, HISTORY)
    rows = await _rows(db, names)
    victim = rows[0]
    assert await _as_town(db, names, victim["ctid"], _garbage(victim["v"] + 1)) == 1
    return ASHIBETSU, str(victim["rid"])


def test_cli_rotate_dek_names_the_rows_and_exits_1(
    tampered: tuple[str, str], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, rid = tampered
    assert settings.database_url
    monkeypatch.setenv("SHARED_GOV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHARED_GOV_ROLE_PREFIX", settings.role_prefix)
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "200")
    # The command has no --grace; the 25 s wait is not what is tested here.
    monkeypatch.setitem(rotation.rotate_dek.__kwdefaults__, "grace_seconds", 0)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            cli, ["keys", "rotate-dek", "--tenant", code, "--column", HISTORY]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert "3 rows re-encrypted, 4 decrypted to check" in result.stdout
    assert "retired" not in result.stdout
    assert "1 rows on the new version do not decrypt" in result.output
    assert f"  {rid}" in result.output
