"""The intake's statements: few round trips for the hottest write of the domain.

A year of a city's invoices (35,000) arrives through one endpoint, and each
intake is one transaction. Its statements are folded so that an accepted
invoice costs five round trips — the binding, :func:`context` (the supplier's
registration, the town's settings and its accounting units in one
``SELECT``), :func:`file_accepted` (the invoice and its submission in one
statement, which also takes the ledger's lock), :func:`ledger_head` (the
chain's head, read after the lock, with the transaction's id for the commit,
``TenantUnitOfWork.written``) and the COMMIT, which carries the ledger entry
(:func:`seal`) and the audit event — instead of twelve.

The guarantees are those of one statement per step: the same transaction,
the ledger appended under the town's chain lock and MACed with the previous
entry's MAC, the audit event committed with the change; a duplicate (the
same supplier, number and issue date) is refused by the table's unique key
(``ON CONFLICT DO NOTHING``), so two identical submissions at once give one
invoice and one 409, never a 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import msgspec

from shared_gov.db import TenantUnitOfWork
from shared_gov.db.binding import dollar_quoted

from .. import document as doc_model
from .. import sealing
from ..models import AccountingUnit, Invoice, LedgerEntry, Submission, Supplier
from .common import _INVOICE_COLUMNS, _LEDGER_LOCK, INVOICES, _keys, now, seal_key
from .towns import TownSettings

_CONTEXT = (
    "SELECT s.id, s.supplier_key, s.kind, s.corporate_number, s.t_number, s.active, "
    "s.version, st.t_number_severity, st.default_unit, st.version AS settings_version, "
    "(SELECT json_agg(json_build_array(u.code, u.name, u.needs_qualified, u.retention_years)) "
    "FROM accounting_units u) AS units "
    "FROM invoice_settings st LEFT JOIN suppliers s ON s.supplier_key = $1"
)


@dataclass(slots=True)
class Context:
    """What an intake needs of the town before and after the checks."""

    supplier: Supplier | None
    """The calling supplier's registration (identity columns only), None if none."""
    settings: TownSettings
    units: dict[str, AccountingUnit]


async def context(uow: TenantUnitOfWork, supplier_key: str) -> Context:
    """The supplier's registration, the town's settings and accounting units: one statement."""
    row = await uow.fetchrow(_CONTEXT, supplier_key, town_plan=True)
    if row is None:  # pragma: no cover - the migration inserts the settings row
        return Context(None, TownSettings("warning", None, 0), {})
    supplier = None
    if row["id"] is not None:
        supplier = Supplier(
            id=str(row["id"]),
            supplier_key=row["supplier_key"],
            kind=row["kind"],
            name="",  # a supplier's request never needs its name or bank details
            corporate_number=row["corporate_number"],
            t_number=row["t_number"],
            active=row["active"],
            version=row["version"],
        )
    units = {
        code: AccountingUnit(code, name, needs_qualified, years)
        for code, name, needs_qualified, years in json.loads(row["units"] or "[]")
    }
    settings = TownSettings(row["t_number_severity"], row["default_unit"], row["settings_version"])
    return Context(supplier, settings, units)


# The invoice, its submission (only if the invoice was inserted: a duplicate
# inserts neither) and the chain's lock, in one statement. The lock is taken
# here so that the head read next (a new statement, a new snapshot) sees the
# last entry committed before it; it is held until the COMMIT.
_FILE = (
    f"WITH inv AS (INSERT INTO invoices ({_INVOICE_COLUMNS}) VALUES "  # noqa: S608 - fixed columns
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb, $18, "
    "$19, $20, $21, NULL, NULL, NULL) "
    "ON CONFLICT (supplier_id, number, issue_date) DO NOTHING RETURNING id), "
    "sub AS (INSERT INTO invoice_submissions (id, supplier_id, received_at, form, sha256, "
    "accepted, report, invoice_id) SELECT $22, $2, $20, $13, $15, true, $17::jsonb, inv.id "
    "FROM inv RETURNING invoice_id) "
    "SELECT (SELECT count(*) FROM sub) AS filed, (" + _LEDGER_LOCK + ") AS locked"
)

# The head (none in an empty ledger), and what Database._commit needs to settle
# a lost COMMIT acknowledgement (the same as its own _XID_MARKER_SQL).
_HEAD = (
    "SELECT h.seq, h.mac, pg_current_xact_id()::text AS xid, "
    "(SELECT checkpoint_lsn::text FROM pg_control_checkpoint()) AS checkpoint "
    "FROM (VALUES (1)) AS one LEFT JOIN "
    "(SELECT seq, mac FROM invoice_ledger ORDER BY seq DESC LIMIT 1) AS h ON true"
)

