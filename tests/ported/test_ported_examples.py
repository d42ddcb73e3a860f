"""pynetdicom's documented examples, ported by their imports (tests/ported/examples.py), run.

Each SCU example talks to an SCP example (or to dcmtk, by absolute path) over
127.0.0.1; what it prints and what arrives on disk are checked.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.data.make import make_instance, write_instance
from tests.interop.peers import dcmtk_env, free_port
from tests.ported import examples

PATIENT_ID = "PID-PORTED"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The examples save received instances in the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Two CT instances of one patient and one of another, as the Q/R examples' directory."""
    fdir = tmp_path / "archive"
    fdir.mkdir()
    for n, (pid, name) in enumerate(
        [(PATIENT_ID, "CITIZEN^Jan"), (PATIENT_ID, "CITIZEN^Jan"), ("OTHER", "OTHER^Pat")]
    ):
        write_instance(fdir / f"{n}.dcm", make_instance(PatientID=pid, PatientName=name))
    return fdir


def test_echo_scu_and_scp_examples(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    server = examples.echo_scp(port)
    try:
        examples.echo_scu(port)
    finally:
        server.shutdown()
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Received C-ECHO service request from (127.0.0.1, ")
    assert int(out[0].split(", ")[1].rstrip(")").split(")")[0]) > 0  # the requestor's port
    assert out[1] == "C-ECHO request status: 0x0000"


def test_store_scu_example_to_store_scp_example(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = make_instance()
    path = write_instance(in_tmp / "sent.dcm", sent)
    port = free_port()
    server = examples.store_scp(port)
    try:
        examples.store_scu(port, str(path))
    finally:
        server.shutdown()
    assert capsys.readouterr().out.splitlines() == ["C-STORE request status: 0x0000"]
    received = dcmread(in_tmp / sent.SOPInstanceUID)
    assert received.SOPInstanceUID == sent.SOPInstanceUID
    assert received.file_meta.MediaStorageSOPClassUID == sent.SOPClassUID
    assert received.PixelData == sent.PixelData


@pytest.mark.interop
def test_store_scp_example_receives_from_dcmtk_storescu(in_tmp: Path) -> None:
    sent = make_instance()
    path = write_instance(in_tmp / "sent.dcm", sent)
    port = free_port()
    server = examples.store_scp(port)
    try:
        result = subprocess.run(
            ["/usr/bin/storescu", "-aec", "ANY-SCP", "127.0.0.1", str(port), str(path)],
            env=dcmtk_env(),
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    received = dcmread(in_tmp / sent.SOPInstanceUID)
    assert received.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
    assert received.PixelData == sent.PixelData


def test_find_scu_example_to_find_scp_example(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    server = examples.find_scp(port, str(archive))
    try:
        examples.find_scu(port)
    finally:
        server.shutdown()
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["C-FIND query status: 0xFF00"] * 2 + ["C-FIND query status: 0x0000"]


@pytest.mark.interop
def test_find_scp_example_answers_dcmtk_findscu(archive: Path) -> None:
    port = free_port()
    server = examples.find_scp(port, str(archive))
    try:
        result = subprocess.run(
            [
                "/usr/bin/findscu",
                "-v",
                "-P",
                "-k",
                "QueryRetrieveLevel=PATIENT",
                "-k",
                "PatientName=OTHER^Pat",
                "127.0.0.1",
                str(port),
            ],
            env=dcmtk_env(),
            capture_output=True,
            timeout=60,
            check=False,
            text=True,
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert log.count("Find Response: 1 (Pending)") == 1
    assert "OTHER^Pat" in log


def test_get_scu_example_to_get_scp_example(
    archive: Path, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    server = examples.get_scp(port, str(archive))
    try:
        examples.get_scu(port, PATIENT_ID)
    finally:
        server.shutdown()
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["C-GET query status: 0xff00"] * 2 + ["C-GET query status: 0x0000"]
    expected = {
        dcmread(p).SOPInstanceUID for p in archive.iterdir() if dcmread(p).PatientID == PATIENT_ID
    }
    received = {p.name for p in in_tmp.iterdir() if p.is_file()}
    assert received == expected


def test_move_scu_example_via_move_scp_example_to_store_scp_example(
    archive: Path, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_port, move_port = free_port(), free_port()
    store_server = examples.store_scp(store_port)
    move_server = examples.move_scp(
        move_port, str(archive), {"STORE_SCP": ("127.0.0.1", store_port)}
    )
    try:
        examples.move_scu(move_port, PATIENT_ID, "STORE_SCP")
        examples.move_scu(move_port, PATIENT_ID, "UNKNOWN")
    finally:
        move_server.shutdown()
        store_server.shutdown()
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "C-MOVE query status: 0xff00",  # one Pending per instance sent
        "C-MOVE query status: 0xff00",
        "C-MOVE query status: 0x0000",
        "C-MOVE query status: 0xa801",  # the second request: move destination unknown
    ]
    expected = {
        dcmread(p).SOPInstanceUID for p in archive.iterdir() if dcmread(p).PatientID == PATIENT_ID
    }
    assert {p.name for p in in_tmp.iterdir() if p.is_file()} == expected
