"""The 介護保険 domain's registration: what the pillars know of it.

Three record types:

- ``InsuredPerson`` (被保険者): one per resident the town's 介護保険課 keeps a
  record of, linked to the resident by id. The insured number (found by its
  blind index), the qualification periods, 住所地特例, the card and the notes
  are envelopes; the category and the status are plain (filters), personal
  all the same (a purpose must name them).
- ``Determination`` (判定): a proposed change with its date, legal basis,
  premium months before and after and the questions for staff (one
  envelope), the facility it names (another: where the person lives) and a
  correction (a third). Kind, status and deadline are plain, for the queue.
- ``Facility`` (介護施設): the town's own care facilities, nothing personal.

Two derived envelopes are no field of any record: ``kaigo_watch.turns_65_on``
(the day each resident reaches 65) and its blind index ``kaigo_turns_65``,
which lets the daily job find who reaches 65 on a day without decrypting the
register (docs/kaigo.md, "Who reaches 65 tomorrow"), and
``kaigo_notices.insurer_number`` (another town's insured number of a
住所地特例者 living here).

Hooks are imported only when called, so importing this module imports no
other part of the domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared_gov.domains.registry import (
    Background,
    BlindIndex,
    Console,
    ConsoleLink,
    ConsoleStaff,
    DemoData,
    DomainSpec,
    EncryptedTable,
    Exporter,
    Field,
    IndexHooks,
    Label,
    RecordType,
)
from shared_gov.messages.core import Catalogue

HERE = Path(__file__).resolve().parent

INSURED = "kaigo_insured"
DETERMINATIONS = "kaigo_determinations"
WATCH = "kaigo_watch"
NOTICES = "kaigo_notices"
FACILITIES = "kaigo_facilities"

INSURED_NUMBER_INDEX = "kaigo_insured_number"
TURNS_65_INDEX = "kaigo_turns_65"


def _f(
    table: str,
    name: str,
    ja: str,
    en: str,
    *,
    encrypted: bool = True,
    redacted: bool = False,
    whereabouts: bool = False,
) -> Field:
    return Field(
        name,
        Label(ja, en),
        personal=True,
        encrypted=(table, name) if encrypted else None,
        redacted=redacted,
        whereabouts=whereabouts,
    )


INSURED_PERSON = RecordType(
    name="InsuredPerson",
    label=Label("被保険者", "insured person"),
    actions=("insured_search", "insured_report"),
    fields=(
        _f(INSURED, "insured_number", "被保険者番号", "insured number", redacted=True),
        _f(INSURED, "category", "被保険者区分", "category (1st / 2nd)", encrypted=False),
        _f(INSURED, "status", "資格状態", "qualification status", encrypted=False),
        _f(INSURED, "periods", "資格期間（取得・喪失）", "qualification periods"),
        _f(INSURED, "tokurei", "住所地特例", "address exception (住所地特例)", whereabouts=True),
        _f(INSURED, "card", "被保険者証の交付・返還", "card issued / returned"),
        _f(INSURED, "notes", "備考", "notes", redacted=True),
    ),
)

DETERMINATION = RecordType(
    name="Determination",
    label=Label("資格判定", "determination"),
    actions=("determine", "correct"),
    fields=(
        _f(DETERMINATIONS, "proposal", "判定内容", "proposal (date, basis, premium months)"),
        _f(DETERMINATIONS, "facility", "入所施設", "facility", whereabouts=True),
        _f(DETERMINATIONS, "correction", "訂正内容", "correction", redacted=True),
        _f(
            DETERMINATIONS, "answers", "確認事項への回答", "answers to its questions", redacted=True
        ),
    ),
)

FACILITY = RecordType(
    name="Facility",
    label=Label("介護施設", "care facility"),
    actions=("facility_read", "facility_manage"),
    fields=(
        Field("name", Label("施設名", "name"), personal=False),
        Field("address", Label("所在地", "address"), personal=False),
        Field("kind", Label("施設種別", "kind"), personal=False),
        Field("places", Label("定員", "places"), personal=False),
        Field("covered", Label("住所地特例対象", "covered by 住所地特例"), personal=False),
    ),
)


def _index_hooks() -> IndexHooks:
    from shared_gov.domains.kaigo.repository import indexes

    return IndexHooks(
        backlog=indexes.index_backlog,
        fill=indexes.fill_index,
        clear=indexes.clear_index,
        stored=indexes.index_values_stored,
    )


def _exporter() -> Exporter:
    from shared_gov.domains.kaigo.repository.export import export_all

    return export_all


def _routers() -> Sequence[Any]:
    from shared_gov.domains.kaigo.controllers import (
        DeterminationController,
        FacilityController,
        InsuredController,
        ReportController,
    )

    return (InsuredController, DeterminationController, FacilityController, ReportController)


def _cli_groups() -> Sequence[tuple[str, Any]]:
    from shared_gov.domains.kaigo.cli import kaigo_app

    return (("kaigo", kaigo_app),)


def _demo() -> DemoData:
    from shared_gov.domains.kaigo import demo

    return DemoData(seed=demo.seed_town, records=demo.count, sample=demo.sample, department="kaigo")


def _messages() -> Catalogue:
    from shared_gov.domains.kaigo.messages import CATALOGUE

    return CATALOGUE


def _console_pages() -> Sequence[Any]:
    from shared_gov.domains.kaigo.web.pages import KaigoPages

    return (KaigoPages,)


CONSOLE = Console(
    controllers=_console_pages,
    templates=HERE / "web" / "templates",
    links=(
        ConsoleLink(
            "kaigo/determinations", Label("介護保険: 判定キュー", "Care: determination queue")
        ),
        ConsoleLink("kaigo/insured", Label("介護保険: 被保険者の照会", "Care: insured persons")),
    ),
    # A second member of 介護保険課: whoever corrects a determination cannot confirm it.
    staff=(
        ConsoleStaff(
            "kaigo-0002",
            "kaigo",
            Label("介護保険課 職員（確定担当）", "Long-term care (second person)"),
            mfa=True,
        ),
    ),
)


def _background() -> Sequence[Background]:
    from shared_gov.domains.kaigo.consumer import background

    return background()


SPEC = DomainSpec(
    name="kaigo",
    label=Label("介護保険", "long-term care insurance"),
    record_types=(INSURED_PERSON, DETERMINATION, FACILITY),
    encrypted_tables=(
        EncryptedTable(
            INSURED, ("insured_number", "periods", "tokurei", "card", "notes"), "id::text"
        ),
        EncryptedTable(
            DETERMINATIONS, ("proposal", "facility", "correction", "answers"), "id::text"
        ),
        EncryptedTable(WATCH, ("turns_65_on",), "resident_id::text"),
        EncryptedTable(NOTICES, ("insurer_number",), "id::text"),
    ),
    blind_indexes=(
        BlindIndex(INSURED_NUMBER_INDEX, INSURED, ("insured_number",), ("digits",)),
        BlindIndex(TURNS_65_INDEX, WATCH, ("turns_65_on",), ("date",)),
    ),
    index_hooks=_index_hooks,
    exporter=_exporter,
    routers=_routers,
    cli_groups=_cli_groups,
    demo=_demo,
    background=_background,
    messages=_messages,
    console=CONSOLE,
    # Every change of these rows records its event in its transaction: a
    # deleted event is found by audit verify's link check (docs/audit.md).
    audited_tables=("kaigo_determinations",),
    # Reads: group-committed and chained by the audit writer (docs/audit.md).
    read_actions=(
        "kaigo.determination.list",
        "kaigo.determination.read",
        "kaigo.facility.directory",
        "kaigo.facility.list",
        "kaigo.facility.read",
        "kaigo.insured.premium",
        "kaigo.insured.read",
        "kaigo.insured.search",
        "kaigo.report.changes",
        "kaigo.report.premium",
    ),
    migrations=HERE / "migrations",
    purposes=HERE / "purposes.toml",
    policies=HERE / "policies",
)
