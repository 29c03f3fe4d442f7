"""HTTP endpoints of resident records under ``/api/v1/tenants/{code}``.

Searches take their personal values in a POST body so they never appear in
URLs or access logs.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from shared_gov.api.entry import Entry, audited
from shared_gov.domains.residents import flows, queries, rules, service, views
from shared_gov.domains.residents.models import Resident
from shared_gov.domains.residents.schemas import (
    HistoryEntry,
    HistoryOut,
    HouseholdMember,
    HouseholdOut,
    MoveCreate,
    OneStopMoveIn,
    ResidentCreate,
    ResidentOut,
    ResidentSearch,
    SearchResult,
    SupportMeasure,
)
from shared_gov.messages import language
from shared_gov.policy import FieldView

_META = ("id", "atena_no", "state", "version", "history_no", "support_measure")
_MEMBER_FIELDS = (
    "family_name",
    "given_name",
    "family_name_kana",
    "given_name_kana",
    "relationship",
)
_MOVE_DATE_FIELDS = frozenset({"birth_date", "resident_since", "address_since", "removed_on"})
"""Record dates a history entry's 異動日 may equal: it is withheld with any of them."""


def _out(resident: Resident, view: FieldView) -> ResidentOut:
    """Only the fields the policy allows for this caller and purpose."""
    values: dict[str, Any] = {name: getattr(resident, name) for name in _META}
    values.update({name: getattr(resident, name) for name in view.allowed})
    reasons = view.reasons_in(language.current()) if view.reasons else {}
    return ResidentOut(**values, withheld=list(view.withheld), withheld_reasons=dict(reasons))


def _member(resident: Resident, view: FieldView) -> HouseholdMember:
    values = {n: getattr(resident, n) for n in _MEMBER_FIELDS if n in view.allowed}
    return HouseholdMember(
        id=resident.id, atena_no=resident.atena_no, state=resident.state, **values
    )


def _with_etag(
    resident: Resident, view: FieldView, status: int = 200, location: str | None = None
) -> Response[ResidentOut]:
    headers = {"ETag": rules.etag(resident)}
    if location:
        headers["Location"] = location
    return Response(_out(resident, view), status_code=status, headers=headers)


class ResidentController(Controller):
    path = "/api/v1/tenants/{code:str}"
    tags = ("residents",)

    @post(
        "/residents",
        status_code=201,
        summary="Register a person (記載)",
        **audited("resident.register"),
    )
    async def register(
        self, entry: NamedDependency[Entry], data: JSONBody[ResidentCreate]
    ) -> Response[ResidentOut]:
        async with entry:
            resident = await service.register(entry.uow, entry.access, data)
            view = await views.view_of(entry.uow, entry.access, resident)
        location = f"/api/v1/tenants/{entry.code}/residents/{resident.id}"
        return _with_etag(resident, view, 201, location)

    @post(
        "/residents/one-stop-move-in",
        status_code=201,
        summary="Move-in citing the old town's record when it is a tenant (one-stop move)",
        **audited("resident.move_in_from_town"),
    )
    async def one_stop_move_in(
        self, entry: NamedDependency[Entry], data: JSONBody[OneStopMoveIn]
    ) -> Response[ResidentOut]:
        result = await flows.one_stop_move_in(entry, data)
        resident = result.resident
        location = f"/api/v1/tenants/{entry.code}/residents/{resident.id}"
        response = _with_etag(resident, result.view, 201, location)
        response.headers["X-Transfer-ID"] = result.transfer_id
        return response

    @get(
        "/residents/{resident_id:str}",
        summary="Current record of a resident",
        **audited("resident.read", record="resident_id", agreement=True),
    )
    async def read(
        self, entry: NamedDependency[Entry], resident_id: FromPath[str]
    ) -> Response[ResidentOut]:
        async with entry:
            resident, view = await queries.get(entry.uow, entry.access, resident_id)
        return _with_etag(resident, view)

    @post(
        "/residents/{resident_id:str}/moves",
        status_code=200,
        summary="Register a change or removal event (修正・消除); needs If-Match",
        **audited("resident.move", record="resident_id", if_match=True),
    )
    async def move(
        self, entry: NamedDependency[Entry], resident_id: FromPath[str], data: JSONBody[MoveCreate]
    ) -> Response[ResidentOut]:
        async with entry:
            # Inside the entry: another town gets its 404 first, and a missing
            # or malformed If-Match is recorded like any other refusal.
            expected = rules.parse_if_match(entry.if_match)
            resident, view = await service.move(
                entry.uow, entry.access, resident_id, data, expected
            )
        return _with_etag(resident, view)

    @put(
        "/residents/{resident_id:str}/support-measure",
        summary="Set or lift 支援措置 (市民課, juki.registration); needs If-Match",
        **audited("resident.protect", record="resident_id", if_match=True),
    )
    async def support_measure(
        self,
        entry: NamedDependency[Entry],
        resident_id: FromPath[str],
        data: JSONBody[SupportMeasure],
    ) -> Response[ResidentOut]:
        async with entry:
            expected = rules.parse_if_match(entry.if_match)
            resident, view = await service.set_support_measure(
                entry.uow, entry.access, resident_id, data.active, expected
            )
        return _with_etag(resident, view)

    @get(
        "/residents/{resident_id:str}/history",
        summary="Every snapshot (履歴), in order",
        **audited("resident.history", record="resident_id"),
    )
    async def history(
        self, entry: NamedDependency[Entry], resident_id: FromPath[str]
    ) -> HistoryOut:
        async with entry:
            entries, view = await queries.history(entry.uow, entry.access, resident_id)
        hidden = set(view.withheld)
        for item in entries:
            if "snapshot" in item:  # an unreadable entry has none (HistoryEntry.unreadable)
                item["snapshot"] = {k: v for k, v in item["snapshot"].items() if k not in hidden}
            # A withheld field appears nowhere: 届出日 is notified_on, and an
            # entry's 異動日 is the day one of the record dates took (birth,
            # move-in, move, removal), so it goes whenever any of them is withheld.
            if "notified_on" in hidden:
                item.pop("notified_on", None)
            if hidden & _MOVE_DATE_FIELDS:
                item.pop("move_date", None)
        return HistoryOut(
            resident_id=resident_id,
            entries=[msgspec.convert(e, HistoryEntry) for e in entries],
            withheld=list(view.withheld),
        )

    @post(
        "/residents/search",
        status_code=200,
        summary="Search residents (values in the body)",
        **audited("resident.search", agreement=True),
    )
    async def search(
        self, entry: NamedDependency[Entry], data: JSONBody[ResidentSearch]
    ) -> SearchResult:
        async with entry:
            found = await queries.search(entry.uow, entry.access, data)
            shaped = [_out(r, view) for r, view in found]
        return SearchResult(count=len(shaped), residents=shaped)

    @get(
        "/households/{household_no:str}",
        summary="Members of a household (世帯)",
        **audited("household.read"),
    )
    async def household(
        self, entry: NamedDependency[Entry], household_no: FromPath[str]
    ) -> HouseholdOut:
        async with entry:
            head, members = await queries.household(entry.uow, entry.access, household_no)
            shaped = [_member(m, view) for m, view in members]
        return HouseholdOut(household_no=household_no, head_id=head, members=shaped)
