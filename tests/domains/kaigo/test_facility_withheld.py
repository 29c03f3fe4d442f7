"""Rule 1 (支援措置) on every read of a 住所地特例 facility (review finding, kaigo #1).

A Kaga resident under 支援措置 moves into a covered facility in Komatsu; 介護保険課
corrects the tokurei_keep determination naming the facility and someone else
confirms it. The facility is where the person lives: neither its name nor its
town (172031) may appear in any read of that person — the determination (its
correction included), the insured person (GET and search, under both purposes:
``periods[].facility_town`` as well as ``tokurei``), the premium months, the
monthly change report (CSV) and the console's pages. The same journey for a
person who is not protected shows them all (the withholding is rule 1's, not a
loss of the facility).
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import httpx
import pytest
from litestar import Litestar

from shared_gov.clock import today_jst
from shared_gov.db import Database
from shared_gov.domains.kaigo.rules import fiscal_year
from shared_gov.domains.kaigo.vocabulary import KIND_JA, Kind
from tests.conftest import KAGA, KOMATSU, auth
from tests.domains.kaigo.conftest import Register, queue_of
from tests.domains.kaigo.test_tokurei import _insured_kaga_resident, _move_to
from tests.web.flows import csrf_of, sign_in

Q = "kaigo.qualification"
P = "kaigo.premium"
API = f"/api/v1/tenants/{KAGA}/kaigo"
PAGES = f"/console/towns/{KAGA}/kaigo"


async def _facility(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """A covered 特養 of Komatsu with a name no other test uses."""
    tag = uuid.uuid4().hex[:8]
    r = await client.post(
        f"/api/v1/tenants/{KOMATSU}/kaigo/facilities",
        json={
            "name": f"特別養護老人ホーム 秘匿{tag}",
            "address": f"石川県小松市秘匿町{uuid.uuid4().int % 1_000_000}-2",
            "kind": "tokuyo",
            "places": 60,
        },
        headers=auth(token, Q),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _leaks(text: str, facility: dict[str, Any]) -> list[str]:
    """What of the facility ``text`` shows: its name, address, id or town."""
    return [
        v for v in (facility["name"], facility["address"], facility["id"], KOMATSU) if v in text
    ]


@pytest.mark.parametrize("protected", [True, False], ids=["protected", "not-protected"])
async def test_the_facility_of_a_protected_person_appears_nowhere(
    protected: bool,
    app: Litestar,
    db: Database,
    client: httpx.AsyncClient,
    register_: Register,
    kaigo_tokens: dict[str, str],
) -> None:
    tokens = kaigo_tokens
    facility = await _facility(client, tokens["komatsu"])
    person = await _insured_kaga_resident(db, client, register_, tokens)
    if protected:
        r = await client.put(
            f"/api/v1/tenants/{KAGA}/residents/{person['id']}/support-measure",
            json={"active": True},
            headers=auth(tokens["kaga_shimin"], **{"If-Match": person["etag"]}),
        )
        assert r.status_code == 200, r.text
        person["etag"] = r.headers["ETag"]
    await _move_to(db, client, register_, tokens, person, facility["address"])
    (keep,) = [
        d
        for d in await queue_of(db, KAGA, person["id"])
        if d.kind == "tokurei_keep" and d.status == "open"
    ]
    url = f"{API}/determinations/{keep.id}"
    etag = (await client.get(url, headers=auth(tokens["kaga"], Q))).headers["ETag"]
    # One clerk corrects it naming the facility (the correction carries it too) …
    corrected = await client.post(
        url + "/correct",
        json={"reason": "入所先を施設の届出で確認", "facility": {"facility_id": facility["id"]}},
        headers=auth(tokens["kaga"], Q, **{"If-Match": etag}),
    )
    assert corrected.status_code == 200, corrected.text
    # … another confirms it: the insured person's periods now name the facility's town.
    confirmed = await client.post(
        url + "/confirm",
        json={},
        headers=auth(tokens["kaga2"], Q, **{"If-Match": corrected.headers["ETag"]}),
    )
    assert confirmed.status_code == 200, confirmed.text
    shown = await client.get(url, headers=auth(tokens["kaga"], Q))
    found = {
        purpose: await client.post(
            f"{API}/insured/search",
            json={"resident_id": person["id"]},
            headers=auth(tokens["kaga"], purpose),
        )
        for purpose in (Q, P)
    }
    (insured,) = found[Q].json()["insured"]
    read = await client.get(f"{API}/insured/{insured['id']}", headers=auth(tokens["kaga"], P))
    year = fiscal_year(today_jst())
    months = await client.get(
        f"{API}/insured/{insured['id']}/premium-months",
        params={"fiscal_year": str(year)},
        headers=auth(tokens["kaga"], P),
    )
    month = today_jst().strftime("%Y-%m")
    report = await client.get(
        f"{API}/reports/changes", params={"month": month}, headers=auth(tokens["kaga"], Q)
    )
    assert report.status_code == 200, report.text
    (row,) = [r for r in csv.reader(io.StringIO(report.text)) if r[-1] == keep.id]
    reads = {
        "correct": corrected,
        "confirm": confirmed,
        "determination": shown,
        "search (qualification)": found[Q],
        "search (premium)": found[P],
        "insured": read,
        "premium months": months,
    }
    for name, response in reads.items():
        assert response.status_code == 200, (name, response.text)

    # The console: the insured person found by POST, and the determination's page.
    browser = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver.local"
    )
    async with browser:
        await sign_in(browser, KAGA, "kaigo-0001")
        form = await browser.get(f"{PAGES}/insured")
        pages = {
            f"console insured ({purpose})": await browser.post(
                f"{PAGES}/insured",
                data={
                    "_csrf_token": csrf_of(form.text),
                    "resident_id": person["id"],
                    "purpose": purpose,
                },
            )
            for purpose in (Q, P)
        }
        pages["console determination"] = await browser.get(f"{PAGES}/determinations/{keep.id}")
    for name, response in pages.items():
        assert response.status_code == 200, (name, response.text)

    people = {
        "search (qualification)": found[Q].json()["insured"][0],
        "search (premium)": found[P].json()["insured"][0],
        "insured": read.json(),
    }
    if protected:
        texts = {name: r.text for name, r in {**reads, **pages}.items()}
        texts["change report (the person's row)"] = ",".join(row)
        leaked = {name: found for name, text in texts.items() if (found := _leaks(text, facility))}
        assert leaked == {}
        for name, one in people.items():
            assert one["periods"], name  # the periods are read, their facility town is not
            assert all(p.get("facility_town") is None for p in one["periods"]), name
            assert "tokurei" not in one, name
            assert "InsuredPerson.tokurei" in one["withheld"], name
        assert shown.json()["correction"]["facility"] is None
        # The change is reported; its facility is not (it goes on paper).
        assert row[2] == KIND_JA[Kind.TOKUREI_KEEP]
        assert (row[6], row[7]) == ("", "")
        assert facility["name"] not in report.text
    else:
        assert shown.json()["facility"]["name"] == facility["name"]
        assert shown.json()["correction"]["facility"]["town"] == KOMATSU
        for name, one in people.items():
            assert KOMATSU in [p["facility_town"] for p in one["periods"]], name
        assert insured["tokurei"]["facility_name"] == facility["name"]
        assert (row[6], row[7]) == (facility["name"], KOMATSU)
        assert facility["name"] in pages["console insured (kaigo.qualification)"].text
        assert facility["name"] in pages["console determination"].text
