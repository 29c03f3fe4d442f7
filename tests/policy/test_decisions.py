"""Table-driven Cedar decisions: principal, action, resource, context → decision.

Each row runs through the real engine with the project's policies and
purposes. Rows cover every rule and guardrail: purposes per department,
fields per purpose, individual number (listed use + 2FA), 支援措置, operators,
auditors, other towns, suspensions, record actions, town administration.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shared_gov.policy import Actor, PolicyEngine, Query, Resource
from shared_gov.policy.purposes import POLICY_FIELDS, purposes

ROOT = Path(__file__).resolve().parents[2]
KAGA, KOMATSU = "172065", "172031"
P = purposes()


def staff(
    dept: str,
    granted: set[str],
    *,
    mfa: bool = False,
    roles: set[str] | None = None,
    tenant: str = KAGA,
) -> Actor:
    return Actor(tenant, dept, frozenset(roles or {"staff"}), mfa, frozenset(granted))


SHIMIN = staff("shimin", {"juki.certificate", "juki.registration"})
SHIMIN_MFA = replace(SHIMIN, mfa=True)
KAIGO = staff("kaigo", {"kaigo.qualification", "kaigo.premium"})
KAIGO_MFA = replace(KAIGO, mfa=True)
KAIKEI = staff("kaikei", {"kaikei.payment"})
ZEIMU_MFA = staff("zeimu", {"zeimu.assessment"}, mfa=True)
BOUSAI = staff("bousai", {"bousai.support"})
AUDITOR = staff("kansa", {"kansa.audit"}, roles={"auditor"})
AUDITOR_AND_STAFF = staff("shimin", {"juki.registration"}, roles={"auditor", "staff"})
SUSPENDED = staff("shimin", set())
KAIGO_WITH_REGISTRATION = staff("kaigo", {"juki.registration"})
ADMIN = staff("somu", set(), roles={"admin"})
KOMATSU_SHIMIN = staff("shimin", {"juki.registration"}, tenant=KOMATSU, mfa=True)
KOMATSU_ADMIN = staff("somu", set(), roles={"admin"}, tenant=KOMATSU)
OPERATOR = Actor(None, "", frozenset({"operator"}), True, frozenset(), operator=True)


def field(name: str, *, dv: bool = False, town: str = KAGA) -> Resource:
    return Resource("Field", town, name, dv)


def record(*, dv: bool = False, town: str = KAGA) -> Resource:
    return Resource("Record", town, support_measure=dv)


# (id, actor, action, resource, purpose, by_individual_number, area, allowed, reason part)
# fmt: off
CASES = [
    ("kaigo-reads-name", KAIGO, "read", field("family_name"), "kaigo.qualification", False, "", True, None),
    ("kaigo-reads-kana", KAIGO, "read", field("given_name_kana"), "kaigo.qualification", False, "", True, None),
    ("kaigo-reads-birth", KAIGO, "read", field("birth_date"), "kaigo.qualification", False, "", True, None),
    ("kaigo-reads-address", KAIGO, "read", field("address"), "kaigo.qualification", False, "", True, None),
    ("kaigo-reads-household", KAIGO, "read", field("household_no"), "kaigo.qualification", False, "", True, None),
    ("kaigo-no-domicile", KAIGO, "read", field("domicile"), "kaigo.qualification", False, "", False, "does not cover domicile"),
    ("kaigo-no-phone", KAIGO, "read", field("phone"), "kaigo.qualification", False, "", False, "does not cover phone"),
    ("kaigo-number-needs-mfa", KAIGO, "read", field("individual_number"), "kaigo.qualification", False, "", False, "two-factor authentication required"),
    ("kaigo-number-with-mfa", KAIGO_MFA, "read", field("individual_number"), "kaigo.qualification", False, "", True, None),
    ("premium-not-number", KAIGO_MFA, "read", field("individual_number"), "kaigo.premium", False, "", False, "purpose kaigo.premium does not cover individual_number"),
    ("premium-reads-name", KAIGO, "read", field("family_name"), "kaigo.premium", False, "", True, None),
    ("premium-no-sex", KAIGO, "read", field("sex"), "kaigo.premium", False, "", False, "does not cover sex"),
    ("kaigo-not-granted-registration", KAIGO, "read", field("family_name"), "juki.registration", False, "", False, "not granted"),
    ("shimin-number-mfa", SHIMIN_MFA, "read", field("individual_number"), "juki.registration", False, "", True, None),
    ("shimin-number-no-mfa", SHIMIN, "read", field("individual_number"), "juki.registration", False, "", False, "two-factor authentication required"),
    ("shimin-registration-dv-address", SHIMIN, "read", field("address", dv=True), "juki.registration", False, "", True, None),
    ("shimin-registration-dv-phone", SHIMIN, "read", field("phone", dv=True), "juki.registration", False, "", True, None),
    ("shimin-certificate-dv-address", SHIMIN, "read", field("address", dv=True), "juki.certificate", False, "", False, "支援措置"),
    ("kaigo-dv-address", KAIGO, "read", field("address", dv=True), "kaigo.qualification", False, "", False, "支援措置"),
    ("kaigo-dv-postal", KAIGO, "read", field("postal_code", dv=True), "kaigo.qualification", False, "", False, "支援措置"),
    ("kaigo-dv-previous-address", KAIGO, "read", field("previous_address", dv=True), "kaigo.qualification", False, "", False, "支援措置"),
    ("kaigo-dv-name-visible", KAIGO, "read", field("family_name", dv=True), "kaigo.qualification", False, "", True, None),
    ("bousai-phone", BOUSAI, "read", field("phone"), "bousai.support", False, "", True, None),
    ("bousai-dv-phone", BOUSAI, "read", field("phone", dv=True), "bousai.support", False, "", False, "支援措置"),
    ("zeimu-number", ZEIMU_MFA, "read", field("individual_number"), "zeimu.assessment", False, "", True, None),
    ("kaikei-no-birth", KAIKEI, "read", field("birth_date"), "kaikei.payment", False, "", False, "does not cover birth_date"),
    ("kaikei-address", KAIKEI, "read", field("address"), "kaikei.payment", False, "", True, None),
    ("operator-no-field", OPERATOR, "read", field("family_name"), "juki.registration", False, "", False, "operators never"),
    ("operator-no-search", OPERATOR, "search", record(), "juki.registration", False, "", False, "operators never"),
    ("auditor-no-field", AUDITOR, "read", field("family_name"), "kansa.audit", False, "", False, "auditors read the audit log"),
    ("auditor-and-staff-no-field", AUDITOR_AND_STAFF, "read", field("family_name"), "juki.registration", False, "", False, "auditors read the audit log"),
    ("auditor-no-search", AUDITOR, "search", record(), "kansa.audit", False, "", False, "auditors read the audit log"),
    ("auditor-reads-log", AUDITOR, "audit", Resource("AuditLog", KAGA), None, False, "", True, None),
    ("auditor-other-town-log", AUDITOR, "audit", Resource("AuditLog", KOMATSU), None, False, "", False, "another town"),
    ("staff-no-audit-log", SHIMIN, "audit", Resource("AuditLog", KAGA), None, False, "", False, "auditor role"),
    ("other-town-field", KOMATSU_SHIMIN, "read", field("family_name"), "juki.registration", False, "", False, "another town"),
    ("other-town-search", KOMATSU_SHIMIN, "search", record(), "juki.registration", False, "", False, "another town"),
    ("suspended", SUSPENDED, "read", field("family_name"), "juki.registration", False, "", False, "not granted"),
    ("no-purpose", SHIMIN, "read", field("family_name"), None, False, "", False, "no purpose"),
    ("shimin-registers", SHIMIN, "register", record(), "juki.registration", False, "", True, None),
    ("shimin-moves", SHIMIN, "move", record(), "juki.registration", False, "", True, None),
    ("certificate-cannot-move", SHIMIN, "move", record(), "juki.certificate", False, "", False, "does not cover move"),
    ("kaigo-cannot-register", KAIGO, "register", record(), "kaigo.qualification", False, "", False, "does not cover register"),
    ("kaigo-searches", KAIGO, "search", record(), "kaigo.qualification", False, "", True, None),
    ("kaigo-history", KAIGO, "history", record(), "kaigo.qualification", False, "", True, None),
    ("kaikei-no-history", KAIKEI, "history", record(), "kaikei.payment", False, "", False, "does not cover history"),
    ("search-by-number-mfa", KAIGO_MFA, "search", record(), "kaigo.qualification", True, "", True, None),
    ("search-by-number-no-mfa", KAIGO, "search", record(), "kaigo.qualification", True, "", False, "two-factor authentication required"),
    ("search-by-number-unlisted", KAIGO_MFA, "search", record(), "kaigo.premium", True, "", False, "not a listed use"),
    ("shimin-protects", SHIMIN, "protect", record(), "juki.registration", False, "", True, None),
    ("kaigo-cannot-protect", KAIGO_WITH_REGISTRATION, "protect", record(), "juki.registration", False, "", False, "only 市民課"),
    ("admin-departments", ADMIN, "administer", Resource("Town", KAGA), None, False, "departments", True, None),
    ("admin-staff", ADMIN, "administer", Resource("Town", KAGA), None, False, "staff", True, None),
    ("staff-cannot-administer", SHIMIN, "administer", Resource("Town", KAGA), None, False, "staff", False, "admin role"),
    ("other-admin", KOMATSU_ADMIN, "administer", Resource("Town", KAGA), None, False, "staff", False, "another town"),
    ("operator-no-issuer", OPERATOR, "administer", Resource("Town", KAGA), None, False, "issuer", False, "operators may not administer"),
    ("operator-not-staff", OPERATOR, "administer", Resource("Town", KAGA), None, False, "staff", False, "operators may not administer"),
]
# fmt: on


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(ROOT / "policies")


@pytest.mark.parametrize(
    ("actor", "action", "resource", "purpose", "by_number", "area", "allowed", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_decision(
    engine: PolicyEngine,
    actor: Actor,
    action: str,
    resource: Resource,
    purpose: str | None,
    by_number: bool,
    area: str,
    allowed: bool,
    reason: str | None,
) -> None:
    """The engine's decision and explanation match the table."""
    query = Query(action, resource, P[purpose] if purpose else None, by_number, area)
    decision = engine.decide(actor, query)
    assert decision.allowed is allowed, decision
    if allowed:
        assert decision.reason is None
        assert decision.policy_ids, "an Allow names its determining permit"
    else:
        assert reason is not None
        assert decision.reason is not None
        assert reason in decision.reason


