"""Bulk import and export of a town's resident register as CSV.

The layout is modelled on the 住民記録 part of the intermediate standard
layout (中間標準レイアウト仕様): one row per person with 宛名番号, 世帯番号,
続柄, names and their kana, 生年月日, 性別 (1 男 / 2 女), 住所, 郵便番号,
個人番号, 住民票コード, 住民種別 (1 日本人住民 / 2 外国人住民), 住民状態 and
the record dates. Column names and codes are listed in ``COLUMNS`` and in
docs/import-export.md. UTF-8, header row required, dates as YYYY-MM-DD.

Import validates every row before writing anything (check digits, dates,
required fields, codes, kana, duplicates in the file and in the town); on any
error nothing is written and the report lists row, column and reason — never
the value. Valid files are encrypted and indexed in bulk and loaded with COPY
in one transaction, with one ``resident.registered`` event per record
(:mod:`.events`). Export writes the same layout, decrypted, so importing an
export reproduces the same records (same ids, 宛名番号 and 世帯番号).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

from shared_gov.audit.recorder import AuditEvent, operator_actor, record
from shared_gov.checkdigits import (
    is_valid_individual_number,
    is_valid_juminhyo_code,
    is_valid_postal_code,
    is_valid_serial,
)
from shared_gov.clock import today_jst
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents import events
from shared_gov.domains.residents import repository as repo
from shared_gov.domains.residents.models import HEAD, RELATIONSHIPS, Resident
from shared_gov.domains.residents.service import normalize_kana
from shared_gov.policy.purposes import POLICY_FIELDS

# (column, Japanese label, required)
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("id", "内部ID（UUID、省略可）", False),
    ("atena_no", "宛名番号", True),
    ("household_no", "世帯番号", True),
    ("relationship", "続柄", True),
    ("family_name", "氏", True),
    ("given_name", "名", True),
    ("family_name_kana", "氏カナ", True),
    ("given_name_kana", "名カナ", True),
    ("birth_date", "生年月日", True),
    ("sex", "性別（1 男 / 2 女）", True),
    ("address", "住所", True),
    ("postal_code", "郵便番号", False),
    ("individual_number", "個人番号", False),
    ("juminhyo_code", "住民票コード", False),
    ("phone", "電話番号", False),
    ("former_surname", "旧氏", False),
    ("domicile", "本籍", False),
    ("previous_address", "前住所", False),
    ("forward_address", "転出先", False),
    ("resident_type", "住民種別（1 日本人住民 / 2 外国人住民）", True),
    ("state", "住民状態（active / moved_out / deceased / removed）", True),
    ("resident_since", "住民となった年月日", True),
    ("address_since", "住所を定めた年月日", True),
    ("notified_on", "届出年月日", True),
    ("removed_on", "消除年月日", False),
)
HEADER = [c for c, _, _ in COLUMNS]
ALL_FIELDS = tuple(c for c in HEADER if c in POLICY_FIELDS)
_SEX = {"1": "male", "2": "female"}
_SEX_CODE = {v: k for k, v in _SEX.items()}
_TYPE = {"1": "japanese", "2": "foreign"}
_TYPE_CODE = {v: k for k, v in _TYPE.items()}
_STATES = frozenset({"active", "moved_out", "deceased", "removed"})


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    """1-based data row number (the header is row 0)."""
    column: str
    reason: str


class ImportRejected(Exception):
    """The file has errors; nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} problems; nothing was written")
        self.errors = errors


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse(stream: TextIO) -> tuple[list[Resident], list[RowError]]:
    """Read and validate every row; returns records (if no errors) and errors."""
    reader = csv.DictReader(stream)
    errors: list[RowError] = []
    missing = [c for c, _, required in COLUMNS if required and c not in (reader.fieldnames or [])]
    if missing:
        return [], [RowError(0, c, "column missing from the header") for c in missing]
    today = today_jst()
    residents: list[Resident] = []
    seen: dict[str, set[str]] = {
        "id": set(),
        "atena_no": set(),
        "individual_number": set(),
        "juminhyo_code": set(),
    }
    for number, raw in enumerate(reader, start=1):
        row = {k: (v or "").strip() for k, v in raw.items() if k}
        problems: list[RowError] = []

        def bad(column: str, reason: str, n: int = number, sink: list[RowError] = problems) -> None:
            sink.append(RowError(n, column, reason))

        for column, _, required in COLUMNS:
            if required and not row.get(column):
                bad(column, "required")
        dates: dict[str, date | None] = {}
        for column in (
            "birth_date",
            "resident_since",
            "address_since",
            "notified_on",
            "removed_on",
        ):
            value = row.get(column, "")
            dates[column] = _date(value) if value else None
            if value and dates[column] is None:
                bad(column, "not a date (YYYY-MM-DD)")
            elif dates[column] is not None and dates[column] > today:  # type: ignore[operator]
                bad(column, "in the future")
        checks: list[tuple[str, Callable[[str], bool], str]] = [
            ("atena_no", is_valid_serial, "check digit does not match"),
            ("household_no", is_valid_serial, "check digit does not match"),
            ("individual_number", is_valid_individual_number, "check digit does not match"),
            ("juminhyo_code", is_valid_juminhyo_code, "must be 11 digits"),
            ("postal_code", is_valid_postal_code, "must be 7 digits"),
        ]
        for column, check, reason in checks:
            if row.get(column) and not check(row[column]):
                bad(column, reason)
        # The register's 宛名番号 are 8 digits (search, sequences and events
        # rely on it).
        if row.get("atena_no") and len(row["atena_no"]) != 8:
            bad("atena_no", "must be 8 digits")
        if row.get("id"):
            try:
                row["id"] = str(uuid.UUID(row["id"]))
            except ValueError:
                bad("id", "not a UUID")
        if row.get("sex") and row["sex"] not in _SEX:
            bad("sex", "must be 1 or 2")
        if row.get("resident_type") and row["resident_type"] not in _TYPE:
            bad("resident_type", "must be 1 or 2")
        if row.get("state") and row["state"] not in _STATES:
            bad("state", "not a known state")
        if row.get("relationship") and row["relationship"] not in RELATIONSHIPS:
            bad("relationship", "not a known 続柄")
        kana = {}
        for column in ("family_name_kana", "given_name_kana"):
            value = normalize_kana(row.get(column, ""))
            kana[column] = value
            if value and not all("ァ" <= c <= "ヺ" or c in "ー・" for c in value):
                bad(column, "must be written in kana")
        for column in ("family_name", "given_name", "former_surname"):
            if len(row.get(column, "")) > 50:
                bad(column, "longer than 50 characters")
        for column in ("address", "domicile", "previous_address", "forward_address"):
            if len(row.get(column, "")) > 200:
                bad(column, "longer than 200 characters")
        removed = row.get("state") in _STATES - {"active"}
        if removed and not row.get("removed_on"):
            bad("removed_on", "required for a removed resident")
        for column in seen:
            value = row.get(column)
            # A removed record (除票) keeps its numbers; only active ones must be unique.
            numbered = column in ("individual_number", "juminhyo_code")
            if not value or (numbered and removed):
                continue
            if value in seen[column]:
                bad(column, "duplicate in this file")
            seen[column].add(value)
        if problems:
            errors.extend(problems)
            continue
        residents.append(
            Resident(
                id=row.get("id") or str(uuid.uuid4()),
                atena_no=row["atena_no"],
                version=1,
                state=row["state"],
                resident_type=_TYPE[row["resident_type"]],
                household_no=row["household_no"],
                relationship=row["relationship"],
                family_name=row["family_name"],
                given_name=row["given_name"],
                family_name_kana=kana["family_name_kana"],
                given_name_kana=kana["given_name_kana"],
                birth_date=dates["birth_date"],  # type: ignore[arg-type]
                sex=_SEX[row["sex"]],
                address=row["address"],
                postal_code=row.get("postal_code") or None,
                individual_number=row.get("individual_number") or None,
                juminhyo_code=row.get("juminhyo_code") or None,
                phone=row.get("phone") or None,
                former_surname=row.get("former_surname") or None,
                domicile=row.get("domicile") or None,
                previous_address=row.get("previous_address") or None,
                forward_address=row.get("forward_address") or None,
                resident_since=dates["resident_since"],  # type: ignore[arg-type]
                address_since=dates["address_since"],  # type: ignore[arg-type]
                notified_on=dates["notified_on"],  # type: ignore[arg-type]
                removed_on=dates["removed_on"],
                history_no=1,
            )
        )
    return residents, errors


