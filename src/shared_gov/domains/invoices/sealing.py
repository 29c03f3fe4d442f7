"""Sealing invoices like the audit log: a MAC chain over receipt and every change.

Each town's ``invoice_ledger`` is one chain. An entry is written in the
transaction of what it records — an invoice's receipt, or a change of its
state — and carries

    mac = HMAC-SHA256(town audit key, "shared-gov/invoice-ledger/1\\n" ||
                      seq || invoice || kind || state || digest || actor ||
                      at || reason || prev_mac)

(fields joined by newlines, ``prev_mac`` the previous entry's). A receipt's
``digest`` covers the invoice's content: the SHA-256 of the original bytes,
the SHA-256 of the parsed model's JSON, and every plain column the town
searches or pays by (supplier, unit, number, dates, amounts, correction).
The key is the town's audit MAC key (``TownKeys.audit_mac``, unwrapped by the
key provider; never readable from the database), under its own prefix. So a
database superuser who changes an amount, swaps an original, deletes or
reorders an entry, or sets a state is found by :func:`verify`: a MAC that
does not match, a gap in the chain, a digest that is not the content's, a
state that is not the ledger's last. Ciphertexts are not covered (a data-key
rotation re-encrypts them); their plaintext is, through the digests.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from .models import Invoice, LedgerEntry

PREFIX = b"shared-gov/invoice-ledger/1\n"


def content_digest(
    *,
    sha256: bytes,
    document_json: bytes,
    supplier_id: str,
    unit: str,
    number: str,
    issue_date: date,
    transaction_date: date,
    currency: str,
    amount: Decimal,
    tax: Decimal,
    corrects: str | None,
) -> bytes:
    """The digest a receipt seals (module docstring)."""
    parts = [
        sha256.hex(),
        hashlib.sha256(document_json).hexdigest(),
        supplier_id,
        unit,
        number,
        issue_date.isoformat(),
        transaction_date.isoformat(),
        currency,
        format(amount.normalize(), "f"),
        format(tax.normalize(), "f"),
        corrects or "",
    ]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).digest()


def invoice_digest(invoice: Invoice, document_json: bytes) -> bytes:
    return content_digest(
        sha256=invoice.sha256,
        document_json=document_json,
        supplier_id=invoice.supplier_id,
        unit=invoice.unit,
        number=invoice.number,
        issue_date=invoice.issue_date,
        transaction_date=invoice.transaction_date,
        currency=invoice.currency,
        amount=invoice.amount,
        tax=invoice.tax,
        corrects=invoice.corrects,
    )


def change_digest(kind: str, detail: str = "") -> bytes:
    """The digest of a state change (what it says besides who and when)."""
    return hashlib.sha256(f"{kind}\n{detail}".encode()).digest()


def entry_mac(
    key: bytes,
    *,
    seq: int,
    invoice_id: str,
    kind: str,
    state: str,
    digest: bytes,
    actor: str,
    at: datetime,
    reason: str | None,
    prev_mac: bytes,
) -> bytes:
    message = "\n".join(
        [
            str(seq),
            invoice_id,
            kind,
            state,
            digest.hex(),
            actor,
            at.isoformat(),
            reason or "",
            prev_mac.hex(),
        ]
    ).encode("utf-8")
    return hmac.new(key, PREFIX + message, hashlib.sha256).digest()


def mac_of(key: bytes, entry: LedgerEntry, prev_mac: bytes) -> bytes:
    return entry_mac(
        key,
        seq=entry.seq,
        invoice_id=entry.invoice_id,
        kind=entry.kind,
        state=entry.state,
        digest=entry.digest,
        actor=entry.actor,
        at=entry.at,
        reason=entry.reason,
        prev_mac=prev_mac,
    )


@dataclass
class Verification:
    """What :func:`verify` found; ``ok`` when nothing."""

    entries: int = 0
    invoices: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    key: bytes,
    entries: Iterable[LedgerEntry],
    invoices: Iterable[tuple[Invoice | None, bytes | None, str]],
) -> Verification:
    """Walk the chain and compare each invoice with what its entries sealed.

    ``invoices``: (the invoice decrypted, its model's JSON, its id) — None for
    one whose envelopes no longer decrypt (a swapped or altered ciphertext).
    """
    result = Verification()
    prev = b""
    expected_seq = 1
    received: dict[str, bytes] = {}
    last_state: dict[str, str] = {}
    for entry in entries:
        result.entries += 1
        if entry.seq != expected_seq:
            result.problems.append(f"ledger: entry {expected_seq} is missing (next is {entry.seq})")
        expected_seq = entry.seq + 1
        if not hmac.compare_digest(mac_of(key, entry, prev), entry.mac):
            result.problems.append(f"ledger: entry {entry.seq} does not verify")
        prev = entry.mac
        if entry.kind == "received":
            received[entry.invoice_id] = entry.digest
        last_state[entry.invoice_id] = entry.state
    for invoice, document_json, invoice_id in invoices:
        result.invoices += 1
        if invoice is None or document_json is None:
            result.problems.append(f"invoice {invoice_id}: its original or model does not decrypt")
            continue
        if hashlib.sha256(invoice.original).digest() != invoice.sha256:
            result.problems.append(f"invoice {invoice_id}: the original is not its SHA-256")
        sealed = received.get(invoice_id)
        if sealed is None:
            result.problems.append(f"invoice {invoice_id}: no receipt in the ledger")
        elif not hmac.compare_digest(sealed, invoice_digest(invoice, document_json)):
            result.problems.append(f"invoice {invoice_id}: content differs from its sealed receipt")
        if last_state.get(invoice_id) != invoice.state:
            result.problems.append(f"invoice {invoice_id}: state is not the ledger's last")
    return result
