"""The town's identity provider, for its admins (``/console/towns/{code}/admin/issuer/…``).

Four eyes, as in the API (docs/separation-of-duties.md, "Four eyes on
identity"): one admin proposes new settings (or the provider's removal),
another admin approves the proposal naming the digest they reviewed; the
proposer withdraws it or another admin rejects it. Each page declares the
audit action and gate of the API endpoint behind it (gate ``ISSUER``) and
calls the same step (:mod:`shared_gov.api.issuers`): the same validation,
the same refusals (one's own approval: 403 with the reason), the same events.
"""

from __future__ import annotations

import json
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency

from shared_gov import errors
from shared_gov.api.entry import ISSUER, Entry, audited
from shared_gov.api.issuers import (
    ApprovalIn,
    IssuerOut,
    approve_change,
    cancel_change,
    propose_change,
    propose_removal,
)
from shared_gov.auth import issuers
from shared_gov.auth.config import IssuerConfig, issuer_summary
from shared_gov.messages import console as L
from shared_gov.messages import validation as mv

from .gated import (
    identifier,
    parsed,
    refusal,
    refused_input,
    shown_inline,
    signed_in_first,
    text,
    texts,
)
from .pages import page

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
_ISSUER: dict[str, Any] = {"resource_type": "issuer", "gate": ISSUER}


def _settings(form: FormMultiDict) -> dict[str, Any]:
    """The proposal form as the API's body (the manifest's ``[issuer]`` table)."""
    body: dict[str, Any] = {
        "url": text(form, "url", 2000),
        "audience": text(form, "audience", 1000),
        "algorithms": texts(form, "algorithms") or ["RS256"],
    }
    for claim in ("staff_claim", "department_claim", "roles_claim"):
        value = text(form, claim, 200)
        if value:
            body[claim] = value
    jwks_uri = text(form, "jwks_uri", 2000)
    if jwks_uri:
        body["jwks_uri"] = jwks_uri
    raw = str(form.get("jwks") or "").strip()
    if raw:
        try:
            body["jwks"] = json.loads(raw)
        except ValueError:
            raise errors.invalid_field("/jwks", mv.INVALID_VALUE) from None
    return body


def _shown(config: IssuerConfig | None) -> dict[str, Any] | None:
    """An issuer as the page shows it: settings and key ids, never whole keys."""
    return issuer_summary(config)


class IssuerPages(Controller):
    path = "/towns/{code:str}/admin/issuer"
    include_in_schema = False
    middleware = [signed_in_first]  # noqa: RUF012 - Litestar's own class attribute

    async def _page(
        self,
        request: Request[Any, Any, Any],
        entry: Entry,
        status: int = 200,
        exc: errors.DomainError | None = None,
        notice: Any = None,
    ) -> Response[Any]:
        db, code = entry.svc.db, entry.code
        current: IssuerConfig | None
        pending: issuers.Proposal | None
        async with entry:
            try:
                current = await issuers.get_issuer(db, code)
            except errors.NotFound:
                current = None
            try:
                pending = await issuers.pending(db, code)
            except errors.NotFound:
                pending = None
        return page(
            request,
            "admin/issuer.html",
            status,
            code=code,
            current=_shown(current),
            current_jwks=json.dumps(current.jwks, ensure_ascii=False, indent=2)
            if current and current.jwks
            else "",
            pending=pending,
            pending_settings=_shown(pending.config) if pending else None,
            pending_before=_shown(pending.base) if pending else None,
            algorithms=ALGORITHMS,
            notice=notice,
            **refusal(exc),
        )

    async def _step(
        self, request: Request[Any, Any, Any], entry: Entry, step: Any
    ) -> Response[Any]:
        form = await request.form()
        await entry.admit()
        try:
            notice = await step(form)
        except errors.DomainError as exc:
            if not shown_inline(exc):
                raise
            return await self._page(request, entry, exc.status, exc)
        return await self._page(request, entry, notice=notice)

    @get("/", **audited("admin.issuer.read", **_ISSUER))
    async def show(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        return await self._page(request, entry)

    @post("/propose", **audited("admin.issuer", **_ISSUER))
    async def propose(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        async def step(form: FormMultiDict) -> Any:
            try:
                body = _settings(form)
            except errors.DomainError as exc:
                await refused_input(entry, exc)
                raise
            out = await propose_change(entry, body)
            return L.ISSUER_REGISTERED if isinstance(out, IssuerOut) else L.ISSUER_PROPOSED

        return await self._step(request, entry, step)

    @post("/remove", **audited("admin.issuer.delete", **_ISSUER))
    async def remove(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        async def step(form: FormMultiDict) -> Any:
            await propose_removal(entry)
            return L.ISSUER_PROPOSED

        return await self._step(request, entry, step)

    @post("/approve", **audited("admin.issuer.approve", **_ISSUER))
    async def approve(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        async def step(form: FormMultiDict) -> Any:
            try:
                proposal_id = identifier(form, "proposal", 64)
                digest = parsed(ApprovalIn, {"digest": text(form, "digest", 200)}).digest
            except errors.DomainError as exc:
                await refused_input(entry, exc)
                raise
            await approve_change(entry, proposal_id, digest)
            return L.ISSUER_APPROVED

        return await self._step(request, entry, step)

    @post("/cancel", **audited("admin.issuer.cancel", **_ISSUER))
    async def cancel(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        async def step(form: FormMultiDict) -> Any:
            try:
                proposal_id = identifier(form, "proposal", 64)
            except errors.DomainError as exc:
                await refused_input(entry, exc)
                raise
            status = await cancel_change(entry, proposal_id)
            return L.PROPOSAL_ENDED(status=status)

        return await self._step(request, entry, step)
