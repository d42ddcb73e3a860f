"""Fixtures shared by unit and interop tests: the index database on each back end, and the
test process's logging kept its own."""

from __future__ import annotations

import logging
import warnings
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


def _pytests(handler: logging.Handler) -> bool:
    return type(handler).__module__.startswith("_pytest")


@pytest.fixture(autouse=True)
def _test_process_logging() -> Iterator[None]:
    """Give the test process its logging back after each test.

    A command run in-process (``main([...])``) sets up logging for a whole
    process: its handler writes to ``sys.stderr`` as captured for that test.
    Left on the root logger, the next test's server threads would log into a
    closed capture ("--- Logging error ---" in the CI log).
    """
    root = logging.getLogger()
    before = [handler for handler in root.handlers if not _pytests(handler)]
    level, showwarning = root.level, warnings.showwarning
    yield
    for handler in root.handlers[:]:
        if not _pytests(handler) and handler not in before:
            root.removeHandler(handler)
            handler.close()
    for handler in before:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    warnings.showwarning = showwarning
