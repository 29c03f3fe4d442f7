"""Rule 1's fast path (docs/support-measures.md, "On the read path"), attacked.

A read answers "is this record linked to a protected person" in the
statement that reads the record: the stored flag ``protection_linked``
(tenant revision t0011, kept by every write that can change it; see
test_rule1_closure.py). These tests cover what that shortcut could get
wrong: a person who left a household before its member was protected, a
person whose history arrives from another system (t0008 and t0011's
triggers), and that a read — of a record that never moved or of one that
split off — asks nothing more.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared_gov.audit import recorder
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.clock import today_jst
from shared_gov.db import Database, TenantUnitOfWork
from shared_gov.domains.residents import linkage, repository
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, auth
from tests.security.test_support_measures import (
    BASE,
    HIDEOUT,
    WHEREABOUTS,
    _others,
    _protect,
    _register,
    shows,
)

_T0008 = (
    Path(__file__).parents[2]
    / "src/shared_gov/db/migrations/tenant/versions/t0008_households_changed.py"
)


async def _flag(db: Database, resident_id: str) -> bool:
    async with db.tenant(tenant_names(KAGA, db.settings.role_prefix)) as uow:
        flag: bool = await uow.fetchval(
            "SELECT households_changed FROM residents WHERE id = $1", resident_id
        )
    return flag


async def _family(
    client: Any, tokens: dict[str, str], kana: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    parent = await _register(
        client, tokens, family_name_kana=kana, address=HIDEOUT, birth_date="1984-04-04"
    )
    child = await _register(
        client,
        tokens,
        family_name_kana=kana,
        given_name_kana="ジロウ",
        birth_date="2006-06-06",
        address=HIDEOUT,
        household_no=parent["household_no"],
        relationship="子",
    )
    return parent, child


async def test_a_child_who_left_before_the_parent_was_protected_stays_linked(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer, db: Database
) -> None:
    """世帯分離 first, 支援措置 on the parent afterwards: the child's current
    household holds nobody protected, only its history names the parent's."""
    parent, child = await _family(client, tokens, "ハヤミチ")
    old_household = parent["household_no"]
    assert not await _flag(db, child["id"])  # registered into a household: no change yet
    today = today_jst().isoformat()
    split = await client.post(
        f"{BASE}/residents/{child['id']}/moves",
        json={"event": "household_split", "move_date": today, "notified_on": today},
        headers=auth(tokens["kaga"], **{"If-Match": child["etag"]}),
    )
    assert split.status_code == 200, split.text
    assert split.json()["household_no"] != old_household
    assert await _flag(db, child["id"])  # set by the trigger on the household change
    assert not await _flag(db, parent["id"])
    await _protect(client, BASE, tokens["kaga"], parent)
    for name, h in _others(issuer).items():
        r = await client.get(f"{BASE}/residents/{child['id']}", headers=h)
        assert r.status_code == 200, (name, r.text)
        for field in WHEREABOUTS:
            assert field not in r.json(), (name, field)
        assert not shows(r, old_household), name
        r = await client.post(
            f"{BASE}/residents/search",
            json={"family_name_kana": "ハヤミチ", "birth_date": "2006-06-06"},
            headers=h,
        )
        assert r.status_code == 200, (name, r.text)
        assert [x["id"] for x in r.json()["residents"]] == [child["id"]]
        assert not shows(r, old_household), name
        r = await client.get(f"{BASE}/residents/{child['id']}/history", headers=h)
        if r.status_code != 403:  # a purpose without the history action
            assert r.status_code == 200, (name, r.text)
            assert not shows(r, old_household), name
    # 市民課 registering residents still sees the child's address.
    r = await client.get(f"{BASE}/residents/{child['id']}", headers=auth(tokens["kaga"]))
    assert r.json()["address"] == HIDEOUT


async def _as_imported(uow: TenantUnitOfWork, rows: int) -> None:
    """The audit event a load from another system records in its transaction
    (``transfer.import_csv``): without it, ``audit verify`` of the session's
    Kaga would rightly find history rows without their event."""
    await recorder.record(
        uow,
        recorder.operator_actor("residents import"),
        recorder.AuditEvent(action="residents.import", fields=["household_no"], rows=rows),
    )


