"""The e-invoice domain's registration: what the pillars know of it.

Hooks import the rest of the domain only when called, so importing this
module imports nothing else of it (the registry imports every installed spec).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared_gov.domains.registry import DomainSpec, Label

HERE = Path(__file__).resolve().parent


def _cli_groups() -> Sequence[tuple[str, Any]]:
    from shared_gov.domains.invoices.cli import invoices_app

    return (("invoices", invoices_app),)


SPEC = DomainSpec(
    name="invoices",
    label=Label("電子請求", "supplier e-invoices"),
    record_types=(),
    cli_groups=_cli_groups,
)
