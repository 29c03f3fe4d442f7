"""Offboarding ends what a town agreed to (hostile review, finding C1).

The review's attack: Komatsu (172031) shares with a town under a bilateral
agreement; the operator offboards that town, onboards the same code again,
redeems the new enrolment code with an identity provider the operator holds,
and reads Komatsu's residents under the old agreement id. Offboarding now
revokes every agreement the town is party to (audited in both towns' logs),
an agreement belongs to the incarnation that made it, and a pending one-stop
move-out to the town is bound to that incarnation. Fresh town codes stand in
for 西東京市 (132292), which other tests onboard.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from shared_gov.policy import agreements
from shared_gov.settings import Settings
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KOMATSU, auth
from tests.security.offboarding_helpers import offboard_cli
from tests.security.sod_helpers import OwnIdp, manifest_json, town_code
from tests.sharing.test_agreements import (
    KOMATSU_API,
    komatsu_resident,
    proposal,
    shared_headers,
)
from tests.sharing.test_one_stop_move import leaving_komatsu, move_in

ONE_STOP = "/residents/one-stop-move-in"


async def _create_and_enrol(client: Any, tokens: dict[str, str], code: str, idp: OwnIdp) -> None:
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert created.status_code == 201, created.text
    enrolled = await client.post(
        f"/api/v1/tenants/{code}/enrolment",
        json={
            "code": created.json()["enrolment_code"],
            "first_admin": "r-admin",
            "issuer": idp.config(),
        },
    )
    assert enrolled.status_code == 201, enrolled.text


async def _log(db: Database, town: str, **where: Any) -> list[dict[str, Any]]:
    """The town's events (every incarnation), optionally filtered by column values."""
    conditions = " ".join(f"AND {column} = ${i + 2}" for i, column in enumerate(where))
    async with db.catalog() as conn:
        rows = await conn.fetch(
            f"SELECT * FROM audit.events WHERE tenant = $1 {conditions} ORDER BY occurred_at",
            town,
            *where.values(),
        )
    return [dict(r) for r in rows]


