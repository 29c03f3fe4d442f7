"""The auditors' proof endpoints: answers verify offline with the code printed in
docs/audit.md (hashlib + cryptography only), and only the town's auditors may ask."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC
from typing import Any

import pytest
from litestar import Litestar

from shared_gov.api.proofs import AuditController
from shared_gov.audit.sealer import Sealer
from shared_gov.db import Database
from tests.audit.test_sealer import record, seal_until
from tests.conftest import KAGA, KOMATSU, ROOT, auth

BASE = f"/api/v1/tenants/{KAGA}/audit"
b = base64.b64decode


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """The first Python block under "Verifying by hand" in docs/audit.md, executed."""
    text = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    section = text[text.index("## Verifying by hand") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), "docs/audit.md", "exec"), namespace)  # noqa: S102 - our own docs
    return namespace


@pytest.fixture(scope="module")
def routes(app: Litestar, client: Any) -> None:
    """Mount the controller on the session's app unless app.py already does."""
    if not any(route.path.endswith("/audit/proofs/inclusion") for route in app.routes):
        app.register(AuditController)


@pytest.fixture
def kaga_key(db: Database) -> bytes:
    return db.keyring.provider.signing_public_key(KAGA)


async def _checkpoint(client: Any, token: str) -> dict[str, Any]:
    r = await client.get(f"{BASE}/checkpoint", headers=auth(token, purpose=None))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def _by_hand(row: Any) -> dict[str, Any]:
    """An event row encoded per the table in docs/audit.md, independently of tlog."""
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if key == "event_id":
            value = str(value)
        elif key == "occurred_at":
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        elif key == "xid":
            value = str(value)
        elif key == "subjects":
            value = [str(v) for v in value]
        out[key] = value
    return out


