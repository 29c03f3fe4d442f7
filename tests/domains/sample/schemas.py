"""The sample domain's request and response bodies (msgspec)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shared_gov.validation import Text

Microchip = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{15}$")]
Breed = Annotated[str, msgspec.Meta(min_length=1, max_length=60), Text]


class DogCreate(msgspec.Struct, forbid_unknown_fields=True):
    breed: Breed
    microchip: Microchip


class DogSearch(msgspec.Struct, forbid_unknown_fields=True):
    microchip: Microchip


class DogOut(msgspec.Struct):
    id: str
    breed: str
    microchip: str | None = None
    """Present only when the policy lets the caller read it."""
    withheld: list[str] = msgspec.field(default_factory=list)


class DogList(msgspec.Struct):
    dogs: list[DogOut]
