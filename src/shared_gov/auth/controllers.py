"""Discovery and JWKS endpoints of the built-in issuer."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from shared_gov.web import services


class WellKnownController(Controller):
    path = "/.well-known"
    tags = ("identity",)

    @get("/openid-configuration", summary="OpenID discovery of the built-in issuer")
    async def discovery(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return services(request).issuer.discovery()

    @get("/jwks.json", summary="Public signing keys of the built-in issuer")
    async def jwks(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return services(request).issuer.jwks()
