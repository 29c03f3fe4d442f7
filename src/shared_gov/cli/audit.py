"""``shared-gov audit``: seal the audit log, save a checkpoint, re-verify everything.

- ``seal``: one sealing pass now (everything sealable), or ``--loop`` to run
  like a service worker (competes for the sealer lease; Ctrl-C stops).
- ``checkpoint --tenant CODE``: print the town's latest signed checkpoint as
  JSON, to keep somewhere the platform cannot rewrite.
- ``verify --tenant CODE [--trusted-checkpoint FILE] [--incarnation N]``:
  recompute every leaf from the events, rebuild the tree, check every
  signature and root, and that the log extends the saved checkpoint; for
  every incarnation of the town code (each a log of its own), or only N.
  Exit status 1 on any problem, with the first bad position.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from shared_gov import console as common
from shared_gov.audit import tlog
from shared_gov.audit.sealer import Sealer
from shared_gov.audit.verify import VerifyReport, incarnation_keys, live_mac_key, verify_town
from shared_gov.crypto.keyring import keyring_of
from shared_gov.crypto.providers import KeyNotFound, validate_tenant
from shared_gov.db import Database

audit_app = typer.Typer(
    help="Tamper-evident audit log: seal, checkpoints, verification.", no_args_is_help=True
)

Tenant = Annotated[str, typer.Option(help="town code, e.g. 172065")]
Incarnation = Annotated[
    int | None,
    typer.Option(
        min=1, help="which town of this code (re-onboarding starts a new log); default: all"
    ),
]
# Decoding and hashing events is most of `verify`; worker processes overlap
# it with the tree rebuild here (measured: 55,000 -> 77,000 events/s over 10^6
# events with 2 workers on 2 cores; 4 on 2 cores is slower).
DEFAULT_WORKERS = min(4, os.cpu_count() or 1) if (os.cpu_count() or 1) > 1 else 0
T = TypeVar("T")


# the helpers every command group shares live in shared_gov.console.
def _run(work: Callable[[Database], Awaitable[T]]) -> T:
    return common._run(work)


def _consoles() -> tuple[Console, Console]:
    return common.out, common.err


def _tenant(code: str) -> str:
    try:
        return validate_tenant(code)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@audit_app.command("seal")
def seal(
    loop: Annotated[
        bool, typer.Option("--loop", help="keep sealing (as the leader) until interrupted")
    ] = False,
    interval: Annotated[float, typer.Option(help="seconds between passes")] = 1.0,
    batch: Annotated[int, typer.Option(help="events per transaction")] = 5000,
) -> None:
    """Seal committed events into each town's tree and sign checkpoints."""
    out, err = _consoles()
    if batch < 1 or interval <= 0:
        raise typer.BadParameter("--batch must be >= 1 and --interval > 0")
    if loop:

        async def forever(db: Database) -> None:
            await Sealer(db, interval=interval, batch=batch).run_forever()

        err.print(f"sealing every {interval:.1f} s while holding the sealer lease; Ctrl-C stops")
        try:
            _run(forever)
        except KeyboardInterrupt:
            err.print("stopped")
        return

    started = time.perf_counter()
    result = _run(lambda db: Sealer(db, interval=interval, batch=batch).seal_once())
    seconds = time.perf_counter() - started
    towns = ", ".join(f"{t}→{n}" for t, n in sorted(result.sizes.items())) or "none"
    out.print(
        f"{result.events} events sealed in {seconds:.2f} s; {result.checkpoints} checkpoints; "
        f"tree sizes: {towns}"
    )
    for town in result.unsigned:
        err.print(f"[yellow]warning:[/yellow] town {town} has no signing key: no checkpoint")


@audit_app.command("checkpoint")
def checkpoint(
    tenant: Tenant,
    incarnation: Annotated[
        int | None, typer.Option(min=1, help="an earlier town of this code (default: current)")
    ] = None,
) -> None:
    """Print the town's latest signed checkpoint as JSON (save it: `> file.json`)."""
    _, err = _consoles()
    code = _tenant(tenant)

    async def work(db: Database) -> tlog.Checkpoint | None:
        async with db.catalog() as conn:
            return await tlog.latest_checkpoint(
                conn, code, with_subtrees=True, incarnation=incarnation
            )

    head = _run(work)
    if head is None:
        err.print(f"town {code} has no checkpoint yet (run `shared-gov audit seal`)")
        raise typer.Exit(1)
    sys.stdout.write(json.dumps(head.to_json(), indent=2, ensure_ascii=False) + "\n")


