"""The sample domain's registration: what the pillars know of dog records.

The hooks are imported only when called, so importing this module imports no
other part of the domain (the registry imports every installed ``spec``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shared_gov.domains.registry import (
    BlindIndex,
    DomainSpec,
    EncryptedTable,
    Exporter,
    Field,
    IndexHooks,
    Label,
    RecordType,
)
from shared_gov.messages import Catalogue

HERE = Path(__file__).resolve().parent
DOGS = "dogs"
HISTORY = "dog_history"

DOG = RecordType(
    name="Dog",
    label=Label("登録犬", "registered dog"),
    # One record action: registering a dog and looking one up by its chip are
    # both 登録事務 (licensing work). Reading fields is Cedar's "read" on Field.
    actions=("license",),
    fields=(
        # Personal: it identifies the dog and so its owner. Encrypted, indexed
        # (found by equality), never written to a log.
        Field(
            "microchip",
            Label("マイクロチップ識別番号", "microchip number"),
            encrypted=(DOGS, "microchip"),
            redacted=True,
        ),
        # Not personal: served with any permitted field, stored in plain.
        Field("breed", Label("犬種", "breed"), personal=False),
    ),
)


def _index_hooks() -> IndexHooks:
    from tests.domains.sample import repository as repo

    return IndexHooks(
        backlog=repo.index_backlog,
        fill=repo.fill_index,
        clear=repo.clear_index,
        stored=repo.index_values_stored,
    )


def _exporter() -> Exporter:
    from tests.domains.sample.repository import export_all

    return export_all


def _messages() -> Catalogue:
    from tests.domains.sample.messages import CATALOGUE

    return CATALOGUE


def _routers() -> Sequence[Any]:
    from tests.domains.sample.controllers import DogController

    return (DogController,)


SPEC = DomainSpec(
    name="sample",
    label=Label("犬の登録", "dog registration"),
    record_types=(DOG,),
    encrypted_tables=(
        EncryptedTable(DOGS, ("microchip",), row_id_sql="id::text"),
        # The register's entries, one envelope each; the town only adds them.
        EncryptedTable(
            HISTORY, ("entry",), row_id_sql="dog_id::text || '/' || entry_no", append_only=True
        ),
    ),
    blind_indexes=(BlindIndex("dog_microchip", DOGS, ("microchip",), ("digits",)),),
    index_hooks=_index_hooks,
    exporter=_exporter,
    routers=_routers,
    messages=_messages,
    migrations=HERE / "migrations",
    purposes=HERE / "purposes.toml",
    policies=HERE / "policies",
)
