"""API fuzzing (issue #7): schemathesis against the service's own OpenAPI document.

Every operation of ``/docs/openapi.json`` gets generated requests — valid and
schema-violating ones — sent with working credentials of 加賀市 (172065), so
most reach the real handlers instead of stopping at 401/404. Each response
must not be a 5xx and must conform to the document: a documented status
code, its media type (``application/problem+json`` for errors), headers and
body schema; a schema-violating request must be refused with a 4xx.

The app under test is a second instance built from the session's settings
(same database, same issuer key). schemathesis's ASGI transport runs it, with
its lifespan, in its own event-loop thread; the session app keeps the test
loop. Tokens are the fuzzer's own staff ids (``k-fuzz…``), so the audit
trail of other tests' actors stays theirs. Town-admin changes (staff,
departments, issuer, agreements) go to a town only this module onboards
(川北町, 173240), so a fuzzed PUT cannot suspend the staff other tests use.
Offboarding and key rotation are not API operations; operator endpoints get
a town token and answer 404.

Settings (environment): ``FUZZ_EXAMPLES`` generated cases per operation
(default 15 in CI; ``make fuzz`` 200), ``FUZZ_SEED`` (default 0, so CI runs
are repeatable), ``FUZZ_OPERATIONS`` a regular expression over labels such as
``GET /api/v1/tenants/{code}/residents/{resident_id}`` to replay one
operation. See docs/fuzzing.md.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st
from litestar import Litestar
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared_gov.app import create_app
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.db import Database
from shared_gov.settings import Settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from tests.conftest import KAGA, KOMATSU, auth
from tests.factories import resident_body

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
SEED = int(os.environ.get("FUZZ_SEED", "0"))
ONLY = re.compile(os.environ.get("FUZZ_OPERATIONS", ""))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


KAWAKITA = "173240"  # 川北町: onboarded by this module only, for town-admin changes
ADMIN_CHANGES = re.compile(
    r"^(PUT|POST|DELETE) /api/v1/(tenants/\{code\}/(staff|departments|issuer)|agreements)"
)

# Values that are valid for the schema (a string may hold NUL; an integer
# without a maximum may exceed 64 bits) but that PostgreSQL cannot take as
# they are: Hypothesis reaches them rarely, so some cases get one on purpose.
EDGE_STRINGS = ("\x00", "a\x00b", "9" * 30, "ア" * 300, "%", " ")
EDGE_INTEGERS = (2**63, 10**25)


@pytest.fixture(scope="module")
async def kawakita(db: Database) -> str:
    await tenancy.onboard(
        db,
        parse_manifest(
            {
                "code": KAWAKITA,
                "name": "川北町",
                "name_kana": "かわきたまち",
                "prefecture": "石川県",
                "population": 6_000,
                "departments": [
                    {"code": "shimin", "name": "住民課"},
                    {"code": "somu", "name": "総務課"},
                ],
            }
        ),
    )
    return KAWAKITA


@pytest.fixture(scope="module")
def fuzz_tokens(issuer: BuiltinIssuer, kawakita: str) -> dict[str, str]:
    """One token per kind of caller the fuzzer plays; ids nobody else uses."""
    return {
        # 市民課 with 2FA: may read every field for juki.registration.
        "staff": issuer.mint(
            subject="k-fuzz", tenant=KAGA, department="shimin", roles=["staff"], mfa=True
        ),
        "auditor": issuer.mint(
            subject="k-fuzz-audit", tenant=KAGA, department="kansa", roles=["auditor"]
        ),
        "admin": issuer.mint(
            subject="k-fuzz-admin", tenant=KAGA, department="somu", roles=["admin"]
        ),
        "integration": issuer.mint(
            subject="k-fuzz-feed", tenant=KAGA, department="kaigo", roles=["integration"]
        ),
        "kawakita_admin": issuer.mint(
            subject="kw-fuzz-admin", tenant=kawakita, department="somu", roles=["admin"]
        ),
        # Staff of another town: everything of Kaga's must be a 404 to them.
        "other_town": issuer.mint(
            subject="m-fuzz", tenant=KOMATSU, department="shimin", roles=["staff"], mfa=True
        ),
    }


@pytest.fixture(scope="module")
async def fuzz_resident(client: httpx.AsyncClient, fuzz_tokens: dict[str, str]) -> dict[str, Any]:
    """A resident of Kaga the fuzzer may read and change (nobody else uses it)."""
    r = await client.post(
        f"/api/v1/tenants/{KAGA}/residents",
        json=resident_body(given_name="ファズ"),
        headers=auth(fuzz_tokens["staff"]),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture(scope="module")
def fuzz_app(settings: Settings, db: Database, fuzz_resident: dict[str, Any]) -> Iterator[Litestar]:
    """The app under test; its lifespan (pool, listener, sealer) ends with the module."""
    assert settings.database_url
    app = create_app(settings, settings.database_url)
    try:
        yield app
    finally:
        schemathesis_asgi.shutdown_lifespans()


def _role(operation: Any) -> str:
    """The caller whose handler code runs past the policy check, when that is safe."""
    path, method = operation.path, operation.method.upper()
    if ADMIN_CHANGES.search(operation.label):
        return "kawakita_admin"
    if "/audit/" in path:
        return "auditor"
    if path.endswith("/events"):
        return "integration"
    if method == "GET" and any(part in path for part in ("/staff", "/departments", "/issuer")):
        return "admin"
    return "staff"


def _steer(case: Any, draw: Any, resident: dict[str, Any], positive: bool) -> str | None:
    """Point most cases at things that exist, so they get past "not found",
    and give some positive cases an edge value. Returns the role to send.

    Every choice is a Hypothesis draw whose simplest value is the steered one,
    so a failure shrinks towards a request with working credentials.
    """
    role = _role(case.operation)
    path, query, headers = case.path_parameters, case.query, case.headers
    # Clients resolve "." and ".." segments: such a request is for another path.
    assume(not any(value in (".", "..") for value in path.values()))
    town = KAWAKITA if role == "kawakita_admin" else KAGA
    # code, resident_id, household_no, X-Purpose and If-Match are plain strings
    # in the document, so overwriting them cannot undo a negative case; the
    # constrained ones (staff_id, department, tenant) are steered in positive
    # cases only, or a negated value could become valid and the rejection
    # check would blame the API.
    if "code" in path and draw(st.integers(0, 4)) < 4:
        path["code"] = town
    if "resident_id" in path and draw(st.integers(0, 2)) < 2:
        path["resident_id"] = resident["id"]
    if "household_no" in path and draw(st.booleans()) is False:
        path["household_no"] = resident["household_no"]
    if positive and "staff_id" in path and draw(st.booleans()) is False:
        path["staff_id"] = "k-fuzz"
    if positive and "department" in path and draw(st.booleans()) is False:
        path["department"] = "shimin"
    if positive and query is not None and "tenant" in query and draw(st.booleans()) is False:
        query["tenant"] = town
    if headers is not None and "X-Purpose" in headers and draw(st.integers(0, 3)) < 3:
        disclosure = case.operation.path.endswith("/access-log")
        headers["X-Purpose"] = "juki.disclosure" if disclosure else "juki.registration"
    if headers is not None and "If-Match" in headers and draw(st.booleans()) is False:
        headers["If-Match"] = f'"v{draw(st.integers(1, 4))}"'
    if positive and draw(st.integers(0, 3)) == 3:
        _edge(case, draw)
    who = draw(st.integers(0, 9))
    return None if who == 8 else "other_town" if who == 9 else role


def _edge(case: Any, draw: Any) -> None:
    """Replace one path or query value with an edge value of its type."""
    slots = [
        (container, name)
        for container in (case.path_parameters, case.query)
        if container
        for name in container
    ]
    if not slots:
        return
    container, name = draw(st.sampled_from(slots))
    if isinstance(container[name], int) and not isinstance(container[name], bool):
        container[name] = draw(st.sampled_from(EDGE_INTEGERS))
    elif isinstance(container[name], str):
        container[name] = draw(st.sampled_from(EDGE_STRINGS))


def _fuzz(operation: Any, tokens: dict[str, str], resident: dict[str, Any]) -> int:
    """Run one operation's cases; returns how many requests were sent.

    Raises schemathesis's ``FailureGroup`` for the shrunk failing case.
    """
    positive = operation.as_strategy(GenerationMode.POSITIVE)
    negative = operation.as_strategy(GenerationMode.NEGATIVE)
    sent = 0

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        nonlocal sent
        is_positive = data.draw(st.booleans()) is False
        case = data.draw(positive if is_positive else negative)
        role = _steer(case, data.draw, resident, is_positive)
        headers = {} if role is None else {"Authorization": f"Bearer {tokens[role]}"}
        sent += 1
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
    return sent


def test_openapi_operations_conform(
    fuzz_app: Litestar,
    fuzz_tokens: dict[str, str],
    fuzz_resident: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No 5xx and nothing undocumented, for every operation of the document."""
    # An explicit (default) config: no schemathesis.toml is looked for; this file is the config.
    schema = schemathesis.openapi.from_asgi(
        "/docs/openapi.json", fuzz_app, config=SchemathesisConfig()
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30, "the document lost its operations"
    failures: list[str] = []
    started, sent = time.monotonic(), 0
    for operation in operations:
        if not ONLY.search(operation.label):
            continue
        try:
            sent += _fuzz(operation, fuzz_tokens, fuzz_resident)
        except FailureGroup as exc:
            failures.append(f"{operation.label}\n{exc}")
    elapsed = time.monotonic() - started
    # Past output capturing (the app logs every request to stdout): one line.
    with capsys.disabled():
        print(
            f"\nfuzz: {sent} requests in {elapsed:.1f} s; FUZZ_SEED={SEED} FUZZ_EXAMPLES={EXAMPLES}"
        )
    if failures:
        header = (
            f"{len(failures)} operation(s) failed (FUZZ_SEED={SEED} FUZZ_EXAMPLES={EXAMPLES}; "
            "replay one with FUZZ_OPERATIONS='<label regex>')\n\n"
        )
        pytest.fail(header + "\n\n".join(failures), pytrace=False)
