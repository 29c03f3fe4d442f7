"""The HSM path end to end: a town onboarded with the PKCS#11 provider (SoftHSM2)
stores, reads, searches, rotates and is shredded like with the local one."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from shared_gov.crypto.keyring import Keyring
from shared_gov.crypto.providers import KeyNotFound, Pkcs11KeyProvider
from shared_gov.db import Database
from shared_gov.domains.residents import repository
from shared_gov.domains.residents.models import Resident
from shared_gov.keys.rotation import rotate_dek, rotate_kek
from shared_gov.settings import Settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from shared_gov.tenancy.names import tenant_names
from tests.crypto.softhsm import SoftHsm, softhsm_fixture, wipe_token

__all__ = ["softhsm_fixture"]  # imported to register the fixture here

TOWN = "011070"  # 札幌市厚別区


@pytest.fixture
async def hsm_db(softhsm: SoftHsm, settings: Settings, db: Database) -> AsyncIterator[Database]:
    """A Database whose keyring keeps KEKs on the SoftHSM token (same test database)."""
    wipe_token(softhsm)
    provider = Pkcs11KeyProvider(softhsm.library, softhsm.token_label, softhsm.user_pin)
    hsm_settings = dataclasses.replace(
        settings,
        key_provider="pkcs11",
        pkcs11_library=softhsm.library,
        pkcs11_token=softhsm.token_label,
        pkcs11_pin=softhsm.user_pin,
    )
    assert settings.database_url
    database = Database(settings.database_url, hsm_settings, keyring=Keyring(provider))
    await database.open()
    yield database
    await database.close()
    provider.close()


def _person(rid: str) -> Resident:
    return Resident(
        id=rid,
        atena_no="00000019",
        version=1,
        state="active",
        resident_type="japanese",
        household_no="00000019",
        relationship="世帯主",
        family_name="厚別",
        given_name="太郎",
        family_name_kana="アツベツ",
        given_name_kana="タロウ",
        birth_date=date(1970, 1, 2),
        sex="male",
        address="北海道札幌市厚別区1-1",
        postal_code="0040001",
        individual_number=None,
        juminhyo_code=None,
        phone="011-111-2222",
        former_surname=None,
        domicile=None,
        previous_address=None,
        forward_address=None,
        resident_since=date(2000, 1, 1),
        address_since=date(2000, 1, 1),
        notified_on=date(2000, 1, 2),
        removed_on=None,
        history_no=1,
    )


async def test_town_on_an_hsm(hsm_db: Database, tmp_path: Path) -> None:
    """Onboard with KEKs on the token; write and read back; search by phone; rotate
    the KEK and a data key; offboard: the token holds nothing of the town after."""
    manifest = parse_manifest(
        {
            "code": TOWN,
            "name": "札幌市厚別区",
            "name_kana": "さっぽろしあつべつく",
            "prefecture": "北海道",
            "population": 120000,
            "departments": [{"code": "shimin", "name": "市民課"}],
        }
    )
    await tenancy.onboard(hsm_db, manifest)
    provider = hsm_db.keyring.provider
    assert provider.name == "pkcs11"
    assert provider.kek_versions(TOWN) == [1]
    names = tenant_names(TOWN, hsm_db.settings.role_prefix)
    rid = "6d0c4c4e-5d7a-4e0e-9d7e-6c1d2c3b4a59"
    async with hsm_db.tenant(names) as uow:
        household = await repository.create_household(uow, rid)
        person = dataclasses.replace(_person(rid), household_no=household)
        await repository.insert(uow, person)
    async with hsm_db.tenant(names) as uow:
        read = await repository.get(uow, rid)
        assert read is not None
        assert read.family_name == "厚別"
        assert [r.id for r in await repository.find_by_phone(uow, "0111112222")] == [rid]
    version, rewrapped = await rotate_kek(hsm_db, TOWN)
    assert provider.kek_versions(TOWN) == [version]
    assert rewrapped > 0
    result = await rotate_dek(hsm_db, TOWN, "family_name", grace_seconds=0)
    assert result.retired
    hsm_db.keyring.invalidate()
    async with hsm_db.tenant(names) as uow:
        again = await repository.get(uow, rid)
        assert again is not None
        assert again.family_name == "厚別"
    await tenancy.offboard(hsm_db, TOWN, tmp_path)
    with pytest.raises(KeyNotFound):
        provider.current_kek_version(TOWN)
    with pytest.raises(KeyNotFound):
        provider.sign(TOWN, b"checkpoint")
