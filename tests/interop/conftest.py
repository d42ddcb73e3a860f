"""Fixtures for tests that talk to real peers: every server is stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.interop.peers import (
    DcmtkServer,
    DimsefsmServer,
    OrthancServer,
    PynetdicomEchoServer,
    ServerProcess,
    free_port,
    qrscp_index,
)
from tests.pg import BACKENDS, PostgresCluster

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything in this folder is an interop test, even if its module forgets the mark."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.interop)


def _fresh_urls(request: pytest.FixtureRequest) -> Callable[[], str] | None:
    """None on SQLite (qrscp's default file); on PostgreSQL, new databases of the session's
    cluster (started when first asked)."""
    if request.param == "sqlite":
        return None
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.fresh_url


@pytest.fixture(params=BACKENDS)
def qrscp_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every qrscp the test starts keeps its index on SQLite, then (a second run) on
    PostgreSQL, one fresh database per storage directory: the test's body is the same."""
    with qrscp_index(_fresh_urls(request)):
        yield request.param


@pytest.fixture(scope="module", params=BACKENDS)
def module_qrscp_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """``qrscp_backend`` for a qrscp that a module-scoped fixture starts."""
    with qrscp_index(_fresh_urls(request)):
        yield request.param


@pytest.fixture
def _servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in reversed(started):
        server.stop()


@pytest.fixture
def dcmtk_server(_servers: list[ServerProcess]) -> Callable[..., DcmtkServer]:
    """``dcmtk_server(["storescp", "-od", dir])`` starts it on a free port, ready."""

    def start(args: Sequence[str], port: int | None = None) -> DcmtkServer:
        server = DcmtkServer(args, free_port() if port is None else port)
        _servers.append(server)
        server.start()
        return server

    return start


@pytest.fixture
def dimsefsm_server(_servers: list[ServerProcess]) -> Callable[..., DimsefsmServer]:
    """``dimsefsm_server("echoscp", "-aet", "X")``: our CLI on a free port, ready.

    The port is inserted right after the sub-command, as every server sub-command
    takes it as its first positional argument.
    """

    def start(command: str, *options: str, port: int | None = None) -> DimsefsmServer:
        chosen = free_port() if port is None else port
        server = DimsefsmServer([command, str(chosen), *options])
        _servers.append(server)
        server.start()
        return server

    return start


@pytest.fixture
def pynetdicom_echo_server(
    _servers: list[ServerProcess],
) -> Callable[..., PynetdicomEchoServer]:
    """pynetdicom answering C-ECHO on a free port, ready: the second independent peer."""

    def start(ae_title: str = "ANY-SCP", port: int | None = None) -> PynetdicomEchoServer:
        server = PynetdicomEchoServer(free_port() if port is None else port, ae_title)
        _servers.append(server)
        server.start()
        return server

    return start


@pytest.fixture
def orthanc_server(_servers: list[ServerProcess], tmp_path: Path) -> Callable[..., OrthancServer]:
    """``orthanc_server(modalities={"QR": ("QRSCP", "127.0.0.1", port)})``: Orthanc, ready.

    Each call gets its own config, storage and index under the test's tmp_path;
    ``dicom_port`` / ``http_port`` may be chosen ahead (e.g. for a C-MOVE
    destination given to our server first).
    """

    def start(
        modalities: dict[str, tuple[str, str, int]] | None = None,
        *,
        aet: str = "ORTHANC",
        dicom_port: int | None = None,
        http_port: int | None = None,
    ) -> OrthancServer:
        server = OrthancServer(
            tmp_path / f"orthanc-{len(_servers)}",
            aet=aet,
            dicom_port=dicom_port,
            http_port=http_port,
            modalities=modalities,
        )
        _servers.append(server)
        server.start()
        return server

    return start
