"""Dog registration: decide first (the Access the guarded entry hands over),
then the repository; record what was touched in the request's audit event.

Never imports another domain, never queries (the repository does), never
names a town (the Access is bound to it).
"""

from __future__ import annotations

import uuid

from shared_gov import errors
from shared_gov.db import TenantUnitOfWork
from shared_gov.policy import Access, FieldView
from tests.domains.sample import messages as m
from tests.domains.sample import repository as repo
from tests.domains.sample.models import Dog
from tests.domains.sample.schemas import DogCreate
from tests.domains.sample.spec import DOG

RECORD_TYPE = DOG.name


def _touched(access: Access, dogs: list[Dog], view: FieldView) -> None:
    """The audit event: which records (hashed when written), which fields, how many rows."""
    event = access.audit
    event.subjects.extend(d.id for d in dogs if d.id not in event.subjects)
    event.fields.extend(sorted(set(view.allowed) - set(event.fields)))
    event.rows += len(dogs)


def _view(access: Access) -> FieldView:
    return access.readable(support_measure=False, record_type=RECORD_TYPE)


async def register(uow: TenantUnitOfWork, access: Access, data: DogCreate) -> tuple[Dog, FieldView]:
    access.require("license", record_type=RECORD_TYPE)
    view = _view(access)
    dog = Dog(id=str(uuid.uuid4()), breed=data.breed, microchip=data.microchip)
    await repo.insert(uow, dog)
    _touched(access, [dog], view)
    return dog, view


async def get(uow: TenantUnitOfWork, access: Access, dog_id: str) -> tuple[Dog, FieldView]:
    view = _view(access)  # refused before anything is read
    try:
        wanted = str(uuid.UUID(dog_id))
    except ValueError:
        raise errors.not_found(m.NO_SUCH_DOG) from None
    dog = await repo.get(uow, wanted)
    if dog is None:
        raise errors.not_found(m.NO_SUCH_DOG)
    _touched(access, [dog], view)
    return dog, view


async def search(
    uow: TenantUnitOfWork, access: Access, microchip: str
) -> tuple[list[Dog], FieldView]:
    access.require("license", record_type=RECORD_TYPE)
    view = _view(access)
    dogs = await repo.find_by_microchip(uow, microchip)
    _touched(access, dogs, view)
    return dogs, view
