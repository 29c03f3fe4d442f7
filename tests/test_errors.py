"""Errors are RFC 9457 problem+json, reveal nothing about other towns, and never
echo a submitted personal value — neither to the client nor into the logs."""

from __future__ import annotations

import typing
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import msgspec
import pytest
import structlog
from structlog.testing import capture_logs

from shared_gov.checkdigits import make_serial
from shared_gov.clock import today_jst
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://shared-gov.example/problems/"
RESIDENTS = f"/api/v1/tenants/{KAGA}/residents"


def _assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    """The response is a problem+json document of ``status`` with the four members."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert body["type"].startswith(PROBLEM_BASE)
    if slug is not None:
        assert body["type"] == PROBLEM_BASE + slug
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def _pointers(body: dict[str, Any]) -> list[str]:
    errors = body.get("errors")
    assert isinstance(errors, list)
    assert errors
    for item in errors:
        assert isinstance(item["pointer"], str)
        assert item["pointer"].startswith("/")
        assert isinstance(item["detail"], str)
    return [item["pointer"] for item in errors]


async def _register(client: Any, token: str, **overrides: Any) -> dict[str, Any]:
    r = await client.post(RESIDENTS, json=resident_body(**overrides), headers=auth(token))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def _strip_instance(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "instance"}


# --- shape of routing and parsing errors --------------------------------------


async def test_unknown_route_is_404_problem(client: Any, tokens: dict[str, str]) -> None:
    """A path no route matches gets a 404 problem+json."""
    r = await client.get("/api/v1/no-such-thing", headers=auth(tokens["kaga"]))
    _assert_problem(r, 404, "not-found")


async def test_wrong_method_is_405_problem_with_allow(client: Any) -> None:
    """A known path with a method it does not support gets a 405 problem+json whose
    Allow header lists the supported methods (RFC 9110 §15.5.6)."""
    r = await client.delete("/health")
    _assert_problem(r, 405, "method-not-allowed")
    assert "GET" in r.headers["allow"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"family_name": ',
        b'{"family_name" "x"}',
        b'{"family_name": "x"}}',
        b"\xff\xfe\x00",
        b"{'single': 'quotes'}",
    ],
    ids=["truncated", "missing-colon", "trailing", "not-utf8", "single-quotes"],
)
async def test_malformed_json_is_400_problem(
    client: Any, tokens: dict[str, str], raw: bytes
) -> None:
    """A body that is not JSON gets a 400 problem+json, never a 500."""
    r = await client.post(
        RESIDENTS,
        content=raw,
        headers=auth(tokens["kaga"], **{"content-type": "application/json"}),
    )
    _assert_problem(r, 400)


@pytest.mark.parametrize("raw", [b'{"family_name": ', b'{"family_name" "x"}', b"\xff"])
async def test_malformed_json_has_a_stable_bad_request_type_and_title(
    client: Any, tokens: dict[str, str], raw: bytes
) -> None:
    """Every malformed body gets the same problem type (bad-request) and the same
    title; only ``detail`` may vary."""
    r = await client.post(
        RESIDENTS,
        content=raw,
        headers=auth(tokens["kaga"], **{"content-type": "application/json"}),
    )
    body = _assert_problem(r, 400, "bad-request")
    assert body["title"] == "Bad request"


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"42", b"null"])
async def test_body_that_is_not_an_object_is_rejected(
    client: Any, tokens: dict[str, str], raw: bytes
) -> None:
    """A JSON body that is not an object (array, string, number, null) is a
    client error (400/422 problem+json), never a 500 and never a 201."""
    r = await client.post(
        RESIDENTS,
        content=raw,
        headers=auth(tokens["kaga"], **{"content-type": "application/json"}),
    )
    assert r.status_code in (400, 422), r.text
    _assert_problem(r, r.status_code)


async def test_unknown_field_is_422_with_pointer_and_no_echo(
    client: Any, tokens: dict[str, str]
) -> None:
    """An unknown member of the body gets 422 with an ``errors`` list of JSON
    pointers; neither the unknown key nor its value is echoed."""
    body = resident_body(MARKER_key_q7="MARKER_value_q7")
    r = await client.post(RESIDENTS, json=body, headers=auth(tokens["kaga"]))
    problem = _assert_problem(r, 422, "validation")
    assert _pointers(problem)
    assert "unknown field" in [e["detail"] for e in problem["errors"]]
    assert "MARKER" not in r.text


def _with_repeated_key(body: dict[str, Any], key: str, first: Any) -> bytes:
    """``body`` as JSON with ``key`` written twice: first ``first``, then its own value."""
    import json

    text = json.dumps(body, ensure_ascii=False)
    return ("{" + json.dumps(key) + ": " + json.dumps(first) + ", " + text[1:]).encode()


_DUPLICATE_CASES: dict[str, tuple[str, str, str, dict[str, Any], str]] = {
    # case: (method, path, role, body, the repeated key)
    "register": ("POST", RESIDENTS, "kaga", {}, "family_name"),
    "move": (
        "POST",
        RESIDENTS + "/{id}/moves",
        "kaga",
        {"event": "death", "move_date": "2026-01-01", "notified_on": "2026-01-02"},
        "event",
    ),
    "search": ("POST", RESIDENTS + "/search", "kaga", {"atena_no": "00000019"}, "atena_no"),
    "support-measure": (
        "PUT",
        RESIDENTS + "/{id}/support-measure",
        "kaga",
        {"active": False},
        "active",
    ),
    "one-stop-move-in": (
        "POST",
        RESIDENTS + "/one-stop-move-in",
        "kaga",
        {"from_tenant": KOMATSU, "address": "加賀市", "move_date": "2026-01-01"},
        "address",
    ),
    "staff": ("PUT", f"/api/v1/tenants/{KAGA}/staff/k-dup", "kaga_admin", {"note": "x"}, "note"),
    "department": (
        "PUT",
        f"/api/v1/tenants/{KAGA}/departments/dup",
        "kaga_admin",
        {"name": "x"},
        "name",
    ),
    "manifest": ("POST", "/api/v1/tenants", "operator", {"code": "173657", "name": "x"}, "name"),
}


@pytest.mark.parametrize("case", sorted(_DUPLICATE_CASES))
async def test_a_repeated_json_key_is_422_naming_the_key(
    client: Any, tokens: dict[str, str], case: str
) -> None:
    """A body whose object holds a key twice (RFC 8259 leaves which one counts to
    the parser) is refused on every endpoint with a body: 422 at /<key>, the
    values not echoed, nothing written."""
    resident = await _register(client, tokens["kaga"])
    method, path, role, body, key = _DUPLICATE_CASES[case]
    assert key in body or case == "register"
    if case == "register":
        body = resident_body(family_name="山田" + MARKER)
    raw = _with_repeated_key(body, key, MARKER + "_first")
    headers = auth(tokens[role], **{"content-type": "application/json", "If-Match": '"v1"'})
    r = await client.request(
        method, path.replace("{id}", resident["id"]), content=raw, headers=headers
    )
    problem = _assert_problem(r, 422, "validation")
    assert problem["errors"] == [
        {"pointer": "/" + key, "detail": "occurs more than once in its object"}
    ]
    assert MARKER not in r.text
    after = await client.get(f"{RESIDENTS}/{resident['id']}", headers=auth(tokens["kaga"]))
    assert after.json()["version"] == 1
    if case == "register":
        found = await client.post(
            f"{RESIDENTS}/search",
            json={"family_name_kana": body["family_name_kana"], "birth_date": body["birth_date"]},
            headers=auth(tokens["kaga"]),
        )
        assert MARKER not in found.text


async def test_a_repeated_key_is_found_in_nested_objects_and_not_echoed(
    client: Any, tokens: dict[str, str]
) -> None:
    """Inside a list of objects the pointer names the position; a key that is not a
    field name (it might be personal text) is never echoed: the pointer stops at
    the object holding it."""
    manifest = (
        '{"code": "173657", "name": "x", "name_kana": "x", "prefecture": "石川県",'
        ' "population": 1, "departments": [{"code": "a", "name": "b"},'
        ' {"code": "c", "name": "d", "name": "e"}]}'
    )
    r = await client.post(
        "/api/v1/tenants",
        content=manifest.encode(),
        headers=auth(tokens["operator"], None, **{"content-type": "application/json"}),
    )
    problem = _assert_problem(r, 422, "validation")
    assert _pointers(problem) == ["/departments/1/name"]
    raw = '{"山田花子": 1, "山田花子": 2}'.encode()
    r = await client.post(
        RESIDENTS,
        content=raw,
        headers=auth(tokens["kaga"], **{"content-type": "application/json"}),
    )
    problem = _assert_problem(r, 422, "validation")
    assert _pointers(problem) == ["/"]
    assert "山田花子" not in r.text


# --- not found looks the same whatever the reason ------------------------------


async def test_non_uuid_resident_id_is_404(client: Any, tokens: dict[str, str]) -> None:
    """A resident id that is not a UUID is simply not found (404), not a 422/500."""
    for rid in ("not-a-uuid", "1", "00000000-0000-0000-0000-00000000000g"):
        r = await client.get(f"{RESIDENTS}/{rid}", headers=auth(tokens["kaga"]))
        _assert_problem(r, 404, "not-found")


@pytest.mark.parametrize(
    "code",
    ["172066", "999999", "132225"],
    ids=["bad-check-digit", "unknown", "valid-but-not-onboarded"],
)
async def test_unknown_tenant_code_is_404(client: Any, tokens: dict[str, str], code: str) -> None:
    """A tenant code that is not an onboarded town gets 404."""
    r = await client.get(
        f"/api/v1/tenants/{code}/residents/{uuid.uuid4()}", headers=auth(tokens["kaga"])
    )
    _assert_problem(r, 404, "not-found")


@pytest.mark.parametrize("code", ["abc", "17206", "1720655", "１７２０６５", "t_172065"])
async def test_invalid_tenant_code_format_is_404(
    client: Any, tokens: dict[str, str], code: str
) -> None:
    """A tenant segment that is not six ASCII digits gets 404 (not 422 or 500)."""
    r = await client.get(
        f"/api/v1/tenants/{code}/residents/{uuid.uuid4()}", headers=auth(tokens["kaga"])
    )
    _assert_problem(r, 404, "not-found")


async def test_other_towns_resident_is_indistinguishable_from_a_missing_one(
    client: Any, tokens: dict[str, str]
) -> None:
    """Komatsu staff asking for an existing Kaga resident get exactly the 404 body they
    get for a resident id that exists nowhere (apart from ``instance``), with no data."""
    resident = await _register(client, tokens["kaga"])
    komatsu = auth(tokens["komatsu"])
    existing = await client.get(f"{RESIDENTS}/{resident['id']}", headers=komatsu)
    missing = await client.get(f"{RESIDENTS}/{uuid.uuid4()}", headers=komatsu)
    a = _assert_problem(existing, 404, "not-found")
    b = _assert_problem(missing, 404, "not-found")
    assert _strip_instance(a) == _strip_instance(b)
    for value in (
        resident["id"],
        resident["atena_no"],
        resident["household_no"],
        resident["individual_number"],
        resident["family_name"],
    ):
        assert value not in existing.text
    # Komatsu's own URL does not reach Kaga's record either.
    own = await client.get(f"/api/v1/tenants/{KOMATSU}/residents/{resident['id']}", headers=komatsu)
    own_missing = await client.get(
        f"/api/v1/tenants/{KOMATSU}/residents/{uuid.uuid4()}", headers=komatsu
    )
    assert _strip_instance(_assert_problem(own, 404)) == _strip_instance(
        _assert_problem(own_missing, 404)
    )
    assert resident["family_name"] not in own.text


async def test_operator_token_cannot_read_residents(client: Any, tokens: dict[str, str]) -> None:
    """A platform operator gets 404 on resident records, like a missing resident."""
    resident = await _register(client, tokens["kaga"])
    operator = auth(tokens["operator"])
    existing = await client.get(f"{RESIDENTS}/{resident['id']}", headers=operator)
    missing = await client.get(f"{RESIDENTS}/{uuid.uuid4()}", headers=operator)
    a = _assert_problem(existing, 404, "not-found")
    assert _strip_instance(a) == _strip_instance(_assert_problem(missing, 404))
    assert resident["family_name"] not in existing.text
    assert resident["atena_no"] not in existing.text


async def test_routing_errors_carry_a_request_id_and_are_logged(client: Any) -> None:
    """Even a request that matches no route gets an X-Request-Id and one access-log
    line, so probes of unknown paths are traceable."""
    with capture_logs() as events:
        r = await client.get("/api/v1/no-such-thing")
    _assert_problem(r, 404)
    assert r.headers.get("x-request-id")
    assert [e for e in events if e.get("event") == "request" and e.get("status") == 404]


# --- submitted values are never echoed ------------------------------------------

MARKER = "MARKER_xyz"
BAD_NUMBER = "983205673210"  # FACTS.md: invalid individual number (check digit 4)


def _marker_cases() -> dict[str, tuple[str, str, Any]]:
    """(method, path suffix, body) of requests carrying a marked invalid value."""
    today = today_jst()
    future = (today + timedelta(days=30)).isoformat()
    return {
        "sex": ("POST", "", resident_body(sex=MARKER + "_sex")),
        "event": ("POST", "", resident_body(event=MARKER + "_event")),
        "resident_type": ("POST", "", resident_body(resident_type=MARKER + "_type")),
        "relationship": (
            "POST",
            "",
            resident_body(relationship=MARKER + "_rel", household_no=make_serial(9_999_998)),
        ),
        "family_name_too_long": ("POST", "", resident_body(family_name=MARKER * 6)),
        "given_name_wrong_type": ("POST", "", resident_body(given_name=["MARKER_xyz_list"])),
        "kana_with_kanji": ("POST", "", resident_body(family_name_kana=MARKER + "山田")),
        "birth_date": ("POST", "", resident_body(birth_date=MARKER + "-01-01")),
        "postal_code": ("POST", "", resident_body(postal_code=MARKER)),
        "phone": ("POST", "", resident_body(phone=MARKER + "_phone")),
        "juminhyo_code": ("POST", "", resident_body(juminhyo_code=MARKER)),
        "individual_number_check_digit": (
            "POST",
            "",
            resident_body(individual_number=BAD_NUMBER),
        ),
        "individual_number_format": (
            "POST",
            "",
            resident_body(individual_number=MARKER + "12"),
        ),
        "future_move_date_with_marked_address": (
            "POST",
            "",
            resident_body(move_date=future, address=MARKER + "_address"),
        ),
        "search_bad_number": ("POST", "/search", {"individual_number": BAD_NUMBER}),
        "search_kana": (
            "POST",
            "/search",
            {"family_name_kana": MARKER + "漢字", "birth_date": "1980-04-01"},
        ),
        "search_unknown_field": ("POST", "/search", {"name": MARKER + "_name"}),
        "move_bad_event": (
            "POST",
            "/{id}/moves",
            {"event": MARKER + "_event", "move_date": "2020-01-01", "notified_on": "2020-01-01"},
        ),
        "move_address_too_long": (
            "POST",
            "/{id}/moves",
            {
                "event": "move_within_town",
                "move_date": "2020-01-01",
                "notified_on": "2020-01-01",
                "address": MARKER * 30,
            },
        ),
        "move_kana": (
            "POST",
            "/{id}/moves",
            {
                "event": "name_change",
                "move_date": today.isoformat(),
                "notified_on": today.isoformat(),
                "family_name_kana": MARKER + "漢",
            },
        ),
    }


def _logged_strings(events: list[dict[str, Any]]) -> Iterator[str]:
    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield str(k)
                yield from walk(v)
        elif isinstance(value, list | tuple | set | frozenset):
            for v in value:
                yield from walk(v)
        else:
            yield str(value)

    for event in events:
        yield from walk(event)


@pytest.mark.parametrize("case", sorted(_marker_cases()))
async def test_invalid_values_are_never_echoed_or_logged(
    client: Any, tokens: dict[str, str], case: str
) -> None:
    """A request carrying an invalid, marked value gets a 4xx problem+json; neither
    the response body nor any log event (with its bound context) contains the
    marker or the submitted number."""
    resident = await _register(client, tokens["kaga"])
    method, suffix, body = _marker_cases()[case]
    path = RESIDENTS + suffix.replace("{id}", resident["id"])
    headers = auth(tokens["kaga"], **{"If-Match": '"v1"'})
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        r = await client.request(method, path, json=body, headers=headers)
    assert 400 <= r.status_code < 500, r.text
    _assert_problem(r, r.status_code)
    assert MARKER not in r.text
    assert BAD_NUMBER not in r.text
    assert events, "the access log should have recorded the request"
    for logged in _logged_strings(events):
        assert MARKER not in logged
        assert BAD_NUMBER not in logged


async def test_malformed_json_with_marker_is_not_echoed(
    client: Any, tokens: dict[str, str]
) -> None:
    """Even when the body cannot be parsed, no part of it comes back or is logged."""
    raw = ('{"family_name": "' + MARKER + '", "sex": ' + MARKER).encode()
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        r = await client.post(
            RESIDENTS,
            content=raw,
            headers=auth(tokens["kaga"], **{"content-type": "application/json"}),
        )
    _assert_problem(r, 400)
    assert MARKER not in r.text
    assert not [s for s in _logged_strings(events) if MARKER in s]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("family_name", "あ" * 51),
        ("sex", "other"),
        ("birth_date", "1980-13-45"),
        ("postal_code", "922-0000"),
        ("event", "teleport"),
        ("phone", "call me"),
    ],
    ids=["too-long", "enum", "date", "pattern", "event-enum", "phone-pattern"],
)
async def test_structural_errors_point_at_the_field(
    client: Any, tokens: dict[str, str], field: str, value: Any
) -> None:
    """A value of the wrong type, length, format or enum gets 422 with the JSON
    pointer of that field (RFC 6901), e.g. ``/sex``."""
    r = await client.post(
        RESIDENTS, json=resident_body(**{field: value}), headers=auth(tokens["kaga"])
    )
    problem = _assert_problem(r, 422, "validation")
    assert _pointers(problem) == [f"/{field}"]


# --- values the database cannot take (found by the API fuzzer, tests/fuzz) ----

TOWN = f"/api/v1/tenants/{KAGA}"
BIGINT_MAX = 2**63 - 1
_AGREEMENT = {
    "provider": KAGA,
    "recipient": KOMATSU,
    "recipient_departments": ["shimin"],
    "purposes": ["juki.registration"],
    "fields": ["address"],
    "actions": ["read"],
    "legal_basis": "住民基本台帳法",
    "valid_from": "2026-01-01T00:00:00+09:00",
    "valid_until": "2027-01-01T00:00:00+09:00",
}
_MANIFEST = {
    "code": "173657",
    "name": "a\x00b",
    "name_kana": "x",
    "prefecture": "石川県",
    "population": 1000,
    "departments": [{"code": "shimin", "name": "市民課"}],
}


@pytest.mark.parametrize(
    ("method", "path", "role", "request_args", "pointer"),
    [
        # A NUL (U+0000) cannot be stored in or compared with PostgreSQL text.
        (
            "GET",
            f"{TOWN}/audit/events",
            "kaga_auditor",
            {"params": {"actor": "a\x00b"}},
            "/query/actor",
        ),
        ("GET", f"{TOWN}/staff/a%00b", "kaga_admin", {}, "/path/staff_id"),
        ("PUT", f"{TOWN}/staff/k-nul", "kaga_admin", {"json": {"note": "a\x00b"}}, "/note"),
        ("PUT", f"{TOWN}/departments/fuzz", "kaga_admin", {"json": {"name": "a\x00b"}}, "/name"),
        (
            "PUT",
            f"{TOWN}/issuer",
            "kaga_admin",
            {
                "json": {
                    "url": "https://idp.example",
                    "audience": "a\x00",
                    "jwks_uri": "https://idp.example/k",
                }
            },
            "/audience",
        ),
        (
            "POST",
            f"{TOWN}/audit/suppressions",
            "kaga_auditor",
            {"json": {"event_ids": [str(uuid.uuid4())], "until": "2030-01-01", "reason": "a\x00"}},
            "/reason",
        ),
        (
            "POST",
            "/api/v1/agreements",
            "kaga_admin",
            {"json": {**_AGREEMENT, "legal_basis": "a\x00"}},
            "/legal_basis",
        ),
        ("POST", "/api/v1/tenants", "operator", {"json": _MANIFEST}, "/name"),
        # Path parameters were not checked at all: "abc\n" became a department code.
        (
            "PUT",
            f"{TOWN}/departments/abc%0A",
            "kaga_admin",
            {"json": {"name": "x"}},
            "/path/department",
        ),
        # Instants whose UTC form leaves datetime's range (year 0 or 10000).
        (
            "GET",
            f"{TOWN}/audit/events",
            "kaga_auditor",
            {"params": {"from": "0001-01-01T00:00:00+09:00"}},
            "/query/from",
        ),
        (
            "GET",
            f"{TOWN}/audit/events",
            "kaga_auditor",
            {"params": {"to": "9999-12-31T23:59:59-09:00"}},
            "/query/to",
        ),
        (
            "GET",
            f"{TOWN}/audit/analyses",
            "kaga_auditor",
            {"params": {"from": "0001-01-01T00:00:00+09:00", "to": "0001-01-02"}},
            "/query/from",
        ),
        (
            "POST",
            "/api/v1/agreements",
            "kaga_admin",
            {"json": {**_AGREEMENT, "valid_from": "0001-01-01T00:00:00+09:00"}},
            "/valid_from",
        ),
        # Numbers beyond PostgreSQL's bigint.
        (
            "GET",
            f"{TOWN}/audit/events",
            "kaga_auditor",
            {"params": {"format": "csv", "limit": 2**63}},
            "/query/limit",
        ),
        (
            "GET",
            f"{TOWN}/audit/analyses",
            "kaga_auditor",
            {"params": {"bulk_threshold": 2**63}},
            "/query/bulk_threshold",
        ),
    ],
    ids=[
        "audit-filter-nul",
        "staff-id-nul",
        "staff-note-nul",
        "department-name-nul",
        "issuer-audience-nul",
        "suppression-reason-nul",
        "agreement-legal-basis-nul",
        "manifest-name-nul",
        "department-code-newline",
        "audit-from-year-0",
        "audit-to-year-10000",
        "analyses-from-year-0",
        "agreement-from-year-0",
        "export-limit-over-bigint",
        "analyses-threshold-over-bigint",
    ],
)
async def test_values_the_database_cannot_take_are_422_not_500(
    client: Any,
    tokens: dict[str, str],
    method: str,
    path: str,
    role: str,
    request_args: dict[str, Any],
    pointer: str,
) -> None:
    """Each of these was a 500 (asyncpg CharacterNotInRepertoireError, DataError,
    OverflowError); now a 422 naming the field, and nothing is written."""
    r = await client.request(method, path, headers=auth(tokens[role], None), **request_args)
    problem = _assert_problem(r, 422, "validation")
    assert pointer in _pointers(problem)


async def test_export_limit_up_to_bigint_is_served(client: Any, tokens: dict[str, str]) -> None:
    """The bound is PostgreSQL's own: the largest bigint is still a valid limit."""
    r = await client.get(
        f"{TOWN}/audit/events",
        params={"format": "csv", "limit": BIGINT_MAX, "actor": "nobody-nul-test"},
        headers=auth(tokens["kaga_auditor"], None),
    )
    assert r.status_code == 200, r.text
    # Litestar adds the charset to text/* itself; it used to be sent twice.
    assert r.headers["content-type"] == "text/csv; charset=utf-8"


