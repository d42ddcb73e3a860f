"""``dimsefsm stgcmtscu``'s arguments: what it refuses before it associates, and its table row."""

from __future__ import annotations

from pathlib import Path

import pytest

from dimsefsm.cli.main import COMMANDS, main


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["stgcmtscu", "127.0.0.1", "104", str(tmp_path / "gone.dcm")])
    assert code == 2
    assert "gone.dcm: no such file" in capsys.readouterr().err


def test_a_file_that_is_not_dicom_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert main(["stgcmtscu", "127.0.0.1", "104", str(text)]) == 2
    assert "notes.txt: not a DICOM file" in capsys.readouterr().err


def test_port_flag_is_the_listening_port_not_the_peers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["stgcmtscu", "127.0.0.1", "104", "a.dcm", "--port", "70000"])
    assert exited.value.code == 2
    assert "port 70000 is out of range" in capsys.readouterr().err


def test_listed_in_the_sub_command_table() -> None:
    assert COMMANDS["stgcmtscu"].module == "stgcmt"