def test_there_are_enough_cases() -> None:
    """The table covers at least 40 cases (issue #3)."""
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


def test_forbid_guardrails_report_their_policy_ids(engine: PolicyEngine) -> None:
    """A guardrail deny names the forbid policy that decided it (kept for audit)."""
    decision = engine.decide(
        KAIGO, Query("read", field("address", dv=True), P["kaigo.qualification"])
    )
    assert decision.policy_ids == ("support-measure-hides-whereabouts",)
    default_deny = engine.decide(KAIKEI, Query("read", field("sex"), P["kaikei.payment"]))
    assert default_deny.policy_ids == ()


def test_cache_gives_the_same_answers_and_spares_the_engine(engine: PolicyEngine) -> None:
    """100 residents × every field cost one engine call uncached and none cached,
    with the same decisions either way."""
    engine.invalidate()
    calls = engine.engine_calls
    queries = [
        Query("read", field(name, dv=i % 10 == 0), P["kaigo.qualification"])
        for i in range(100)
        for name in POLICY_FIELDS
    ]
    first = engine.decide_many(KAIGO_MFA, queries)
    assert engine.engine_calls - calls == 1
    second = engine.decide_many(KAIGO_MFA, queries)
    assert engine.engine_calls - calls == 1
    assert first == second
    single = [engine.decide(KAIGO_MFA, q) for q in queries[: len(POLICY_FIELDS)]]
    assert single == first[: len(POLICY_FIELDS)]


def test_cache_key_ignores_the_staff_id_but_not_the_purposes(engine: PolicyEngine) -> None:
    """Two people with the same attributes share decisions; a different grant does not."""
    engine.invalidate()
    a = replace(KAIGO, staff_id="k-1")
    b = replace(KAIGO, staff_id="k-2")
    q = Query("read", field("family_name"), P["kaigo.qualification"])
    engine.decide(a, q)
    calls = engine.engine_calls
    assert engine.decide(b, q).allowed
    assert engine.engine_calls == calls
    revoked = replace(KAIGO, purposes=frozenset({"kaigo.premium"}))
    assert not engine.decide(revoked, q).allowed
    assert engine.engine_calls == calls + 1
