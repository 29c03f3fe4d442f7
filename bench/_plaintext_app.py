"""Baseline of the crypto benchmark: the service storing personal fields in plaintext.

:meth:`shared_gov.crypto.keyring.TownKeys.encrypt` and ``decrypt`` are the
only places where the repository turns values into envelopes and back. Here
both become identity functions (UTF-8 bytes in the same ``bytea`` columns),
so a server built by :func:`create_app` reads and writes exactly the same
rows, through the same binding, policy and JSON code, minus AES-GCM.

Rows must be written in the format of the process that reads them: the
benchmark seeds a town of its own under :func:`plaintext_fields` and only
ever asks this server about that town (and the encrypting server about
another).

Serve it the way the benchmark serves the service::

    granian --interface asgi --factory --workers 2 --working-dir bench _plaintext_app:create_app
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from litestar import Litestar

from shared_gov.crypto.keyring import TownKeys


def plain_encrypt(
    self: TownKeys, table: str, column: str, row_id: str, value: str | None
) -> bytes | None:
    return None if value is None else value.encode()


def plain_decrypt(
    self: TownKeys, table: str, column: str, row_id: str, blob: bytes | None
) -> str | None:
    return None if blob is None else bytes(blob).decode()


def install() -> None:
    """Store and read personal fields as plaintext bytes in this process."""
    TownKeys.encrypt = plain_encrypt  # type: ignore[method-assign]
    TownKeys.decrypt = plain_decrypt  # type: ignore[method-assign]


@contextmanager
def plaintext_fields() -> Iterator[None]:
    """:func:`install` for the duration of a block (seeding the baseline town)."""
    saved = TownKeys.encrypt, TownKeys.decrypt
    install()
    try:
        yield
    finally:
        TownKeys.encrypt, TownKeys.decrypt = saved  # type: ignore[method-assign]


def create_app() -> Litestar:
    """The service, with identity "encryption"."""
    install()
    from shared_gov.app import create_app as service_app

    return service_app()
