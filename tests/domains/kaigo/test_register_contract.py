"""What this domain reads of the resident register is still declared by the residents
domain (the registry), so a change there fails here, not in production."""

from __future__ import annotations

from shared_gov.domains import registry
from shared_gov.domains.kaigo.repository import register


def test_the_history_columns_read_are_declared() -> None:
    tables = registry.encrypted_tables()
    history = tables[register.HISTORY]
    assert set(register.HISTORY_COLUMNS) <= set(history.columns)
    assert history.row_id_sql == "resident_id::text || '/' || history_no"
    residents = tables[register.RESIDENTS]
    assert "birth_date" in residents.columns
    assert residents.row_id_sql == "id::text"
    assert register.RECORD_TYPE in {rt.name for rt in registry.record_types().values()}
    resident = registry.record_type(register.RECORD_TYPE)
    for name in ("birth_date", "address", "forward_address"):
        assert resident.field(name).encrypted is not None


def test_the_domain_is_installed_with_its_resources() -> None:
    spec = next(s for s in registry.domains() if s.name == "kaigo")
    assert {rt.name for rt in spec.record_types} == {"InsuredPerson", "Determination", "Facility"}
    assert "InsuredPerson.insured_number" in registry.all_policy_fields()
    assert "InsuredPerson.tokurei" in registry.whereabouts_fields()
    assert "Facility.name" not in registry.all_policy_fields()  # nothing personal
    assert {"insured_number", "InsuredPerson.insured_number"} <= registry.redacted_keys()
