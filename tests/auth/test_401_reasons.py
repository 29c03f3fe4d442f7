"""A 401 says why: each refused token gets the sentence of the check that failed,
in English by default and in Japanese under ``Accept-Language: ja``, with the
usual challenge, and nothing of the token in the answer."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from shared_gov.auth.issuer import BuiltinIssuer
from tests.conftest import KAGA

URL = f"/api/v1/tenants/{KAGA}/residents/{uuid.uuid4()}"
OTHER_KEY = RSAKey.generate_key(2048, private=True)


def _staff(issuer: BuiltinIssuer, **kwargs: Any) -> str:
    claims: dict[str, Any] = {
        "subject": "k-0401",
        "tenant": KAGA,
        "department": "shimin",
        "roles": ["staff"],
    }
    claims.update(kwargs)
    return issuer.mint(**claims)


async def _refused(
    client: httpx.AsyncClient, authorization: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The English and the Japanese 401 for one ``Authorization`` header."""
    headers = {"X-Purpose": "juki.registration"}
    if authorization is not None:
        headers["Authorization"] = authorization
    en = await client.get(URL, headers=headers)
    ja = await client.get(URL, headers={**headers, "Accept-Language": "ja"})
    for r in (en, ja):
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert r.headers["content-type"].startswith("application/problem+json")
        if authorization and "." in authorization:
            for part in authorization.removeprefix("Bearer ").split("."):
                assert part not in r.text
    assert en.headers["content-language"] == "en"
    assert ja.headers["content-language"] == "ja"
    assert ja.json()["title"] == "認証されていません"
    return en.json(), ja.json()


async def test_no_token_says_how_to_send_one(client: httpx.AsyncClient) -> None:
    en, ja = await _refused(client, None)
    assert en["detail"] == "a bearer token is required: send Authorization: Bearer <token>"
    assert "Authorization: Bearer" in ja["detail"]


async def test_another_scheme_says_bearer(client: httpx.AsyncClient) -> None:
    en, ja = await _refused(client, "Basic azowMDAxOnNlY3JldA==")
    assert en["detail"] == "the Authorization header must use the Bearer scheme"
    assert "Bearer 方式" in ja["detail"]


async def test_not_a_jwt(client: httpx.AsyncClient) -> None:
    en, ja = await _refused(client, "Bearer not-a-token")
    assert en["detail"] == "the token is not a well-formed signed JWT"
    assert "JWT" in ja["detail"]


async def test_an_expired_token(client: httpx.AsyncClient, issuer: BuiltinIssuer) -> None:
    token = _staff(issuer, now=int(time.time()) - 9 * 3600, ttl_seconds=3600)
    en, ja = await _refused(client, f"Bearer {token}")
    assert en["detail"] == "the token has expired; get a new one"
    assert "有効期限が切れています" in ja["detail"]


async def test_a_token_not_yet_valid(client: httpx.AsyncClient, issuer: BuiltinIssuer) -> None:
    token = _staff(issuer, now=int(time.time()) + 3600, ttl_seconds=600)
    en, ja = await _refused(client, f"Bearer {token}")
    assert en["detail"].startswith("the token is not valid yet")
    assert "まだ有効になっていません" in ja["detail"]


async def test_another_issuer_names_this_servers(
    client: httpx.AsyncClient, issuer: BuiltinIssuer
) -> None:
    """The newcomer's case: a token minted for another server (another port's URL
    before tokens stopped depending on it, another SHARED_GOV_ISSUER). The answer
    names the issuer this server is, never the token's."""
    elsewhere = dataclasses.replace(issuer, issuer="http://127.0.0.1:9999")
    en, ja = await _refused(client, f"Bearer {_staff(elsewhere)}")
    assert en["detail"].startswith(
        f"the token's issuer (iss) is not this server's ({issuer.issuer})"
    )
    assert "9999" not in en["detail"]
    assert f"このサーバー（{issuer.issuer}）" in ja["detail"]


async def test_another_key_is_a_bad_signature(
    client: httpx.AsyncClient, issuer: BuiltinIssuer
) -> None:
    """Same issuer and key id, signed with another data directory's key."""
    claims = jwt.decode(_staff(issuer), issuer.public_keyset()).claims
    header = {"alg": "RS256", "kid": issuer.kid, "typ": "JWT"}
    en, ja = await _refused(client, f"Bearer {jwt.encode(header, claims, OTHER_KEY)}")
    assert en["detail"] == (
        "the token's signature does not verify (for the built-in issuer: minted with "
        "another data directory's key?)"
    )
    assert "署名を検証できません" in ja["detail"]


async def test_an_unknown_key_id(client: httpx.AsyncClient, issuer: BuiltinIssuer) -> None:
    forged = dataclasses.replace(issuer, key=OTHER_KEY)
    en, ja = await _refused(client, f"Bearer {_staff(forged)}")
    assert en["detail"] == "the token's key id (kid) names no key its issuer publishes"
    assert "鍵ID（kid）" in ja["detail"]


async def test_wrong_audience_names_the_expected_one(
    client: httpx.AsyncClient, issuer: BuiltinIssuer
) -> None:
    other = dataclasses.replace(issuer, audience="another-service")
    en, ja = await _refused(client, f"Bearer {_staff(other)}")
    assert en["detail"] == (
        f"the token is not meant for this service: its audience (aud) is not {issuer.audience}"
    )
    assert issuer.audience in ja["detail"]
    assert "another-service" not in en["detail"] + ja["detail"]


async def test_a_lifetime_too_long_says_the_limit(
    client: httpx.AsyncClient, issuer: BuiltinIssuer
) -> None:
    en, ja = await _refused(client, f"Bearer {_staff(issuer, ttl_seconds=3 * 86400)}")
    assert en["detail"] == ("the token's lifetime is longer than this service accepts (43200 s)")
    assert "43200秒" in ja["detail"]


async def test_unusable_claims(client: httpx.AsyncClient, issuer: BuiltinIssuer) -> None:
    en, ja = await _refused(client, f"Bearer {_staff(issuer, roles=['root'])}")
    assert en["detail"] == "the token's claims name no usable staff id, town and role"
    assert "ロール" in ja["detail"]


async def test_a_town_not_on_this_deployment(
    client: httpx.AsyncClient, issuer: BuiltinIssuer
) -> None:
    """A valid token of a town code this deployment does not serve (offboarded, or
    never onboarded)."""
    token = _staff(issuer, tenant="131016")  # 千代田区: not one of the test's towns
    en, ja = await _refused(client, f"Bearer {token}")
    assert en["detail"] == "the token's town is not active on this deployment"
    assert "稼働していません" in ja["detail"]


@pytest.mark.parametrize("claim", ["sub", "dept"])
async def test_a_non_printable_claim(
    client: httpx.AsyncClient, issuer: BuiltinIssuer, claim: str
) -> None:
    token = _staff(issuer, extra={claim: "k-04\u000001"})
    en, ja = await _refused(client, f"Bearer {token}")
    assert en["detail"] == "a claim of the token holds a control or other non-printable character"
    assert "表示できない文字" in ja["detail"]
