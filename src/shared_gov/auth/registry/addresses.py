"""Where a town's ``jwks_uri`` may point: never into the platform's own network."""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit

from shared_gov.messages import identity as mi


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private  # RFC 1918, fc00::/7 (unique local), and other non-global
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or not address.is_global
    )


async def internal_address_problem(uri: str) -> str | None:
    """Why ``uri`` may not be fetched in production, or None when its host is public.

    A town admin choosing its ``jwks_uri`` must not make the platform fetch
    from its own network (cloud metadata at 169.254.169.254, the database
    host, a loopback admin port). Host names are resolved and every address
    they resolve to must be global; a name that does not resolve is refused
    too (it cannot be checked).
    """
    host = urlsplit(uri).hostname
    if not host:
        return mi.HAS_NO_HOST
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return mi.INTERNAL_ADDRESS if _internal(literal) else None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return mi.DOES_NOT_RESOLVE
    addresses = {info[4][0] for info in infos}
    if not addresses:
        return mi.DOES_NOT_RESOLVE
    for text_address in addresses:
        try:
            address = ipaddress.ip_address(str(text_address).split("%", 1)[0])
        except ValueError:
            return mi.RESOLVES_UNUSABLE
        if _internal(address):
            return mi.RESOLVES_INTERNAL
    return None
