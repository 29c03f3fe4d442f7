"""The baseline the tenancy benchmark measures the service against.

A bare Litestar app with nothing of shared-gov's request path: no token
verification, no tenant registry, no tenant binding, no middleware, no
access log. ``GET /rows/{id}`` reads one row of the plain table
``bench_plain.items`` through an asyncpg pool and returns it as JSON. The
pool is sized like the service's (``SHARED_GOV_POOL_MIN``/``_MAX`` through
the same settings) and, like :mod:`shared_gov.db.engine`, skips asyncpg's
``RESET ALL`` on release, so the ratio "service ÷ bare" isolates what the
service adds per request. The row holds a handful of text columns of about
the size of a resident record, so both apps move similar JSON.

``GET /rows/{id}/bound-audited`` is DESIGN.md's second reference line
("the same with tenant binding + one audit INSERT"): the same read, in a
transaction opened with the binding statement (``search_path`` and role in
one ``set_config`` statement, as the service binds a town), followed by one
row in ``bench_plain.audit`` sent with the ``COMMIT`` — what a durable,
per-read audit record costs with nothing else of the service around it.
Its role is ``<SHARED_GOV_ROLE_PREFIX>_plain`` (created with the table,
dropped with the run's roles).

Serve it the way the benchmark serves the service::

    SHARED_GOV_DATABASE_URL=postgresql://... \\
    granian --interface asgi --factory --workers 2 --working-dir bench bare_app:create_bare_app

:func:`create_plain_table` creates and fills the table (the benchmark calls
it once per run; other benchmarks can reuse it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import asyncpg
from litestar import Litestar, get
from litestar.exceptions import NotFoundException

from shared_gov.settings import load_settings

SCHEMA = "bench_plain"
TABLE = f"{SCHEMA}.items"
_SELECT = (
    "SELECT id, family_name, given_name, family_name_kana, given_name_kana, birth_date, sex, "
    "address, postal_code, phone, household_no, relationship, domicile, previous_address, "
    f"notes FROM {TABLE} WHERE id = $1"
)


_SELECT_BOUND = _SELECT.replace(f"FROM {TABLE}", "FROM items")
# Sent with the COMMIT, like the service's audit event; the values are
# inlined (a simple query takes no parameters): the id is a parsed UUID.
_AUDIT = (
    "INSERT INTO audit (request_id, actor, department, action, subject, fields, rows_returned, "
    "purpose, outcome) VALUES ('{request}', 'bench-staff', 'shimin', 'resident.read', "
    "'{subject}', '{{family_name,given_name,address,birth_date}}', 1, 'juki.registration', "
    "'allowed'); COMMIT"
)


def plain_role(prefix: str) -> str:
    """The role the bound reads run as (cluster-wide: named with the run's prefix)."""
    return f"{prefix}_plain"


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing to reset (same choice as the service)."""


def create_bare_app() -> Litestar:
    """The baseline app; reads ``SHARED_GOV_DATABASE_URL``."""
    url = os.environ.get("SHARED_GOV_DATABASE_URL")
    if not url:
        raise RuntimeError("set SHARED_GOV_DATABASE_URL to the benchmark database")
    settings = load_settings()
    state: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(
            url, min_size=settings.pool_min, max_size=settings.pool_max, reset=_keep_session
        )
        try:
            yield
        finally:
            await state.pop("pool").close()

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/rows/{row_id:uuid}")
    async def read_row(row_id: uuid.UUID) -> dict[str, Any]:
        row = await state["pool"].fetchrow(_SELECT, row_id)
        if row is None:
            raise NotFoundException()
        out = dict(row)
        out["id"] = str(out["id"])
        return out

    binding = (
        f"BEGIN; SELECT set_config('search_path', '{SCHEMA}', true), "
        f"set_config('role', '{plain_role(settings.role_prefix)}', true)"
    )

    @get("/rows/{row_id:uuid}/bound-audited")
    async def read_row_bound_audited(row_id: uuid.UUID) -> dict[str, Any]:
        async with state["pool"].acquire() as conn:
            await conn.execute(binding)
            try:
                row = await conn.fetchrow(_SELECT_BOUND, row_id)
                if row is None:
                    raise NotFoundException()
                await conn.execute(_AUDIT.format(request=uuid.uuid4(), subject=row_id))
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        out = dict(row)
        out["id"] = str(out["id"])
        return out

    return Litestar(
        route_handlers=[health, read_row, read_row_bound_audited],
        lifespan=[lifespan],
        logging_config=None,
        debug=False,
    )


_FAMILY = ("佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村")
_FAMILY_KANA = (
    "サトウ",
    "スズキ",
    "タカハシ",
    "タナカ",
    "イトウ",
    "ワタナベ",
    "ヤマモト",
    "ナカムラ",
)
_GIVEN = ("陽菜", "蓮", "結衣", "悠真", "さくら", "大翔", "美咲", "湊")
_GIVEN_KANA = ("ヒナ", "レン", "ユイ", "ユウマ", "サクラ", "ヒロト", "ミサキ", "ミナト")


async def create_plain_table(
    conn: asyncpg.Connection, rows: int, role_prefix: str | None = None
) -> list[str]:
    """(Re)create ``bench_plain.items`` with ``rows`` synthetic rows; returns their ids.

    With ``role_prefix``, also the audit table and the role of
    ``/rows/{id}/bound-audited``.
    """
    await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    await conn.execute(f"CREATE SCHEMA {SCHEMA}")
    if role_prefix is not None:
        role = plain_role(role_prefix)
        await conn.execute(
            f"""
            CREATE TABLE {SCHEMA}.audit (
                event_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                request_id text, actor text, department text, action text, subject text,
                fields text[], rows_returned int, purpose text, outcome text
            )
            """
        )
        await conn.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$"
        )
        await conn.execute(f"GRANT {role} TO CURRENT_USER")
        await conn.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {role}")
        await conn.execute(f"GRANT INSERT ON {SCHEMA}.audit TO {role}")
    await conn.execute(
        f"""
        CREATE TABLE {TABLE} (
            id uuid PRIMARY KEY,
            family_name text NOT NULL,
            given_name text NOT NULL,
            family_name_kana text NOT NULL,
            given_name_kana text NOT NULL,
            birth_date date NOT NULL,
            sex text NOT NULL,
            address text NOT NULL,
            postal_code text,
            phone text,
            household_no text NOT NULL,
            relationship text NOT NULL,
            domicile text,
            previous_address text,
            notes text
        )
        """
    )
    records = []
    for i in range(rows):
        k = i % len(_FAMILY)
        records.append(
            (
                uuid.uuid4(),
                _FAMILY[k],
                _GIVEN[(i // 8) % len(_GIVEN)],
                _FAMILY_KANA[k],
                _GIVEN_KANA[(i // 8) % len(_GIVEN_KANA)],
                date(1950, 1, 1) + timedelta(days=(i * 37) % 25_000),
                "female" if i % 2 else "male",
                f"石川県加賀市大聖寺{i % 9 + 1}丁目{i % 30 + 1}番{i % 17 + 1}号 "
                f"加賀ハイツ{i % 300 + 101}号室",
                f"922{i % 10_000:04d}",
                f"0761-{i % 100:02d}-{i % 10_000:04d}",
                f"{i // 3 + 1:08d}",
                "世帯主" if i % 3 == 0 else "子",
                f"石川県加賀市大聖寺{i % 9 + 1}丁目{i % 30 + 1}番地",
                f"東京都千代田区永田町{i % 3 + 1}丁目{i % 20 + 1}番{i % 9 + 1}号",
                "転入 令和5年4月1日 東京都千代田区から; 前住所 東京都千代田区永田町1丁目7番1号; "
                "本籍 石川県加賀市大聖寺地方町1番地",
            )
        )
    await conn.copy_records_to_table("items", schema_name=SCHEMA, records=records)
    await conn.execute(f"ANALYZE {TABLE}")
    if role_prefix is not None:
        await conn.execute(f"GRANT SELECT ON {TABLE} TO {plain_role(role_prefix)}")
    return [str(r[0]) for r in records]
