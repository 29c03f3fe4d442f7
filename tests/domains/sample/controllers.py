"""HTTP endpoints of dog records under ``/api/v1/tenants/{code}``.

Each route declares its audit action and enters the guarded entry; the
handler parses, calls the service and shapes the output — it never queries.
The microchip number is searched in a POST body, never in a URL.
"""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from shared_gov.api.entry import Entry, audited
from shared_gov.policy import FieldView
from tests.domains.sample import service
from tests.domains.sample.models import Dog
from tests.domains.sample.schemas import DogCreate, DogList, DogOut, DogSearch

RESOURCE = "dog"
"""The audit events' resource type."""


def _out(dog: Dog, view: FieldView) -> DogOut:
    allowed = "Dog.microchip" in view.allowed
    return DogOut(
        id=dog.id,
        breed=dog.breed,
        microchip=dog.microchip if allowed else None,
        withheld=list(view.withheld),
    )


class DogController(Controller):
    path = "/api/v1/tenants/{code:str}"
    tags = ("dogs",)

    @post("/dogs", status_code=201, summary="Register a dog", **audited("dog.register", RESOURCE))
    async def register(
        self, entry: NamedDependency[Entry], data: JSONBody[DogCreate]
    ) -> Response[DogOut]:
        async with entry:
            dog, view = await service.register(entry.uow, entry.access, data)
        location = f"/api/v1/tenants/{entry.code}/dogs/{dog.id}"
        return Response(_out(dog, view), status_code=201, headers={"Location": location})

    @get(
        "/dogs/{dog_id:str}",
        summary="A registered dog",
        **audited("dog.read", RESOURCE, record="dog_id"),
    )
    async def read(self, entry: NamedDependency[Entry], dog_id: FromPath[str]) -> DogOut:
        async with entry:
            dog, view = await service.get(entry.uow, entry.access, dog_id)
        return _out(dog, view)

    @post(
        "/dogs/search",
        status_code=200,
        summary="Find a dog by its microchip number",
        **audited("dog.search", RESOURCE),
    )
    async def search(self, entry: NamedDependency[Entry], data: JSONBody[DogSearch]) -> DogList:
        async with entry:
            dogs, view = await service.search(entry.uow, entry.access, data.microchip)
        return DogList(dogs=[_out(d, view) for d in dogs])
