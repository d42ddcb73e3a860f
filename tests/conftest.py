"""Fixtures shared by unit and interop tests: the index database on each back end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dimsefsm.qr.db.schema import default_url
from tests.pg import PostgresCluster

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the whole run, started the first time it is asked."""
    cluster = PostgresCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty index database: SQLite's default file for ``tmp_path / "store"``, or a fresh
    schema of the PostgreSQL cluster (the cluster starts only when a test asks for it)."""
    if request.param == "sqlite":
        return default_url(tmp_path / "store")
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.fresh_url()