def _load_trusted(path: Path) -> tlog.Checkpoint:
    try:
        return tlog.Checkpoint.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{path}: {exc}") from None


def _print_report(report: VerifyReport, seconds: float) -> None:
    out, err = _consoles()
    rate = report.leaves / seconds if seconds > 0 else 0.0
    out.print(
        f"town {report.tenant} incarnation {report.incarnation}: {report.leaves} leaves, "
        f"{report.nodes} stored nodes, "
        f"{report.checkpoints} checkpoints; signed and matching up to size "
        f"{report.verified_size}; {seconds:.2f} s ({rate:,.0f} events/s)"
    )
    if report.ok:
        out.print("[green]OK[/green]: every leaf, node, root and signature verifies")
        return
    for problem in report.problems:
        where = "" if problem.position is None else f" [position {problem.position}]"
        err.print(f"[red]{problem.kind}[/red]{where}: {problem.detail}")
    listed = {p.kind for p in report.problems}
    for kind, count in sorted(report.counts.items()):
        shown = sum(1 for p in report.problems if p.kind == kind)
        if kind in listed and count > shown:
            err.print(f"  … and {count - shown} more {kind}")
    first = report.first_bad
    if first is not None and first.position is not None:
        span = "" if first.end is None else f" (somewhere in {first.position}..{first.end - 1})"
        err.print(
            f"[red bold]FAILED[/red bold]: first bad position {first.position}{span}: {first.kind}"
        )
    else:
        err.print("[red bold]FAILED[/red bold]: see the problems above")


@audit_app.command("verify")
def verify(
    tenant: Tenant,
    trusted_checkpoint: Annotated[
        Path | None,
        typer.Option(help="a checkpoint saved earlier with `audit checkpoint` (JSON)"),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(help="processes decoding and hashing events in parallel (0: this one)"),
    ] = DEFAULT_WORKERS,
    incarnation: Incarnation = None,
) -> None:
    """Re-verify the town's whole log from its events; exit 1 on any problem.

    Every incarnation of the code is verified (each against its own key), or
    only ``--incarnation``.
    """
    _, err = _consoles()
    code = _tenant(tenant)
    if workers < 0:
        raise typer.BadParameter("--workers must be >= 0")
    trusted = _load_trusted(trusted_checkpoint) if trusted_checkpoint else None

    async def work(db: Database) -> list[VerifyReport]:
        provider = keyring_of(db).provider
        try:
            live_key: bytes | None = await asyncio.to_thread(provider.signing_public_key, code)
        except KeyNotFound:
            live_key = None
        async with db.pool.acquire() as conn:
            keys = await incarnation_keys(conn, code, lambda: live_key)
            # MACs, chains and links: with the live incarnation's audit key.
            mac_keys = await live_mac_key(db, conn, code)
        if incarnation is not None and incarnation not in keys:
            raise typer.BadParameter(f"town {code} has no incarnation {incarnation}")
        for number, key in keys.items():
            if key is None and trusted is not None and trusted.incarnation == number:
                # A shredded key nobody recorded: the saved checkpoint's key
                # is then the only trustworthy one.
                keys[number] = trusted.public_key
            if key is None and (incarnation is None or incarnation == number):
                err.print(
                    f"[yellow]warning:[/yellow] no signing key known for town {code} "
                    f"incarnation {number}"
                )
        with Progress(
            SpinnerColumn(),
            TextColumn("[bold]verify {task.fields[town]}[/bold] {task.completed:,} leaves"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,  # piped: no empty line left behind
        ) as progress:
            task = progress.add_task("verify", total=None, town=code)
            async with db.pool.acquire() as conn:
                return await verify_town(
                    conn,
                    code,
                    keys,
                    incarnation=incarnation,
                    trusted=trusted,
                    progress=lambda n: progress.update(task, completed=n),
                    workers=workers,
                    url=db.url,
                    mac_keys=mac_keys,
                )

    started = time.perf_counter()
    reports = _run(work)
    seconds = time.perf_counter() - started
    for report in reports:
        _print_report(report, seconds / max(1, len(reports)))
    if not all(report.ok for report in reports):
        raise typer.Exit(1)
