"""The OpenAPI document is the contract the API fuzzer (tests/fuzz) holds the
service to: every error an operation can answer with is documented as the
RFC 9457 problem+json it really is, and so are the media types it serves."""

from __future__ import annotations

from typing import Any

import pytest

PROBLEM_JSON = "application/problem+json"
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
async def document(client: Any) -> dict[str, Any]:
    r = await client.get("/docs/openapi.json")
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_api_operation_documents_its_problems(document: dict[str, Any]) -> None:
    """Litestar alone documented a 400 in its own ValidationException shape
    (``application/json`` with ``status_code``) and no other error; the service
    answers 401/403/404/422/503 and always with problem+json."""
    operations = [op for op in _operations(document) if op[1].startswith("/api/v1/")]
    assert len(operations) > 30
    for method, path, operation in operations:
        responses = operation["responses"]
        for status in ("401", "403", "404", "503"):
            assert status in responses, f"{method} {path} does not document {status}"
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == [PROBLEM_JSON], f"{method} {path} {status}"
                schema = response["content"][PROBLEM_JSON]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}


def test_inputs_and_preconditions_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    moves = paths["/api/v1/tenants/{code}/residents/{resident_id}/moves"]["post"]["responses"]
    assert {"400", "409", "412", "413", "422", "428"} <= set(moves)
    assert "500" not in moves
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert {"errors", "reason", "policies", "instance"} <= set(problem["properties"])


def test_public_routes_document_no_authentication_errors(document: dict[str, Any]) -> None:
    assert set(document["paths"]["/health"]["get"]["responses"]) == {"200"}
    assert set(document["paths"]["/ready"]["get"]["responses"]) == {"200", "503"}


def test_audit_exports_document_their_media_types(document: dict[str, Any]) -> None:
    """``?format=csv`` and ``?format=jsonl`` answer 200 in text/csv and JSON Lines."""
    ok = document["paths"]["/api/v1/tenants/{code}/audit/events"]["get"]["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/csv", "application/jsonl"}


def test_path_parameters_document_their_rules(document: dict[str, Any]) -> None:
    """These rules were in msgspec.Meta, which Litestar ignores on path parameters."""
    put_department = document["paths"]["/api/v1/tenants/{code}/departments/{department}"]["put"]
    (department,) = [p for p in put_department["parameters"] if p["name"] == "department"]
    assert department["schema"]["pattern"].startswith("^[a-z]")
    get_staff = document["paths"]["/api/v1/tenants/{code}/staff/{staff_id}"]["get"]
    (staff_id,) = [p for p in get_staff["parameters"] if p["name"] == "staff_id"]
    assert staff_id["schema"]["maxLength"] == 128


def test_bodies_taken_as_sent_document_their_media_types(document: dict[str, Any]) -> None:
    """A CSV file is the handler's raw ``body`` (Litestar decodes ``data`` as JSON only):
    its request body and 413 are documented all the same."""
    imported = document["paths"]["/api/v1/tenants/{code}/kaigo/facilities/import"]["post"]
    assert set(imported["requestBody"]["content"]) == {"text/csv"}
    assert imported["requestBody"]["required"] is True
    assert {"400", "413", "422"} <= set(imported["responses"])
    submit = document["paths"]["/api/v1/tenants/{code}/supplier/invoices"]["post"]
    assert set(submit["requestBody"]["content"]) == {"application/xml", "application/json"}
    assert {"413", "415"} <= set(submit["responses"])
    # A supplier states no purpose: the gate serves one.
    assert "X-Purpose" not in {p["name"] for p in submit.get("parameters", [])}
