from typing import Any
import json
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body


async def test_probe(client: Any, tokens: dict[str, str]) -> None:
    h = auth(tokens["kaga"])
    base = f"/api/v1/tenants/{KAGA}/residents"
    cases = [
        ("GET", "/nope", None, None),
        ("DELETE", "/health", None, None),
        ("GET", base + "/search", None, None),
        ("POST", base, b'{"a": ', None),
        ("POST", base, b"[1,2]", None),
        ("POST", base, b'"x"', None),
        ("POST", base, b"", None),
        ("POST", base, None, resident_body(MARKER_key=1)),
        ("POST", base, None, resident_body(sex="MARKER_xyz")),
        ("POST", base, None, resident_body(family_name="MARKER" * 20)),
        ("POST", base, None, resident_body(event="MARKER_ev")),
        ("POST", base, None, resident_body(birth_date="MARKER")),
        ("POST", base, None, resident_body(individual_number="98320567321")),
        ("POST", base, None, resident_body(relationship="MARKER_rel", household_no="00000019")),
        ("POST", base, None, {k: v for k, v in resident_body().items() if k != "family_name"}),
        ("GET", base + "/not-a-uuid", None, None),
        (
            "GET",
            "/api/v1/tenants/999999/residents/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
            None,
            None,
        ),
        (
            "GET",
            "/api/v1/tenants/172066/residents/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
            None,
            None,
        ),
        (
            "GET",
            "/api/v1/tenants/abc/residents/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12,
            None,
            None,
        ),
    ]
    for m, p, raw, js in cases:
        kw = {"headers": {**h, "content-type": "application/json"}}
        if raw is not None:
            kw["content"] = raw
        if js is not None:
            kw["json"] = js
        r = await client.request(m, p, **kw)
        print(m, p, raw, r.status_code, r.headers.get("content-type"), r.text)