async def import_csv(
    uow: TenantUnitOfWork,
    stream: TextIO,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Validate the whole file, then load it in the caller's transaction.

    Raises :class:`ImportRejected` (nothing written) on any problem.
    """
    residents, errors = parse(stream)
    if errors:
        raise ImportRejected(errors)
    active = [r for r in residents if r.state == "active"]
    taken_in, taken_jc = await repo.existing_unique_values(
        uow,
        [r.individual_number for r in active if r.individual_number],
        [r.juminhyo_code for r in active if r.juminhyo_code],
    )
    existing = {
        r.atena_no for r in await repo.find_atena_numbers(uow, [r.atena_no for r in residents])
    }
    for number, r in enumerate(residents, start=1):
        if r.state == "active" and r.individual_number in taken_in:
            errors.append(RowError(number, "individual_number", "already registered in this town"))
        if r.state == "active" and r.juminhyo_code in taken_jc:
            errors.append(RowError(number, "juminhyo_code", "already registered in this town"))
        if r.atena_no in existing:
            errors.append(RowError(number, "atena_no", "already registered in this town"))
    households: dict[str, str | None] = {}
    for r in residents:
        households.setdefault(r.household_no, None)
        if r.relationship == HEAD and r.state == "active":
            households[r.household_no] = r.id
    taken_households = await repo.existing_households(uow, list(households))
    for number, r in enumerate(residents, start=1):
        if r.household_no in taken_households:
            errors.append(RowError(number, "household_no", "household already exists in this town"))
    if errors:
        raise ImportRejected(errors)
    await repo.copy_in(uow, residents, households, today_jst(), on_progress)
    # One event per record, in bulk and in the load's transaction. The shared
    # import_id tells consumers this is a data migration, not a wave of
    # registrations to act on.
    import_id = str(uuid.uuid4())
    await events.emit_many(
        uow,
        events.REGISTERED,
        [r.id for r in residents],
        each={"atena_no": [r.atena_no for r in residents]},
        history_no="1",
        import_id=import_id,
    )
    # One event for the whole load, in the same transaction (no audit, no import).
    # Bulk jobs record counts, not every subject: the file itself is the list.
    await record(
        uow,
        operator_actor("residents import"),
        AuditEvent(action="residents.import", fields=list(ALL_FIELDS), rows=len(residents)),
    )
    return len(residents)


def _cells(r: Resident) -> list[str]:
    values: dict[str, Any] = {
        **{c: getattr(r, c, None) for c in HEADER if hasattr(r, c)},
        "sex": _SEX_CODE.get(r.sex, ""),
        "resident_type": _TYPE_CODE.get(r.resident_type, ""),
    }
    return ["" if values.get(c) is None else str(values[c]) for c in HEADER]


async def export_csv(uow: TenantUnitOfWork, stream: TextIO) -> int:
    """Write every record of the town, decrypted, in the import layout."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    async for resident in repo.iter_all(uow):
        writer.writerow(_cells(resident))
        count += 1
    await record(
        uow,
        operator_actor("residents export"),
        AuditEvent(action="residents.export", fields=list(ALL_FIELDS), rows=count),
    )
    return count


def report(errors: list[RowError], limit: int = 200) -> Iterator[str]:
    """Human-readable lines for an import report (no values, ever)."""
    for e in errors[:limit]:
        yield f"row {e.row}, {e.column}: {e.reason}"
    if len(errors) > limit:
        yield f"… and {len(errors) - limit} more"


def to_csv_text(rows: list[list[str]]) -> str:
    """Helper for tests and tools: CSV text with our header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue()
