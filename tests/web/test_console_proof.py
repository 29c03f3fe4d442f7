"""What the event page gives the browser's own proof check (static/proof.js):
the proof the API serves, in data attributes, and the script as a static
file of the console (the policy allows no inline script)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from html import unescape
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared_gov.audit import merkle
from tests.conftest import KAGA, auth

from .flows import sign_in


async def _sealed_event(client: Any, tokens: dict[str, str]) -> dict[str, Any]:
    r = await client.get(
        f"/api/v1/tenants/{KAGA}/residents/{uuid.uuid4()}", headers=auth(tokens["kaga"])
    )
    assert r.status_code == 404
    for _ in range(100):
        listed = await client.get(
            f"/api/v1/tenants/{KAGA}/audit/events",
            params={"actor": "k-0001", "action": "resident.read", "order": "desc", "limit": "1"},
            headers=auth(tokens["kaga_auditor"], None),
        )
        events = listed.json()["events"]
        if events:
            proof = await client.get(
                f"/api/v1/tenants/{KAGA}/audit/proofs/inclusion",
                params={"event": events[0]["event_id"]},
                headers=auth(tokens["kaga_auditor"], None),
            )
            if proof.status_code == 200:
                body: dict[str, Any] = proof.json()
                return body
        await asyncio.sleep(0.2)
    raise AssertionError("no sealed event")


def _data(html: str, name: str) -> str:
    found = re.search(rf'data-{name}="([^"]*)"', html)
    assert found, name
    return unescape(found.group(1))


async def test_the_event_page_hands_the_browser_the_signed_proof(
    browser: httpx.AsyncClient, client: Any, tokens: dict[str, str]
) -> None:
    proof = await _sealed_event(client, tokens)
    await sign_in(browser, KAGA, "audit-0001")
    page = await browser.get(f"/console/towns/{KAGA}/audit/events/{proof['event_id']}")
    assert page.status_code == 200, page.text
    html = page.text
    # The section is hidden until the script shows it (no script: the server's check only).
    assert re.search(r'<section class="browser-proof"[^>]*\bhidden\b', html)
    leaf = _data(html, "leaf-hash")
    path = _data(html, "path").split()
    body = _data(html, "body")
    # The leaf is the API's; the path and checkpoint may be of a newer checkpoint
    # (the sealer signs every few seconds), so check them as the script will.
    assert leaf == proof["leaf_hash"]
    assert int(_data(html, "seq")) == proof["seq"]
    lines = body.split("\n")
    assert lines[0] == proof["checkpoint"]["body"].split("\n")[0]  # the same log
    assert int(lines[1]) >= proof["tree_size"]
    Ed25519PublicKey.from_public_bytes(base64.b64decode(_data(html, "public-key"))).verify(
        base64.b64decode(_data(html, "signature")), body.encode()
    )
    assert merkle.verify_inclusion(
        base64.b64decode(leaf),
        proof["seq"],
        int(lines[1]),
        [base64.b64decode(p) for p in path],
        base64.b64decode(lines[2]),
    )
    # The leaf's own bytes: the event's canonical form, which hashes to the leaf.
    canonical = base64.b64decode(_data(html, "canonical"))
    assert json.loads(canonical)["event_id"] == proof["event_id"] == _data(html, "event-id")
    assert merkle.leaf_hash(canonical) == base64.b64decode(leaf)
    # Its sentences in the page's language.
    assert "お使いのブラウザで確認しました" in _data(html, "text-ok")
    # The script is a file of the console's, versioned, never inline.
    script = re.search(
        r'<script src="(/console/static/[0-9a-f]{12}/proof\.js)" defer></script>', html
    )
    assert script, "no proof.js"
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    served = await browser.get(script.group(1))
    assert served.status_code == 200
    assert "javascript" in served.headers["content-type"]
    assert "crypto.subtle.digest" in served.text
    assert "script-src 'self'" in served.headers["content-security-policy"]
