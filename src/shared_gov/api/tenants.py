"""Operator endpoints to onboard and list tenants, and the town's enrolment.

Onboarding creates a town (or changes its platform settings); the town's
identity and permissions are never the operator's to set once it exists
(409, see :mod:`.provisioning`). A new town's one-time enrolment code is in
the 201 answer, once; the town redeems it at ``POST …/{code}/enrolment``,
the one endpoint without a bearer token besides health and discovery: the
code is the credential (docs/separation-of-duties.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import Body, JSONBody

from shared_gov import errors
from shared_gov.api.entry import TOWN, Audit, Change, audit_actor, record_failure
from shared_gov.api.issuers import validated_issuer
from shared_gov.api.pipeline import services
from shared_gov.audit.recorder import Actor, AuditEvent
from shared_gov.auth.failures import ENROLMENT_STATE_KEY, FailedLoginGate, enrolment_gate
from shared_gov.auth.principal import Principal
from shared_gov.auth.subjects import person_key
from shared_gov.checkdigits import is_valid_lgcode
from shared_gov.messages import access as ma
from shared_gov.messages import identity as mi
from shared_gov.policy import authorize_operator
from shared_gov.tenancy import enrolment, service
from shared_gov.tenancy.manifest import Manifest, validate_manifest
from shared_gov.towns.names import TenantNames
from shared_gov.validation import NoNul


class TenantOut(msgspec.Struct, kw_only=True):
    code: str
    name: str
    name_kana: str
    prefecture: str
    population: int
    status: str
    schema_revision: str | None
    departments: list[dict[str, str]]


class OnboardOut(msgspec.Struct, kw_only=True):
    code: str
    outcome: str
    enrolment_code: str | None = None
    """A new town's one-time enrolment code: hand it to the town's information-policy
    office out of band; it is shown only here (only its hash is stored)."""
    enrolment_expires_at: datetime | None = None


class EnrolmentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Annotated[str, msgspec.Meta(min_length=16, max_length=64), NoNul]
    """The one-time enrolment code the operator handed over."""
    first_admin: Annotated[str, msgspec.Meta(min_length=1, max_length=128), NoNul]
    """Subject (staff id, as the town's IdP puts it in the staff claim) of the first admin."""
    issuer: dict[str, Any]
    """The town's issuer: the manifest's [issuer] table as JSON (as PUT …/issuer takes)."""


class EnrolmentOut(msgspec.Struct, kw_only=True):
    tenant: str
    enrolled: bool
    issuer: str
    first_admin: str


def _enrolment_actor(request: Request[Any, Any, Any], code: str) -> Actor:
    """Whoever holds the code: a fixed actor, never the subject the caller claims."""
    return Actor(
        subject=enrolment.ACTOR,
        tenant=code,
        department=None,
        roles=("enrolment",),
        auth_strength="enrolment_code",
        client_addr=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        purpose=None,
    )


class TenantController(Controller):
    path = "/api/v1/tenants"
    tags = ("tenants",)

    @post("/", status_code=201, summary="Onboard a tenant or change its platform settings")
    async def onboard(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        data: JSONBody[Manifest],
    ) -> Response[OnboardOut]:
        svc = services(request)
        actor = audit_actor(request, principal, None)
        if not principal.is_operator:
            # A town's own people sending a manifest: refused, and the town learns of it.
            refusal = errors.concealed("only the platform's operators onboard towns")
            town = await svc.registry.get(data.code) if is_valid_lgcode(data.code) else None
            if town is not None:
                event = AuditEvent(action="tenant.update", resource_type="tenant")
                await record_failure(svc, town, actor, event, refusal, change=Change(data.code))
            raise refusal
        result = await service.onboard(svc.db, validate_manifest(data), actor)
        # This worker's caches (tenants, issuers, permissions, keys) at once;
        # the others through the NOTIFY provisioning committed.
        svc.changes.publish_locally(result.code)
        status = 201 if result.outcome == "created" else 200
        code = result.enrolment
        out = OnboardOut(
            code=result.code,
            outcome=result.outcome,
            enrolment_code=code.code if code else None,
            enrolment_expires_at=code.expires_at if code else None,
        )
        # The code is a credential: never cached by anything in between.
        return Response(out, status_code=status, headers={"Cache-Control": "no-store"})

    @get("/", summary="List tenants (operator)")
    async def list_tenants(
        self, request: Request[Any, Any, Any], principal: NamedDependency[Principal]
    ) -> list[TenantOut]:
        authorize_operator(principal)
        rows = await service.list_tenants(services(request).db)
        return [msgspec.convert(r, TenantOut, from_attributes=True) for r in rows]

    @post(
        "/{code:str}/enrolment",
        status_code=201,
        summary="Redeem the town's one-time enrolment code (no bearer token)",
        exclude_from_auth=True,
        audit=Audit("tenant.enrol", "enrolment"),
        dependencies=TOWN,
        security=[],
    )
    async def enrol(
        self,
        request: Request[Any, Any, Any],
        town: NamedDependency[TenantNames],
        data: Annotated[EnrolmentIn, Body(title="Enrolment")],
    ) -> EnrolmentOut:
        """The town's information-policy office registers its identity provider and
        first admin. Wrong or expired codes are 403, an enrolled town 409; every
        attempt is recorded in the town's audit log."""
        svc, code = services(request), town.code
        if not data.first_admin.isprintable():
            # A subject no token could carry (docs/tokens: printable claims only).
            raise errors.invalid_field("/first_admin", mi.PRINTABLE_ONLY)
        if not person_key(data.first_admin):
            # Only blanks: a subject that names nobody (auth/subjects.py).
            raise errors.invalid_field("/first_admin", ma.NAMES_NOBODY)
        actor = _enrolment_actor(request, code)
        # The code first: a correct one is never held up by the limits, and
        # only failures count against them (a budget of their own, apart from
        # the town's failed logins: auth/failures.py).
        if not await enrolment.code_matches(svc.db, code, data.code):
            gate = request.app.state.get(ENROLMENT_STATE_KEY)
            if not isinstance(gate, FailedLoginGate):
                gate = request.app.state[ENROLMENT_STATE_KEY] = enrolment_gate()
            client = request.client.host if request.client else "unknown"
            if not gate.admit(client, code):
                raise errors.forbidden(mi.TOO_MANY_ATTEMPTS)
            await enrolment.refuse(svc.db, code, data.code, actor)
        config = await validated_issuer(svc, data.issuer)
        await enrolment.redeem(svc.db, code, data.code, config, data.first_admin, actor)
        svc.verifier.invalidate_issuers(code)
        svc.changes.publish_locally(code)
        return EnrolmentOut(
            tenant=code, enrolled=True, issuer=config.url, first_admin=data.first_admin
        )