def _struct_of(annotation: Any) -> type[msgspec.Struct] | None:
    """The msgspec struct a ``data`` annotation names (through Annotated/Optional)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _struct_of(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        return annotation
    return None


def test_every_request_body_refuses_unknown_fields(app: Any) -> None:
    """Each handler's body struct forbids unknown fields, so a misspelt member is a
    422 naming it (``/familyname``), never silently dropped."""
    bodies: dict[str, type[msgspec.Struct]] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            data = handler.parsed_fn_signature.parameters.get("data")
            struct = _struct_of(data.annotation if data is not None else None)
            if struct is not None:
                bodies[struct.__qualname__] = struct
    assert len(bodies) >= 8, bodies
    lax = [n for n, s in bodies.items() if not s.__struct_config__.forbid_unknown_fields]
    assert lax == []


async def test_a_misspelt_member_is_named_in_the_pointer(
    client: Any, tokens: dict[str, str]
) -> None:
    """``familyname`` for ``family_name``: the 422 points at ``/familyname`` (and at the
    missing ``/family_name``), and echoes no value."""
    body = resident_body()
    body["familyname"] = body.pop("family_name") + "MARKER"
    r = await client.post(RESIDENTS, json=body, headers=auth(tokens["kaga"]))
    problem = _assert_problem(r, 422, "validation")
    assert "/familyname" in _pointers(problem)
    assert "MARKER" not in r.text


async def test_a_bad_path_parameter_without_a_token_is_401_first(client: Any) -> None:
    """The path check runs after authentication (a route middleware inside it):
    an anonymous caller learns nothing about what the route would refuse."""
    r = await client.get(f"{TOWN}/residents/a%00b")
    assert r.status_code == 401


async def test_a_bad_path_parameter_is_422_on_every_kind_of_route(
    client: Any, tokens: dict[str, str]
) -> None:
    """No guard and no handler sees it: a resident GET, a household, the staff list."""
    for path in (f"{TOWN}/residents/a%00b", f"{TOWN}/households/1%0A", f"{TOWN}/staff/a%01"):
        token = tokens["kaga_admin" if "/staff/" in path else "kaga"]
        r = await client.get(path, headers=auth(token))
        assert r.status_code == 422, (path, r.text)
        assert r.json()["errors"][0]["pointer"].startswith("/path/")
