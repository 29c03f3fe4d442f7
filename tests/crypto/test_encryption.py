"""Field-level encryption as stored: envelopes in the database, blind-index
search, context binding, and crypto-shredding (key rotation: tests/keys/)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from shared_gov.crypto.envelope import DecryptError
from shared_gov.crypto.keyring import FETCH_KEYS_SQL, Keyring
from shared_gov.crypto.providers import KeyNotFound
from shared_gov.db import Database
from shared_gov.keys.rotation import rotate_dek
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import load_manifest
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KAGA, KOMATSU, TENANTS_DIR, auth
from tests.factories import resident_body

BASE = f"/api/v1/tenants/{KAGA}"


async def _register(client: Any, token: str, **overrides: Any) -> dict[str, Any]:
    r = await client.post(f"{BASE}/residents", json=resident_body(**overrides), headers=auth(token))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def _raw_row(db: Database, code: str, resident_id: str) -> dict[str, Any]:
    schema = tenant_names(code, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        row = await conn.fetchrow(f'SELECT * FROM "{schema}".residents WHERE id = $1', resident_id)
    assert row is not None
    return dict(row)


async def test_personal_columns_are_envelopes(
    client: Any, tokens: dict[str, str], db: Database
) -> None:
    """The stored row holds ciphertext for every personal field; the API returns plaintext."""
    person = await _register(
        client,
        tokens["kaga"],
        family_name="暗号",
        address="石川県加賀市秘密町1-1",
        phone="0761-11-2222",
    )
    row = await _raw_row(db, KAGA, person["id"])
    for name in ("family_name", "address", "individual_number", "birth_date", "phone", "sex"):
        stored = row[name]
        assert isinstance(stored, bytes), name
        assert stored[0] == 1  # format version
        assert str(person[name]).encode() not in stored
    assert "暗号".encode() not in b"".join(v for v in row.values() if isinstance(v, bytes))
    assert isinstance(row["bidx_individual_number"], int)
    assert person["family_name"] == "暗号"


async def test_ciphertext_bound_to_row_column_and_town(
    db: Database, client: Any, tokens: dict[str, str]
) -> None:
    """An envelope moved to another row, column or town does not decrypt."""
    a = await _register(client, tokens["kaga"])
    keys = await db.town_keys(KAGA)
    other_town = await db.town_keys(KOMATSU)
    blob = (await _raw_row(db, KAGA, a["id"]))["family_name"]
    assert keys.decrypt("residents", "family_name", a["id"], blob) == a["family_name"]
    with pytest.raises(DecryptError):
        keys.decrypt("residents", "family_name", "00000000-0000-4000-8000-000000000000", blob)
    with pytest.raises(DecryptError):
        keys.decrypt("residents", "given_name", a["id"], blob)
    with pytest.raises(DecryptError):
        other_town.decrypt("residents", "family_name", a["id"], blob)


async def test_swapped_ciphertext_is_not_served(
    db: Database, client: Any, tokens: dict[str, str]
) -> None:
    """Copying A's address envelope into B's row (a database-level attacker) makes B's
    record fail closed: the API answers an error, never A's address."""
    a = await _register(client, tokens["kaga"], address="石川県加賀市甲町1-1")
    b = await _register(client, tokens["kaga"], address="石川県加賀市乙町2-2")
    schema = tenant_names(KAGA, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        await conn.execute(
            f'UPDATE "{schema}".residents SET address = (SELECT address FROM "{schema}".residents '
            "WHERE id = $1) WHERE id = $2",
            a["id"],
            b["id"],
        )
    r = await client.get(f"{BASE}/residents/{b['id']}", headers=auth(tokens["kaga"]))
    assert r.status_code == 500
    assert "甲町" not in r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    # A rotation leaves the damaged row alone, reports it, and keeps the old key.
    result = await rotate_dek(db, KAGA, "address", grace_seconds=0)
    assert result.corrupt == [b["id"]]
    assert not result.retired
    async with db.catalog() as conn:  # clean up for the other tests
        await conn.execute(
            f'DELETE FROM "{schema}".resident_history WHERE resident_id = $1', b["id"]
        )
        await conn.execute(f'DELETE FROM "{schema}".residents WHERE id = $1', b["id"])
    assert (await rotate_dek(db, KAGA, "address", grace_seconds=0)).retired


async def test_blind_index_search_normalises(client: Any, tokens: dict[str, str]) -> None:
    """Searches find people by individual number, phone (any formatting, full-width
    digits) and kana + birth date (hiragana or half-width input)."""
    person = await _register(
        client,
        tokens["kaga"],
        family_name_kana="ブラインド",
        birth_date="1961-02-03",
        phone="0761-22-3333",
    )
    h = auth(tokens["kaga"])
    by_number = await client.post(
        f"{BASE}/residents/search",
        json={"individual_number": person["individual_number"]},
        headers=h,
    )
    assert [r["id"] for r in by_number.json()["residents"]] == [person["id"]]
    by_phone = await client.post(
        f"{BASE}/residents/search", json={"phone": "(0761) 22 3333"}, headers=h
    )
    assert [r["id"] for r in by_phone.json()["residents"]] == [person["id"]]
    by_kana = await client.post(
        f"{BASE}/residents/search",
        json={"family_name_kana": "ぶらいんど", "birth_date": "1961-02-03"},
        headers=h,
    )
    assert [r["id"] for r in by_kana.json()["residents"]] == [person["id"]]
    half = await client.post(
        f"{BASE}/residents/search",
        json={"family_name_kana": "ﾌﾞﾗｲﾝﾄﾞ", "birth_date": "1961-02-03"},
        headers=h,
    )
    assert [r["id"] for r in half.json()["residents"]] == [person["id"]]
    wrong_day = await client.post(
        f"{BASE}/residents/search",
        json={"family_name_kana": "ブラインド", "birth_date": "1961-02-04"},
        headers=h,
    )
    assert wrong_day.json()["count"] == 0


async def test_offboarding_shreds_keys(
    db: Database, client: Any, issuer: Any, tmp_path: Path
) -> None:
    """Ciphertexts saved before offboarding can never be decrypted afterwards: the
    KEK is destroyed and the wrapped keys are gone."""
    manifest = load_manifest(TENANTS_DIR / "higashikurume.toml")
    await tenancy.onboard(db, manifest)
    code = manifest.code
    token = issuer.mint(subject="h-1", tenant=code, department="shimin", roles=["staff"], mfa=True)
    created = await client.post(
        f"/api/v1/tenants/{code}/residents",
        json=resident_body(address="東京都東久留米市本町1-1"),
        headers=auth(token),
    )
    assert created.status_code == 201
    saved = await _raw_row(db, code, created.json()["id"])
    async with db.catalog() as conn:
        wrapped = await conn.fetch(FETCH_KEYS_SQL, code)
    await tenancy.offboard(db, code, tmp_path)
    provider = db.keyring.provider
    for row in wrapped:
        with pytest.raises(KeyNotFound):
            provider.unwrap(code, row["kek_version"], bytes(row["wrapped"]), b"any")
    async with db.catalog() as conn:
        assert await conn.fetch(FETCH_KEYS_SQL, code) == []
    fresh = Keyring(provider)
    with pytest.raises((LookupError, KeyNotFound)):
        await fresh.town(lambda t: asyncio.sleep(0, result=list(wrapped)), code)
    assert saved["address"]
    assert "東久留米".encode() not in saved["address"]
    export = next(tmp_path.glob(f"{code}-*.json"))  # noqa: ASYNC240 - one small file
    exported = json.loads(export.read_text(encoding="utf-8"))
    assert exported["residents"][0]["address"] == "東京都東久留米市本町1-1"