async def _arrive_with_history(
    db: Database, template_id: str, history: list[str], *, record_history_no: int
) -> str:
    """A record loaded from another system with its own 履歴: snapshots filed
    under the households in ``history`` (in order), the record under the last."""
    names = tenant_names(KAGA, db.settings.role_prefix)
    rid = str(uuid.uuid4())
    async with db.tenant(names) as uow:
        template = await repository.get(uow, template_id)
        assert template is not None
        base = dataclasses.replace(
            template,
            id=rid,
            atena_no=await repository.next_atena_no(uow),
            individual_number=None,
            juminhyo_code=None,
            relationship="同居人",
            household_no=history[-1],
            history_no=record_history_no,
        )
        await repository.insert(uow, base)
        for number, household in enumerate(history, start=record_history_no - len(history) + 1):
            snapshot = dataclasses.replace(base, household_no=household, history_no=number)
            await repository.append_history(
                uow,
                snapshot,
                reason="imported",
                move_date=template.address_since,
                notified_on=template.notified_on,
                processed_on=today_jst(),
            )
        await _as_imported(uow, 1)
    return rid


@pytest.mark.parametrize("record_history_no", [2, 1])
async def test_a_history_from_another_system_naming_a_protected_household_counts(
    client: Any,
    tokens: dict[str, str],
    issuer: BuiltinIssuer,
    db: Database,
    record_history_no: int,
) -> None:
    """An import of another system's 履歴 may show a household change under any
    事由. A record arriving with 履歴番号 2 (entries 1 and 2), or with 1 and an
    entry numbered otherwise, is flagged by the triggers, whatever was written."""
    kana = "イセキ" if record_history_no == 2 else "イセキニ"
    parent, _child = await _family(client, tokens, kana)
    await _protect(client, BASE, tokens["kaga"], parent)
    elsewhere = await _register(client, tokens, family_name_kana=kana, birth_date="1970-01-01")
    if record_history_no == 2:
        history = [parent["household_no"], elsewhere["household_no"]]
    else:  # the record's own entry, then an older entry loaded under another number
        history = [elsewhere["household_no"]]
    rid = await _arrive_with_history(
        db, elsewhere["id"], history, record_history_no=record_history_no
    )
    if record_history_no == 1:
        assert not await _flag(db, rid)  # one snapshot, the record itself
        names = tenant_names(KAGA, db.settings.role_prefix)
        async with db.tenant(names) as uow:
            record = await repository.get(uow, rid)
            assert record is not None
            older = dataclasses.replace(record, household_no=parent["household_no"], history_no=7)
            await repository.append_history(
                uow,
                older,
                reason="imported",
                move_date=record.address_since,
                notified_on=record.notified_on,
                processed_on=today_jst(),
            )
            await _as_imported(uow, 1)
    assert await _flag(db, rid)
    for name, h in _others(issuer).items():
        r = await client.get(f"{BASE}/residents/{rid}", headers=h)
        assert r.status_code == 200, (name, r.text)
        for field in WHEREABOUTS:
            assert field not in r.json(), (name, field)
        assert not shows(r, parent["household_no"]), name
    # The person they now live with shares a component with the protected
    # household through the arrival's past: linked once the history is read
    # (``residents relink``, the step after loading a history from elsewhere).
    names = tenant_names(KAGA, db.settings.role_prefix)
    async with db.tenant(names) as uow:
        done = await linkage.relink(uow)
    assert done.memberships_added >= 1
    r = await client.get(f"{BASE}/residents/{elsewhere['id']}", headers=_others(issuer)["kaigo"])
    assert r.status_code == 200
    assert "address" not in r.json()
    r = await client.get(f"{BASE}/residents/{rid}", headers=_others(issuer)["kaigo"])
    assert "address" not in r.json()


