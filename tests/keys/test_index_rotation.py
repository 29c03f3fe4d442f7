"""Blind-index key rotation (``shared-gov keys rotate-index``) on a real PostgreSQL:
under concurrent searches and registrations, interrupted and resumed, and the
uniqueness of the individual number throughout the switch."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import uuid
from typing import Any

import pytest
from litestar import Litestar
from typer.testing import CliRunner

from shared_gov import errors
from shared_gov.auth.issuer import BuiltinIssuer
from shared_gov.checkdigits import make_serial
from shared_gov.cli.main import app as cli
from shared_gov.crypto.blind import normalize_digits
from shared_gov.crypto.keyring import TownKeys, index_column
from shared_gov.db import Database
from shared_gov.domains.residents import repository
from shared_gov.domains.residents.transfer import HEADER, ImportRejected, import_csv, to_csv_text
from shared_gov.keys import index_rotation
from shared_gov.keys.index_rotation import rotate_index
from shared_gov.keys.rotation import status
from shared_gov.settings import Settings, get_settings
from shared_gov.tenancy import service as tenancy
from shared_gov.tenancy.manifest import parse_manifest
from shared_gov.tenancy.names import tenant_names
from tests.conftest import KOMATSU, auth
from tests.factories import individual_number, resident_body

HAKODATE, OTARU, ASAHIKAWA, MURORAN = "012025", "012033", "012041", "012050"
runner = CliRunner()


async def _town(db: Database, app: Litestar, issuer: BuiltinIssuer, code: str) -> str:
    """Onboard a town of its own for one test; returns a staff token."""
    await tenancy.onboard(
        db,
        parse_manifest(
            {
                "code": code,
                "name": f"テスト市{code}",
                "name_kana": "てすとし",
                "prefecture": "北海道",
                "population": 250_000,
                "departments": [
                    {"code": "shimin", "name": "市民課", "purposes": ["juki.registration"]}
                ],
            }
        ),
    )
    # The app hears of new towns by NOTIFY; don't race it.
    await app.state.services.registry.refresh()
    return issuer.mint(
        subject=f"s-{code}", tenant=code, department="shimin", roles=["staff"], mfa=True
    )


async def _register(client: Any, code: str, token: str, **overrides: Any) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/tenants/{code}/residents", json=resident_body(**overrides), headers=auth(token)
    )
    assert r.status_code == 201, r.text
    person: dict[str, Any] = r.json()
    return person


async def _search(client: Any, code: str, token: str, **query: str) -> list[str]:
    r = await client.post(
        f"/api/v1/tenants/{code}/residents/search", json=query, headers=auth(token)
    )
    assert r.status_code == 200, r.text
    return [p["id"] for p in r.json()["residents"]]


async def _index_keys(db: Database, code: str, name: str) -> list[tuple[int, str, int]]:
    """(version, state, length of the wrapped key) of every version of an index."""
    async with db.catalog() as conn:
        rows = await conn.fetch(
            "SELECT version, state, length(wrapped) AS n FROM catalog.data_keys "
            "WHERE tenant_code = $1 AND kind = 'bidx' AND name = $2 ORDER BY version",
            code,
            name,
        )
    return [(r["version"], r["state"], r["n"]) for r in rows]


async def _assert_only_new_values(db: Database, code: str, name: str, version: int) -> int:
    """Every row holds its value under ``version`` only; returns how many rows have one."""
    db.keyring.invalidate(code)
    keys = await db.town_keys(code)
    assert [v for v, _ in keys.index_versions[name]] == [version]
    new, old = index_column(name, version), index_column(name, version + 1)
    schema = tenant_names(code, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        rows = await conn.fetch(
            f"SELECT id::text AS id, {name} AS blob, {new} AS new, {old} AS old "
            f'FROM "{schema}".residents'
        )
    indexed = 0
    for r in rows:
        assert r["old"] is None, "a value under the retired key is left"
        number = keys.decrypt("residents", name, r["id"], r["blob"])
        expected = keys.index_values(name, normalize_digits(number))[0][1] if number else None
        assert r["new"] == expected
        indexed += r["new"] is not None
    return indexed


class Interrupted(Exception):
    """Stops a rotation from its progress callback."""


def _app_db(app: Litestar) -> Database:
    db: Database = app.state.services.db
    return db


async def _until(predicate: Any, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not await predicate():  # noqa: ASYNC110 - polls the database, not an event
            await asyncio.sleep(0.02)


async def test_rotation_under_concurrent_searches_and_registrations(
    db: Database, app: Litestar, client: Any, issuer: BuiltinIssuer
) -> None:
    """Rotating the individual-number index while staff search and register in the same
    town: no request fails, every search finds its resident at every moment, and at
    the end every row carries only the new key's value and the old key is erased."""
    token = await _town(db, app, issuer, HAKODATE)
    people = [await _register(client, HAKODATE, token) for _ in range(40)]
    failures: list[str] = []
    searches = 0
    stop = asyncio.Event()

    async def searcher(i: int) -> None:
        nonlocal searches
        while not stop.is_set():
            person = people[i % len(people)]
            r = await client.post(
                f"/api/v1/tenants/{HAKODATE}/residents/search",
                json={"individual_number": person["individual_number"]},
                headers=auth(token),
            )
            searches += 1
            if r.status_code != 200:
                failures.append(f"SEARCH {r.status_code}")
            elif [p["id"] for p in r.json()["residents"]] != [person["id"]]:
                failures.append("SEARCH missed its resident")
            i += 7

    async def registrar() -> None:
        n = 0
        while not stop.is_set():
            r = await client.post(
                f"/api/v1/tenants/{HAKODATE}/residents",
                json=resident_body(),
                headers=auth(token),
            )
            if r.status_code != 201:
                failures.append(f"POST {r.status_code}")
                continue
            created = r.json()
            if n % 3 == 0:  # a change rewrites every index column too
                move = await client.post(
                    f"/api/v1/tenants/{HAKODATE}/residents/{created['id']}/moves",
                    json={
                        "event": "move_within_town",
                        "address": f"北海道函館市転居町{n}",
                        "move_date": "2020-01-01",
                        "notified_on": "2020-01-02",
                    },
                    headers={**auth(token), "If-Match": r.headers["etag"]},
                )
                if move.status_code != 200:
                    failures.append(f"MOVE {move.status_code}")
            people.append(created)
            n += 1

    tasks = [asyncio.create_task(searcher(i)) for i in range(4)]
    tasks.append(asyncio.create_task(registrar()))
    phases: set[str] = set()
    try:
        await asyncio.sleep(0.2)
        result = await rotate_index(
            db,
            HAKODATE,
            "individual_number",
            batch=5,
            grace_seconds=0.3,
            on_progress=lambda phase, _done, _total: phases.add(phase),
        )
        await asyncio.sleep(0.2)  # searches right after the switch and the clean-up
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert failures == []
    assert searches > 50
    assert (result.retired, result.unreadable, result.version) == (True, [], 2)
    assert result.filled >= 40
    assert phases == {"fill", "clean-up"}
    # The old key is gone; the new one is the only live version.
    assert [(v, s, n > 0) for v, s, n in await _index_keys(db, HAKODATE, "individual_number")] == [
        (1, "retired", False),
        (2, "active", True),
    ]
    indexed = await _assert_only_new_values(db, HAKODATE, "individual_number", 2)
    assert indexed == len(people)
    rows = {s.version: s for s in await status(db, HAKODATE) if s.name == "individual_number"}
    assert (rows[2].rows, rows[2].bits, rows[1].rows) == (indexed, 16, None)
    # After the switch, searches and the uniqueness check work on the new key alone.
    person = people[-1]
    found = await _search(client, HAKODATE, token, individual_number=person["individual_number"])
    assert found == [person["id"]]
    r = await client.post(
        f"/api/v1/tenants/{HAKODATE}/residents",
        json=resident_body(individual_number=people[0]["individual_number"]),
        headers=auth(token),
    )
    assert r.status_code == 409


