"""Helpers of the separation-of-duties tests: fresh towns, a town IdP of one's own, and
the town's audit log read back."""

from __future__ import annotations

import json
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from shared_gov.checkdigits import lgcode_check_digit
from shared_gov.db import Database
from shared_gov.tenancy.manifest import Department, Manifest

_KEYS: list[RSAKey] = []


def town_code(base5: str) -> str:
    """A valid local government code (check digit included) from five digits."""
    return base5 + lgcode_check_digit(base5)


def manifest(code: str, **overrides: Any) -> Manifest:
    fields: dict[str, Any] = {
        "code": code,
        "name": f"試験市{code}",
        "name_kana": "しけんし",
        "prefecture": "東京都",
        "population": 10000,
        "departments": [
            Department(code="shimin", name="市民課", purposes=["juki.registration"]),
            Department(code="kaigo", name="介護保険課", purposes=["kaigo.qualification"]),
            Department(code="somu", name="総務課", purposes=[]),
        ],
    }
    fields.update(overrides)
    return Manifest(**fields)


def manifest_json(code: str, **overrides: Any) -> dict[str, Any]:
    return manifest(code, **overrides).to_json()


class OwnIdp:
    """An identity provider whose private key the test (the attacker) holds."""

    def __init__(self, url: str, audience: str = "shared-gov-town") -> None:
        if not _KEYS:
            _KEYS.append(RSAKey.generate_key(2048, private=True))
        self.key = _KEYS[0]
        self.url = url
        self.audience = audience

    def config(self) -> dict[str, Any]:
        public = dict(self.key.as_dict(private=False))
        public["kid"] = "own-1"
        return {"url": self.url, "audience": self.audience, "jwks": {"keys": [public]}}

    def mint(self, subject: str, dept: str, roles: list[str], mfa: bool = True) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": self.audience,
            "sub": subject,
            "dept": dept,
            "roles": roles,
            "amr": ["pwd", "mfa"] if mfa else ["pwd"],
            "iat": now,
            "exp": now + 600,
        }
        return jwt.encode({"alg": "RS256", "kid": "own-1"}, claims, self.key)


async def events(
    db: Database, town: str, action: str | None = None, outcome: str | None = None
) -> list[dict[str, Any]]:
    """The town's audit events (newest last), optionally of one action and outcome."""
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT action, outcome, actor, resource_type, reason FROM audit.events "
            "WHERE tenant = $1 AND ($2::text IS NULL OR action = $2) "
            "AND ($3::text IS NULL OR outcome = $3) ORDER BY occurred_at",
            town,
            action,
            outcome,
        )
    return [dict(r) for r in rows]


def change_of(event: dict[str, Any]) -> dict[str, Any]:
    """The before/after (or requested/refused) JSON an administrative event carries."""
    value: dict[str, Any] = json.loads(event["reason"])
    return value
