"""HTTP endpoints of sharing agreements: propose, accept, revoke, list, show.

The providing town's admin proposes; the recipient town's admin accepts;
either town's admin revokes. Any principal of a party town may list and read
its agreements (staff need the id for ``X-Agreement``: gate
``AGREEMENT_READS``, in the caller's own town); anyone else gets 404, and a
refused read is an event in the caller's town (a granted one is not: an
agreement holds no personal data).

Each step is an audit event in both party towns' logs, in the step's own
transaction (:mod:`shared_gov.policy.agreements`); a step goes through the
guarded entry in the acting admin's own town (gate ``AGREEMENTS``, decided
before the body is decoded), which records a refused or failed step — a
malformed body included — in that town's log. An operator, who has no
town, is refused in the logs of the towns the step names (a proposal's
provider and recipient, an existing agreement's parties).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from shared_gov import errors
from shared_gov.api.entry import AGREEMENT_READS, AGREEMENTS, Entry, audited
from shared_gov.api.pipeline import services
from shared_gov.audit.recorder import Actor as AuditActor
from shared_gov.messages import access as m
from shared_gov.policy import agreements
from shared_gov.validation import NoNul

Code = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}\Z")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64), NoNul]


class AgreementIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A proposal by the providing town."""

    provider: Code
    recipient: Code
    recipient_departments: Annotated[list[Name], msgspec.Meta(max_length=50)]
    purposes: Annotated[list[Name], msgspec.Meta(max_length=50)]
    fields: Annotated[list[Name], msgspec.Meta(max_length=50)]
    actions: Annotated[list[Name], msgspec.Meta(max_length=2)]
    """``read`` and/or ``search``."""
    legal_basis: Annotated[str, msgspec.Meta(min_length=1, max_length=500), NoNul]
    valid_from: datetime
    valid_until: datetime
    """Inclusive, to the second; both with a time zone offset."""


class AgreementVersionOut(msgspec.Struct, kw_only=True):
    version: int
    status: str
    recipient_departments: list[str]
    purposes: list[str]
    fields: list[str]
    actions: list[str]
    legal_basis: str
    valid_from: datetime
    valid_until: datetime
    changed_by: str
    changed_by_tenant: str | None
    changed_at: datetime


class AgreementOut(AgreementVersionOut, kw_only=True):
    id: str
    provider: str
    recipient: str
    """A town code, or ``*`` for the standing move agreement (every tenant)."""
    kind: str
    in_force: bool
    """Active and within its validity window right now."""
    versions: list[AgreementVersionOut] | None = None


def _version(row: dict[str, Any]) -> AgreementVersionOut:
    return AgreementVersionOut(
        version=row["version"],
        status=row["status"],
        recipient_departments=list(row["departments"]),
        purposes=list(row["purposes"]),
        fields=list(row["fields"]),
        actions=list(row["actions"]),
        legal_basis=row["legal_basis"],
        valid_from=row["valid_from"],
        valid_until=row["valid_until"],
        changed_by=row["changed_by"],
        changed_by_tenant=(row["changed_by_tenant"] or "").strip() or None,
        changed_at=row["changed_at"],
    )


def _out(row: dict[str, Any], history: list[dict[str, Any]] | None = None) -> AgreementOut:
    v = _version(row)
    now = datetime.now(tz=row["valid_from"].tzinfo)
    return AgreementOut(
        id=str(row["agreement_id"]),
        provider=row["provider"].strip(),
        recipient=row["recipient"],
        kind=row["kind"],
        in_force=v.status == "active" and v.valid_from <= now <= v.valid_until,
        versions=[_version(h) for h in history] if history is not None else None,
        **msgspec.structs.asdict(v),
    )


def _agreement_id(value: str) -> uuid.UUID:
    parsed = agreements.parse_id(value)
    if parsed is None:
        raise errors.not_found(m.NO_SUCH_AGREEMENT)
    return parsed


_STEP: dict[str, Any] = {"resource_type": "agreement", "gate": AGREEMENTS}
"""What every lifecycle step declares besides its action: decided in the caller's own town."""


def _recorder(entry: Entry) -> AuditActor | None:
    """Who the step records itself as, in both party towns' logs (None: no audit)."""
    return entry.actor if entry.svc.settings.audit else None


async def _parties_named(entry: Entry) -> tuple[str, ...]:
    """An operator's accept or revoke: the agreement's parties (none for an unknown id)."""
    parsed = agreements.parse_id(str(entry.request.path_params.get("agreement_id") or ""))
    if parsed is None:
        return ()
    entry.audit.agreement_id = str(parsed)
    return tuple(await agreements.parties(services(entry.request).db, parsed))


