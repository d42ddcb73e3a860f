"""Fixtures shared by unit and interop tests: the index database on each back end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import BACKENDS, PostgresCluster, index_url


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
    """An empty index database for ``tmp_path / "store"``, on SQLite and on PostgreSQL."""
    return index_url(request.param, tmp_path / "store", request)
