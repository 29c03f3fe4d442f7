"""The floor of issue #16's design: a resident GET's own work, nothing else.

``bench/floor.py`` measures the service's resident GET against a bare
one-row GET (``bare_app``). This app sits between them: it does, with the
service's own code, only what a resident GET cannot do without —

- the read: ``Database.tenant(names, read_only=True)`` and
  :func:`shared_gov.domains.residents.reads.get`, i.e. the town's read
  function in one round trip on a pooled connection (PostgreSQL refuses any
  other town: the function runs as the town's role), and the decryption of
  the record's envelopes with the town's cached keys;
- the answer: the record as JSON (msgspec), every field (no policy view);
- the event (``/floor/audited/…``): an audit event handed to the process's
  group-commit writer (:mod:`shared_gov.audit.writer`), answering after its
  batch committed, with the in-flight count the service's middleware keeps
  (so the writer batches as it does in the service).

What it leaves out is everything of the service's request path that is not
the design's essential work: the middleware stack, token verification,
Cedar, the guarded entry, the field view, ETags, the access log, metrics,
problem handling. Its ratio to the bare GET is therefore the best the
service's design can reach on this machine; the service's ratio below it is
what the framework and the guarantees around the read cost.

Serve it like the others::

    SHARED_GOV_DATABASE_URL=postgresql://... \\
    granian --interface asgi --factory --workers 2 --working-dir bench floor_app:create_floor_app
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import msgspec
from litestar import Litestar, Response, get
from litestar.exceptions import NotFoundException

from shared_gov.audit import writer as audit_writer
from shared_gov.audit.recorder import Actor, AuditEvent
from shared_gov.crypto.keyring import keyring_from_settings
from shared_gov.db import Database
from shared_gov.domains.residents import reads
from shared_gov.settings import load_settings
from shared_gov.towns.names import tenant_names

_JSON = msgspec.json.Encoder()
_FIELDS = ("family_name", "given_name", "address", "birth_date")


def create_floor_app() -> Litestar:
    """The floor app; reads the service's settings (``SHARED_GOV_*``)."""
    settings = load_settings()
    assert settings.database_url
    db = Database(settings.database_url, settings, keyring_from_settings(settings))
    names_of: dict[str, Any] = {}

    def names(code: str) -> Any:
        found = names_of.get(code)
        if found is None:
            found = names_of[code] = tenant_names(code, settings.role_prefix)
        return found

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        await db.open()
        audit_writer.start(db)
        try:
            yield
        finally:
            await audit_writer.stop(db)
            await db.close()

    async def read(code: str, resident_id: str) -> Any:
        async with db.tenant(names(code), read_only=True) as uow:
            resident = await reads.get(uow, resident_id)
        if resident is None:
            raise NotFoundException()
        return resident

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/floor/plain/{code:str}/residents/{resident_id:str}")
    async def plain(code: str, resident_id: str) -> Response[bytes]:
        audit_writer.request_started()
        try:
            resident = await read(code, resident_id)
        finally:
            audit_writer.request_ended()
        return Response(_JSON.encode(asdict(resident)), media_type="application/json")

    @get("/floor/audited/{code:str}/residents/{resident_id:str}")
    async def audited(code: str, resident_id: str) -> Response[bytes]:
        audit_writer.request_started()
        try:
            resident = await read(code, resident_id)
            writer = audit_writer.running(db)
            assert writer is not None
            await writer.submit(
                names(code),
                Actor(
                    subject=f"floor-{code}",
                    tenant=code,
                    department="shimin",
                    roles=("staff",),
                    auth_strength="mfa",
                    client_addr="127.0.0.1",
                    user_agent="bench/floor.py",
                    purpose="juki.registration",
                ),
                AuditEvent(
                    action="resident.read",
                    subjects=[resident_id],
                    fields=list(_FIELDS),
                    rows=1,
                ),
            )
        finally:
            audit_writer.request_ended()
        return Response(_JSON.encode(asdict(resident)), media_type="application/json")

    return Litestar(
        route_handlers=[health, plain, audited],
        lifespan=[lifespan],
        logging_config=None,
        debug=False,
    )
