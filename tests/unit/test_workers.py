"""Servers sharing one listening socket, as ``qrscp --workers`` processes do (issue 13.4).

Every worker waits for the shared socket to become readable and all of them
wake for one connection; the one that loses the race must go back to waiting,
not block in ``accept()`` (where shutdown could not reach it) nor log a failure.
Two servers of one process stand in for two worker processes here: the socket
is the same kind of object either way.  The processes themselves (fork,
supervision, SIGTERM) are tested over real sockets in
tests/interop/test_qrscp_workers.py.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

import pytest

from dimsefsm import AE
from dimsefsm.cli.main import main
from dimsefsm.sop_class import VERIFICATION
from dimsefsm.transport.workers import Supervisor, default_workers


def test_two_servers_on_one_listening_socket_answer_every_association(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    host, port = listener.getsockname()[:2]
    address = (host, port)
    ae = AE("SCP")
    ae.add_supported_context(VERIFICATION)
    servers = [ae.start_server(address, block=False, listener=listener) for _ in range(2)]
    client = AE("SCU")
    client.add_requested_context(VERIFICATION)
    try:
        with caplog.at_level(logging.WARNING, logger="dimsefsm.server"):
            for _ in range(30):
                with client.associate(host, port, ae_title="SCP") as assoc:
                    assert assoc.send_c_echo().Status == 0
        assert "accept failed" not in caplog.text
    finally:
        for server in servers:
            server.shutdown()  # returns: no accept thread is stuck in accept()
    assert listener.fileno() != -1  # still the caller's to close
    listener.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("dimsefsm-")]


class Contested(socket.socket):
    """A listening socket whose first connection another worker takes between the wake-up
    and our ``accept()`` (which then finds nothing: the kernel's EAGAIN)."""

    taken = 0

    def accept(self) -> tuple[socket.socket, object]:
        if not self.taken:
            self.taken += 1
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return super().accept()


def test_a_connection_another_worker_took_is_not_an_accept_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listener = Contested(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    host, port = listener.getsockname()[:2]
    ae = AE("SCP")
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server((host, port), block=False, listener=listener)
    client = AE("SCU")
    client.add_requested_context(VERIFICATION)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="dimsefsm.server"),
            client.associate(host, port, ae_title="SCP") as assoc,
        ):
            assert assoc.send_c_echo().Status == 0
        assert listener.taken == 1 and "accept failed" not in caplog.text
    finally:
        server.shutdown()
        listener.close()


def test_a_supervisor_needs_a_worker() -> None:
    with socket.socket() as listener, pytest.raises(ValueError, match="at least one worker"):
        Supervisor(listener, 0, lambda shared: lambda: None)
    assert default_workers() >= 1


def test_workers_come_from_the_file_and_the_flag_overrides_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "qrscp.toml"
    config.write_text("workers = 3\n")
    assert main(["qrscp", "--config", str(config), "--check"]) == 0
    assert "\nworkers = 3\n" in capsys.readouterr().out
    assert main(["qrscp", "--config", str(config), "--check", "--workers", "1"]) == 0
    assert "\nworkers = 1\n" in capsys.readouterr().out
    assert main(["qrscp", "--check"]) == 0
    assert "# workers: not set" in capsys.readouterr().out  # one per core
    config.write_text("workers = 0\n")
    assert main(["qrscp", "--config", str(config), "--check"]) == 2
    assert "workers" in capsys.readouterr().err
