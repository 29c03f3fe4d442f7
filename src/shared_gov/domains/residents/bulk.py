"""The statements of the residents' bulk paths: CSV import, export and comparison.

A bulk import checks a file's numbers against the town in one query per
kind (:func:`existing_unique_values`, under the registration lock held
exclusively), loads households with COPY and moves the serial-number
sequences past what it loaded; the export streams every record
(:func:`iter_all`). Like every statement on these tables, they run in a
unit of work bound to the town (names unqualified on purpose).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared_gov.crypto.blind import BlindIndex, normalize_digits
from shared_gov.crypto.keyring import keys_of
from shared_gov.db import TenantUnitOfWork
from shared_gov.domains.residents.indexing import matching_sql
from shared_gov.domains.residents.models import Resident

# The repository's own statement texts and row decoding: one source for both.
from shared_gov.domains.residents.repository import _REGISTRATION_LOCK, _SELECT, _resident

IndexValues = dict[str, dict[int, list[int]]]
"""Blind-index values per index name and key version."""


def unique_index_values(
    indexes: Mapping[str, Sequence[tuple[int, BlindIndex]]],
    individual_numbers: list[str],
    juminhyo_codes: list[str],
) -> IndexValues:
    """The index values of these numbers under every live version of the keys.

    ``indexes`` as in :attr:`TownKeys.index_versions` or
    the import's sealing keys (so worker processes can compute them).
    """
    out: IndexValues = {}
    for name, wanted in (
        ("individual_number", individual_numbers),
        ("juminhyo_code", juminhyo_codes),
    ):
        inputs = [normalize_digits(n) for n in wanted]
        out[name] = {
            version: [v for v in index.values(inputs) if v is not None]
            for version, index in indexes[name]
        }
    return out


async def existing_unique_values(
    uow: TenantUnitOfWork,
    individual_numbers: list[str],
    juminhyo_codes: list[str],
    values: IndexValues | None = None,
) -> tuple[set[str], set[str]]:
    """Which of these numbers active residents of the town already have (bulk import).

    ``values``: their index values if already computed (by
    :func:`unique_index_values`, e.g. in a worker process).
    """
    keys = keys_of(uow)
    # Registrations hold this lock shared: while the import holds it, none can
    # commit a duplicate behind the check below.
    await uow.execute(_REGISTRATION_LOCK, f"{uow.code}:registration")
    if not await uow.fetchval("SELECT EXISTS (SELECT FROM residents WHERE state = 'active')"):
        return set(), set()  # a town joining the platform: nothing to clash with
    if values is None:
        values = unique_index_values(keys.index_versions, individual_numbers, juminhyo_codes)
    where: list[str] = []
    args: list[list[int]] = []
    for name in ("individual_number", "juminhyo_code"):
        # Values under every live version of the key (two during a rotation).
        per_version = values[name]
        versions = tuple(sorted(per_version))
        where.append(matching_sql(name, versions, start=len(args) + 1, many=True))
        args.extend(sorted(set(per_version[v])) for v in versions)
    rows = await uow.fetch(
        "SELECT id, individual_number, juminhyo_code FROM residents WHERE state = 'active' "  # noqa: S608
        "AND (" + " OR ".join(where) + ")",
        *args,
    )
    # Only the two numbers are decrypted: candidates grow with the town (the
    # indexes collide on purpose), whole records would cost ten times more.
    numbers: set[str] = set()
    codes: set[str] = set()
    for r in rows:
        rid = str(r["id"])
        number = keys.decrypt("residents", "individual_number", rid, r["individual_number"])
        code = keys.decrypt("residents", "juminhyo_code", rid, r["juminhyo_code"])
        if number:
            numbers.add(number)
        if code:
            codes.add(code)
    return numbers & set(individual_numbers), codes & set(juminhyo_codes)


async def copy_households(uow: TenantUnitOfWork, households: dict[str, str | None]) -> None:
    """Bulk-load households (number -> head's id) with COPY, before their members."""
    await uow.copy_records("households", ("household_no", "head_id"), list(households.items()))


async def set_household_heads(uow: TenantUnitOfWork, heads: dict[str, str | None]) -> None:
    """Set the head of households loaded before their head's row was (bulk import)."""
    if heads:
        await uow.execute(
            "UPDATE households AS h SET head_id = v.head "
            "FROM unnest($1::text[], $2::uuid[]) AS v(no, head) WHERE h.household_no = v.no",
            list(heads),
            list(heads.values()),
        )


async def advance_sequences(uow: TenantUnitOfWork) -> None:
    """After a bulk load: new 宛名番号 and 世帯番号 continue after the highest loaded."""
    await uow.execute(
        "SELECT setval('atena_seq', GREATEST((SELECT max(left(atena_no, 7)::bigint) "
        "FROM residents), 1)), setval('household_seq', GREATEST((SELECT "
        "max(left(household_no, 7)::bigint) FROM households), 1))"
    )


async def existing_atena_numbers(uow: TenantUnitOfWork, atena_numbers: list[str]) -> set[str]:
    """Which of these 宛名番号 the town already holds (a plain column: nothing to decrypt)."""
    rows = await uow.fetch(
        "SELECT atena_no FROM residents WHERE atena_no = ANY($1::text[])", atena_numbers
    )
    return {r["atena_no"] for r in rows}


async def iter_all(uow: TenantUnitOfWork) -> Any:
    """Every record of the town, decrypted, in 宛名番号 order (streamed)."""
    keys = keys_of(uow)
    async for row in uow.cursor(_SELECT + " ORDER BY atena_no"):
        yield _resident(keys, row)


async def find_atena_numbers(uow: TenantUnitOfWork, atena_numbers: list[str]) -> list[Resident]:
    """Residents holding any of these 宛名番号."""
    rows = await uow.fetch(_SELECT + " WHERE atena_no = ANY($1::text[])", atena_numbers)
    keys = keys_of(uow)
    return [_resident(keys, r) for r in rows]


async def existing_households(uow: TenantUnitOfWork, household_numbers: list[str]) -> set[str]:
    rows = await uow.fetch(
        "SELECT household_no FROM households WHERE household_no = ANY($1::text[])",
        household_numbers,
    )
    return {r["household_no"] for r in rows}