async def test_the_common_read_asks_nothing_more(
    client: Any, tokens: dict[str, str], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record read by ``repository.get`` carries the stored answer: records
    linked or not, never moved or split off, cost no further statement and no
    decryption."""
    parent, child = await _family(client, tokens, "ゼロカイ")
    await _protect(client, BASE, tokens["kaga"], parent)
    today = today_jst().isoformat()
    split = await client.post(
        f"{BASE}/residents/{child['id']}/moves",
        json={"event": "household_split", "move_date": today, "notified_on": today},
        headers=auth(tokens["kaga"], **{"If-Match": child["etag"]}),
    )
    assert split.status_code == 200, split.text
    loner = await _register(client, tokens, family_name_kana="ゼロカイ", birth_date="1999-09-09")
    mover = await _register(client, tokens, family_name_kana="ゼロカイ", birth_date="2001-01-01")
    moved = await client.post(  # a move within the town: a 2nd snapshot, same household
        f"{BASE}/residents/{mover['id']}/moves",
        json={
            "event": "move_within_town",
            "move_date": today,
            "notified_on": today,
            "address": "石川県加賀市大聖寺南町2-2",
        },
        headers=auth(tokens["kaga"], **{"If-Match": mover["etag"]}),
    )
    assert moved.status_code == 200, moved.text
    assert not await _flag(db, mover["id"])
    names = tenant_names(KAGA, db.settings.role_prefix)
    async with db.tenant(names) as uow:
        records = [await repository.get(uow, p["id"]) for p in (child, loner, mover)]
        asked: list[str] = []

        async def no_query(self: TenantUnitOfWork, query: str, *args: Any, **kw: Any) -> Any:
            asked.append(query)
            raise AssertionError("the common case must not query")

        with monkeypatch.context() as patch:
            patch.setattr(TenantUnitOfWork, "fetch", no_query)
            patch.setattr(TenantUnitOfWork, "fetchrow", no_query)
            patch.setattr(TenantUnitOfWork, "fetchval", no_query)
            linked = await repository.linked_residents(uow, [r for r in records if r])
        assert asked == []
        assert linked == {child["id"]}
        # A record not read through the hot reads (e.g. just written) is asked about.
        fresh = dataclasses.replace(records[0])  # type: ignore[type-var]
        assert await repository.linked_residents(uow, [fresh]) == {child["id"]}


async def test_the_backfill_marks_every_record_that_may_have_changed(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """t0008's backfill reads plain columns only: a record with any entry besides
    its own current one is marked (a split, but also a move within the town);
    a record whose only snapshot is itself is not."""
    spec = importlib.util.spec_from_file_location("t0008", _T0008)
    assert spec is not None
    assert spec.loader is not None
    t0008 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t0008)
    parent, child = await _family(client, tokens, "アトカラ")
    today = today_jst().isoformat()
    split = await client.post(
        f"{BASE}/residents/{child['id']}/moves",
        json={"event": "household_split", "move_date": today, "notified_on": today},
        headers=auth(tokens["kaga"], **{"If-Match": child["etag"]}),
    )
    assert split.status_code == 200, split.text
    mover = await _register(client, tokens, family_name_kana="アトカラ", birth_date="2002-02-02")
    moved = await client.post(
        f"{BASE}/residents/{mover['id']}/moves",
        json={
            "event": "move_within_town",
            "move_date": today,
            "notified_on": today,
            "address": "石川県加賀市大聖寺南町3-3",
        },
        headers=auth(tokens["kaga"], **{"If-Match": mover["etag"]}),
    )
    assert moved.status_code == 200, moved.text
    ids = [parent["id"], child["id"], mover["id"]]
    names = tenant_names(KAGA, db.settings.role_prefix)
    async with db.tenant(names) as uow:
        # As before t0008: nothing known.
        await uow.execute(
            "UPDATE residents SET households_changed = false WHERE id = ANY($1::uuid[])", ids
        )
        await uow.execute(t0008.BACKFILL)
        rows = await uow.fetch(
            "SELECT id::text AS id, households_changed FROM residents WHERE id = ANY($1::uuid[])",
            ids,
        )
    flags = {r["id"]: r["households_changed"] for r in rows}
    assert flags == {parent["id"]: False, child["id"]: True, mover["id"]: True}
