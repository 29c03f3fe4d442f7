"""End-to-end smoke: register, read, search, move, history, household."""

from __future__ import annotations

from typing import Any

from tests.conftest import KAGA, auth
from tests.factories import resident_body


async def test_register_and_read(client: Any, tokens: dict[str, str]) -> None:
    """A registered resident can be read back with an ETag and an 8-digit 宛名番号."""
    r = await client.post(
        f"/api/v1/tenants/{KAGA}/residents", json=resident_body(), headers=auth(tokens["kaga"])
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"].endswith(body["id"])
    assert r.headers["etag"] == '"v1"'
    assert len(body["atena_no"]) == 8
    g = await client.get(r.headers["location"], headers=auth(tokens["kaga"]))
    assert g.status_code == 200
    assert g.json()["family_name"] == "山田"