async def test_interrupted_rotation_resumes(
    db: Database, app: Litestar, client: Any, issuer: BuiltinIssuer
) -> None:
    """A rotation stopped half-way keeps both keys and searches keep working; the next
    run continues with the same new version and finishes. A clean-up left unfinished
    is completed by the next run before any new rotation."""
    token = await _town(db, app, issuer, OTARU)
    people = [await _register(client, OTARU, token, phone=f"0134-22-{1000 + i}") for i in range(24)]
    people.append(await _register(client, OTARU, token, phone=None))  # nothing to index
    app_db = _app_db(app)  # the app's own keyring, told of changes by NOTIFY

    def stop_half_way(phase: str, done: int, _total: int) -> None:
        if phase == "fill" and done >= 6:
            raise Interrupted  # as if the operator pressed Ctrl-C

    with pytest.raises(Interrupted):
        await rotate_index(db, OTARU, "phone", batch=2, grace_seconds=5, on_progress=stop_half_way)
    rows = {s.version: s.rows for s in await status(db, OTARU) if s.name == "phone"}
    assert rows[1] == len(people) - 1
    assert 0 < (rows[2] or 0) < len(people) - 1
    assert [(v, s) for v, s, _ in await _index_keys(db, OTARU, "phone")] == [
        (1, "decrypt"),
        (2, "active"),
    ]

    async def app_knows_both() -> bool:
        keys = await app_db.town_keys(OTARU)
        return len(keys.index_versions["phone"]) == 2

    await _until(app_knows_both)
    for person in people[:-1]:  # half of them indexed under the new key, all under the old
        assert await _search(client, OTARU, token, phone=person["phone"]) == [person["id"]]
    late = await _register(client, OTARU, token, phone="0134-99-0001")  # written both ways
    result = await rotate_index(db, OTARU, "phone", batch=50, grace_seconds=0.1)
    assert (result.version, result.retired) == (2, True)
    assert 0 < result.filled < len(people)
    assert [(v, s) for v, s, _ in await _index_keys(db, OTARU, "phone")] == [
        (1, "retired"),
        (2, "active"),
    ]
    indexed = len(people) - 1 + 1  # all but the one without a phone, and the late one
    assert await _assert_only_new_values(db, OTARU, "phone", 2) == indexed
    assert await _search(client, OTARU, token, phone="0134-99-0001") == [late["id"]]

    # A clean-up cut short leaves values in the retired version's column (as would a
    # worker that missed every notification): the next run only finishes it.
    schema = tenant_names(OTARU, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        await conn.execute(
            f'UPDATE "{schema}".residents SET bidx_phone = 12345 WHERE id = ANY($1::uuid[])',
            [p["id"] for p in people[:3]],
        )
    finish = await rotate_index(db, OTARU, "phone", grace_seconds=0)
    assert (finish.cleanup_only, finish.cleared, finish.version) == (True, 3, 2)
    assert len(await _index_keys(db, OTARU, "phone")) == 2  # no new version started
    assert await _assert_only_new_values(db, OTARU, "phone", 2) == indexed
    # The next run rotates again, back into the first column, with the width asked for.
    again = await rotate_index(db, OTARU, "phone", bits=12, grace_seconds=0)
    assert (again.version, again.bits, again.retired) == (3, 12, True)
    assert await _assert_only_new_values(db, OTARU, "phone", 3) == indexed
    assert await _search(client, OTARU, token, phone=people[5]["phone"]) == [people[5]["id"]]


async def test_duplicate_individual_number_refused_during_the_switch(
    db: Database, app: Litestar, client: Any, issuer: BuiltinIssuer
) -> None:
    """While both keys are live, a number is refused whether its holder has a value under
    the old key only or under both, and two registrations of one new number by workers
    that know different key versions still exclude each other."""
    token = await _town(db, app, issuer, ASAHIKAWA)
    before = await _register(client, ASAHIKAWA, token)  # old key only
    app_db = _app_db(app)  # the app's own keyring, told of changes by NOTIFY
    old, new, _bits = await index_rotation._start(db, ASAHIKAWA, "individual_number", None)
    assert (old, new) == (1, 2)

    async def app_knows_both() -> bool:
        keys = await app_db.town_keys(ASAHIKAWA)
        return len(keys.index_versions["individual_number"]) == 2

    await _until(app_knows_both)
    during = await _register(client, ASAHIKAWA, token)  # both keys
    for holder in (before, during):
        r = await client.post(
            f"/api/v1/tenants/{ASAHIKAWA}/residents",
            json=resident_body(individual_number=holder["individual_number"]),
            headers=auth(token),
        )
        assert r.status_code == 409, r.text

    # A worker that has not heard of the rotation (old key only) registers a new
    # number and has not committed yet; an up-to-date worker registering the same
    # number must wait for it, then be refused.
    names = tenant_names(ASAHIKAWA, db.settings.role_prefix)
    number = individual_number()
    keys = await db.town_keys(ASAHIKAWA)
    stale: TownKeys = dataclasses.replace(
        keys,
        index_versions={
            **keys.index_versions,
            "individual_number": keys.index_versions["individual_number"][:1],
        },
    )
    holding = asyncio.Event()
    release = asyncio.Event()

    async def stale_registration() -> None:
        async with db.tenant(names) as uow:
            uow.keys = stale
            template = await repository.get(uow, before["id"])
            assert template is not None
            await repository.insert(
                uow,
                dataclasses.replace(
                    template,
                    id=str(uuid.uuid4()),
                    atena_no=await repository.next_atena_no(uow),
                    individual_number=number,
                    juminhyo_code=None,
                    relationship="子",
                ),
            )
            holding.set()
            await release.wait()

    writer = asyncio.create_task(stale_registration())
    await holding.wait()
    fresh = asyncio.create_task(
        client.post(
            f"/api/v1/tenants/{ASAHIKAWA}/residents",
            json=resident_body(individual_number=number),
            headers=auth(token),
        )
    )
    try:
        await asyncio.sleep(0.5)
        waited = not fresh.done()
    finally:
        release.set()
        await writer
    assert waited, "the up-to-date registration must wait for the stale one"
    assert (await fresh).status_code == 409

    # The stale row lacks the new value; the fill gives it one, then the switch.
    result = await rotate_index(db, ASAHIKAWA, "individual_number", grace_seconds=0.1)
    assert (result.retired, result.version) == (True, 2)
    await _assert_only_new_values(db, ASAHIKAWA, "individual_number", 2)
    for taken in (before["individual_number"], during["individual_number"], number):
        r = await client.post(
            f"/api/v1/tenants/{ASAHIKAWA}/residents",
            json=resident_body(individual_number=taken),
            headers=auth(token),
        )
        assert r.status_code == 409, r.text
    assert await _search(client, ASAHIKAWA, token, individual_number=number) != []


async def test_only_resident_indexes_rotate(db: Database) -> None:
    """The audit log's subject index is never rotated (the log keeps its values for
    ever); unknown names and widths outside 8–32 bits are refused."""
    for name in ("audit_subject", "family_name"):
        with pytest.raises(errors.DomainError):
            await rotate_index(db, HAKODATE, name)
    with pytest.raises(errors.DomainError):
        await rotate_index(db, HAKODATE, "phone", bits=40)


def _csv_row(n: int, number: str) -> list[str]:
    values = {
        "atena_no": make_serial(8000 + n),
        "household_no": make_serial(9000 + n),
        "relationship": "世帯主",
        "family_name": "移行",
        "given_name": f"次郎{n}",
        "family_name_kana": "イコウ",
        "given_name_kana": "ジロウ",
        "birth_date": "1960-06-15",
        "sex": "1",
        "address": f"北海道室蘭市本町{n}",
        "individual_number": number,
        "phone": f"0143-22-{1000 + n}",
        "resident_type": "1",
        "state": "active",
        "resident_since": "1980-04-01",
        "address_since": "1990-05-01",
        "notified_on": "1990-05-02",
    }
    return [values.get(c, "") for c in HEADER]


async def test_import_during_rotation_writes_both_columns(
    db: Database, app: Litestar, client: Any, issuer: BuiltinIssuer
) -> None:
    """A bulk import while an index key is being rotated stores both values, and its
    check against the town's numbers sees residents indexed under the old key only."""
    token = await _town(db, app, issuer, MURORAN)
    before = await _register(client, MURORAN, token)  # old key only
    await index_rotation._start(db, MURORAN, "individual_number", None)
    names = tenant_names(MURORAN, db.settings.role_prefix)
    clash = to_csv_text([_csv_row(1, before["individual_number"])])
    with pytest.raises(ImportRejected) as refused:
        async with db.tenant(names) as uow:
            await import_csv(uow, io.StringIO(clash))
    assert [(e.column, e.reason) for e in refused.value.errors] == [
        ("individual_number", "already registered in this town")
    ]
    rows = [_csv_row(n, individual_number()) for n in range(2, 12)]
    async with db.tenant(names) as uow:
        assert await import_csv(uow, io.StringIO(to_csv_text(rows))) == 10
    schema = tenant_names(MURORAN, db.settings.role_prefix).schema
    async with db.catalog() as conn:
        stored = await conn.fetch(
            f"SELECT bidx_individual_number AS old, bidx_individual_number_alt AS new, "
            f'bidx_phone AS phone, bidx_phone_alt AS phone_alt FROM "{schema}".residents '
            "WHERE id <> $1",
            before["id"],
        )
    assert len(stored) == 10
    assert all(r["old"] is not None and r["new"] is not None for r in stored)
    # Only the index being rotated has two values.
    assert all(r["phone"] is not None and r["phone_alt"] is None for r in stored)
    result = await rotate_index(db, MURORAN, "individual_number", grace_seconds=0)
    assert result.filled == 1  # the resident registered before the rotation
    await _assert_only_new_values(db, MURORAN, "individual_number", 2)
    number = rows[3][HEADER.index("individual_number")]
    assert len(await _search(client, MURORAN, token, individual_number=number)) == 1


def test_cli_rotate_index_and_status(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`keys rotate-index` rotates and reports; `keys status` lists index versions with
    their width and the rows holding a value under each."""
    assert settings.database_url
    monkeypatch.setenv("SHARED_GOV_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SHARED_GOV_ROLE_PREFIX", settings.role_prefix)
    monkeypatch.setenv("SHARED_GOV_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLUMNS", "200")  # rich tables must not wrap the asserted text
    get_settings.cache_clear()
    try:
        refused = runner.invoke(
            cli, ["keys", "rotate-index", "--tenant", KOMATSU, "--index", "audit_subject"]
        )
        assert refused.exit_code == 2
        assert "not a rotatable blind index" in refused.output
        rotated = runner.invoke(
            cli,
            ["keys", "rotate-index", "--tenant", KOMATSU, "--index", "phone", "--grace", "0"],
        )
        assert rotated.exit_code == 0, rotated.output
        assert f"{KOMATSU} phone: v2 (" in rotated.stdout
        assert "old version retired and erased" in rotated.stdout
        listing = runner.invoke(cli, ["keys", "status", "--tenant", KOMATSU])
        assert listing.exit_code == 0, listing.output
        lines = [line.split("│") for line in listing.stdout.splitlines() if " phone " in line]
        cells = [[c.strip() for c in line if c.strip()] for line in lines]
        assert [c[3:5] for c in cells] == [["1", "retired"], ["2", "active"]]
        assert cells[1][6].isdigit()  # bits
    finally:
        get_settings.cache_clear()


def test_rotation_grace_covers_the_listener_heartbeat() -> None:
    """A worker whose LISTEN connection died silently learns of a key change
    only through the heartbeat (a wait, then a probe with the same timeout);
    a rotation must not retire a key before that (it would write with it)."""
    from shared_gov.crypto.keyring import REENCRYPT_GRACE_SECONDS
    from shared_gov.db.notify import HEARTBEAT_SECONDS

    assert REENCRYPT_GRACE_SECONDS >= 2 * HEARTBEAT_SECONDS + 2