_REPORT = msgspec.json.Encoder()


def report_json(report: object) -> str:
    """A report as the ``jsonb`` columns store it (non-ASCII kept as is)."""
    return _REPORT.encode(report).decode("utf-8")


async def file_accepted(
    uow: TenantUnitOfWork, inv: Invoice, submission_id: str, document_json: bytes
) -> bool:
    """Insert an accepted invoice and its submission; False (nothing written) for a
    duplicate. Takes the town's ledger lock either way (held until the COMMIT)."""
    keys = _keys(uow)
    report = report_json(inv.report)
    row = await uow.fetchrow(
        _FILE,
        inv.id,
        inv.supplier_id,
        inv.unit,
        inv.number,
        inv.issue_date,
        inv.transaction_date,
        inv.currency,
        inv.amount,
        inv.tax,
        inv.specification,
        inv.type_code,
        inv.corrects,
        inv.form,
        keys.encrypt(INVOICES, "original", inv.id, inv.original.decode("utf-8")),
        inv.sha256.hex(),
        keys.encrypt(INVOICES, "document", inv.id, document_json.decode("utf-8")),
        report,
        inv.state,
        inv.version,
        inv.received_at,
        inv.retain_until,
        submission_id,
        town_plan=True,
    )
    return row is not None and row["filed"] == 1


async def ledger_head(uow: TenantUnitOfWork) -> tuple[int, bytes]:
    """The chain's last (seq, MAC) — under the lock :func:`file_accepted` took — and
    the transaction's id handed to the unit of work for its COMMIT (one round trip)."""
    row = await uow.fetchrow(_HEAD, town_plan=True)
    assert row is not None  # noqa: S101 - one row, whatever the ledger holds
    uow.written(row["xid"], row["checkpoint"])
    if row["seq"] is None:
        return 0, b""
    return row["seq"], bytes.fromhex(row["mac"])


async def seal(
    uow: TenantUnitOfWork,
    inv: Invoice,
    document_json: bytes,
    actor: str,
    head: tuple[int, bytes],
    *,
    at_commit: bool,
) -> LedgerEntry:
    """The receipt's ledger entry, MACed on ``head``.

    ``at_commit``: sent with the COMMIT (no round trip of its own) — only when
    nothing after it in the transaction appends to the ledger, since the next
    head is read from the table (the API's intake: one invoice per
    transaction). Otherwise written now (the demo files many in one).
    """
    seq, prev = head[0] + 1, head[1]
    at = now()
    digest = sealing.invoice_digest(inv, document_json)
    mac = sealing.entry_mac(
        seal_key(uow),
        seq=seq,
        invoice_id=inv.id,
        kind="received",
        state=inv.state,
        digest=digest,
        actor=actor,
        at=at,
        reason=None,
        prev_mac=prev,
    )
    entry = LedgerEntry(seq, inv.id, "received", inv.state, digest, actor, at, None, mac)
    if at_commit:
        uow.at_commit(ledger_insert_sql(entry))
    else:
        await uow.execute(ledger_insert_sql(entry))
    return entry


def ledger_insert_sql(e: LedgerEntry) -> str:
    """One ledger entry as a statement without parameters (it shares a simple query
    with the COMMIT): every value a checked number, hex, or dollar-quoted."""
    text = [str(e.invoice_id), e.kind, e.state, e.actor, e.at.isoformat()]
    quoted = [dollar_quoted(t) for t in text]
    reason = "NULL" if e.reason is None else dollar_quoted(e.reason)
    # A fixed table; every value a number, hex, or dollar-quoted (above).
    return (
        "INSERT INTO invoice_ledger (seq, invoice_id, kind, state, digest, actor, at, reason, "  # noqa: S608
        f"mac) VALUES ({int(e.seq)}, {quoted[0]}::uuid, {quoted[1]}, {quoted[2]}, "
        f"'{e.digest.hex()}', {quoted[3]}, {quoted[4]}::timestamptz, {reason}, '{e.mac.hex()}')"
    )


async def insert_rejected(uow: TenantUnitOfWork, s: Submission) -> None:
    """A rejected submission and its report (no invoice, no ledger entry)."""
    await uow.execute(
        "INSERT INTO invoice_submissions (id, supplier_id, received_at, form, sha256, accepted, "
        "report, invoice_id) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)",
        s.id,
        s.supplier_id,
        s.received_at,
        s.form,
        s.sha256.hex(),
        s.accepted,
        report_json(s.report),
        s.invoice_id,
    )


def document_json(inv: Invoice) -> bytes:
    """The model as stored and sealed (its JSON form)."""
    return doc_model.encode(inv.document)
