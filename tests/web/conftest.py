"""Fixtures of the console's tests: a browser-like client with its own cookies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar


@pytest.fixture
async def browser(app: Litestar, client: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie jar of its own over the running app (``client`` runs the lifespan)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        yield c
