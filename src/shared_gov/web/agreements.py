"""Sharing agreements in the console (``/console/agreements/…``): list, show,
propose, accept, revoke.

As in the API (``/api/v1/agreements``), the pages act in the signed-in
person's own town: any of its people may list and read its agreements (gate
``AGREEMENT_READS``); only its admins propose, accept and revoke (gate
``AGREEMENTS``, decided before the form is read). Each page declares the
API endpoint's audit action and calls the same step
(:mod:`shared_gov.api.agreements`): the providing town's admin proposes,
the receiving town's admin accepts, either revokes — each step an event in
both towns' logs; another town's agreement is the 404 page.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath

from shared_gov import errors
from shared_gov.api.agreements import (
    AgreementIn,
    AgreementOut,
    agreement_history,
    agreement_step,
    agreements_of,
    propose_agreement,
)
from shared_gov.api.entry import AGREEMENT_READS, AGREEMENTS, Entry, audited
from shared_gov.domains import registry
from shared_gov.messages import console as L
from shared_gov.messages.core import FieldName

from .admin import purpose_choices
from .gated import (
    parsed,
    refusal,
    refused_input,
    shown_inline,
    signed_in_first,
    text,
    texts,
)
from .pages import page

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_STEP: dict[str, Any] = {"resource_type": "agreement", "gate": AGREEMENTS}
_READ: dict[str, Any] = {"resource_type": "agreement", "gate": AGREEMENT_READS}


def _day(value: str, clock: str) -> str:
    """A date field (JST) as the API's instant: the day's first or last second."""
    return f"{value}T{clock}+09:00" if _DATE.match(value) else value


def _proposal(form: FormMultiDict, provider: str) -> AgreementIn:
    """The proposal form as the API's :class:`AgreementIn`."""
    departments = [d.strip() for d in text(form, "recipient_departments").split(",") if d.strip()]
    return parsed(
        AgreementIn,
        {
            "provider": provider,
            "recipient": text(form, "recipient", 100),
            "recipient_departments": departments,
            "purposes": texts(form, "purposes"),
            "fields": texts(form, "fields"),
            "actions": texts(form, "actions"),
            "legal_basis": text(form, "legal_basis", 2000),
            "valid_from": _day(text(form, "valid_from", 100), "00:00:00"),
            "valid_until": _day(text(form, "valid_until", 100), "23:59:59"),
        },
    )


def _fields() -> list[tuple[str, FieldName]]:
    return [(name, FieldName(name)) for name in registry.policy_fields()]


class AgreementPages(Controller):
    path = "/agreements"
    include_in_schema = False
    middleware = [signed_in_first]  # noqa: RUF012 - Litestar's own class attribute

    async def _list(
        self,
        request: Request[Any, Any, Any],
        entry: Entry,
        status: int = 200,
        exc: errors.DomainError | None = None,
        asked: dict[str, Any] | None = None,
    ) -> Response[Any]:
        rows = await agreements_of(entry, entry.code)
        return page(
            request,
            "admin/agreements.html",
            status,
            code=entry.code,
            agreements=rows,
            purposes=purpose_choices(),
            fields=_fields(),
            asked=asked or {},
            **refusal(exc),
        )

    def _one(
        self,
        request: Request[Any, Any, Any],
        entry: Entry,
        agreement: AgreementOut,
        notice: Any = None,
        status: int = 200,
        exc: errors.DomainError | None = None,
    ) -> Response[Any]:
        return page(
            request,
            "admin/agreement.html",
            status,
            code=entry.code,
            agreement=agreement,
            labels={f: FieldName(f) for f in agreement.fields},
            notice=notice,
            **refusal(exc),
        )

    @get("/", **audited("agreement.list", **_READ))
    async def list_page(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        return await self._list(request, entry)

    @get("/{agreement_id:str}", **audited("agreement.read", **_READ))
    async def show(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        agreement_id: FromPath[str],
    ) -> Response[Any]:
        return self._one(request, entry, await agreement_history(entry, agreement_id))

    @post("/propose", **audited("agreement.propose", **_STEP))
    async def propose(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        form = await request.form()
        asked: dict[str, Any] = {k: form.getall(k, []) for k in ("purposes", "fields", "actions")}
        asked |= {
            k: text(form, k)
            for k in ("recipient", "recipient_departments", "legal_basis", "valid_from")
        }
        asked["valid_until"] = text(form, "valid_until")
        try:
            data = _proposal(form, entry.code)
        except errors.DomainError as exc:
            await refused_input(entry, exc)
            return await self._list(request, entry, exc.status, exc, asked)
        try:
            out = await propose_agreement(entry, data)
        except errors.DomainError as exc:
            if not shown_inline(exc):
                raise
            return await self._list(request, entry, exc.status, exc, asked)
        shown = await agreement_history(entry, out.id)
        return self._one(request, entry, shown, L.AGREEMENT_DONE["propose"])

    async def _step(
        self, request: Request[Any, Any, Any], entry: Entry, agreement_id: str, step: str
    ) -> Response[Any]:
        try:
            out = await agreement_step(entry, agreement_id, step)
        except errors.DomainError as exc:
            if not shown_inline(exc) or exc.status == 404:
                raise
            shown = await agreement_history(entry, agreement_id)
            return self._one(request, entry, shown, status=exc.status, exc=exc)
        shown = await agreement_history(entry, out.id)
        return self._one(request, entry, shown, L.AGREEMENT_DONE[step])

    @post("/{agreement_id:str}/accept", **audited("agreement.accept", **_STEP))
    async def accept(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        agreement_id: FromPath[str],
    ) -> Response[Any]:
        return await self._step(request, entry, agreement_id, "accept")

    @post("/{agreement_id:str}/revoke", **audited("agreement.revoke", **_STEP))
    async def revoke(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        agreement_id: FromPath[str],
    ) -> Response[Any]:
        return await self._step(request, entry, agreement_id, "revoke")
