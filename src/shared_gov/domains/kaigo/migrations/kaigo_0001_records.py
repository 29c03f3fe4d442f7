"""The 介護保険 domain's tables: insured persons, determinations, facilities,
the 65 watch, 住所地特例 notices and the outbox consumer's position.

A branch of its own in the tenant tree (``branch_labels``), joined through the
registry (``DomainSpec.migrations``). Envelopes are ``bytea`` (personal values:
insured numbers, periods, 住所地特例, cards, notes, a determination's proposal,
facility and correction, the day a resident reaches 65, a notice's details);
what the queue filters on (kind, status, deadline) and what joins records
(resident ids, the one-stop move's transfer id) is plain and checked to be
an identifier, so no personal value can be stored in its place. Blind indexes
have two columns (odd and even key versions, ``crypto.keyring.index_column``).

Facilities are each town's own, non-personal list (name, address, kind,
places, covered by 住所地特例): a town's 介護保険課 maintains its own, and the
platform-wide list is read town by town under each town's role (docs/kaigo.md,
"Where the facility list lives"): no catalog table, no grant across schemas.

The consumer's position starts at the beginning of the outbox: a town that
gets the domain replays its register's events once (registrations of a bulk
import only fill the 65 watch).

Revision ID: kaigo_0001
Revises:
Create Date: 2026-12-10
"""

from collections.abc import Sequence

from alembic import op

revision: str = "kaigo_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("kaigo",)
# No platform revision: nothing here refers to the platform's tables. The
# consumer reads the outbox (t0009), move-outs (t0007) and the rule-1 link
# (t0011) at run time, which every town at the platform's head has.
depends_on: Sequence[str] | None = None

_KINDS = (
    "'gain', 'category_change', 'loss', 'tokurei_keep', 'tokurei_incoming', "
    "'tokurei_ends', 'record_update'"
)
_FACILITY_KINDS = "'tokuyo', 'roken', 'iryoin', 'yuryo', 'keihi', 'yogo', 'chiiki', 'group_home'"


def upgrade() -> None:
    # asyncpg runs one statement per execute: one op.execute each.
    op.execute("CREATE SEQUENCE kaigo_insured_seq")
    op.execute(
        """
        CREATE TABLE kaigo_insured (
            id uuid PRIMARY KEY,
            resident_id uuid NOT NULL UNIQUE,
            status text NOT NULL
                CONSTRAINT kaigo_insured_status
                CHECK (status IN ('insured', 'lost', 'tokurei_elsewhere')),
            category text NOT NULL CONSTRAINT kaigo_insured_category CHECK (category IN ('1', '2')),
            insurer_town char(6) NOT NULL
                CONSTRAINT kaigo_insured_town CHECK (insurer_town ~ '^[0-9]{6}$'),
            insured_number bytea,
            bidx_kaigo_insured_number bigint,
            bidx_kaigo_insured_number_alt bigint,
            periods bytea NOT NULL,
            tokurei bytea,
            card bytea,
            notes bytea,
            version integer NOT NULL DEFAULT 1,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX kaigo_insured_bidx ON kaigo_insured (bidx_kaigo_insured_number)")
    op.execute(
        "CREATE INDEX kaigo_insured_bidx_alt ON kaigo_insured (bidx_kaigo_insured_number_alt)"
    )
    op.execute(
        f"""
        CREATE TABLE kaigo_determinations (
            id uuid PRIMARY KEY,
            resident_id uuid NOT NULL,
            kind text NOT NULL CONSTRAINT kaigo_determination_kind CHECK (kind IN ({_KINDS})),
            status text NOT NULL DEFAULT 'open'
                CONSTRAINT kaigo_determination_status
                CHECK (status IN ('open', 'confirmed', 'rejected', 'superseded')),
            source_key text NOT NULL UNIQUE
                CONSTRAINT kaigo_determination_source CHECK (source_key ~ '^[a-z0-9:_-]+$'),
            event_id uuid,
            event_at timestamptz,
            transfer_id uuid,
            proposed_on date NOT NULL,
            deadline date NOT NULL,
            proposal bytea NOT NULL,
            facility bytea,
            correction bytea,
            supersedes uuid REFERENCES kaigo_determinations (id),
            superseded_by uuid REFERENCES kaigo_determinations (id),
            corrected_by text,
            decided_by text,
            decided_at timestamptz,
            version integer NOT NULL DEFAULT 1,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        )
        """
    )
    op.execute(
        "CREATE INDEX kaigo_determinations_queue ON kaigo_determinations (status, deadline, id)"
    )
    op.execute("CREATE INDEX kaigo_determinations_resident ON kaigo_determinations (resident_id)")
    op.execute(
        "CREATE INDEX kaigo_determinations_transfer ON kaigo_determinations (transfer_id) "
        "WHERE transfer_id IS NOT NULL"
    )
    op.execute(
        """
        CREATE TABLE kaigo_watch (
            resident_id uuid PRIMARY KEY,
            turns_65_on bytea NOT NULL,
            bidx_kaigo_turns_65 bigint,
            bidx_kaigo_turns_65_alt bigint,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX kaigo_watch_bidx ON kaigo_watch (bidx_kaigo_turns_65)")
    op.execute("CREATE INDEX kaigo_watch_bidx_alt ON kaigo_watch (bidx_kaigo_turns_65_alt)")
    op.execute(
        f"""
        CREATE TABLE kaigo_facilities (
            id uuid PRIMARY KEY,
            name text NOT NULL
                CONSTRAINT kaigo_facility_name CHECK (length(name) BETWEEN 1 AND 120),
            address text NOT NULL
                CONSTRAINT kaigo_facility_address CHECK (length(address) BETWEEN 1 AND 200),
            address_key text NOT NULL UNIQUE,
            kind text NOT NULL CONSTRAINT kaigo_facility_kind CHECK (kind IN ({_FACILITY_KINDS})),
            places integer NOT NULL
                CONSTRAINT kaigo_facility_places CHECK (places BETWEEN 1 AND 10000),
            covered boolean NOT NULL,
            covered_reason text NOT NULL,
            version integer NOT NULL DEFAULT 1,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE kaigo_notices (
            id uuid PRIMARY KEY,
            transfer_id uuid UNIQUE,
            insurer_town char(6) NOT NULL
                CONSTRAINT kaigo_notice_town CHECK (insurer_town ~ '^[0-9]{6}$'),
            facility_id uuid NOT NULL REFERENCES kaigo_facilities (id),
            insurer_number bytea NOT NULL,
            insurer_determination uuid NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE kaigo_consumer (
            name text PRIMARY KEY CONSTRAINT kaigo_consumer_name CHECK (name ~ '^[a-z_]+$'),
            xid xid8 NOT NULL DEFAULT '0',
            seq bigint NOT NULL DEFAULT 0,
            job_65_through date,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("INSERT INTO kaigo_consumer (name) VALUES ('outbox')")


def downgrade() -> None:
    for table in (
        "kaigo_consumer",
        "kaigo_notices",
        "kaigo_facilities",
        "kaigo_watch",
        "kaigo_determinations",
        "kaigo_insured",
    ):
        op.execute(f"DROP TABLE {table}")
    op.execute("DROP SEQUENCE kaigo_insured_seq")
