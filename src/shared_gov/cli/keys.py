"""``shared-gov keys …``: towns' encryption keys, status and rotation (``shared_gov.keys``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shared_gov.console import _progress, _run, err, out
from shared_gov.crypto.keyring import REENCRYPT_GRACE_SECONDS

keys_app = typer.Typer(help="Towns' encryption keys: status and rotation.", no_args_is_help=True)


@keys_app.command("status")
def keys_status(
    tenant: Annotated[str | None, typer.Option(help="one town (default: all)")] = None,
) -> None:
    """Key versions per town and column, with the rows on each version."""
    from shared_gov.keys.rotation import status

    rows = _run(lambda db: status(db, tenant))
    table = Table("town", "kind", "name", "version", "state", "kek", "bits", "rows")
    for r in rows:
        table.add_row(
            r.tenant,
            r.kind,
            r.name,
            str(r.version),
            r.state,
            str(r.kek_version),
            "" if r.bits is None else str(r.bits),
            "" if r.rows is None else str(r.rows),
        )
    out.print(table)


@keys_app.command("rotate-kek")
def keys_rotate_kek(tenant: Annotated[str, typer.Option(help="town code")]) -> None:
    """New key-encryption key for a town: re-wraps its data keys only."""
    from shared_gov.keys.rotation import rotate_kek

    version, count = _run(lambda db: rotate_kek(db, tenant))
    out.print(f"{tenant}: KEK v{version}; {count} data keys re-wrapped; older KEKs retired")


@keys_app.command("rotate-dek")
def keys_rotate_dek(
    tenant: Annotated[str, typer.Option(help="town code")],
    column: Annotated[str, typer.Option(help="e.g. family_name or resident_history.snapshot")],
    batch: Annotated[int, typer.Option(help="rows per transaction")] = 500,
) -> None:
    """New data key for one column; re-encrypts its rows in resumable batches."""
    from shared_gov.keys.rotation import rotate_dek

    with _progress(f"[bold]re-encrypt {column}") as progress:
        task = progress.add_task("rows", total=None)

        def on_progress(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = _run(
            lambda db: rotate_dek(db, tenant, column, batch=batch, on_progress=on_progress)
        )
    out.print(
        f"{tenant} {column}: v{result.version} is the write key; "
        f"{result.reencrypted} rows re-encrypted, {result.verified} decrypted to check"
        + ("; old version retired" if result.retired else "")
    )
    if result.changed:
        # Another run of the same rotation, or tampering (then also listed below).
        err.print(
            f"[yellow]{len(result.changed)} rows were changed by another writer between "
            "this run's read and its write[/yellow] (not counted above). Row ids:"
        )
        for rid in result.changed:
            err.print(f"  {rid}")
    if result.corrupt:
        err.print(
            f"[red]{len(result.corrupt)} rows on the old version did not decrypt[/red] "
            "(tampered or misplaced); the old key is kept until they are dealt with. Row ids:"
        )
        for rid in result.corrupt:
            err.print(f"  {rid}")
    if result.unreadable:
        err.print(
            f"[red]{len(result.unreadable)} rows on the new version do not decrypt[/red] "
            "(written by something other than this rotation: tampering, see "
            "docs/encryption.md); the old key is kept until they are dealt with. Row ids:"
        )
        for rid in result.unreadable:
            err.print(f"  {rid}")
    if result.corrupt or result.unreadable:
        raise typer.Exit(1)


@keys_app.command("rotate-index")
def keys_rotate_index(
    tenant: Annotated[str, typer.Option(help="town code")],
    index: Annotated[
        str, typer.Option(help="individual_number, kana_birth, phone or juminhyo_code")
    ],
    bits: Annotated[
        int | None,
        typer.Option(help="index width (default: re-planned from the town's population)"),
    ] = None,
    batch: Annotated[int, typer.Option(help="rows per transaction", min=1)] = 500,
    grace: Annotated[
        float,
        typer.Option(
            help="seconds workers get to hear of a key change before the next step "
            "(less than the default only when every worker's listener is known to be up)"
        ),
    ] = REENCRYPT_GRACE_SECONDS,
) -> None:
    """New blind-index key; fills the second column in resumable batches, then switches.

    Interrupted, run it again: it continues the same rotation (or finishes its
    clean-up) instead of starting another.
    """
    from shared_gov.keys.index_rotation import rotate_index

    with _progress("[bold]{task.description}") as progress:
        task = progress.add_task(f"index {index}", total=None)

        def on_progress(phase: str, done: int, total: int) -> None:
            progress.update(task, description=f"{phase} {index}", completed=done, total=total)

        result = _run(
            lambda db: rotate_index(
                db,
                tenant,
                index,
                bits=bits,
                batch=batch,
                grace_seconds=grace,
                on_progress=on_progress,
            )
        )
    if result.cleanup_only:
        out.print(
            f"{tenant} {index}: finished the clean-up of the rotation to v{result.version} "
            f"({result.cleared} old values erased); run again to rotate"
        )
        return
    out.print(
        f"{tenant} {index}: v{result.version} ({result.bits} bits); "
        f"{result.filled} rows indexed with it"
        + (
            f"; old version retired and erased, {result.cleared} old values cleared"
            if result.retired
            else ""
        )
    )
    if result.unreadable:
        err.print(
            f"[red]{len(result.unreadable)} rows did not decrypt[/red] (tampered or misplaced); "
            "the old index key is kept until they are dealt with. Row ids:"
        )
        for rid in result.unreadable:
            err.print(f"  {rid}")
        raise typer.Exit(1)
