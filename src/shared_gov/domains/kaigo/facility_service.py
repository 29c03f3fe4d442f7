"""The town's care facilities: 介護保険課 maintains its own (create, change, remove,
import from CSV); every town's staff read every town's (the platform-wide list,
:mod:`.directory`). Whether 住所地特例 covers a facility is decided by the rule
(:func:`.vocabulary.coverage`, 介護保険法 第13条), never typed in."""

from __future__ import annotations

import csv
import io
import re
import uuid

from shared_gov import errors
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.kaigo import directory
from shared_gov.domains.kaigo import messages as m
from shared_gov.domains.kaigo.models import Facility
from shared_gov.domains.kaigo.repository import facilities
from shared_gov.domains.kaigo.schemas import FacilityIn
from shared_gov.domains.kaigo.service import parse_uuid
from shared_gov.domains.kaigo.spec import FACILITY
from shared_gov.domains.kaigo.vocabulary import FacilityKind, address_key, coverage
from shared_gov.errors import FieldError
from shared_gov.policy import Access
from shared_gov.validation import TEXT_PATTERN

FACILITY_TYPE = FACILITY.name
CSV_COLUMNS = ("name", "address", "kind", "places")
MAX_IMPORT_ROWS = 5_000


def _facility(town: str, facility_id: str, data: FacilityIn) -> Facility:
    covered, reason = coverage(FacilityKind(data.kind), data.places)
    return Facility(
        facility_id, town, data.name, data.address, data.kind, data.places, covered, reason
    )


def _clash() -> errors.DomainError:
    return errors.conflict(m.FACILITY_AT_ADDRESS)


async def own(uow: TenantUnitOfWork, access: Access) -> list[Facility]:
    access.require("facility_read", record_type=FACILITY_TYPE)
    found = await facilities.every(uow)
    access.audit.rows = len(found)
    return found


async def get(uow: TenantUnitOfWork, access: Access, facility_id: str) -> Facility:
    access.require("facility_read", record_type=FACILITY_TYPE)
    found = await facilities.get(uow, parse_uuid(facility_id, m.NO_FACILITY))
    if found is None:
        raise errors.not_found(m.NO_FACILITY)
    access.audit.rows = 1
    return found


def may_read_all(access: Access) -> None:
    access.require("facility_read", record_type=FACILITY_TYPE)


async def create(uow: TenantUnitOfWork, access: Access, data: FacilityIn) -> Facility:
    access.require("facility_manage", record_type=FACILITY_TYPE)
    made = _facility(uow.code, str(uuid.uuid4()), data)
    if not await facilities.insert(uow, made):
        raise _clash()
    directory.forget()
    access.audit.rows = 1
    return made


async def change(
    uow: TenantUnitOfWork, access: Access, facility_id: str, version: int, data: FacilityIn
) -> Facility:
    access.require("facility_manage", record_type=FACILITY_TYPE)
    current = await facilities.get(uow, parse_uuid(facility_id, m.NO_FACILITY), lock=True)
    if current is None:
        raise errors.not_found(m.NO_FACILITY)
    if current.version != version:
        raise errors.precondition_failed(m.FACILITY_CHANGED(etag=f'"v{current.version}"'))
    changed = _facility(uow.code, current.id, data)
    changed.version = current.version
    if not await facilities.update(uow, changed):
        raise _clash()
    directory.forget()
    access.audit.rows = 1
    return changed


async def remove(uow: TenantUnitOfWork, access: Access, facility_id: str, version: int) -> None:
    access.require("facility_manage", record_type=FACILITY_TYPE)
    current = await facilities.get(uow, parse_uuid(facility_id, m.NO_FACILITY), lock=True)
    if current is None:
        raise errors.not_found(m.NO_FACILITY)
    if current.version != version:
        raise errors.precondition_failed(m.FACILITY_CHANGED(etag=f'"v{current.version}"'))
    if not await facilities.delete(uow, current.id):
        raise errors.conflict(m.FACILITY_IN_A_NOTICE)
    directory.forget()
    access.audit.rows = 1


def parse_csv(body: bytes) -> list[FacilityIn]:
    """The rows of a facility CSV (UTF-8, optional BOM; header ``name,address,kind,places``).

    Every problem of every row is reported at once (422, ``/rows/<n>/<column>``,
    rows counted from 1 after the header); nothing of a file with one is imported.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise errors.invalid_field("/", m.NOT_UTF8) from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != CSV_COLUMNS:
        raise errors.invalid_field("/header", m.CSV_HEADER)
    printable = re.compile(TEXT_PATTERN)
    problems: list[FieldError] = []
    rows: list[FacilityIn] = []
    kinds = {k.value for k in FacilityKind}
    for n, row in enumerate(reader, 1):
        if n > MAX_IMPORT_ROWS:
            raise errors.invalid_field("/rows", m.TOO_MANY_ROWS(rows=MAX_IMPORT_ROWS))
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_COLUMNS):
            problems.append(FieldError(f"/rows/{n}", m.COLUMN_COUNT))
            continue
        name, address, kind, places = (cell.strip() for cell in row)
        for column, value, limit in (("name", name, 120), ("address", address, 200)):
            if not 1 <= len(value) <= limit or not printable.match(value):
                problems.append(FieldError(f"/rows/{n}/{column}", m.INVALID_TEXT))
        if kind not in kinds:
            problems.append(FieldError(f"/rows/{n}/kind", m.UNKNOWN_FACILITY_KIND))
        if not (places.isascii() and places.isdigit() and 1 <= int(places) <= 10_000):
            problems.append(FieldError(f"/rows/{n}/places", m.PLACES_RANGE))
        if not problems:
            rows.append(FacilityIn(name=name, address=address, kind=kind, places=int(places)))  # type: ignore[arg-type]
    keys = [address_key(r.address) for r in rows]
    seen: set[str] = set()
    for n, key in enumerate(keys, 1):
        if key in seen:
            problems.append(FieldError(f"/rows/{n}/address", m.REPEATED_ADDRESS))
        seen.add(key)
    if problems:
        raise errors.invalid(problems)
    return rows


async def import_rows(
    uow: TenantUnitOfWork, access: Access, rows: list[FacilityIn]
) -> tuple[int, int]:
    """Create the file's facilities the town does not have yet; (created, skipped)."""
    access.require("facility_manage", record_type=FACILITY_TYPE)
    existing = await facilities.existing_keys(uow, [address_key(r.address) for r in rows])
    created = 0
    for r in rows:
        if address_key(r.address) in existing:
            continue
        if await facilities.insert(uow, _facility(uow.code, str(uuid.uuid4()), r)):
            created += 1
    directory.forget()
    access.audit.rows = created
    return created, len(rows) - created
