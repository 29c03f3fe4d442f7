"""Four eyes on a town's identity provider (review finding C2): attacks through HTTP.

The attack: one town admin PUTs the town's issuer with the same settings plus a
second inline key (kid ``rogue``), mints a 市民課 clerk's token with it and reads
個人番号 — or changes a claim mapping, ``jwks_uri``, URL, audience or algorithms
to the same effect without a key. Now every change after enrolment is only a
proposal until a different admin of the town, authenticated by the issuer in
effect, approves exactly that proposal (id and digest). See
docs/separation-of-duties.md, "Four eyes on identity".

The towns here run with production settings (built-in tokens cannot act for a
town), enrolled with an IdP whose keys the test holds, so every admin and clerk
is a token of the town's own IdP, as in a real deployment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from litestar import Litestar

from shared_gov.app import create_app
from shared_gov.audit.recorder import Actor
from shared_gov.auth import issuers
from shared_gov.auth.principal import Principal
from shared_gov.auth.registry import parse_issuer_config
from shared_gov.db import Database
from shared_gov.errors import DomainError
from shared_gov.settings import Settings
from tests.conftest import auth
from tests.factories import resident_body
from tests.security.sod_helpers import OwnIdp, change_of, events, manifest_json, town_code

_ROGUE: list[RSAKey] = []


def rogue_key() -> RSAKey:
    if not _ROGUE:
        _ROGUE.append(RSAKey.generate_key(2048, private=True))
    return _ROGUE[0]


def rogue_jwk(kid: str = "rogue") -> dict[str, Any]:
    public = dict(rogue_key().as_dict(private=False))
    public.update({"kid": kid, "use": "sig"})
    return public


def mint(idp: OwnIdp, key: RSAKey, kid: str, **claims: Any) -> str:
    """A token of ``idp``'s URL and audience signed with ``key`` under ``kid``."""
    now = int(time.time())
    body = {
        "iss": idp.url,
        "aud": idp.audience,
        "sub": "ghost-clerk",
        "dept": "shimin",
        "roles": ["staff"],
        "amr": ["pwd", "mfa"],
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    return jwt.encode({"alg": "RS256", "kid": kid}, body, key)


def _actor(subject: str, code: str) -> Actor:
    return Actor(subject, code, "somu", ("admin",), "single", None, None, None)


def url(code: str, tail: str = "") -> str:
    return f"/api/v1/tenants/{code}{tail}"


@pytest.fixture
async def prod(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The app with production settings (env=prod) on the test database."""
    assert settings.database_url
    app: Litestar = create_app(dataclasses.replace(settings, env="prod"), settings.database_url)
    started, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(run())
    await started.wait()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver.local") as c:
        yield c
    stop.set()
    await task


@dataclasses.dataclass
class Town:
    code: str
    idp: OwnIdp
    resident: str
    """A resident's URL (with 個人番号 on record)."""

    def admin(self, sub: str) -> dict[str, str]:
        return auth(self.idp.mint(sub, "somu", ["admin"]), None)

    def clerk(self, sub: str = "clerk-1") -> dict[str, str]:
        return auth(self.idp.mint(sub, "shimin", ["staff"]))


async def enrolled_town(
    client: Any, prod: httpx.AsyncClient, tokens: dict[str, str], base5: str
) -> Town:
    """A new town, enrolled by its own IdP (first admin ``j-1``), with one resident."""
    code = town_code(base5)
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert created.status_code == 201, created.text
    idp = OwnIdp(f"https://idp.town{code}.example")
    body = {"code": created.json()["enrolment_code"], "first_admin": "j-1", "issuer": idp.config()}
    enrolled = await prod.post(url(code, "/enrolment"), json=body)
    assert enrolled.status_code == 201, enrolled.text
    town = Town(code, idp, "")
    person = await prod.post(url(code, "/residents"), json=resident_body(), headers=town.clerk())
    assert person.status_code == 201, person.text
    town.resident = person.headers["location"]
    read = await prod.get(town.resident, headers=town.clerk())
    assert read.status_code == 200, read.text
    assert read.json()["individual_number"]
    return town


def with_rogue_key(idp: OwnIdp) -> dict[str, Any]:
    """The town's settings unchanged plus a second inline key, kid ``rogue``."""
    config = idp.config()
    config["jwks"] = {"keys": [*config["jwks"]["keys"], rogue_jwk()]}
    return config


async def approve(
    prod: httpx.AsyncClient, town: Town, proposal: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    return await prod.post(
        url(town.code, f"/issuer/pending/{proposal['id']}/approve"),
        json={"digest": proposal["digest"]},
        headers=headers,
    )


async def current_issuer(prod: httpx.AsyncClient, town: Town) -> dict[str, Any]:
    r = await prod.get(url(town.code, "/issuer"), headers=town.admin("j-2"))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


# --- a single admin changes nothing --------------------------------------------


async def test_single_admin_adding_a_key_is_only_a_proposal(
    client: Any, prod: httpx.AsyncClient, db: Database, tokens: dict[str, str]
) -> None:
    """The review's attack: j-1 adds kid ``rogue`` (202, pending, before/after in the
    log), then a clerk token signed with the rogue key reads nothing (401) — the
    issuer in effect is unchanged."""
    town = await enrolled_town(client, prod, tokens, "47961")
    before = await current_issuer(prod, town)
    r = await prod.put(
        url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
    )
    assert r.status_code == 202, r.text
    proposal = r.json()
    assert proposal["status"] == "pending"
    assert proposal["proposed_by"] == "j-1"
    assert len(proposal["digest"]) == 64
    assert proposal["expires_at"]
    ghost = auth(mint(town.idp, rogue_key(), "rogue"))
    assert (await prod.get(town.resident, headers=ghost)).status_code == 401
    assert await current_issuer(prod, town) == before
    proposed = change_of((await events(db, town.code, "admin.issuer.propose", "allowed"))[-1])
    assert proposed["before"]["inline_kids"] == ["own-1"]
    assert proposed["after"]["inline_kids"] == ["own-1", "rogue"]
    assert proposed["proposal"] == proposal["id"]
    assert not await events(db, town.code, "admin.issuer", "allowed")
    pending = await prod.get(url(town.code, "/issuer/pending"), headers=town.admin("j-2"))
    assert pending.status_code == 200
    assert pending.json()["id"] == proposal["id"]


CHANGE_TOWNS = {
    "staff_claim": "47962",
    "department_claim": "47963",
    "roles_claim": "47964",
    "audience": "47965",
    "algorithms": "47966",
    "url": "47967",
    "jwks": "47968",
}


@pytest.mark.parametrize(
    ("change", "token_claims", "status"),
    [
        # The IdP's users may set their own e-mail: mapped to the staff id, one of
        # them becomes whoever they name. Under the mapping in effect: no subject.
        ({"staff_claim": "email"}, {"email": "clerk-1", "sub": None}, 401),
        # A department from a claim the admin controls: no department now, so no
        # department purposes (403).
        ({"department_claim": "org"}, {"org": "shimin", "dept": None}, 403),
        ({"roles_claim": "groups"}, {"groups": ["staff"], "roles": None}, 401),
        ({"audience": "somewhere-else"}, {"aud": "somewhere-else"}, 401),
        ({"algorithms": ["PS256"]}, None, None),
        ({"url": "https://idp.rogue.example"}, {"iss": "https://idp.rogue.example"}, 401),
        ({"jwks": None, "jwks_uri": "https://8.8.8.8/jwks"}, None, None),
    ],
    ids=[
        "staff_claim",
        "department_claim",
        "roles_claim",
        "audience",
        "algorithms",
        "url",
        "jwks_uri",
    ],
)
async def test_single_admin_changing_what_decides_who_is_who_is_only_a_proposal(
    client: Any,
    prod: httpx.AsyncClient,
    tokens: dict[str, str],
    change: dict[str, Any],
    token_claims: dict[str, Any] | None,
    status: int | None,
) -> None:
    """Claim mappings, audience, algorithms, URL and jwks_uri: each is proposed (202)
    and nothing changes — a token shaped for the proposed settings is refused."""
    town = await enrolled_town(client, prod, tokens, CHANGE_TOWNS[next(iter(change))])
    before = await current_issuer(prod, town)
    body = {**town.idp.config(), **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = await prod.put(url(town.code, "/issuer"), json=body, headers=town.admin("j-1"))
    assert r.status_code == 202, r.text
    assert await current_issuer(prod, town) == before
    if token_claims is not None:
        token = _shaped(town, token_claims)
        assert (await prod.get(town.resident, headers=auth(token))).status_code == status


def _shaped(town: Town, claims: dict[str, Any]) -> str:
    """A token of the town's key shaped for the proposed settings (None drops a claim)."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": town.idp.url,
        "aud": town.idp.audience,
        "sub": "ghost-clerk",
        "dept": "shimin",
        "roles": ["staff"],
        "amr": ["pwd", "mfa"],
        "iat": now,
        "exp": now + 600,
    }
    for name, value in claims.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return jwt.encode({"alg": "RS256", "kid": "own-1"}, body, town.idp.key)


# --- the second pair of eyes ----------------------------------------------------


async def test_two_admins_put_a_new_key_into_effect(
    client: Any, prod: httpx.AsyncClient, db: Database, tokens: dict[str, str]
) -> None:
    """The legitimate flow: j-1 proposes a new key, j-2 reads the pending proposal and
    approves it with its digest (200): the new key's tokens work from the next request,
    and one event names both admins."""
    town = await enrolled_town(client, prod, tokens, "47969")
    proposed = await prod.put(
        url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
    )
    assert proposed.status_code == 202
    pending = (await prod.get(url(town.code, "/issuer/pending"), headers=town.admin("j-2"))).json()
    assert pending["digest"] == proposed.json()["digest"]
    r = await approve(prod, town, pending, town.admin("j-2"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    assert r.json()["decided_by"] == "j-2"
    new_key = auth(mint(town.idp, rogue_key(), "rogue", sub="clerk-2"))
    assert (await prod.get(town.resident, headers=new_key)).status_code == 200
    assert (
        await prod.get(url(town.code, "/issuer/pending"), headers=town.admin("j-2"))
    ).status_code == 404
    changed = await events(db, town.code, "admin.issuer", "allowed")
    assert len(changed) == 1
    assert changed[0]["actor"] == "j-2"
    reason = change_of(changed[0])
    assert (reason["proposed_by"], reason["approved_by"]) == ("j-1", "j-2")
    assert reason["after"]["inline_kids"] == ["own-1", "rogue"]
    # Approving again: the proposal is no longer pending.
    again = await approve(prod, town, pending, town.admin("j-3"))
    assert again.status_code == 409


SPELLINGS = ["j-1", "J-1", " j-1", "j-1 ", "Ｊ－１", "ｊ-1"]


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_nobody_approves_their_own_proposal_under_any_spelling(
    client: Any, prod: httpx.AsyncClient, db: Database, tokens: dict[str, str], spelling: str
) -> None:
    """j-1's proposal approved by ``j-1`` — or ``J-1``, with white space, in full-width
    forms — is 403, recorded as a denied ``admin.issuer.approve``; nothing changes."""
    town = await enrolled_town(client, prod, tokens, "4797" + str(SPELLINGS.index(spelling)))
    before = await current_issuer(prod, town)
    proposed = await prod.put(
        url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
    )
    r = await approve(prod, town, proposed.json(), town.admin(spelling))
    assert r.status_code == 403, r.text
    assert "own" in r.json()["detail"]
    denied = await events(db, town.code, "admin.issuer.approve", "denied")
    assert denied
    assert "own" in change_of(denied[-1])["refused"]
    assert denied[-1]["actor"] == spelling
    assert await current_issuer(prod, town) == before
    pending = await prod.get(url(town.code, "/issuer/pending"), headers=town.admin("j-2"))
    assert pending.json()["status"] == "pending"


async def test_a_token_of_the_proposed_keys_approves_nothing(
    client: Any, prod: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """An "admin" signed with the proposed (not yet active) rogue key is no admin: 401."""
    town = await enrolled_town(client, prod, tokens, "47976")
    proposed = await prod.put(
        url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
    )
    accomplice = auth(
        mint(town.idp, rogue_key(), "rogue", sub="j-2", dept="somu", roles=["admin"]), None
    )
    r = await approve(prod, town, proposed.json(), accomplice)
    assert r.status_code == 401, r.text
    assert (await prod.get(url(town.code, "/issuer/pending"), headers=town.admin("j-2"))).json()[
        "status"
    ] == "pending"


async def test_approving_a_replaced_or_altered_proposal_is_409(
    client: Any, prod: httpx.AsyncClient, db: Database, tokens: dict[str, str]
) -> None:
    """j-2 read proposal P1; j-1 then replaces it with P2 (audited). Approving P1 is
    409 (replaced); approving P2 with P1's digest is 409 (stale digest); nothing
    changes. P2 with its own digest is what j-2 may approve."""
    town = await enrolled_town(client, prod, tokens, "47977")
    first = await prod.put(
        url(town.code, "/issuer"),
        json={**town.idp.config(), "roles_claim": "groups"},
        headers=town.admin("j-1"),
    )
    seen = first.json()
    second = await prod.put(
        url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
    )
    assert second.status_code == 202
    replaced = change_of((await events(db, town.code, "admin.issuer.propose", "allowed"))[-1])
    assert replaced["replaces"] == [{"id": seen["id"], "status": "replaced"}]
    stale = await approve(prod, town, seen, town.admin("j-2"))
    assert stale.status_code == 409, stale.text
    assert "replaced" in stale.json()["detail"]
    mixed = await approve(
        prod, town, {"id": second.json()["id"], "digest": seen["digest"]}, town.admin("j-2")
    )
    assert mixed.status_code == 409, mixed.text
    assert "digest" in mixed.json()["detail"]
    assert (await current_issuer(prod, town))["roles_claim"] == "roles"
    assert len(await events(db, town.code, "admin.issuer.approve", "denied")) == 2
    ok = await approve(prod, town, second.json(), town.admin("j-2"))
    assert ok.status_code == 200, ok.text


async def test_concurrent_approvals_have_exactly_one_winner(
    client: Any, prod: httpx.AsyncClient, db: Database, tokens: dict[str, str]
) -> None:
    """Five admins approve the same proposal at once: one 200, four 409, one change."""
    town = await enrolled_town(client, prod, tokens, "47978")
    proposed = (
        await prod.put(
            url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
        )
    ).json()
    results = await asyncio.gather(
        *(approve(prod, town, proposed, town.admin(f"j-{n}")) for n in range(2, 7))
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409, 409]
    assert len(await events(db, town.code, "admin.issuer", "allowed")) == 1


async def test_approval_racing_a_replacement_has_one_outcome(
    client: Any, prod: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """Approve P1 while its proposer replaces it with P2: either P1 took effect and P2
    is pending on top of it, or P2 replaced P1 and the approval is 409 — never both,
    never P2 in effect."""
    town = await enrolled_town(client, prod, tokens, "47979")
    p1 = (
        await prod.put(
            url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
        )
    ).json()
    p2_body = {**town.idp.config(), "roles_claim": "groups"}
    approval, replacement = await asyncio.gather(
        approve(prod, town, p1, town.admin("j-2")),
        prod.put(url(town.code, "/issuer"), json=p2_body, headers=town.admin("j-1")),
    )
    assert replacement.status_code == 202, replacement.text
    effective = await current_issuer(prod, town)
    pending = (await prod.get(url(town.code, "/issuer/pending"), headers=town.admin("j-2"))).json()
    assert pending["id"] == replacement.json()["id"]
    assert effective["roles_claim"] == "roles"  # P2 never took effect
    if approval.status_code == 200:
        assert [k["kid"] for k in effective["jwks"]["keys"]] == ["own-1", "rogue"]
        assert [k["kid"] for k in pending["before"]["jwks"]["keys"]] == ["own-1", "rogue"]
    else:
        assert approval.status_code == 409, approval.text
        assert [k["kid"] for k in effective["jwks"]["keys"]] == ["own-1"]


async def test_an_expired_proposal_cannot_be_approved(
    client: Any, prod: httpx.AsyncClient, db: Database, tokens: dict[str, str]
) -> None:
    """A proposal expires (72 h): afterwards it is not pending (404) and its approval
    is 409; nothing changes."""
    town = await enrolled_town(client, prod, tokens, "47980")
    proposed = await prod.put(
        url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
    )
    expires = proposed.json()["expires_at"]
    assert 71 * 3600 < (_parse(expires) - time.time()) <= 72 * 3600
    async with db.catalog() as conn:
        await conn.execute(
            "UPDATE catalog.issuer_proposals SET expires_at = now() - interval '1 second' "
            "WHERE id = $1::uuid",
            proposed.json()["id"],
        )
    assert (
        await prod.get(url(town.code, "/issuer/pending"), headers=town.admin("j-2"))
    ).status_code == 404
    r = await approve(prod, town, proposed.json(), town.admin("j-2"))
    assert r.status_code == 409, r.text
    assert "expired" in r.json()["detail"]
    assert [k["kid"] for k in (await current_issuer(prod, town))["jwks"]["keys"]] == ["own-1"]


def _parse(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def test_a_suspended_proposers_change_is_void(
    client: Any, prod: httpx.AsyncClient, db: Database, tokens: dict[str, str]
) -> None:
    """j-1 proposes, then another admin suspends j-1: the approval is 409 and the
    proposal is void (recorded); nothing changes."""
    town = await enrolled_town(client, prod, tokens, "47981")
    proposed = await prod.put(
        url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
    )
    suspended = await prod.put(
        url(town.code, "/staff/j-1"), json={"active": False}, headers=town.admin("j-3")
    )
    assert suspended.status_code == 200, suspended.text
    r = await approve(prod, town, proposed.json(), town.admin("j-2"))
    assert r.status_code == 409, r.text
    assert "suspended" in r.json()["detail"]
    assert await events(db, town.code, "admin.issuer.void", "allowed")
    assert [k["kid"] for k in (await current_issuer(prod, town))["jwks"]["keys"]] == ["own-1"]
    assert (
        await prod.get(url(town.code, "/issuer/pending"), headers=town.admin("j-2"))
    ).status_code == 404


async def test_removal_takes_two_and_proposals_can_be_withdrawn_or_rejected(
    client: Any, prod: httpx.AsyncClient, db: Database, tokens: dict[str, str]
) -> None:
    """DELETE …/issuer by one admin is a proposal (tokens keep working); its proposer
    withdraws it, another admin rejects the next one; a third is approved and the
    town's tokens are refused from then on."""
    town = await enrolled_town(client, prod, tokens, "47982")
    first = await prod.delete(url(town.code, "/issuer"), headers=town.admin("j-1"))
    assert first.status_code == 202, first.text
    assert first.json()["kind"] == "delete"
    assert (await prod.get(town.resident, headers=town.clerk())).status_code == 200
    withdrawn = await prod.delete(
        url(town.code, f"/issuer/pending/{first.json()['id']}"), headers=town.admin("J-1")
    )
    assert withdrawn.status_code == 204
    assert await events(db, town.code, "admin.issuer.withdraw", "allowed")
    second = await prod.delete(url(town.code, "/issuer"), headers=town.admin("j-1"))
    rejected = await prod.delete(
        url(town.code, f"/issuer/pending/{second.json()['id']}"), headers=town.admin("j-2")
    )
    assert rejected.status_code == 204
    assert await events(db, town.code, "admin.issuer.reject", "allowed")
    assert (await approve(prod, town, second.json(), town.admin("j-2"))).status_code == 409
    third = await prod.delete(url(town.code, "/issuer"), headers=town.admin("j-1"))
    assert (await approve(prod, town, third.json(), town.admin("j-2"))).status_code == 200
    assert (await prod.get(town.resident, headers=town.clerk())).status_code == 401


async def test_others_cannot_see_or_decide_a_towns_proposals(
    client: Any, prod: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """The operator and the town's staff get no say: 404 (operator), 403 (staff)."""
    town = await enrolled_town(client, prod, tokens, "47983")
    proposed = (
        await prod.put(
            url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
        )
    ).json()
    operator = auth(tokens["operator"], None)
    assert (await prod.get(url(town.code, "/issuer/pending"), headers=operator)).status_code == 404
    assert (await approve(prod, town, proposed, operator)).status_code == 404
    staff = auth(town.idp.mint("clerk-1", "shimin", ["staff"]), None)
    assert (await approve(prod, town, proposed, staff)).status_code == 403
    bad = await prod.post(
        url(town.code, "/issuer/pending/not-a-uuid/approve"),
        json={"digest": "0" * 64},
        headers=town.admin("j-2"),
    )
    assert bad.status_code == 404
    malformed = await prod.post(
        url(town.code, f"/issuer/pending/{proposed['id']}/approve"),
        json={"digest": "x"},
        headers=town.admin("j-2"),
    )
    assert malformed.status_code in (400, 422)


# --- service-level checks that HTTP cannot stage in one process -------------------


async def test_a_token_of_a_replaced_issuer_configuration_approves_nothing(
    client: Any, prod: httpx.AsyncClient, db: Database, tokens: dict[str, str]
) -> None:
    """A worker whose cache still holds the previous configuration may verify a token
    of it for a moment; the approval compares the verifying configuration with the
    one in effect, in its transaction: 403."""
    town = await enrolled_town(client, prod, tokens, "47984")
    proposed = (
        await prod.put(
            url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
        )
    ).json()
    stale = Principal("j-2", town.code, "somu", frozenset({"admin"}), frozenset(), "stale")
    actor = _actor("j-2", town.code)
    with pytest.raises(DomainError) as refused:
        await issuers.approve(db, town.code, proposed["id"], proposed["digest"], actor, stale)
    assert refused.value.status == 403


async def test_production_town_without_enrolment_gets_no_single_step_issuer(
    db: Database, client: Any, tokens: dict[str, str]
) -> None:
    """The single-step registration is development's bootstrap only: elsewhere a town
    that is not enrolled enrols with its code (409)."""
    code = town_code("47985")
    created = await client.post(
        "/api/v1/tenants", json=manifest_json(code), headers=auth(tokens["operator"])
    )
    assert created.status_code == 201
    idp = OwnIdp(f"https://idp.town{code}.example")
    config = parse_issuer_config(idp.config())
    actor = _actor("x", code)
    with pytest.raises(DomainError) as refused:
        await issuers.propose(db, code, "replace", config, actor, bootstrap=False)
    assert refused.value.status == 409


DASH_SPELLINGS = ["j\u20101", "j\u22121", "j\u30fc1", "j\uff701", "j\u20131", "j\ufe631"]


async def test_nobody_approves_their_own_proposal_with_a_dash_look_alike(
    client: Any, prod: httpx.AsyncClient, db: Database, tokens: dict[str, str]
) -> None:
    """Review M-2: j-1's proposal approved as ``j‐1`` (U+2010 HYPHEN), ``j−1`` (U+2212
    MINUS SIGN), ``jー1`` (U+30FC), ``jｰ1`` (U+FF70)… is 403 each time; nothing changes."""
    town = await enrolled_town(client, prod, tokens, "47991")
    before = await current_issuer(prod, town)
    proposed = await prod.put(
        url(town.code, "/issuer"), json=with_rogue_key(town.idp), headers=town.admin("j-1")
    )
    assert proposed.status_code == 202, proposed.text
    for spelling in DASH_SPELLINGS:
        r = await approve(prod, town, proposed.json(), town.admin(spelling))
        assert r.status_code == 403, (spelling, r.text)
        assert "own" in r.json()["detail"]
    denied = await events(db, town.code, "admin.issuer.approve", "denied")
    assert [e["actor"] for e in denied][-len(DASH_SPELLINGS) :] == DASH_SPELLINGS
    assert await current_issuer(prod, town) == before
    pending = await prod.get(url(town.code, "/issuer/pending"), headers=town.admin("j-2"))
    assert pending.json()["status"] == "pending"


def test_person_key_folds_spellings_of_one_subject() -> None:
    same = ["j-1", "J-1", " j-1", "j-1\t", "Ｊ－１", "j\u200b-1", "j\u00ad-1", *DASH_SPELLINGS]
    same += ["j\u20111", "j\u20121", "j\u20141", "j\u20151", "j\u20431", "j\ufe581", "j\uff0d1"]
    same += ["j\u2e3a1", "j\u2e3b1", "j\u207b1", "j\u4e001"]
    assert {issuers.person_key(s) for s in same} == {"j-1"}
    assert issuers.person_key("j-2") != issuers.person_key("j-1")
