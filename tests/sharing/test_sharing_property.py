"""Property: over random agreements, staff and requests, a cross-town response
holds only fields in (agreement's fields ∩ what the staff member may read at
home), and no cross-town response exists without an agreement in force.

Each example proposes (and maybe accepts, revokes) a real agreement through
the API and reads a real Komatsu record as a freshly minted Kaga staff
member; Cedar decides on a real PostgreSQL. The oracle below restates the
rules independently of the policies.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.policy.purposes import POLICY_FIELDS, purposes
from tests.conftest import KAGA, KOMATSU, auth
from tests.sharing.test_agreements import komatsu_resident, proposal

KOMATSU_API = f"/api/v1/tenants/{KOMATSU}"
DEPARTMENTS = ("shimin", "kaigo", "zeimu", "kaikei", "hoken")
PURPOSES = (
    "juki.registration",
    "juki.certificate",
    "kaigo.qualification",
    "kaigo.premium",
    "zeimu.assessment",
)
WINDOWS = {
    "current": (-3600, 86_400),
    "expired": (-86_400, -3600),
    "future": (3600, 86_400),
}
_subjects = itertools.count(1)

# Weighted towards agreements in force and requests that fit them, so that
# most examples exercise the field filtering rather than the 404.
agreements_ = st.fixed_dictionaries(
    {
        "departments": st.lists(st.sampled_from(DEPARTMENTS), min_size=1, max_size=3, unique=True),
        "purposes": st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3, unique=True),
        "fields": st.lists(st.sampled_from(POLICY_FIELDS), min_size=1, max_size=10, unique=True),
        "actions": st.sampled_from([["read"], ["read", "search"], ["read"], ["search"]]),
        "window": st.sampled_from(["current"] * 8 + ["expired", "future"]),
        "status": st.sampled_from(["active"] * 8 + ["proposed", "revoked"]),
    }
)


def requests_(a: dict[str, Any], grants: dict[str, set[str]]) -> Any:
    @st.composite
    def draw(draw: Any) -> dict[str, Any]:
        department = draw(
            st.one_of(st.sampled_from(a["departments"]), st.sampled_from(DEPARTMENTS))
        )
        fitting = sorted(set(a["purposes"]) & grants.get(department, set()))
        purpose = draw(
            st.one_of(st.sampled_from(fitting), st.sampled_from(fitting), st.sampled_from(PURPOSES))
            if fitting
            else st.sampled_from(PURPOSES)
        )
        return {
            "department": department,
            "purpose": purpose,
            "mfa": draw(st.booleans()),
            "agreement": draw(st.sampled_from(["this"] * 8 + ["none", "unknown"])),
        }

    return draw()


@pytest.fixture(scope="module")
async def person(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    return await komatsu_resident(client, tokens, phone="0761-00-1111", domicile="石川県小松市")


@pytest.fixture(scope="module")
async def department_purposes(client: Any, tokens: dict[str, str]) -> dict[str, set[str]]:
    r = await client.get(
        f"/api/v1/tenants/{KAGA}/departments", headers=auth(tokens["kaga_admin"], purpose=None)
    )
    assert r.status_code == 200
    return {d["code"]: set(d["purposes"]) for d in r.json() if d["active"]}


async def _make(client: Any, tokens: dict[str, str], a: dict[str, Any]) -> str:
    start, end = WINDOWS[a["window"]]
    now = datetime.now(UTC)
    body = proposal(
        recipient_departments=a["departments"],
        purposes=a["purposes"],
        fields=a["fields"],
        actions=a["actions"],
        valid_from=(now + timedelta(seconds=start)).isoformat(),
        valid_until=(now + timedelta(seconds=end)).isoformat(),
    )
    r = await client.post(
        "/api/v1/agreements", json=body, headers=auth(tokens["komatsu_admin"], purpose=None)
    )
    assert r.status_code == 201, r.text
    aid: str = r.json()["id"]
    if a["status"] in ("active", "revoked"):
        ok = await client.post(
            f"/api/v1/agreements/{aid}/accept", headers=auth(tokens["kaga_admin"], purpose=None)
        )
        assert ok.status_code == 200
    if a["status"] == "revoked":
        ok = await client.post(
            f"/api/v1/agreements/{aid}/revoke", headers=auth(tokens["komatsu_admin"], purpose=None)
        )
        assert ok.status_code == 200
    return aid


def _expected_fields(a: dict[str, Any], q: dict[str, Any], granted: set[str]) -> set[str]:
    """The oracle: what may cross, or the empty set when nothing may."""
    in_force = a["status"] == "active" and a["window"] == "current"
    if (
        q["agreement"] != "this"
        or not in_force
        or q["department"] not in a["departments"]
        or q["purpose"] not in a["purposes"]
        or q["purpose"] not in granted
        or "read" not in a["actions"]
    ):
        return set()
    purpose = purposes()[q["purpose"]]
    fields = set(a["fields"]) & set(purpose.fields)
    if not (q["mfa"] and purpose.individual_number):
        fields.discard("individual_number")
    return fields


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_cross_town_fields_never_exceed_agreement_and_own_permissions(
    client: Any,
    tokens: dict[str, str],
    issuer: BuiltinIssuer,
    person: dict[str, Any],
    department_purposes: dict[str, set[str]],
    data: st.DataObject,
) -> None:
    a = data.draw(agreements_, label="agreement")
    q = data.draw(requests_(a, department_purposes), label="request")
    granted = sorted(department_purposes.get(q["department"], set()) & set(PURPOSES))
    if granted and data.draw(st.sampled_from([True, True, True, False]), label="fits"):
        # Most examples: the agreement names the caller's department and a
        # purpose granted to it, so the field filtering itself is exercised.
        q["purpose"] = data.draw(st.sampled_from(granted), label="granted purpose")
        a["departments"] = sorted({*a["departments"], q["department"]})
        a["purposes"] = sorted({*a["purposes"], q["purpose"]})
    aid = await _make(client, tokens, a)
    token = issuer.mint(
        subject=f"prop-{next(_subjects)}",
        tenant=KAGA,
        department=q["department"],
        roles=["staff"],
        mfa=q["mfa"],
    )
    headers = auth(token, purpose=q["purpose"])
    if q["agreement"] == "this":
        headers["X-Agreement"] = aid
    elif q["agreement"] == "unknown":
        headers["X-Agreement"] = str(uuid.uuid4())
    r = await client.get(f"{KOMATSU_API}/residents/{person['id']}", headers=headers)
    expected = _expected_fields(a, q, department_purposes.get(q["department"], set()))
    if not expected:
        assert r.status_code == 404, (a, q, r.text)
        assert person["family_name"] not in r.text
        return
    assert r.status_code == 200, (a, q, r.text)
    returned = {name for name in POLICY_FIELDS if name in r.json()}
    assert returned == expected, (a, q)
    allowed_by_agreement = set(a["fields"])
    assert returned <= allowed_by_agreement
