"""Identity endpoints: discovery and JWKS of the built-in issuer, and a town's
own issuer (``/api/v1/tenants/{code}/issuer``) with its four-eyes changes
(``…/issuer/pending``)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import Body, JSONBody, PathParameter

from shared_gov import errors
from shared_gov.api.entry import ISSUER, Entry, audited
from shared_gov.api.pipeline import Services, services
from shared_gov.auth import issuers
from shared_gov.auth.config import IssuerConfig
from shared_gov.auth.registry import internal_address_problem, parse_issuer_config
from shared_gov.logs import get_logger
from shared_gov.messages import identity as mi

log = get_logger(__name__)


class WellKnownController(Controller):
    path = "/.well-known"
    tags = ("identity",)

    @get("/openid-configuration", summary="OpenID discovery of the built-in issuer")
    async def discovery(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return services(request).issuer.discovery(str(request.base_url))

    @get("/jwks.json", summary="Public signing keys of the built-in issuer")
    async def jwks(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return services(request).issuer.jwks()


IssuerBody = Annotated[
    dict[str, Any],
    Body(
        title="IssuerConfig",
        description=(
            "The manifest's [issuer] table as JSON: url, audience, exactly one of "
            "jwks_uri and jwks (public keys only), algorithms (RS*, PS*, ES256, ES384, "
            "EdDSA; never none or HS*), staff_claim, department_claim, roles_claim."
        ),
    ),
]


class IssuerOut(IssuerConfig, kw_only=True, frozen=True):
    """A town's registered issuer: the manifest's ``[issuer]`` shape and the town."""

    tenant: str


def _out(code: str, config: IssuerConfig) -> IssuerOut:
    return IssuerOut(tenant=code, **issuers.to_json(config))


class ProposalOut(msgspec.Struct, kw_only=True):
    """A proposed change of the town's issuer (four eyes: another admin approves it)."""

    id: str
    tenant: str
    kind: Literal["replace", "delete"]
    issuer: IssuerConfig | None
    """The proposed issuer; null when the proposal removes the issuer."""
    before: IssuerConfig | None
    """The issuer in effect when the change was proposed."""
    digest: str
    """SHA-256 of the proposal; an approval names it."""
    proposed_by: str
    proposed_at: datetime
    expires_at: datetime
    status: str
    """pending, approved, rejected, withdrawn, replaced, expired or void."""
    decided_by: str | None
    decided_at: datetime | None


class ApprovalIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    digest: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")]
    """The ``digest`` of the proposal as the approver read it."""


ProposalId = Annotated[
    str, PathParameter(description="the proposal's id", min_length=1, max_length=64)
]


def _proposal_out(proposal: issuers.Proposal) -> ProposalOut:
    return ProposalOut(
        id=proposal.id,
        tenant=proposal.tenant,
        kind=proposal.kind,
        issuer=proposal.config,
        before=proposal.base,
        digest=proposal.digest,
        proposed_by=proposal.proposed_by,
        proposed_at=proposal.proposed_at,
        expires_at=proposal.expires_at,
        status=proposal.status,
        decided_by=proposal.decided_by,
        decided_at=proposal.decided_at,
    )


_ISSUER: dict[str, Any] = {"resource_type": "issuer", "gate": ISSUER}
"""What every issuer route declares besides its action."""


# --- what the API's routes and the console's pages do alike ----------------------
# One function per step, so that the console (web/issuer.py) goes through the
# same four eyes: the same validation, proposal, approval and cancellation.


async def current_issuer(entry: Entry) -> IssuerOut:
    """The town's issuer in effect (404 when it has none)."""
    async with entry:
        return _out(entry.code, await issuers.get_issuer(entry.svc.db, entry.code))


async def propose_change(entry: Entry, data: object) -> IssuerOut | ProposalOut:
    """Propose new settings (a :class:`ProposalOut`, pending another admin's
    approval), or — a town not enrolled, in development — register them at
    once (an :class:`IssuerOut`)."""
    code = entry.code
    async with entry.changing(code, _requested(data)):
        svc = entry.svc
        config = await validated_issuer(svc, data)
        proposal = await issuers.propose(
            svc.db, code, "replace", config, entry.actor, bootstrap=svc.settings.is_dev
        )
    if proposal is None:
        # The NOTIFY reaches the other workers; this one must not wait for it.
        svc.verifier.invalidate_issuers(code)
        log.info("issuer.registered", tenant=code)
        return _out(code, config)
    log.info("issuer.proposed", tenant=code)
    return _proposal_out(proposal)


async def propose_removal(entry: Entry) -> ProposalOut:
    """Propose removing the town's issuer (another admin approves)."""
    async with entry.changing(entry.code, None):
        proposal = await issuers.propose(
            entry.svc.db, entry.code, "delete", None, entry.actor, bootstrap=False
        )
    if proposal is None:  # pragma: no cover - a removal is never a bootstrap
        raise errors.not_found(mi.NO_ISSUER)
    log.info("issuer.proposed", tenant=entry.code)
    return _proposal_out(proposal)


async def pending_change(entry: Entry) -> ProposalOut:
    """The town's pending proposal (404 when none)."""
    async with entry:
        return _proposal_out(await issuers.pending(entry.svc.db, entry.code))


async def approve_change(entry: Entry, proposal_id: str, digest: str) -> ProposalOut:
    """Approve another admin's proposal named by its id and digest: it takes effect."""
    requested = {"proposal": _proposal_ref(proposal_id), "digest": digest}
    async with entry.changing(entry.code, requested):
        svc = entry.svc
        try:
            proposal = await issuers.approve(
                svc.db, entry.code, proposal_id, digest, entry.actor, entry.principal
            )
        finally:
            # A voided proposal commits too; either way this worker reloads.
            svc.verifier.invalidate_issuers(entry.code)
    log.info("issuer.approved", tenant=entry.code)
    return _proposal_out(proposal)