async def test_recreated_town_reads_nothing_under_its_predecessors_agreement(
    client: Any,
    db: Database,
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    tmp_path: Path,
) -> None:
    code = town_code("47941")
    first_idp = OwnIdp(f"https://idp.town{code}.example")
    await _create_and_enrol(client, tokens, code, first_idp)
    proposed = await client.post(
        "/api/v1/agreements",
        json=proposal(recipient=code),
        headers=auth(tokens["komatsu_admin"], purpose=None),
    )
    assert proposed.status_code == 201, proposed.text
    aid = proposed.json()["id"]
    accepted = await client.post(
        f"/api/v1/agreements/{aid}/accept",
        headers=auth(first_idp.mint("r-admin", "somu", ["admin"]), purpose=None),
    )
    assert accepted.status_code == 200, accepted.text
    person = await komatsu_resident(client, tokens, family_name="共有終了")
    url = f"{KOMATSU_API}/residents/{person['id']}"
    before = await client.get(
        url, headers=shared_headers(first_idp.mint("r-kaigo", "kaigo", ["staff"]), aid)
    )
    assert before.status_code == 200, before.text
    old_standing = await agreements.standing_agreement(db, code)
    assert old_standing is not None

    await offboard_cli(monkeypatch, settings, code, tmp_path)

    # Revoked by the offboarding, and recorded in BOTH towns' logs.
    komatsu_view = await client.get(
        f"/api/v1/agreements/{aid}", headers=auth(tokens["komatsu_admin"], purpose=None)
    )
    last = komatsu_view.json()["versions"][-1]
    assert (last["status"], last["changed_by_tenant"]) == ("revoked", code)
    (in_komatsu,) = await _log(db, KOMATSU, action="agreement.revoke", agreement_id=aid)
    assert json.loads(in_komatsu["reason"])["after"]["status"] == "revoked"
    in_town = {e["agreement_id"] for e in await _log(db, code, action="agreement.revoke")}
    assert {aid, str(old_standing)} <= in_town
    (status_change,) = await _log(db, code, action="tenant.offboard")
    assert set(json.loads(status_change["reason"])["after"]["agreements_revoked"]) >= {
        aid,
        str(old_standing),
    }

    # The operator re-creates the town and enrols it with an issuer of their own.
    operator_idp = OwnIdp(f"https://idp.operator.example/{code}")
    await _create_and_enrol(client, tokens, code, operator_idp)
    staff = operator_idp.mint("r-kaigo", "kaigo", ["staff"])
    refused = await client.get(
        url, headers=shared_headers(staff, aid, **{"X-Request-ID": f"c1-{code}"})
    )
    assert refused.status_code == 404, refused.text
    assert person["family_name"] not in refused.text
    logged = await _log(db, code, client_request_id=f"c1-{code}")
    assert logged, "the refused read must be in the new town's log"
    assert {e["outcome"] for e in logged} <= {"denied", "not_found"}
    assert all(e["incarnation"] == 2 for e in logged)
    # A search under it is refused too.
    search = await client.post(
        f"{KOMATSU_API}/residents/search",
        json={"individual_number": person["individual_number"]},
        headers=shared_headers(staff, aid),
    )
    assert search.status_code == 404, search.text
    assert person["id"] not in search.text

    # The new incarnation is party to nothing of its predecessor's.
    admin = auth(operator_idp.mint("r-admin", "somu", ["admin"]), purpose=None)
    assert (await client.get(f"/api/v1/agreements/{aid}", headers=admin)).status_code == 404
    for step in ("accept", "revoke"):
        r = await client.post(f"/api/v1/agreements/{aid}/{step}", headers=admin)
        assert r.status_code == 404, (step, r.text)
    listed = await client.get(f"/api/v1/agreements?tenant={code}", headers=admin)
    assert listed.status_code == 200
    ids = {a["id"] for a in listed.json()}
    assert aid not in ids
    assert str(old_standing) not in ids
    new_standing = await agreements.standing_agreement(db, code)
    assert new_standing is not None
    assert new_standing != old_standing
    assert str(new_standing) in ids

    # Even an agreement whose revocation was somehow lost (written back to
    # "active" behind the application's back) binds the past incarnation only.
    async with db.catalog() as conn:
        await conn.execute(
            "INSERT INTO catalog.agreement_versions (agreement_id, version, status, departments, "
            "purposes, fields, actions, legal_basis, valid_from, valid_until, changed_by, "
            "changed_by_tenant) SELECT agreement_id, version + 1, 'active', departments, "
            "purposes, fields, actions, legal_basis, valid_from, valid_until, 'tamper', NULL "
            "FROM catalog.agreement_versions WHERE agreement_id = $1 "
            "ORDER BY version DESC LIMIT 1",
            uuid.UUID(aid),
        )
    again = await client.get(url, headers=shared_headers(staff, aid))
    assert again.status_code == 404, again.text


async def test_pending_move_out_to_an_offboarded_town_binds_no_later_incarnation(
    client: Any,
    db: Database,
    tokens: dict[str, str],
    issuer: BuiltinIssuer,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """A Komatsu resident's pending move-out names the town; the town is offboarded
    and re-created: its 市民課 neither reads the 転出証明書 under Komatsu's standing
    agreement nor confirms the move one-stop (by id or by 住民票コード)."""
    code = town_code("47942")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert created.status_code == 201, created.text
    leaving = await leaving_komatsu(client, tokens, to_tenant=code, family_name="転出保留")
    clerk = issuer.mint(
        subject="r-shimin", tenant=code, department="shimin", roles=["staff"], mfa=True
    )
    standing = str(await agreements.standing_agreement(db, KOMATSU))
    url = f"{KOMATSU_API}/residents/{leaving['id']}"
    headers = shared_headers(clerk, standing, purpose="juki.registration")
    assert (await client.get(url, headers=headers)).status_code == 200

    await offboard_cli(monkeypatch, settings, code, tmp_path)
    again = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert again.status_code == 201, again.text

    r = await client.get(url, headers=headers)
    assert r.status_code == 404, r.text
    assert leaving["family_name"] not in r.text
    moves_in = (move_in(leaving["id"]), move_in(juminhyo_code=leaving["juminhyo_code"]))
    for body in moves_in:
        r = await client.post(f"/api/v1/tenants/{code}{ONE_STOP}", json=body, headers=auth(clerk))
        assert r.status_code in (403, 404, 409), r.text
        assert leaving["family_name"] not in r.text
    # Komatsu still has the move-out (its own record), pending, and the new town
    # has no resident from it.
    state = await client.get(url, headers=auth(tokens["komatsu"]))
    assert state.json()["state"] == "moved_out"
    async with db.catalog() as conn:
        schema = tenant_names(code, settings.role_prefix).schema
        arrived = await conn.fetchval(f'SELECT count(*) FROM "{schema}".residents')
    assert arrived == 0
