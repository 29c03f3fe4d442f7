"""Separation of duties in every spelling of a subject (review finding, kaigo #2).

Who corrected a determination may not confirm it — also when their identity
provider spells their subject another way: upper case, full width, a Unicode
hyphen or minus for the dash (one person, one key:
``shared_gov.auth.subjects.person_key``, docs/separation-of-duties.md). Someone
else confirms.
"""

from __future__ import annotations

import httpx
import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from tests.conftest import KAGA, auth
from tests.domains.kaigo.conftest import Register, queue_of, settle

Q = "kaigo.qualification"
BASE = f"/api/v1/tenants/{KAGA}/kaigo"
SPELLINGS = {
    "upper case": "K-0100",
    "full width": "ｋ－０１００",
    "hyphen U+2010": "k\u20100100",
    "minus U+2212": "k\u22120100",
    "trailing space": "k-0100 ",
}


def _staff(issuer: BuiltinIssuer, subject: str) -> str:
    return issuer.mint(subject=subject, tenant=KAGA, department="kaigo", roles=["staff"])


@pytest.mark.parametrize("corrector", ["k-0100", "Ｋ－0100"], ids=["plain", "full-width"])
async def test_the_corrector_cannot_confirm_under_another_spelling(
    corrector: str,
    db: Database,
    client: httpx.AsyncClient,
    register_: Register,
    issuer: BuiltinIssuer,
) -> None:
    person = await register_.move_in(birth_date="1950-10-10")
    await settle(db)
    (d,) = await queue_of(db, KAGA, person["id"])
    url = f"{BASE}/determinations/{d.id}"
    token = _staff(issuer, corrector)
    etag = (await client.get(url, headers=auth(token, Q))).headers["ETag"]
    r = await client.post(
        url + "/correct",
        json={"reason": "転入日を届出書で確認した"},
        headers=auth(token, Q, **{"If-Match": etag}),
    )
    assert r.status_code == 200, r.text
    etag = r.headers["ETag"]
    for name, spelling in {"as corrected": corrector, **SPELLINGS}.items():
        refused = await client.post(
            url + "/confirm",
            json={},
            headers=auth(_staff(issuer, spelling), Q, **{"If-Match": etag}),
        )
        assert refused.status_code == 403, (name, refused.text)
        assert "separation of duties" in refused.json()["reason"], name
    # Nothing was decided; another person (whose key differs) confirms.
    ok = await client.post(
        url + "/confirm",
        json={},
        headers=auth(_staff(issuer, "k-0101"), Q, **{"If-Match": etag}),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["decided_by"] == "k-0101"