async def cancel_change(entry: Entry, proposal_id: str) -> str:
    """Withdraw (the proposer) or reject (another admin) a proposal; its new status."""
    async with entry.changing(entry.code, {"proposal": _proposal_ref(proposal_id)}):
        status = await issuers.cancel(
            entry.svc.db, entry.code, proposal_id, entry.actor, entry.principal.subject
        )
    log.info("issuer.proposal_ended", tenant=entry.code, status=status)
    return status


class IssuerController(Controller):
    """A town's own OpenID Connect issuer (the town's admins only).

    The body is the manifest's ``[issuer]`` table as JSON: ``url``,
    ``audience``, exactly one of ``jwks_uri`` and ``jwks``, ``algorithms``
    (asymmetric only), and the ``staff_claim``, ``department_claim`` and
    ``roles_claim`` names. Every change and every refused attempt is an event
    in the town's audit log; operators get 404 (they never change a town's
    identity: docs/separation-of-duties.md).

    Four eyes: once a town is enrolled, ``PUT`` and ``DELETE`` only *propose*
    (202, the pending proposal with its id, digest and expiry); a different
    admin of the town approves it (``POST …/pending/{id}/approve`` with the
    digest) and only then does it take effect. ``DELETE …/pending/{id}``
    withdraws (the proposer) or rejects (another admin) it.
    """

    path = "/api/v1/tenants/{code:str}/issuer"
    tags = ("identity",)

    @get("/", summary="The town's own token issuer", **audited("admin.issuer.read", **_ISSUER))
    async def get_issuer(self, entry: NamedDependency[Entry]) -> IssuerOut:
        return await current_issuer(entry)

    @put(
        "/",
        summary="Propose a new issuer for the town (four eyes), or register the first one",
        **audited("admin.issuer", **_ISSUER),
        description=(
            "An enrolled town's change is only proposed: 202 with the pending proposal, "
            "which another admin of the town approves. A town that is not enrolled and has "
            "no issuer registers it at once (201; development only — elsewhere the town "
            "enrols with its code)."
        ),
    )
    async def put_issuer(
        self, entry: NamedDependency[Entry], data: IssuerBody
    ) -> Response[IssuerOut | ProposalOut]:
        out = await propose_change(entry, data)
        return Response(out, status_code=201 if isinstance(out, IssuerOut) else 202)

    @delete(
        "/",
        summary="Propose removing the town's own token issuer (four eyes)",
        **audited("admin.issuer.delete", **_ISSUER),
        status_code=202,
    )
    async def delete_issuer(self, entry: NamedDependency[Entry]) -> ProposalOut:
        return await propose_removal(entry)

    @get(
        "/pending",
        summary="The town's pending issuer change, if any",
        **audited("admin.issuer.pending.read", **_ISSUER),
    )
    async def get_pending(self, entry: NamedDependency[Entry]) -> ProposalOut:
        return await pending_change(entry)

    @post(
        "/pending/{proposal_id:str}/approve",
        summary="Approve another admin's issuer change: it takes effect now",
        **audited("admin.issuer.approve", **_ISSUER),
        status_code=200,
    )
    async def approve(
        self, entry: NamedDependency[Entry], proposal_id: ProposalId, data: JSONBody[ApprovalIn]
    ) -> ProposalOut:
        return await approve_change(entry, proposal_id, data.digest)

    @delete(
        "/pending/{proposal_id:str}",
        summary="Withdraw (the proposer) or reject (another admin) a pending issuer change",
        **audited("admin.issuer.cancel", **_ISSUER),
        status_code=204,
    )
    async def cancel(self, entry: NamedDependency[Entry], proposal_id: ProposalId) -> None:
        await cancel_change(entry, proposal_id)


def _requested(data: object) -> object:
    """What an audit event says of a refused issuer body: where it pointed, no more.

    The origins (scheme, host, port) of ``url`` and ``jwks_uri`` when they
    are http(s) URLs with a host name — which identity provider somebody
    tried to install is what an auditor needs, and a host name is not
    personal data — else null. Never a path, query, user name or key: those
    are whatever the sender chose to write (docs/audit.md, "Reasons").
    """
    if isinstance(data, dict):
        return {"url": _origin(data.get("url")), "jwks_uri": _origin(data.get("jwks_uri"))}
    return None


_HOST = re.compile(r"^[a-z0-9.\-\[\]:]{1,253}\Z")


def _origin(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 2048:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("http", "https") or not _HOST.match(host):
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port is not None else "")


def _proposal_ref(proposal_id: str) -> str | None:
    """A proposal id as a refusal records it: only when it is one (a UUID), else null."""
    try:
        return str(uuid.UUID(proposal_id))
    except ValueError:
        return None


async def validated_issuer(svc: Services, data: object) -> IssuerConfig:
    """A town's issuer settings from a request body, or 409/422.

    Outside development: https only, and the ``jwks_uri`` host must not be
    (or resolve to) a loopback, link-local, private, unique-local, multicast,
    unspecified or otherwise non-global address — the platform must not be
    made to fetch from its own network.
    """
    config = parse_issuer_config(data, require_https=not svc.settings.is_dev)
    if config.url.rstrip("/") == svc.issuer.issuer.rstrip("/"):
        raise errors.conflict(mi.URL_IS_PLATFORMS)
    if not svc.settings.is_dev and config.jwks_uri is not None:
        problem = await internal_address_problem(config.jwks_uri)
        if problem is not None:
            raise errors.invalid_field("/jwks_uri", problem)
    return config