async def _proposal_named(entry: Entry) -> tuple[str, ...]:
    """An operator's proposal: the provider and recipient its body names, read
    before (and whatever the outcome of) decoding it as a proposal — the
    operator gets the 404, never a 422 about the fields they sent."""
    request = entry.request
    if not isinstance(request, Request):  # pragma: no cover - an HTTP route
        return ()
    try:
        body = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        return ()
    if not isinstance(body, dict):
        return ()
    return tuple(v for v in (body.get("provider"), body.get("recipient")) if isinstance(v, str))


async def agreement_step(entry: Entry, agreement_id: str, step: str) -> AgreementOut:
    """Accept or revoke; a refusal is an event in the acting town's log naming the agreement."""
    parsed = agreements.parse_id(agreement_id)
    entry.audit.agreement_id = str(parsed) if parsed else None
    async with entry.changing():
        row = await agreements.transition(
            entry.svc.db,
            _agreement_id(agreement_id),
            entry.code,
            step,
            entry.principal.subject,
            _recorder(entry),
        )
    return _out(row)


async def propose_agreement(entry: Entry, data: AgreementIn) -> AgreementOut:
    """Propose an agreement; only the providing town's admin does (403 otherwise)."""
    async with entry.changing():
        if data.provider != entry.code:
            raise errors.forbidden(m.ONLY_PROVIDER_PROPOSES)
        row = await agreements.propose(
            entry.svc.db,
            agreements.Proposal(
                provider=data.provider,
                recipient=data.recipient,
                recipient_departments=data.recipient_departments,
                purposes=data.purposes,
                fields=data.fields,
                actions=data.actions,
                legal_basis=data.legal_basis,
                valid_from=data.valid_from,
                valid_until=data.valid_until,
            ),
            entry.principal.subject,
            _recorder(entry),
        )
    return _out(row)


async def agreements_of(entry: Entry, tenant: str, kind: str | None = None) -> list[AgreementOut]:
    """The agreements the caller's own town is party to (another town's: 404)."""
    async with entry:
        # Only the caller's own town's: another code is the 404 a stranger gets.
        if tenant != entry.code:
            raise errors.concealed("the agreements of another town")
        rows = await agreements.list_for(entry.svc.db, tenant, kind)
    return [_out(r) for r in rows]


async def agreement_history(entry: Entry, agreement_id: str) -> AgreementOut:
    """One agreement of the caller's town with every version (404 otherwise)."""
    parsed = agreements.parse_id(agreement_id)
    entry.audit.agreement_id = str(parsed) if parsed else None
    async with entry:
        history = await agreements.versions(entry.svc.db, _agreement_id(agreement_id), entry.code)
    return _out(history[-1], history)


class AgreementController(Controller):
    path = "/api/v1/agreements"
    tags = ("agreements",)

    @post(
        "/",
        status_code=201,
        summary="Propose an agreement (the providing town's admin)",
        **audited("agreement.propose", **_STEP, named=_proposal_named),
    )
    async def propose(
        self, entry: NamedDependency[Entry], data: JSONBody[AgreementIn]
    ) -> AgreementOut:
        return await propose_agreement(entry, data)

    @post(
        "/{agreement_id:str}/accept",
        status_code=200,
        summary="Accept (the recipient's admin)",
        **audited("agreement.accept", **_STEP, named=_parties_named),
    )
    async def accept(
        self, entry: NamedDependency[Entry], agreement_id: FromPath[str]
    ) -> AgreementOut:
        return await agreement_step(entry, agreement_id, "accept")

    @post(
        "/{agreement_id:str}/revoke",
        status_code=200,
        summary="Revoke (either party's admin)",
        **audited("agreement.revoke", **_STEP, named=_parties_named),
    )
    async def revoke(
        self, entry: NamedDependency[Entry], agreement_id: FromPath[str]
    ) -> AgreementOut:
        return await agreement_step(entry, agreement_id, "revoke")

    @get(
        "/",
        summary="Agreements a town is party to (its own principals)",
        **audited("agreement.list", "agreement", gate=AGREEMENT_READS),
    )
    async def list_agreements(
        self,
        entry: NamedDependency[Entry],
        tenant: Annotated[Code, QueryParameter(description="the town's code")],
        kind: Annotated[
            Literal["bilateral", "standing_move"] | None,
            QueryParameter(description="only this kind"),
        ] = None,
    ) -> list[AgreementOut]:
        return await agreements_of(entry, tenant, kind)

    @get(
        "/{agreement_id:str}",
        summary="One agreement with every version (a party's principals)",
        **audited("agreement.read", "agreement", gate=AGREEMENT_READS),
    )
    async def show(
        self, entry: NamedDependency[Entry], agreement_id: FromPath[str]
    ) -> AgreementOut:
        return await agreement_history(entry, agreement_id)
