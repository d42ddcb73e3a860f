"""The fixtures themselves: a real dcmtk client against servers they start."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.interop.peers import (
    DcmtkServer,
    LineReadyServer,
    PynetdicomEchoServer,
    ServerStartError,
    dcmqrscp_config,
    dcmtk_env,
    free_port,
    listening_socket_inodes,
    run_tool,
    wait_until,
)

pytestmark = pytest.mark.interop


def echoscu(port: int, *options: str) -> tuple[int, str]:
    result = run_tool(["echoscu", "-v", *options, "127.0.0.1", str(port)])
    return result.returncode, result.stdout + result.stderr


def test_dcmtk_env_sets_tcp_nodelay() -> None:
    env = dcmtk_env({"EXTRA": "x"})
    assert env["TCP_NODELAY"] == "1"
    assert env["EXTRA"] == "x"
    assert env["PATH"] == os.environ["PATH"]


def test_echoscu_succeeds_against_storescp(
    dcmtk_server: Callable[..., DcmtkServer], tmp_path: Path
) -> None:
    server = dcmtk_server(["storescp", "-v", "-od", str(tmp_path)])
    code, log = echoscu(server.port)
    assert code == 0, log
    assert "Received Echo Response (Success)" in log


def test_echoscu_fails_against_a_closed_port() -> None:
    port = free_port()
    assert not listening_socket_inodes(port)
    code, log = echoscu(port)
    assert code != 0
    assert "Connection refused" in log


def test_echoscu_succeeds_against_forking_dcmqrscp(
    dcmtk_server: Callable[..., DcmtkServer], tmp_path: Path
) -> None:
    port = free_port()
    config = dcmqrscp_config(tmp_path, port, ["COMMON"], {"STORE1": ("127.0.0.1", free_port())})
    server = dcmtk_server(["dcmqrscp", "-c", str(config)], port)
    code, log = echoscu(server.port, "-aec", "COMMON")
    assert code == 0, log
    assert (tmp_path / "COMMON").is_dir()
    assert "peer0 = (STORE1, 127.0.0.1," in config.read_text()


def test_echoscu_succeeds_against_pynetdicom_ready_line(
    pynetdicom_echo_server: Callable[..., PynetdicomEchoServer],
) -> None:
    server = pynetdicom_echo_server()
    assert f"listening on 127.0.0.1:{server.port}" in server.output()
    code, log = echoscu(server.port)
    assert code == 0, log


def test_stop_leaves_no_process_and_frees_the_port(tmp_path: Path) -> None:
    port = free_port()
    with DcmtkServer(["storescp", "-od", str(tmp_path)], port) as server:
        pid = server.pid
        assert listening_socket_inodes(port)
    assert server.returncode is not None
    assert not Path(f"/proc/{pid}").exists()
    assert not listening_socket_inodes(port)


def test_a_server_that_exits_at_once_raises_with_its_output() -> None:
    server = DcmtkServer(["storescp", "--no-such-option"], free_port())
    with pytest.raises(ServerStartError, match="exited before it was ready") as info:
        server.start()
    assert "no-such-option" in str(info.value)
    assert server.returncode is not None


_LOG_THEN_ANSWER = """\
import signal, sys
from pathlib import Path
print("fake: listening on 127.0.0.1:0", flush=True)
print("logged before the answer", file=sys.stderr, flush=True)
Path(sys.argv[1]).touch()  # the answer a client would see
signal.pause()
"""


def test_output_holds_what_the_server_wrote_before_its_answer(tmp_path: Path) -> None:
    """A line in the pipe but not yet collected by the reader thread is still in output():
    the reader is held back (its lock taken) until the answer is seen, as a busy machine
    can hold it back; output() then collects the pipe before it answers."""
    answer = tmp_path / "answer"
    command = [sys.executable, "-c", _LOG_THEN_ANSWER, str(answer)]
    # While the test holds the reader's lock, the reader thread cannot collect.
    with LineReadyServer(command) as server, server._changed:
        wait_until(answer.exists, "the server answers")
        assert "logged before the answer\n" in server.output()
