"""The auditor's pages: the town's access log, an event and its proof, export,
verify now (``/console/towns/{code}/audit/…``).

Each page declares the same audit action and gate as the API endpoint behind
it (``**audited(..., gate=AUDITORS)``) and goes through the same guarded
entry: only the town's auditors get in (Cedar ``audit`` on ``AuditLog``),
the town's other staff get a 403 page with the reason, other towns and
operators the 404 page — each refusal a denied event in the town's log —
and every search, event page, export and verification is an event too.
The searches are POST forms: a resident id or a staff id never sits in a
URL (nor in the browser's history, nor in a proxy's log); the next page is a
POST of the same filters with the cursor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from base64 import b64encode
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from shared_gov import errors
from shared_gov.api.auditors import RESOURCE, export_events, guarded_subjects, in_town
from shared_gov.api.entry import AUDITORS, PROOFS, Entry, audited
from shared_gov.audit import merkle, queries, tlog
from shared_gov.audit.verify import incarnation_keys, live_mac_key, verify_town
from shared_gov.crypto.keyring import keyring_of
from shared_gov.crypto.providers import KeyNotFound
from shared_gov.messages import console as L

from .pages import page
from .signin import signed_in

FILTERS = (
    "actor",
    "actor_tenant",
    "department",
    "subject",
    "purpose",
    "action",
    "resource_type",
    "outcome",
    "individual_number",
    "from",
    "to",
)
OUTCOMES = ("allowed", "denied", "not_found", "error")
PAGE_SIZES = (20, 50, 100)


@dataclasses.dataclass(slots=True)
class Search:
    """The search form as submitted (text as typed; parsed inside the entry)."""

    values: dict[str, str]
    order: str = "desc"
    limit: int = 50
    after: str | None = None

    @classmethod
    async def of(cls, request: Request[Any, Any, Any]) -> Search:
        form = await request.form()
        values = {name: str(form.get(name) or "").strip()[:200] for name in FILTERS}
        order = "asc" if form.get("order") == "asc" else "desc"
        try:
            limit = int(str(form.get("limit") or 50))
        except ValueError:
            limit = 50
        after = str(form.get("after") or "") or None
        return cls(values, order, limit if limit in PAGE_SIZES else 50, after)

    def filter(self) -> tuple[queries.EventFilter, str | None]:
        """The API's filter, with the API's checks (422 naming the field)."""
        v = {k: (val or None) for k, val in self.values.items()}
        subject = v["subject"]
        resident = queries.parse_resident_id(subject, "/subject") if subject else None
        tenant = v["actor_tenant"]
        if tenant is not None and not (len(tenant) == 6 and tenant.isdigit()):
            raise errors.invalid_field("/actor_tenant", L.SIX_DIGITS)
        number = {"yes": True, "no": False}.get(v["individual_number"] or "")
        flt = queries.EventFilter(
            actor=v["actor"],
            actor_tenant=tenant,
            department=v["department"],
            purpose=v["purpose"],
            action=v["action"],
            outcome=queries.check_outcome(v["outcome"]),
            individual_number=number,
            since=queries.parse_instant(v["from"], "from"),
            until=queries.parse_instant(v["to"], "to"),
            resource_type=v["resource_type"],
        )
        return flt, resident


def _problems(exc: errors.DomainError) -> list[Any]:
    found = exc.extra.get("errors") or []
    return list(found) if isinstance(found, list) else []


class AuditorPages(Controller):
    path = "/towns/{code:str}/audit"
    include_in_schema = False
    # Signed in first (the session's principal becomes the request's user),
    # then each route's own guards: the entry's gate.
    guards = [signed_in]  # noqa: RUF012 - Litestar's own class attribute

    @get("/", **audited("audit.query", RESOURCE, gate=AUDITORS))
    async def search_form(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        # Admitted by the guard (auditors only); nothing is read, nothing recorded.
        return page(
            request,
            "audit/search.html",
            code=entry.code,
            search=Search({}),
            outcomes=OUTCOMES,
            sizes=PAGE_SIZES,
            result=None,
        )

    @post("/events", **audited("audit.query", RESOURCE, gate=AUDITORS))
    async def search(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        search = await Search.of(request)
        code = entry.code
        try:
            async with entry:
                flt, resident = search.filter()
                cursor = queries.Cursor.decode(search.after) if search.after else None
                # The event names the resident searched for, as the API's does.
                entry.audit.subjects = [resident] if resident else []
                flt, guarded = await in_town(entry, flt, resident)
                found = await queries.fetch_page(
                    entry.svc.db,
                    code,
                    flt,
                    after=cursor,
                    limit=search.limit,
                    descending=search.order == "desc",
                )
                entry.audit.rows = len(found.rows)
        except errors.DomainError as exc:
            if exc.status not in (400, 422):
                raise
            return page(
                request,
                "audit/search.html",
                422,
                code=code,
                search=search,
                outcomes=OUTCOMES,
                sizes=PAGE_SIZES,
                result=None,
                error=exc.detail,
                problems=_problems(exc),
            )
        rows = [queries.mask_other_town(r, code, guarded) for r in found.rows]
        return page(
            request,
            "audit/search.html",
            code=code,
            search=search,
            outcomes=OUTCOMES,
            sizes=PAGE_SIZES,
            result=rows,
            next_cursor=found.next.encode() if found.next else None,
        )

    @post("/events/export", **audited("audit.export", RESOURCE, gate=AUDITORS))
    async def export(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        search = await Search.of(request)
        form = await request.form()
        kind = "jsonl" if form.get("format") == "jsonl" else "csv"
        try:
            flt, resident = search.filter()
        except errors.DomainError as exc:
            # Recorded like the search page's 422: the export was asked for and
            # refused. The guard admitted the auditor; export_events, which
            # would record it, is never entered.
            await entry.admit()
            await entry.refused(exc)
            return page(
                request,
                "audit/search.html",
                422,
                code=entry.code,
                search=search,
                outcomes=OUTCOMES,
                sizes=PAGE_SIZES,
                result=None,
                error=exc.detail,
                problems=_problems(exc),
            )
        entry.audit.subjects = [resident] if resident else []
        return await export_events(entry, flt, resident, None, None, search.order == "desc", kind)

    @get("/events/{event_id:uuid}", **audited("audit.query", RESOURCE, gate=AUDITORS))
    async def event(
        self,
        request: Request[Any, Any, Any],
        entry: NamedDependency[Entry],
        event_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        code = entry.code
        async with entry:
            svc = entry.svc
            row = await queries.fetch_event(svc.db, code, event_id)
            if row is None:
                raise errors.not_found()
            guarded = await guarded_subjects(svc, entry.town)
            entry.audit.rows = 1
            shown = queries.mask_other_town(row, code, guarded)
            canonical = None
            async with svc.db.catalog() as conn:
                proof = await tlog.inclusion(conn, code, event_id)
                if proof is not None and shown is row:
                    # The leaf's own bytes, for the browser to hash (never for a
                    # masked event: they hold what the mask withholds).
                    values = await conn.fetchrow(
                        f"SELECT {tlog.EVENT_SELECT} FROM audit.events AS e "  # noqa: S608 - constant column list
                        "WHERE e.tenant = $1 AND e.event_id = $2",
                        code,
                        event_id,
                    )
                    if values is not None:
                        canonical = b64encode(tlog.canonical_values(list(values))).decode()
        checked = None
        if proof is not None:
            head = proof.checkpoint
            checked = {
                "inclusion": merkle.verify_inclusion(
                    proof.leaf_hash, proof.seq, head.tree_size, proof.path, head.root_hash
                ),
                "signature": head.signature_valid(),
                "json": proof.to_json(),
                "canonical": canonical,
            }
        return page(request, "audit/event.html", code=code, event=shown, proof=checked)

    @get("/verify", **audited("audit.checkpoint", RESOURCE, gate=PROOFS))
    async def verify_page(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        async with entry, entry.svc.db.catalog() as conn:
            head = await tlog.latest_checkpoint(conn, entry.code)
        return page(
            request,
            "audit/verify.html",
            code=entry.code,
            checkpoint=head.to_json() if head else None,
            report=None,
        )

    @post("/verify", **audited("audit.verify", RESOURCE, gate=AUDITORS))
    async def verify_now(
        self, request: Request[Any, Any, Any], entry: NamedDependency[Entry]
    ) -> Response[Any]:
        code = entry.code
        async with entry:
            db = entry.svc.db
            provider = keyring_of(db).provider
            try:
                live: bytes | None = await asyncio.to_thread(provider.signing_public_key, code)
            except KeyNotFound:
                live = None
            async with db.pool.acquire() as conn:
                keys = await incarnation_keys(conn, code, lambda: live)
                macs = await live_mac_key(db, conn, code)
                reports = await verify_town(conn, code, keys, mac_keys=macs)
            report = reports[-1] if reports else None
            entry.audit.rows = report.leaves if report else 0
            async with db.catalog() as conn:
                head = await tlog.latest_checkpoint(conn, code)
        return page(
            request,
            "audit/verify.html",
            code=code,
            checkpoint=head.to_json() if head else None,
            report=report,
        )
