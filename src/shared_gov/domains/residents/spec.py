"""The residents domain's registration: what the pillars know of 住民記録.

The one place the resident record's fields are described for the pillars
(encryption, blind indexes, Cedar, purposes, logs, audit, key rotation,
offboarding, the app's routes, the CLI and demo data). Everything the
platform needs is declared here; the hooks are imported only when called,
so importing this module imports no other part of the domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared_gov.domains.registry import (
    BlindIndex,
    Console,
    ConsoleLink,
    DemoData,
    DomainSpec,
    EncryptedTable,
    Exporter,
    Field,
    IndexHooks,
    Label,
    RecordType,
    StandingShare,
)
from shared_gov.messages.core import Catalogue

RESIDENTS = "residents"
HISTORY = "resident_history"


def _f(
    name: str,
    ja: str,
    en: str,
    *,
    encrypted: bool = True,
    redacted: bool = False,
    whereabouts: bool = False,
    individual_number: bool = False,
) -> Field:
    return Field(
        name,
        Label(ja, en),
        personal=True,
        encrypted=(RESIDENTS, name) if encrypted else None,
        redacted=redacted,
        whereabouts=whereabouts,
        individual_number=individual_number,
    )


# The personal fields a policy decides on, one by one, in this order. Identifiers
# and states (id, atena_no, state, version, ...) are not personal on their own and
# come with any permitted field. Record dates are: for a birth they are the birth
# date, for a death the date of death.
RESIDENT = RecordType(
    name="Resident",
    label=Label("住民", "resident"),
    unqualified=True,
    actions=("search", "register", "move", "history", "household", "protect"),
    fields=(
        _f("family_name", "氏", "family name", redacted=True),
        _f("given_name", "名", "given name", redacted=True),
        _f("family_name_kana", "氏カナ", "family name (kana)", redacted=True),
        _f("given_name_kana", "名カナ", "given name (kana)", redacted=True),
        _f("birth_date", "生年月日", "date of birth", redacted=True),
        _f("sex", "性別", "sex"),
        _f("address", "住所", "address", redacted=True, whereabouts=True),
        _f("postal_code", "郵便番号", "postal code", redacted=True, whereabouts=True),
        _f(
            "individual_number",
            "個人番号",
            "individual number (My Number)",
            redacted=True,
            individual_number=True,
        ),
        _f("juminhyo_code", "住民票コード", "resident record code", redacted=True),
        _f("phone", "電話番号", "phone number", redacted=True, whereabouts=True),
        _f("former_surname", "旧氏", "former surname", redacted=True),
        _f("domicile", "本籍", "registered domicile", redacted=True),
        _f("previous_address", "前住所", "previous address", redacted=True, whereabouts=True),
        _f("forward_address", "転出先", "forwarding address", redacted=True, whereabouts=True),
        # Not encrypted (households are found by it), but it leads to the head of
        # household and so to the address: withheld with the address.
        _f("household_no", "世帯番号", "household number", encrypted=False, whereabouts=True),
        _f("relationship", "続柄", "relationship to the head", whereabouts=True),
        _f("resident_type", "住民種別", "resident type"),
        _f("resident_since", "住民となった年月日", "resident since"),
        _f("address_since", "住所を定めた年月日", "address since"),
        _f("notified_on", "届出年月日", "notified on"),
        _f("removed_on", "消除年月日", "removed on"),
    ),
)

POLICY_FIELDS: tuple[str, ...] = tuple(
    RESIDENT.policy_name(f.name) for f in RESIDENT.personal_fields
)
"""The resident's personal fields as purposes and Cedar name them, in order."""
RESIDENT_COLUMNS: tuple[str, ...] = tuple(
    f.encrypted[1] for f in RESIDENT.fields if f.encrypted is not None
)
"""The residents table's envelope columns, in declaration order."""

# 転出証明書の記載事項 (住民基本台帳法施行令 第23条): what the old town certifies to
# the new one when a resident moves.
MOVE_CERTIFICATE_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "birth_date",
    "sex",
    "address",
    "postal_code",
    "forward_address",
    "domicile",
    "relationship",
    "juminhyo_code",
    "individual_number",
    "resident_type",
    "resident_since",
    "removed_on",
    "former_surname",
)


def _index_hooks() -> IndexHooks:
    from shared_gov.domains.residents import index_hooks as hooks

    return IndexHooks(
        backlog=hooks.index_backlog,
        fill=hooks.fill_index,
        clear=hooks.clear_index,
        stored=hooks.index_values_stored,
    )


def _exporter() -> Exporter:
    from shared_gov.domains.residents.repository import export_all

    return export_all


def _routers() -> Sequence[Any]:
    from shared_gov.domains.residents.access_log import ResidentAccessLogController
    from shared_gov.domains.residents.controllers import ResidentController
    from shared_gov.domains.residents.events_controllers import EventController

    return (ResidentController, ResidentAccessLogController, EventController)


def _cli_groups() -> Sequence[tuple[str, Any]]:
    from shared_gov.domains.residents.cli import residents_app

    return (("residents", residents_app),)


def _demo() -> DemoData:
    from shared_gov.domains.residents import demo

    return DemoData(
        seed=demo.seed_town, records=demo.count, sample=demo.sample, upgrade=demo.upgrade
    )


def _console_pages() -> Sequence[Any]:
    from shared_gov.domains.residents.web.pages import DisclosurePages

    return (DisclosurePages,)


CONSOLE = Console(
    controllers=_console_pages,
    templates=Path(__file__).parent / "web" / "templates",
    # Shown to staff; the page refuses with the reason whoever lacks juki.disclosure.
    links=(
        ConsoleLink(
            "residents/disclosure/",
            Label("アクセス記録の開示（窓口）", "Access reports (disclosure desk)"),
        ),
    ),
)


def _messages() -> Catalogue:
    from shared_gov.domains.residents.messages import CATALOGUE

    return CATALOGUE


SPEC = DomainSpec(
    name="residents",
    label=Label("住民記録", "resident records"),
    record_types=(RESIDENT,),
    encrypted_tables=(
        EncryptedTable(RESIDENTS, RESIDENT_COLUMNS, row_id_sql="id::text"),
        # History snapshots are one envelope each, bound to (resident, entry).
        # Append-only: the town's role adds entries, never changes one.
        EncryptedTable(
            HISTORY,
            ("snapshot", "reason", "move_date", "notified_on"),
            row_id_sql="resident_id::text || '/' || history_no",
            append_only=True,
        ),
    ),
    blind_indexes=(
        BlindIndex("individual_number", RESIDENTS, ("individual_number",), ("digits",)),
        BlindIndex("kana_birth", RESIDENTS, ("family_name_kana", "birth_date"), ("kana", "date")),
        BlindIndex("phone", RESIDENTS, ("phone",), ("digits",)),
        BlindIndex("juminhyo_code", RESIDENTS, ("juminhyo_code",), ("digits",)),
    ),
    index_hooks=_index_hooks,
    exporter=_exporter,
    routers=_routers,
    cli_groups=_cli_groups,
    demo=_demo,
    standing_share=StandingShare(
        department="shimin",
        purpose="juki.registration",
        fields=MOVE_CERTIFICATE_FIELDS,
        legal_basis="住民基本台帳法 第22条, 第24条, 第24条の2; 同法施行令 第23条 (転出証明書)",
    ),
    event_record_types=("Resident",),
    messages=_messages,
    console=CONSOLE,
)
