"""HTTP endpoints of care facilities under ``/api/v1/tenants/{code}/kaigo``: the
town's own (介護保険課: create, change with If-Match, remove, import CSV) and every
town's (read). Nothing here is personal; every call is still decided and audited."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, RawBody

from shared_gov import errors
from shared_gov.api.entry import Entry, audited
from shared_gov.api.pipeline import services
from shared_gov.domains.kaigo import directory, facility_service, service
from shared_gov.domains.kaigo import messages as m
from shared_gov.domains.kaigo.models import Facility
from shared_gov.domains.kaigo.schemas import FacilityIn, FacilityList, FacilityOut, ImportResult
from shared_gov.domains.kaigo.vocabulary import FACILITY_KIND_JA, FacilityKind
from shared_gov.openapi import sent_as

FACILITY = "care_facility"
MAX_CSV_BYTES = 2_000_000


def facility_out(f: Facility) -> FacilityOut:
    return FacilityOut(
        id=f.id,
        town=f.town,
        name=f.name,
        address=f.address,
        kind=f.kind,
        kind_ja=FACILITY_KIND_JA[FacilityKind(f.kind)],
        places=f.places,
        covered=f.covered,
        covered_reason=f.covered_reason,
        version=f.version,
    )


def _with_etag(
    f: Facility, status: int = 200, location: str | None = None
) -> Response[FacilityOut]:
    headers = {"ETag": service.etag(f.version)}
    if location:
        headers["Location"] = location
    return Response(facility_out(f), status_code=status, headers=headers)


class FacilityController(Controller):
    path = "/api/v1/tenants/{code:str}/kaigo"
    tags = ("kaigo",)

    @get(
        "/facilities",
        summary="The town's own care facilities",
        **audited("kaigo.facility.list", FACILITY),
    )
    async def own(self, entry: NamedDependency[Entry]) -> FacilityList:
        async with entry:
            found = await facility_service.own(entry.uow, entry.access)
        return FacilityList([facility_out(f) for f in found])

    @get(
        "/facility-directory",
        summary="Every town's care facilities (the platform-wide list)",
        **audited("kaigo.facility.directory", FACILITY),
    )
    async def everyone(self, entry: NamedDependency[Entry]) -> FacilityList:
        async with entry:
            facility_service.may_read_all(entry.access)
        # Read after the decision and outside the town's unit of work: one town's
        # transaction at a time (directory), cached.
        places = await directory.directory(services(entry.request).db)
        return FacilityList([facility_out(f) for f in places.all()])

    @get(
        "/facilities/{facility_id:str}",
        summary="One facility of the town, with its ETag",
        **audited("kaigo.facility.read", FACILITY, record="facility_id"),
    )
    async def read(
        self, entry: NamedDependency[Entry], facility_id: FromPath[str]
    ) -> Response[FacilityOut]:
        async with entry:
            found = await facility_service.get(entry.uow, entry.access, facility_id)
        return _with_etag(found)

    @post(
        "/facilities",
        status_code=201,
        summary="Add a facility of the town (covered by 住所地特例 or not: by the rule)",
        **audited("kaigo.facility.create", FACILITY),
    )
    async def create(
        self, entry: NamedDependency[Entry], data: JSONBody[FacilityIn]
    ) -> Response[FacilityOut]:
        async with entry:
            made = await facility_service.create(entry.uow, entry.access, data)
        return _with_etag(made, 201, f"/api/v1/tenants/{entry.code}/kaigo/facilities/{made.id}")

    @put(
        "/facilities/{facility_id:str}",
        summary="Change a facility of the town; needs If-Match",
        **audited("kaigo.facility.change", FACILITY, record="facility_id", if_match=True),
    )
    async def change(
        self, entry: NamedDependency[Entry], facility_id: FromPath[str], data: JSONBody[FacilityIn]
    ) -> Response[FacilityOut]:
        async with entry:
            version = service.parse_if_match(entry.if_match)
            changed = await facility_service.change(
                entry.uow, entry.access, facility_id, version, data
            )
        return _with_etag(changed)

    @delete(
        "/facilities/{facility_id:str}",
        status_code=204,
        summary="Remove a facility of the town; needs If-Match",
        **audited("kaigo.facility.remove", FACILITY, record="facility_id", if_match=True),
    )
    async def remove(self, entry: NamedDependency[Entry], facility_id: FromPath[str]) -> None:
        async with entry:
            version = service.parse_if_match(entry.if_match)
            await facility_service.remove(entry.uow, entry.access, facility_id, version)

    @post(
        "/facilities/import",
        status_code=200,
        summary="Import the town's facilities from CSV (name,address,kind,places; UTF-8)",
        operation_class=sent_as("text/csv", description="name,address,kind,places; UTF-8"),
        **audited("kaigo.facility.import", FACILITY),
    )
    async def import_(self, entry: NamedDependency[Entry], body: RawBody) -> ImportResult:
        # The body is read after the entry's middleware refused another town and
        # operators; the file is parsed before the entry, as a JSON body is decoded
        # before the handler: a broken one is a 422 (recorded under this route).
        if len(body) > MAX_CSV_BYTES:
            raise errors.invalid_field("/", m.FILE_TOO_LARGE)
        rows = facility_service.parse_csv(body)
        async with entry:
            created, skipped = await facility_service.import_rows(entry.uow, entry.access, rows)
        return ImportResult(created, skipped)
