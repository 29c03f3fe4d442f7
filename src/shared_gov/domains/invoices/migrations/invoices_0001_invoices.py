"""The e-invoice domain's tables: accounting units, suppliers, submissions, invoices,
and the sealed ledger of every invoice's receipt and state change.

A branch of its own in the tenant tree (``branch_labels``), joined through the
registry. What is personal is an envelope (``bytea``, AES-256-GCM bound to
town, table, column, row): a supplier's name (a sole proprietor's is
personal data) and bank details, an invoice's original and its parsed model
(they carry the same). What is searched (電子帳簿保存法: transaction date,
amount, counterparty) is plain: dates, amounts, the supplier's id.

- ``invoice_settings``: one row; the town's choices (``sg-jp-01`` severity).
- ``accounting_units``: 会計 (一般会計, 特別会計, 公営企業会計): whether it
  needs qualified invoices, how long its invoices are kept.
- ``approval_levels``: 決裁 thresholds (the amount up to which each level may approve).
- ``suppliers``: 業者登録 (one supplier, registered once per town it sells to);
  ``supplier_key`` is its platform-wide identity (法人番号, T-number or an
  assigned id), what its token names.
- ``invoice_submissions``: every submission, accepted or not, with its report.
- ``invoices``: accepted invoices; the original byte for byte (an envelope of
  its UTF-8 text) and its SHA-256; state and version (ETag).
- ``invoice_ledger``: a MAC chain over each invoice's receipt (a digest of its
  content) and every state change (invoices/sealing.py).

Revision ID: invoices_0001
Revises:
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "invoices_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("invoices",)
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE invoice_settings (
            singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            t_number_severity text NOT NULL DEFAULT 'warning'
                CHECK (t_number_severity IN ('warning', 'fatal')),
            default_unit text,
            version integer NOT NULL DEFAULT 1
        )
        """
    )
    op.execute("INSERT INTO invoice_settings DEFAULT VALUES")
    op.execute(
        """
        CREATE TABLE accounting_units (
            code text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_-]{0,31}$'),
            name text NOT NULL,
            needs_qualified boolean NOT NULL,
            retention_years integer NOT NULL CHECK (retention_years BETWEEN 1 AND 30),
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE approval_levels (
            level integer PRIMARY KEY CHECK (level BETWEEN 1 AND 9),
            up_to bigint CHECK (up_to IS NULL OR up_to > 0)
        )
        """
    )
    # 専決: 課長 up to ¥1,000,000, 部長 up to ¥10,000,000, above that 副市長 (towns change it).
    op.execute("INSERT INTO approval_levels VALUES (1, 1000000), (2, 10000000), (3, NULL)")
    op.execute(
        """
        CREATE TABLE suppliers (
            id uuid PRIMARY KEY,
            supplier_key text NOT NULL UNIQUE,
            kind text NOT NULL CHECK (kind IN ('corporation', 'sole_proprietor')),
            corporate_number text CHECK (corporate_number ~ '^[0-9]{13}$'),
            t_number text CHECK (t_number ~ '^T[0-9]{13}$'),
            name bytea NOT NULL,
            bank_account bytea,
            bank_holder bytea,
            active boolean NOT NULL DEFAULT true,
            version integer NOT NULL DEFAULT 1,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE invoice_submissions (
            id uuid PRIMARY KEY,
            supplier_id uuid NOT NULL REFERENCES suppliers (id),
            received_at timestamptz NOT NULL,
            form text NOT NULL CHECK (form IN ('xml', 'json')),
            sha256 bytea NOT NULL,
            accepted boolean NOT NULL,
            report jsonb NOT NULL,
            invoice_id uuid
        )
        """
    )
    op.execute(
        "CREATE INDEX invoice_submissions_supplier ON invoice_submissions "
        "(supplier_id, received_at)"
    )
    op.execute(
        """
        CREATE TABLE invoices (
            id uuid PRIMARY KEY,
            supplier_id uuid NOT NULL REFERENCES suppliers (id),
            unit text NOT NULL REFERENCES accounting_units (code),
            number text NOT NULL,
            issue_date date NOT NULL,
            transaction_date date NOT NULL,
            currency text NOT NULL,
            amount numeric NOT NULL,
            tax numeric NOT NULL,
            specification text NOT NULL,
            type_code text NOT NULL,
            corrects uuid REFERENCES invoices (id),
            form text NOT NULL CHECK (form IN ('xml', 'json')),
            original bytea NOT NULL,
            sha256 bytea NOT NULL,
            document bytea NOT NULL,
            report jsonb NOT NULL,
            state text NOT NULL,
            version integer NOT NULL DEFAULT 1,
            received_at timestamptz NOT NULL,
            retain_until date NOT NULL,
            inspected_by text,
            exported_at timestamptz,
            export_id uuid,
            UNIQUE (supplier_id, number, issue_date)
        )
        """
    )
    op.execute("CREATE INDEX invoices_transaction_date ON invoices (transaction_date)")
    op.execute("CREATE INDEX invoices_amount ON invoices (amount)")
    op.execute("CREATE INDEX invoices_supplier ON invoices (supplier_id, transaction_date)")
    op.execute("CREATE INDEX invoices_state ON invoices (state)")
    op.execute(
        """
        CREATE TABLE invoice_ledger (
            seq bigint PRIMARY KEY,
            invoice_id uuid NOT NULL REFERENCES invoices (id),
            kind text NOT NULL,
            state text NOT NULL,
            digest bytea NOT NULL,
            actor text NOT NULL,
            at timestamptz NOT NULL,
            reason text,
            mac bytea NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX invoice_ledger_invoice ON invoice_ledger (invoice_id, seq)")
    op.execute(
        """
        CREATE TABLE invoice_exports (
            id uuid PRIMARY KEY,
            created_at timestamptz NOT NULL,
            actor text NOT NULL,
            encoding text NOT NULL,
            reexport boolean NOT NULL,
            invoices integer NOT NULL,
            sha256 bytea NOT NULL
        )
        """
    )


def downgrade() -> None:
    for table in (
        "invoice_exports",
        "invoice_ledger",
        "invoices",
        "invoice_submissions",
        "suppliers",
        "approval_levels",
        "accounting_units",
        "invoice_settings",
    ):
        op.execute(f"DROP TABLE {table}")
