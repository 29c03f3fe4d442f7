"""What a resident's blind indexes hold: their inputs and values under each live key.

Each index has two columns (``bidx_<name>`` for odd key versions,
``bidx_<name>_alt`` for even ones, :func:`~shared_gov.crypto.keyring.index_column`):
writes store a value under every live version of the town's index key and
NULL in the other column; searches and the uniqueness check look for any
live version's value (:func:`matching_sql`). Outside a rotation that is one
column; during one, both (see :mod:`shared_gov.keys.index_rotation`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from shared_gov.crypto.blind import compound, normalize_digits, normalize_kana
from shared_gov.crypto.keyring import TownKeys, index_column
from shared_gov.domains.residents.models import Resident
from shared_gov.domains.residents.spec import SPEC

RESIDENT_INDEXES: tuple[str, ...] = tuple(i.name for i in SPEC.blind_indexes)
"""The blind indexes stored beside residents' rows (declared in ``spec.py``)."""
# Both columns of every index (odd and even key versions), always written.
BLIND = tuple(index_column(name, v) for name in RESIDENT_INDEXES for v in (1, 2))
INDEX_SOURCES: dict[str, tuple[str, ...]] = {i.name: i.sources for i in SPEC.blind_indexes}
"""The personal fields each blind index is computed from."""


def index_input(name: str, get: Callable[[str], str | None]) -> str | None:
    """The normalised input of blind index ``name``; ``get(field)`` gives a field as text.

    None when the field is empty (nothing is indexed). The rotation job
    derives inputs from decrypted fields here; :func:`index_texts` does the
    same from a record (tests hold the two to the same results).
    """
    if name == "kana_birth":
        kana, birth = get("family_name_kana"), get("birth_date")
        return None if kana is None or not birth else compound(normalize_kana(kana), birth)
    value = get(name)
    return normalize_digits(value) if value else None


if RESIDENT_INDEXES != ("individual_number", "kana_birth", "phone", "juminhyo_code"):
    raise RuntimeError("index_texts must follow RESIDENT_INDEXES")  # pragma: no cover


def index_texts(r: Resident) -> tuple[str | None, str | None, str | None, str | None]:
    """The inputs of the four resident indexes, in ``RESIDENT_INDEXES`` order."""
    number, phone, code = r.individual_number, r.phone, r.juminhyo_code
    return (
        normalize_digits(number) if number else None,
        compound(normalize_kana(r.family_name_kana), r.birth_date.isoformat()),
        normalize_digits(phone) if phone else None,
        normalize_digits(code) if code else None,
    )


def index_values_of(keys: TownKeys, r: Resident) -> dict[str, int | None]:
    """Blind-index values of a record, per column (None where nothing is stored)."""
    values: dict[str, int | None] = dict.fromkeys(BLIND)
    for name, text in zip(RESIDENT_INDEXES, index_texts(r), strict=True):
        if text is not None:
            for version, index in keys.index_versions[name]:
                values[index_column(name, version)] = index.value(text)
    return values


@lru_cache(maxsize=256)
def matching_sql(name: str, versions: tuple[int, ...], start: int = 1, many: bool = False) -> str:
    """``(bidx_x = $1 OR bidx_x_alt = $2)``: a value under any live version of the key."""
    test = "= ANY(${}::bigint[])" if many else "= ${}"
    return (
        "("
        + " OR ".join(
            f"{index_column(name, v)} {test.format(i)}" for i, v in enumerate(versions, start)
        )
        + ")"
    )
