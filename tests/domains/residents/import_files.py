"""Test files and keys for the residents' import tests (synthetic values only).

:func:`file_row` is one valid record of the CSV layout, :func:`random_file` a file
with every kind of problem a real one has, :func:`fixed_keys` a town's keys
made from a fixed seed (never real ones); :func:`onboard_town` and
:func:`town_counts` an empty town to load into and what it then holds.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import date, timedelta

from shared_gov.checkdigits import make_individual_number, make_serial
from shared_gov.clock import today_jst
from shared_gov.crypto.blind import BlindIndex
from shared_gov.crypto.envelope import FieldCipher
from shared_gov.crypto.keyring import BLIND_INDEXES, DEK_NAMES, TownKeys, WriteKeys
from shared_gov.db import Database
from shared_gov.domains.residents import import_layout
from shared_gov.domains.residents.models import RELATIONSHIPS
from shared_gov.domains.residents.transfer import COLUMNS, HEADER, to_csv_text
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from shared_gov.tenancy.names import tenant_names


def file_row(n: int, **overrides: str) -> dict[str, str]:
    values = {
        "id": str(uuid.UUID(int=n + 1)),
        "atena_no": make_serial(3000 + n),
        "household_no": make_serial(4000 + n // 3),
        "relationship": "世帯主" if n % 3 == 0 else "子",
        "family_name": "帯広",
        "given_name": f"一郎{n}",
        "family_name_kana": "オビヒロ",
        "given_name_kana": "イチロウ",
        "birth_date": (date(1950, 1, 1) + timedelta(days=n * 11)).isoformat(),
        "sex": "1" if n % 2 else "2",
        "address": f"北海道河東郡音更町{n}",
        "postal_code": "0800101",
        "individual_number": make_individual_number(f"{57_000_000_000 + n:011d}"),
        "juminhyo_code": f"{68_000_000_000 + n:011d}",
        "phone": f"0155-31-{1000 + n}" if n % 3 == 0 else "",
        "former_surname": "",
        "domicile": "",
        "previous_address": "",
        "forward_address": "",
        "resident_type": "1",
        "state": "active",
        "resident_since": "1980-04-01",
        "address_since": "1990-05-01",
        "notified_on": "1990-05-02",
        "removed_on": "",
    }
    values.update(overrides)
    return values


def mutate(rng: random.Random, values: dict[str, str], earlier: list[dict[str, str]]) -> None:
    """One of the ways a row of a real file goes wrong (or is merely unusual)."""
    column = rng.choice(HEADER)
    kind = rng.randrange(14)
    if kind == 0:
        values[column] = ""
    elif kind == 1:
        values[column] = f"  {values[column]}\u3000 " if values[column] else " "
    elif kind == 2 and earlier:
        values[column] = rng.choice(earlier)[column]  # a duplicate, maybe
    elif kind == 3:
        values[rng.choice(import_layout._DATE_COLUMNS)] = rng.choice(
            ["2999-01-01", "1990-02-30", "19900501", "x", (today_jst()).isoformat()]
        )
    elif kind == 4:
        values[column] = values[column][:-1] + "9" if values[column] else "9"
    elif kind == 5:
        values["family_name_kana"] = rng.choice(
            ["おびひろ", "ｵﾋﾞﾋﾛ", "オビ ヒロ", "帯広", "ヴァ・ー"]
        )
    elif kind == 6:
        values["state"] = rng.choice(["moved_out", "deceased", "removed", "gone"])
    elif kind == 7:
        values["removed_on"] = "2020-03-31"
    elif kind == 8:
        values[column] = "長" * rng.choice([50, 51, 200, 201])
    elif kind == 9:
        values["id"] = rng.choice(["", "not-a-uuid", str(uuid.uuid4()).upper()])
    elif kind == 10:
        values["relationship"] = rng.choice([*sorted(RELATIONSHIPS), "他人"])
    elif kind == 11:
        values["sex"] = rng.choice(["1", "2", "3", "男"])
    elif kind == 12:
        values["atena_no"] = rng.choice(["1234567", make_serial(12)[1:], "０００００１９"])
    else:
        values["individual_number"] = rng.choice(["", "12345678901", "１２３"])


def random_file(rng: random.Random, rows: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=rng.choice(["\n", "\r\n"]))
    header = list(HEADER)
    if rng.random() < 0.2:
        header.append("extra")  # a column we do not know
    if rng.random() < 0.1:
        header.remove(rng.choice([c for c, _, required in COLUMNS if required]))
    rng.shuffle(header)
    writer.writerow(header)
    earlier: list[dict[str, str]] = []
    for n in range(rows):
        values = file_row(n)
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            mutate(rng, values, earlier)
        earlier.append(values)
        cells = [values.get(c, "x") for c in header]
        if rng.random() < 0.05:
            cells = cells[: rng.randrange(len(cells))]  # a short row
        if rng.random() < 0.05:
            cells.append("surplus")
        writer.writerow(cells)
        if rng.random() < 0.03:
            out.write("\n")  # a blank line is not a row
    return out.getvalue()


def csv_text(rows: list[dict[str, str]]) -> str:
    return to_csv_text([[r[c] for c in HEADER] for r in rows])


def fixed_keys(rotating: bool) -> TownKeys:
    rng = random.Random(7)  # noqa: S311 - fixed test keys, never real ones
    deks = {name: (3, rng.randbytes(32)) for name in DEK_NAMES}
    versions = ((1, 12), (2, 16)) if rotating else ((1, 16),)
    indexes = {
        name: tuple((v, bits, rng.randbytes(32)) for v, bits in versions) for name in BLIND_INDEXES
    }
    ciphers = {name: FieldCipher({3: key}, 3) for name, (_, key) in deks.items()}
    live = {
        name: tuple((v, BlindIndex(key, bits)) for v, bits, key in pairs)
        for name, pairs in indexes.items()
    }
    return TownKeys(
        "016365",
        ciphers,
        {name: pairs[-1][1] for name, pairs in live.items()},
        dict.fromkeys(deks, 3),
        live,
        WriteKeys("016365", deks, indexes),
    )


async def onboard_town(db: Database, code: str) -> None:
    """An empty town of 40,000 people with one department (町民課)."""
    await tenancy.onboard(
        db,
        parse_manifest(
            {
                "code": code,
                "name": f"町{code}",
                "name_kana": "ちょう",
                "prefecture": "北海道",
                "population": 40_000,
                "departments": [{"code": "shimin", "name": "町民課"}],
            }
        ),
    )


async def town_counts(db: Database, code: str) -> tuple[int, int, int, int]:
    """(residents, history entries, households, outbox events) of the town."""
    schema = tenant_names(code, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        row = await conn.fetchrow(
            f'SELECT (SELECT count(*) FROM "{schema}".residents) AS r, '
            f'(SELECT count(*) FROM "{schema}".resident_history) AS h, '
            f'(SELECT count(*) FROM "{schema}".households) AS hh, '
            f'(SELECT count(*) FROM "{schema}".events) AS e'
        )
    assert row is not None
    return row["r"], row["h"], row["hh"], row["e"]
