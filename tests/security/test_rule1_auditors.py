"""Rule 1 in the auditors' API: the final hostile review, attacked through HTTP.

After a protected person P moved one-stop from Komatsu (A) to Kaga (B),
A's auditor searching A's log by P saw ``resident.move_out_confirmed`` with
``actor_tenant`` = Kaga, the exact time, the request id and the agreement
id; Kaga's log has ``resident.move_in_from_town`` under the same request id,
so the two towns' auditors could join P to P's new record. A's auditors now
see that another town acted, on which day, and nothing that names or
matches it; their own town's staff stay fully visible.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any

from shared_gov.auth.issuer import BuiltinIssuer
from tests.conftest import KAGA, KOMATSU, auth
from tests.security.test_rule1_round3 import _arrive, _create, _leave, _midnight
from tests.security.test_support_measures import KOMATSU_API, _protect

MASKED = ("actor", "actor_tenant", "department", "request_id", "client_request_id", "agreement_id")


def _auditor(issuer: BuiltinIssuer) -> str:
    return issuer.mint(subject="r4-auditor", tenant=KOMATSU, department="kansa", roles=["auditor"])


async def _moved(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    komatsu = tokens["komatsu"]
    p = await _create(client, KOMATSU_API, komatsu, family_name_kana="カンサ")
    p = await _protect(client, KOMATSU_API, komatsu, p)
    p = await _leave(client, komatsu, p)
    await _arrive(client, tokens["kaga"], p)
    return p


async def test_old_towns_auditor_cannot_tell_where_a_protected_person_went(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    p = await _moved(client, tokens)
    auditor = _auditor(issuer)
    url = f"{KOMATSU_API}/audit/events"
    r = await client.get(url, params={"subject": p["id"]}, headers=auth(auditor, purpose=None))
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    others = [e for e in events if e["actor_tenant"] != KOMATSU]
    confirmed = [e for e in events if e["action"] == "resident.move_out_confirmed"]
    assert confirmed, [e["action"] for e in events]
    assert others
    for e in others:
        assert all(e[name] is None for name in MASKED), e
        assert _midnight(e["occurred_at"])
    assert KAGA not in r.text
    # Komatsu's own staff (registration, protection, move-out) stay whole.
    own = [e for e in events if e["actor_tenant"] == KOMATSU]
    assert own
    assert all(e["request_id"] and e["actor"] for e in own)
    assert not any(_midnight(e["occurred_at"]) for e in own)

    # The exports say no more than the page.
    for fmt in ("csv", "jsonl"):
        r = await client.get(
            url, params={"subject": p["id"], "format": fmt}, headers=auth(auditor, purpose=None)
        )
        assert r.status_code == 200, r.text
        assert KAGA not in r.text
        rows = (
            list(csv.DictReader(io.StringIO(r.text)))
            if fmt == "csv"
            else [json.loads(line) for line in r.text.splitlines() if line]
        )
        moved = [x for x in rows if x["action"] == "resident.move_out_confirmed"]
        assert moved
        assert all(not x["request_id"] for x in moved)

    # Filtering on who acted does not say what the mask withholds.
    for name, value in (("actor_tenant", KAGA), ("department", "shimin")):
        r = await client.get(
            url,
            params={"subject": p["id"], name: value},
            headers=auth(auditor, purpose=None),
        )
        assert r.status_code == 200, r.text
        assert all(e["actor_tenant"] == KOMATSU for e in r.json()["events"]), r.text


async def test_an_unprotected_persons_other_town_event_stays_whole(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """Control: the mask is for protected and linked residents only."""
    komatsu = tokens["komatsu"]
    q = await _create(client, KOMATSU_API, komatsu, family_name_kana="フツウ")
    q = await _leave(client, komatsu, q)
    await _arrive(client, tokens["kaga"], q)
    r = await client.get(
        f"{KOMATSU_API}/audit/events",
        params={"subject": q["id"]},
        headers=auth(_auditor(issuer), purpose=None),
    )
    assert r.status_code == 200, r.text
    confirmed = [e for e in r.json()["events"] if e["action"] == "resident.move_out_confirmed"]
    assert confirmed
    assert all(e["actor_tenant"] == KAGA and e["request_id"] for e in confirmed)


async def test_analyses_window_and_cursor_do_not_recover_the_other_town_or_time(
    client: Any, tokens: dict[str, str], issuer: BuiltinIssuer
) -> None:
    """The three ways round the mask: analyses, a narrow window, the cursor."""
    p = await _moved(client, tokens)
    auditor = _auditor(issuer)
    url = f"{KOMATSU_API}/audit/events"
    r = await client.get(url, params={"subject": p["id"]}, headers=auth(auditor, purpose=None))
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    masked = [e for e in events if e["actor_tenant"] is None]
    assert masked
    day = masked[0]["occurred_at"]

    # 1. Analyses (grouped by actor, with towns, departments, ids, times)
    # leave other towns' events about a protected person out.
    r = await client.get(
        f"{KOMATSU_API}/audit/analyses",
        params={"office_start": "00:00", "office_end": "00:01", "bulk_threshold": 1},
        headers=auth(auditor, purpose=None),
    )
    assert r.status_code == 200, r.text
    for e in masked:
        assert e["event_id"] not in r.text

    # 2. A window that excludes the day's start finds no masked event, and one
    # that includes it finds them whatever the exact time: narrowing says nothing.
    r = await client.get(
        url,
        params={"subject": p["id"], "from": day, "to": day.replace("T00:00:00", "T00:00:01")},
        headers=auth(auditor, purpose=None),
    )
    assert r.status_code == 200, r.text
    found = {e["event_id"] for e in r.json()["events"]}
    assert {e["event_id"] for e in masked} <= found

    # 3. Paging one row at a time: every cursor after a masked row carries
    # its day only, and the pages together are the whole result.
    # (resident.* only: each page's own audit event names the subject too.)
    events = [e for e in events if e["action"].startswith("resident.")]
    seen: list[str] = []
    after: str | None = None
    for _ in range(len(events) + 1):
        params: dict[str, Any] = {"subject": p["id"], "action": "resident.*", "limit": 1}
        if after:
            params["after"] = after
        r = await client.get(url, params=params, headers=auth(auditor, purpose=None))
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [e["event_id"] for e in body["events"]]
        after = body["next_cursor"]
        if not after:
            break
        assert len(seen) <= len(events), seen
        if body["events"][0]["actor_tenant"] is None:
            raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()
            assert _midnight(raw.partition("|")[0]), raw
    assert sorted(seen) == sorted(e["event_id"] for e in events)
    assert len(seen) == len(set(seen))
