"""C-ECHO against real peers on 127.0.0.1: dcmtk both ways, pynetdicom as a second peer."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from pathlib import Path

from tests.interop.peers import DcmtkServer, DimsefsmServer, PynetdicomEchoServer, run_tool

DIMSEFSM = [sys.executable, "-m", "dimsefsm"]


def test_dcmtk_echoscu_against_dimsefsm_echoscp(
    dimsefsm_server: Callable[..., DimsefsmServer],
) -> None:
    server = dimsefsm_server("echoscp", "-aet", "DIMSEFSM", "-v")
    result = run_tool(["echoscu", "-v", "-aec", "DIMSEFSM", "127.0.0.1", str(server.port)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Received Echo Response (Success)" in result.stdout + result.stderr
    repeat = run_tool(
        ["echoscu", "--repeat", "50", "-aec", "DIMSEFSM", "127.0.0.1", str(server.port)]
    )
    assert repeat.returncode == 0, repeat.stderr


def test_dcmtk_echoscu_with_wrong_called_ae_is_rejected(
    dimsefsm_server: Callable[..., DimsefsmServer],
) -> None:
    server = dimsefsm_server("echoscp", "-aet", "DIMSEFSM")
    result = run_tool(["echoscu", "-aec", "SOMEONE", "127.0.0.1", str(server.port)])
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "Association Rejected" in out and "Called AE Title Not Recognized" in out


def test_dimsefsm_echoscu_against_dcmtk_storescp(
    dcmtk_server: Callable[..., DcmtkServer], tmp_path: Path
) -> None:
    server = dcmtk_server(["storescp", "-od", str(tmp_path)])
    result = run_tool(
        [
            *DIMSEFSM,
            "echoscu",
            "127.0.0.1",
            str(server.port),
            "--repeat",
            "20",
            "-v",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "C-ECHO succeeded" in result.stderr


def test_debug_flag_prints_the_transcript_against_dcmtk(
    dcmtk_server: Callable[..., DcmtkServer], tmp_path: Path
) -> None:
    """``-d``: every chart transition, PDU and DIMSE message of the association, in order."""
    server = dcmtk_server(["storescp", "-od", str(tmp_path)])
    result = run_tool([*DIMSEFSM, "echoscu", "-d", "127.0.0.1", str(server.port)])
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "dimsefsm.trace" in line]
    wanted = [
        "PDU out A-ASSOCIATE-RQ 'ECHOSCU' -> 'ANY-SCP'",
        "PDU in A-ASSOCIATE-AC 1 of 1 contexts accepted",
        "upper-layer Evt3 / AE-3: Sta5 -> Sta6",
        "DIMSE out C-ECHO-RQ MessageID=1",
        "DIMSE in C-ECHO-RSP MessageIDBeingRespondedTo=1 Status=0x0000",
        "c-echo-scu success: Awaiting -> Succeeded",
        "PDU in A-RELEASE-RP",
    ]
    found = [next((i for i, line in enumerate(lines) if w in line), -1) for w in wanted]
    assert -1 not in found and found == sorted(found), result.stderr


def test_dimsefsm_echoscu_against_pynetdicom(
    pynetdicom_echo_server: Callable[..., PynetdicomEchoServer],
) -> None:
    server = pynetdicom_echo_server()
    result = run_tool([*DIMSEFSM, "echoscu", "127.0.0.1", str(server.port)])
    assert result.returncode == 0, result.stderr


def test_dimsefsm_echoscu_rejected_exit_code(
    dimsefsm_server: Callable[..., DimsefsmServer],
) -> None:
    server = dimsefsm_server("echoscp", "-aet", "DIMSEFSM")
    result = run_tool([*DIMSEFSM, "echoscu", "127.0.0.1", str(server.port), "-aec", "WRONG"])
    assert result.returncode == 3
    assert (
        "echoscu: association rejected (permanent) by the service user: "
        "called AE title 'WRONG' not recognised"
    ) in result.stderr


def test_dimsefsm_echoscu_unreachable_exit_code() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run_tool([*DIMSEFSM, "echoscu", "127.0.0.1", str(port)])
    assert result.returncode == 4
    assert "cannot connect" in result.stderr


def test_dimsefsm_echoscu_acse_timeout_exit_code() -> None:
    """A peer that accepts TCP but never answers the A-ASSOCIATE-RQ."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        result = run_tool([*DIMSEFSM, "echoscu", "127.0.0.1", str(port), "-ta", "0.5"])
    assert result.returncode == 5
    assert "no association response within 0.5 s" in result.stderr
