from typing import Any
from tests.conftest import KAGA, auth

async def test_probe(client: Any, tokens: dict[str, str]) -> None:
    h = auth(tokens["kaga"])
    base = f"/api/v1/tenants/{KAGA}/residents"
    for m, p, raw in [("DELETE", "/health", None), ("GET", base + "/search", None), ("POST", base, b'{"a" 1}'), ("POST", base, b'{"family_name": "MARKER_x'), ("POST", base, b'\xff\xfe'), ("POST", base, b'{"a":1}{')]:
        kw = {"headers": {**h, "content-type": "application/json"}}
        if raw is not None: kw["content"] = raw
        r = await client.request(m, p, **kw)
        print(m, p, raw, r.status_code, dict(r.headers), r.text)
