"""Auditors' endpoints for the sealed log under ``/api/v1/tenants/{code}/audit``.

- ``GET …/audit/checkpoint``: the town's latest signed checkpoint and public key;
- ``GET …/audit/proofs/inclusion?event=<uuid>``: where an event sits in that tree;
- ``GET …/audit/proofs/consistency?first=N&second=M``: the tree of M leaves
  extends the tree of N leaves.

Everything is base64 and verifiable offline with the algorithms in
``docs/audit.md`` (hashlib and an Ed25519 library are enough). Cedar decides
who may ask (action ``audit`` on the town's ``AuditLog``: its auditors); the
town's other staff get 403 with the reason, other towns and operators 404.
Every refusal is a denied event in the town's log (actions
``audit.checkpoint`` and ``audit.proof``, resource type ``audit_log``), as for
the auditors' other endpoints: the caller's by the guarded entry (gate
``PROOFS``: who first, in a guard, then unknown query parameters), a
parameter Litestar refuses (missing or malformed) by the application's last
resort (:func:`shared_gov.api.refusals.audit_unrecorded`), an event not in
the tree or a size beyond it by the entry. Granted reads of
checkpoints and proofs hold no personal data and are not recorded.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from shared_gov import errors
from shared_gov.api.auditors import RESOURCE
from shared_gov.api.entry import PROOFS, Entry, audited
from shared_gov.audit import tlog
from shared_gov.messages import audit as m

__all__ = ["AuditController"]


class SubtreeOut(msgspec.Struct, kw_only=True):
    start: int
    size: int
    hash: str


class CheckpointOut(msgspec.Struct, kw_only=True):
    tenant: str
    incarnation: int
    """Which town of this code: onboarding an offboarded code again starts a new log
    (the signed origin then ends in ``/<incarnation>``)."""
    tree_size: int
    root_hash: str
    """base64 SHA-256 root (RFC 6962 MTH of the town's first ``tree_size`` events)."""
    signed_at: str
    algorithm: str
    public_key: str
    """base64 raw 32-byte Ed25519 public key of the town."""
    signature: str
    """base64 Ed25519 signature of ``body``."""
    body: str
    """The signed text, rebuilt from the fields above (docs/audit.md)."""
    subtrees: list[SubtreeOut]
    """Complete subtrees whose fold is the root: save them to locate a later rewrite."""


class InclusionOut(msgspec.Struct, kw_only=True):
    event_id: str
    seq: int
    tree_size: int
    leaf_hash: str
    path: list[str]
    checkpoint: CheckpointOut


class ConsistencyOut(msgspec.Struct, kw_only=True):
    first: int
    second: int
    proof: list[str]
    first_checkpoint: CheckpointOut | None
    second_checkpoint: CheckpointOut | None


class AuditController(Controller):
    path = "/api/v1/tenants/{code:str}/audit"
    tags = ("audit",)

    @get(
        "/checkpoint",
        summary="The town's latest signed checkpoint (auditors)",
        **audited("audit.checkpoint", RESOURCE, gate=PROOFS),
    )
    async def checkpoint(self, entry: NamedDependency[Entry]) -> CheckpointOut:
        async with entry, entry.svc.db.catalog() as conn:
            head = await tlog.latest_checkpoint(conn, entry.code, with_subtrees=True)
            if head is None:
                raise errors.not_found(m.NO_CHECKPOINT)
        return msgspec.convert(head.to_json(), CheckpointOut)

    @get(
        "/proofs/inclusion",
        summary="Inclusion proof of an event in the latest checkpoint",
        **audited("audit.proof", RESOURCE, gate=PROOFS),
    )
    async def inclusion(
        self,
        entry: NamedDependency[Entry],
        event: Annotated[uuid.UUID, QueryParameter(description="event id")],
    ) -> InclusionOut:
        async with entry, entry.svc.db.catalog() as conn:
            proof = await tlog.inclusion(conn, entry.code, event)
            if proof is None:
                raise errors.not_found(m.NOT_IN_CHECKPOINT)
        return msgspec.convert(proof.to_json(), InclusionOut)

    @get(
        "/proofs/consistency",
        summary="Consistency proof between two tree sizes",
        **audited("audit.proof", RESOURCE, gate=PROOFS),
    )
    async def consistency(
        self,
        entry: NamedDependency[Entry],
        first: Annotated[int, QueryParameter(ge=1, description="the older tree size")],
        second: Annotated[int, QueryParameter(ge=1, description="the newer tree size")],
    ) -> ConsistencyOut:
        if first > second:
            raise errors.bad_request(m.FIRST_NOT_AFTER_SECOND)
        async with entry, entry.svc.db.catalog() as conn:
            proof = await tlog.consistency(conn, entry.code, first, second)
            if proof is None:
                raise errors.not_found(m.CHECKPOINT_TOO_SMALL)
        return msgspec.convert(proof.to_json(), ConsistencyOut)
