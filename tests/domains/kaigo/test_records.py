"""The 介護保険 records at rest: tables from the domain's own revision, keys for its
envelopes and indexes, personal values stored as envelopes, insured numbers and
65-days found through blind indexes, determinations written once per source,
facilities unique per address. Real PostgreSQL, real keys."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from shared_gov.crypto.keyring import index_column
from shared_gov.db import Database
from shared_gov.domains.kaigo.models import (
    Card,
    Determination,
    Facility,
    InsuredPerson,
    Proposal,
    Question,
)
from shared_gov.domains.kaigo.repository import determinations, facilities, insured, watch
from shared_gov.domains.kaigo.repository.determinations import determination_id
from shared_gov.domains.kaigo.rules import Category, Period
from shared_gov.domains.kaigo.vocabulary import (
    FacilityKind,
    coverage,
    is_valid_insured_number,
    make_insured_number,
)
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA
from tests.domains.kaigo.conftest import planted


async def _fetch(db: Database, query: str, *args: Any) -> list[Any]:
    async with db.pool.acquire() as conn:
        return list(await conn.fetch(query, *args))


async def test_the_towns_have_the_domains_tables_and_keys(db: Database) -> None:
    schema = tenant_names(KAGA, db.settings.role_prefix).schema
    versions = await _fetch(db, f'SELECT version_num FROM "{schema}".alembic_version')
    kaigo_head = next(h for h in tenancy.tenant_head().split("+") if h.startswith("kaigo_"))
    assert kaigo_head in {r["version_num"] for r in versions}
    (row,) = await _fetch(db, "SELECT schema_revision FROM catalog.tenants WHERE code = $1", KAGA)
    assert row["schema_revision"] == tenancy.tenant_head()
    keys = await _fetch(
        db,
        "SELECT kind, name FROM catalog.data_keys WHERE tenant_code = $1 AND state = 'active'",
        KAGA,
    )
    have = {(k["kind"], k["name"]) for k in keys}
    assert {
        ("dek", "kaigo_insured.insured_number"),
        ("dek", "kaigo_insured.periods"),
        ("dek", "kaigo_determinations.proposal"),
        ("dek", "kaigo_determinations.answers"),
        ("dek", "kaigo_watch.turns_65_on"),
        ("bidx", "kaigo_insured_number"),
        ("bidx", "kaigo_turns_65"),
    } <= have


def _person(number: str) -> InsuredPerson:
    return InsuredPerson(
        id=str(uuid.uuid4()),
        resident_id=str(uuid.uuid4()),
        status="insured",
        category=Category.FIRST,
        insurer_town=KAGA,
        insured_number=number,
        periods=[Period(KAGA, date(2026, 3, 31), "reached_65")],
        card=Card(issued_on=date(2026, 4, 2)),
        notes="受給資格証明書あり",
    )


async def test_an_insured_person_is_stored_as_envelopes_and_found_by_number(db: Database) -> None:
    names = tenant_names(KAGA, db.settings.role_prefix)
    async with db.tenant(names) as uow:
        number = await insured.next_number(uow)
        person = _person(number)
        await insured.insert(uow, person)
    assert is_valid_insured_number(number)
    async with db.tenant(names) as uow:
        (found,) = await insured.find_by_number(uow, number)
        assert found.id == person.id
        assert found.periods == person.periods
        assert found.card.issued_on == date(2026, 4, 2)
        assert found.notes == "受給資格証明書あり"
        assert (await insured.by_resident(uow, person.resident_id)) == found
        assert await insured.find_by_number(uow, make_insured_number(999_999_998)) == []
    (row,) = await _fetch(
        db, f'SELECT * FROM "{names.schema}".kaigo_insured WHERE id = $1::uuid', person.id
    )
    for column in ("insured_number", "periods", "card", "notes"):
        stored = bytes(row[column])
        assert number.encode() not in stored
        assert b"2026" not in stored
        assert "受給".encode() not in stored
    assert row[index_column("kaigo_insured_number", 1)] is not None


def _determination(town: str, key: str) -> Determination:
    return Determination(
        id=determination_id(town, key),
        resident_id=str(uuid.uuid4()),
        kind="loss",
        status="open",
        source_key=key,
        proposed_on=date(2026, 11, 3),
        deadline=date(2026, 11, 17),
        proposal=Proposal(
            date=date(2026, 11, 4),
            reason="move_out_abroad",
            legal_basis="介護保険法 第11条第1項",
            summary="国外転出",
            questions=[Question("card_returned", "被保険者証は返還されたか")],
        ),
    )


async def test_a_determination_is_written_once_per_source(db: Database) -> None:
    names = tenant_names(KAGA, db.settings.role_prefix)
    key = f"event:{uuid.uuid4()}"
    first = _determination(KAGA, key)
    async with db.tenant(names) as uow:
        assert await determinations.insert(uow, first)
        await planted(uow)
    again = _determination(KAGA, key)
    assert again.id == first.id  # derived from the town and the source
    async with db.tenant(names) as uow:
        assert not await determinations.insert(uow, again)
        stored = await determinations.get(uow, first.id)
    assert stored is not None
    assert stored.proposal == first.proposal
    assert stored.resident_id == first.resident_id  # the first write stands
    assert determination_id("172031", key) != first.id


async def test_the_65_watch_finds_the_day_through_its_index(db: Database) -> None:
    names = tenant_names(KAGA, db.settings.role_prefix)
    day = date(2031, 7, 14)
    people = [str(uuid.uuid4()) for _ in range(3)]
    async with db.tenant(names) as uow:
        await watch.put(uow, [(people[0], day), (people[1], day), (people[2], date(2031, 7, 15))])
        assert set(await watch.reaching(uow, day)) >= {people[0], people[1]}
        assert people[2] not in await watch.reaching(uow, day)
        await watch.forget(uow, [people[0]])
        assert people[0] not in await watch.reaching(uow, day)
    rows = await _fetch(
        db,
        f'SELECT * FROM "{names.schema}".kaigo_watch WHERE resident_id = $1::uuid',
        people[1],
    )
    assert b"2031-07-14" not in bytes(rows[0]["turns_65_on"])


@pytest.mark.parametrize(
    ("kind", "places", "covered"),
    [
        (FacilityKind.TOKUYO, 80, True),
        (FacilityKind.TOKUYO, 29, False),  # 29 places or fewer: 地域密着型
        (FacilityKind.ROKEN, 100, True),
        (FacilityKind.IRYOIN, 60, True),
        (FacilityKind.YURYO, 40, True),
        (FacilityKind.KEIHI, 30, True),
        (FacilityKind.YOGO, 50, True),
        (FacilityKind.CHIIKI, 29, False),
        (FacilityKind.GROUP_HOME, 18, False),
    ],
)
def test_which_facilities_are_covered(kind: FacilityKind, places: int, covered: bool) -> None:
    result, reason = coverage(kind, places)
    assert result is covered
    assert "住所地特例" in reason


async def test_a_facility_address_is_unique_in_its_town(db: Database) -> None:
    names = tenant_names(KAGA, db.settings.role_prefix)
    covered, reason = coverage(FacilityKind.TOKUYO, 80)
    place = f"石川県加賀市テスト町{uuid.uuid4().int % 10_000}-1"
    first = Facility(str(uuid.uuid4()), KAGA, "特養テスト", place, "tokuyo", 80, covered, reason)
    async with db.tenant(names) as uow:
        assert await facilities.insert(uow, first)
    # The same address written otherwise (full-width digits, a space) is the same key.
    twin = Facility(
        str(uuid.uuid4()),
        KAGA,
        "別名",
        place.replace("-1", "－１").replace("加賀市", "加賀市 "),
        "tokuyo",
        80,
        covered,
        reason,
    )
    async with db.tenant(names) as uow:
        assert not await facilities.insert(uow, twin)
        assert first.id in {f.id for f in await facilities.every(uow)}
