"""A registered dog, as the service and repository see it (plaintext)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Dog:
    id: str
    breed: str
    microchip: str
    """15 digits (ISO 11784); personal: encrypted at rest, found by its blind index."""
