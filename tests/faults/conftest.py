"""Fixtures of the fault tests: a private PostgreSQL cluster (never the shared
server: these tests restart it) with Kaga onboarded, and the service running
on it the production way; shared by the fault tests, stopped and removed at
the end."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.faults.cluster import Cluster, Service, Town, prepare_town, start_cluster, start_service


@pytest.fixture(scope="session")
def fault_root() -> Iterator[Path]:
    # Not under pytest's basetemp: a concurrent pytest session of the same
    # user prunes old numbered directories there, the running cluster's
    # included. A short path also keeps the Unix socket under its length limit.
    root = Path(tempfile.mkdtemp(prefix="sgfaults-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def fault_cluster(fault_root: Path) -> Iterator[Cluster]:
    cluster = start_cluster(fault_root)
    try:
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def town(fault_cluster: Cluster, fault_root: Path) -> Town:
    data_dir = fault_root / "data"
    data_dir.mkdir()
    # A loop of its own: a sync fixture, run before the session loop's tests.
    return asyncio.run(prepare_town(fault_cluster, data_dir))


@pytest.fixture(scope="module")
async def service(town: Town, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    """``shared-gov serve`` on the cluster, with a pool as small as a busy worker's
    share would be (requests queue for connections). One per module: its sealer
    leads while it runs, and some tests need another sealer to lead."""
    env = town.env(SHARED_GOV_POOL_MIN="2", SHARED_GOV_POOL_MAX="4")
    server = start_service(town, tmp_path_factory.mktemp("serve") / "serve.log", env)
    try:
        await server.wait_ready()
        yield server
    finally:
        server.stop()
