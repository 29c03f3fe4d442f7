"""The README's resident flows, as both deployment tests run them.

``tests/deploy/test_production_serve.py`` (the service on this machine) and
``tests/deploy/test_container.py`` (the image) check the same thing: a town's
staff register, read, move, list the history of and search for a resident
against a real deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from shared_gov.clock import today_jst
from tests.factories import resident_body


@dataclass(frozen=True, slots=True)
class FlowResult:
    resident_id: str
    body: dict[str, Any]
    """What was registered (to check that no log line holds its values)."""
    created: httpx.Response
    read: httpx.Response
    moved: httpx.Response


async def resident_flows(http: httpx.AsyncClient, town: str, headers: dict[str, str]) -> FlowResult:
    """Register, read, move, history, search; asserts each answer."""
    base = f"/api/v1/tenants/{town}"
    body: dict[str, Any] = resident_body()
    created = await http.post(f"{base}/residents", json=body, headers=headers)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    read = await http.get(f"{base}/residents/{rid}", headers=headers)
    assert read.status_code == 200, read.text
    assert read.json()["family_name"] == body["family_name"]
    today = today_jst()
    moved = await http.post(
        f"{base}/residents/{rid}/moves",
        headers={**headers, "If-Match": read.headers["etag"]},
        json={
            "event": "move_within_town",
            "address": "石川県加賀市山代温泉1-1",
            "move_date": (today - timedelta(days=1)).isoformat(),
            "notified_on": today.isoformat(),
        },
    )
    assert moved.status_code == 200, moved.text
    history = await http.get(f"{base}/residents/{rid}/history", headers=headers)
    assert history.status_code == 200, history.text
    assert len(history.json()["entries"]) == 2
    found = await http.post(
        f"{base}/residents/search",
        headers=headers,
        json={"family_name_kana": body["family_name_kana"], "birth_date": body["birth_date"]},
    )
    assert found.status_code == 200, found.text
    assert rid in found.text
    return FlowResult(rid, body, created, read, moved)