async def test_checkpoint_inclusion_and_consistency_verify_offline(
    client: Any,
    routes: None,
    tokens: dict[str, str],
    db: Database,
    doc: dict[str, Any],
    kaga_key: bytes,
) -> None:
    sealer = Sealer(db)
    await seal_until(sealer, db, await record(db, KAGA, "api-old"))
    old = await _checkpoint(client, tokens["kaga_auditor"])
    assert b(old["public_key"]) == kaga_key
    assert doc["verify_checkpoint"](old, kaga_key)
    assert (
        old["body"].encode()
        == (
            f"shared-gov/audit/{KAGA}\n{old['tree_size']}\n{old['root_hash']}\n"
            f"time {old['signed_at']}\n"
        ).encode()
    )

    events = [await record(db, KAGA, f"api-new-{i}") for i in range(5)]
    await seal_until(sealer, db, *events)
    new = await _checkpoint(client, tokens["kaga_auditor"])
    assert doc["verify_checkpoint"](new, kaga_key)
    assert new["tree_size"] >= old["tree_size"] + 5
    # Another key, or a changed field, and the signature fails.
    assert not doc["verify_checkpoint"](new, db.keyring.provider.signing_public_key(KOMATSU))
    assert not doc["verify_checkpoint"]({**new, "tree_size": new["tree_size"] + 1}, kaga_key)
    subtrees = [b(s["hash"]) for s in new["subtrees"]]
    root = subtrees[-1]
    for h in reversed(subtrees[:-1]):
        root = doc["node"](h, root)
    assert root == b(new["root_hash"])

    async with db.catalog() as conn:
        from shared_gov.audit.tlog import EVENT_SELECT

        rows = {
            r["event_id"]: r
            for r in await conn.fetch(
                f"SELECT {EVENT_SELECT} FROM audit.events AS e WHERE e.event_id = ANY($1::uuid[])",
                events,
            )
        }
    for event_id in events:
        r = await client.get(
            f"{BASE}/proofs/inclusion",
            params={"event": str(event_id)},
            headers=auth(tokens["kaga_auditor"], purpose=None),
        )
        assert r.status_code == 200, r.text
        proof = r.json()
        assert proof["tree_size"] == new["tree_size"]
        leaf = b(proof["leaf_hash"])
        assert leaf == doc["leaf_of_event"](_by_hand(rows[event_id]))
        path = [b(p) for p in proof["path"]]
        assert doc["verify_inclusion"](
            leaf, proof["seq"], new["tree_size"], path, b(new["root_hash"])
        )
        assert not doc["verify_inclusion"](
            leaf, proof["seq"], new["tree_size"], path, b(old["root_hash"])
        )
        if path:
            bad = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
            assert not doc["verify_inclusion"](
                leaf, proof["seq"], new["tree_size"], bad, b(new["root_hash"])
            )

    r = await client.get(
        f"{BASE}/proofs/consistency",
        params={"first": old["tree_size"], "second": new["tree_size"]},
        headers=auth(tokens["kaga_auditor"], purpose=None),
    )
    assert r.status_code == 200, r.text
    consistency = r.json()
    assert consistency["first_checkpoint"]["root_hash"] == old["root_hash"]
    assert consistency["second_checkpoint"]["root_hash"] == new["root_hash"]
    proof = [b(p) for p in consistency["proof"]]
    args = (old["tree_size"], new["tree_size"], b(old["root_hash"]), b(new["root_hash"]))
    assert doc["verify_consistency"](*args, proof)
    assert not doc["verify_consistency"](*args, proof[:-1])
    assert not doc["verify_consistency"](
        old["tree_size"], new["tree_size"], b"\x00" * 32, b(new["root_hash"]), proof
    )

    # Every earlier size the API answers for is consistent with the latest head.
    for first in range(1, new["tree_size"] + 1, max(1, new["tree_size"] // 7)):
        r = await client.get(
            f"{BASE}/proofs/consistency",
            params={"first": first, "second": new["tree_size"]},
            headers=auth(tokens["kaga_auditor"], purpose=None),
        )
        assert r.status_code == 200
        assert len(r.json()["proof"]) <= 2 * new["tree_size"].bit_length()


async def test_only_the_towns_auditors_may_ask(
    client: Any, routes: None, tokens: dict[str, str], issuer: Any, db: Database
) -> None:
    await seal_until(Sealer(db), db, await record(db, KOMATSU, "api-auth"))
    komatsu_auditor = issuer.mint(
        subject="m-9001", tenant=KOMATSU, department="kansa", roles=["auditor"]
    )
    kaga_admin = issuer.mint(subject="k-adm", tenant=KAGA, department="somu", roles=["admin"])
    for path in ("checkpoint", "proofs/consistency?first=1&second=1"):
        url = f"{BASE}/{path}"
        staff = await client.get(url, headers=auth(tokens["kaga"], purpose=None))
        assert staff.status_code == 403
        assert staff.json()["reason"] == "reading the audit log needs the auditor role"
        admin = await client.get(url, headers=auth(kaga_admin, purpose=None))
        assert admin.status_code == 403
        for token in (tokens["komatsu"], komatsu_auditor, tokens["operator"]):
            assert (await client.get(url, headers=auth(token, purpose=None))).status_code == 404
        assert (await client.get(url)).status_code == 401
    # Komatsu's auditor reads Komatsu's log.
    own = await client.get(
        f"/api/v1/tenants/{KOMATSU}/audit/checkpoint", headers=auth(komatsu_auditor, purpose=None)
    )
    assert own.status_code == 200
    assert own.json()["tenant"] == KOMATSU


async def test_bad_questions(
    client: Any, routes: None, tokens: dict[str, str], db: Database
) -> None:
    await seal_until(Sealer(db), db, await record(db, KAGA, "api-bad"))
    headers = auth(tokens["kaga_auditor"], purpose=None)
    head = await _checkpoint(client, tokens["kaga_auditor"])
    size = head["tree_size"]
    cases = {
        f"{BASE}/proofs/consistency?first=2&second=1": 400,
        f"{BASE}/proofs/consistency?first=0&second=1": 422,
        f"{BASE}/proofs/consistency?first=1": 400,
        f"{BASE}/proofs/consistency?first=1&second={size + 1000}": 404,
        f"{BASE}/proofs/inclusion?event={uuid.uuid4()}": 404,
        f"{BASE}/proofs/inclusion?event=not-a-uuid": 422,
        "/api/v1/tenants/999999/audit/checkpoint": 404,
    }
    for url, status in cases.items():
        r = await client.get(url, headers=headers)
        assert r.status_code == status, (url, r.text)
    same = await client.get(
        f"{BASE}/proofs/consistency?first={size}&second={size}", headers=headers
    )
    assert same.status_code == 200
    assert same.json()["proof"] == []


def test_docs_snippet_uses_only_hashlib_and_cryptography() -> None:
    text = (ROOT / "docs" / "audit.md").read_text(encoding="utf-8")
    section = text[text.index("## Verifying by hand") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    imports = re.findall(r"^(?:from|import) ([\w.]+)", code.group(1), re.MULTILINE)
    assert {i.split(".")[0] for i in imports} <= {"base64", "hashlib", "json", "cryptography"}
