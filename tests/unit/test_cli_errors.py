"""The command line's answers to bad input: one line, the README's exit code, no traceback.

Each case runs the real ``dimsefsm`` process (``python -m dimsefsm``), as a user
or a script meets it: what matters is stderr and the exit status.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from dimsefsm.assoc.reasons import abort_text, context_result_text, rejection_text
from dimsefsm.cli.common import (
    EXIT_ABORTED,
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_USAGE,
    LOG_FORMAT,
    setup_logging,
)
from dimsefsm.cli.main import build_parser
from dimsefsm.cli.retrieve import report
from dimsefsm.cli.store import Instance, propose
from dimsefsm.status import Service

DIMSEFSM = [sys.executable, "-m", "dimsefsm"]
SCUS = ["echoscu", "storescu", "findscu", "getscu", "movescu"]
SERVERS = ["echoscp", "storescp", "qrscp"]
CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
BIG = "1.2.840.10008.1.2.2"
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DIMSEFSM, *argv], capture_output=True, text=True, timeout=60, check=False, cwd=cwd
    )


def positionals(command: str) -> list[str]:
    if command in SCUS:
        return ["127.0.0.1", "11112", *(["x.dcm"] if command == "storescu" else [])]
    return ["11112"]


def assert_one_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


# -- 2. no tracebacks ----------------------------------------------------------------------------
@pytest.mark.parametrize("command", SCUS + SERVERS)
def test_an_unknown_flag_shows_the_sub_commands_usage(command: str, tmp_path: Path) -> None:
    result = run(command, *positionals(command), "--no-such-flag", cwd=tmp_path)
    assert_one_error(
        result,
        EXIT_USAGE,
        f"usage: dimsefsm {command}",
        f"dimsefsm {command}: error: unrecognized arguments: --no-such-flag",
    )
    assert "{echoscu," not in result.stderr  # not the top level's usage


@pytest.mark.parametrize("command", SCUS + SERVERS)
@pytest.mark.parametrize("flag", ["-aet", "-aec"])
def test_an_ae_title_over_16_characters_is_refused(command: str, flag: str, tmp_path: Path) -> None:
    if flag == "-aec" and command in SERVERS:
        flag = "-aet"  # a server has only its own title
    result = run(command, *positionals(command), flag, "SEVENTEEN-CHARS-X", cwd=tmp_path)
    assert_one_error(result, EXIT_USAGE, "'SEVENTEEN-CHARS-X' is 17 characters long, at most 16")


@pytest.mark.parametrize("port", ["65536", "-1", "http"])
@pytest.mark.parametrize("command", ["echoscu", "echoscp", "storescp"])
def test_a_port_out_of_range_is_refused(command: str, port: str, tmp_path: Path) -> None:
    before = ["127.0.0.1"] if command == "echoscu" else []
    result = run(command, *before, "--", port, cwd=tmp_path)
    assert_one_error(result, EXIT_USAGE, f"dimsefsm {command}: error: argument port: port")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


@pytest.mark.parametrize("command", ["echoscp", "storescp"])
def test_a_port_in_use_is_one_line(command: str, busy_port: int, tmp_path: Path) -> None:
    extra = ["-od", str(tmp_path)] if command == "storescp" else []
    result = run(command, str(busy_port), "--bind", "127.0.0.1", *extra)
    assert_one_error(
        result,
        EXIT_USAGE,
        f"{command}: cannot listen on 127.0.0.1:{busy_port}: Address already in use",
    )
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_movescu_store_port_in_use_is_one_line(busy_port: int) -> None:
    result = run("movescu", "127.0.0.1", "1", "+P", str(busy_port), "-k", "PatientID=1")
    assert_one_error(result, EXIT_USAGE, f"cannot listen on 0.0.0.0:{busy_port}")


def test_an_unreachable_peer_is_one_line() -> None:
    """The library's log line and the command's line said the same thing: only ours stays."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    result = run("echoscu", "127.0.0.1", str(closed))
    assert_one_error(result, EXIT_ABORTED, "echoscu: association aborted: cannot connect")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_storescu_fails_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.dcm"
    result = run("storescu", "127.0.0.1", "1", str(missing))
    assert_one_error(result, EXIT_USAGE, f"storescu: {missing}: no such file")


def test_storescu_says_a_directory_needs_scan_or_recurse(tmp_path: Path) -> None:
    result = run("storescu", "127.0.0.1", "1", str(tmp_path))
    assert_one_error(
        result, EXIT_USAGE, f"storescu: {tmp_path} is a directory: add +sd", "+r to recurse"
    )


def test_echoscu_imports_neither_sqlalchemy_nor_the_archive() -> None:
    """Start-up: a sub-command loads only its own modules (no index, no database layer)."""
    code = (
        "import sys\n"
        "from dimsefsm.cli.main import main\n"
        "try:\n"
        "    main(['echoscu', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m in ('sqlalchemy', 'dimsefsm.archive.db', 'dimsefsm.archive.config',\n"
        "          'dimsefsm.cli.qrscp', 'dimsefsm.cli.find', 'rich') if m in sys.modules]\n"
        "print(loaded, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr


def test_the_full_parser_still_knows_every_sub_command() -> None:
    parser = build_parser()
    assert parser.parse_args(["echoscu", "h", "104"]).port == 104
    assert parser.parse_args(["qrscp", "--check"]).check


# -- 3. dcmtk habits -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], "uncompr"),
        (["-x="], "uncompr"),
        (["-xe"], "little"),
        (["-xb"], "big"),
        (["-xi"], "implicit"),
        (["-xs"], "lossless"),
    ],
)
def test_storescu_takes_dcmtks_proposal_flags(flags: list[str], expected: str) -> None:
    args = build_parser().parse_args(["storescu", "h", "1", "f.dcm", *flags])
    assert args.propose == expected


def test_storescu_scan_and_recurse_flags() -> None:
    parser = build_parser()
    assert parser.parse_args(["storescu", "h", "1", "d", "+sd"]).scan_directories
    for flag in ("+r", "-r", "--recurse"):
        assert parser.parse_args(["storescu", "h", "1", "d", flag]).recurse


def test_proposals_follow_the_x_flags() -> None:
    explicit = Instance(Path("a"), CT, "1.2.3", EXPLICIT)
    assert propose([explicit], (IMPLICIT,)) == [(CT, (IMPLICIT,)), (CT, (EXPLICIT,))]
    assert propose([explicit], (BIG, EXPLICIT, IMPLICIT)) == [
        (CT, (BIG, EXPLICIT, IMPLICIT)),
        (CT, (EXPLICIT,)),
    ]
    assert propose([explicit], (EXPLICIT, IMPLICIT), (JPEG_LOSSLESS,)) == [
        (CT, (EXPLICIT, IMPLICIT)),
        (CT, (EXPLICIT,)),
        (CT, (JPEG_LOSSLESS,)),
    ]


@pytest.mark.parametrize("flag", ["+P", "--port", "--store-port"])
def test_movescu_store_port_flags(flag: str) -> None:
    args = build_parser().parse_args(["movescu", "h", "1", flag, "11113"])
    assert args.store_port == 11113


@pytest.mark.parametrize(
    ("flags", "level"),
    [
        ([], logging.WARNING),
        (["-q"], logging.ERROR),
        (["-v"], logging.INFO),
        (["-d"], logging.DEBUG),
        (["-ll", "error"], logging.ERROR),
        (["-v", "-ll", "warn"], logging.WARNING),
        (["--log-level", "trace"], logging.DEBUG),
    ],
)
def test_log_levels_as_dcmtk(flags: list[str], level: int) -> None:
    from dimsefsm.cli.common import log_level

    assert log_level(build_parser().parse_args(["echoscu", "h", "1", *flags])) == level


# -- 4. log lines and warnings -------------------------------------------------------------------
@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    showwarning = warnings.showwarning
    yield
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    warnings.showwarning = showwarning


@pytest.mark.usefixtures("restore_logging")
def test_log_file_gets_timestamped_lines_and_pydicoms_warnings(tmp_path: Path) -> None:
    log_file = tmp_path / "echoscu.log"
    args = build_parser().parse_args(["echoscu", "h", "1", "-v", "--log-file", str(log_file)])
    setup_logging(args)
    logging.getLogger("dimsefsm.test").info("hello")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a peer's odd value", UserWarning, stacklevel=1)
    lines = log_file.read_text().splitlines()
    assert len(lines) == 2, lines
    assert LOG_FORMAT.startswith("%(asctime)s")
    assert lines[0][:4].isdigit() and lines[0][4] == "-"  # 2026-...
    assert lines[0].endswith("I: dimsefsm.test: hello")
    assert lines[1].endswith("W: py.warnings: UserWarning: a peer's odd value")


def test_a_log_file_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    result = run("echoscu", "127.0.0.1", "1", "--log-file", str(tmp_path / "no" / "x.log"))
    assert_one_error(result, EXIT_USAGE, "echoscu: --log-file", "No such file or directory")


class _Finished:
    """What ``report`` needs of an association that answered and is gone."""

    is_established = False
    timed_out = False

    def describe_failure(self) -> str:
        return "association released"


def test_failed_uids_are_printed_one_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    final = Dataset()
    final.Status = 0xA702
    final.NumberOfCompletedSuboperations = 0
    final.NumberOfFailedSuboperations = 2
    final.NumberOfWarningSuboperations = 0
    identifier = Dataset()
    identifier.FailedSOPInstanceUIDList = ["1.2.3.1", "1.2.3.2"]
    code = report("getscu", _Finished(), [(final, identifier)], Service.QR_GET)  # type: ignore[arg-type]
    err = capsys.readouterr().err.splitlines()
    assert code == EXIT_FAILED_STATUS
    assert err[:3] == ["getscu: 2 failed SOP instance(s):", "  1.2.3.1", "  1.2.3.2"]


# -- 1. the words ---------------------------------------------------------------------------------
def test_rejections_in_words() -> None:
    assert (
        rejection_text(1, 1, 7, called_ae="WRONG", calling_ae="ME")
        == "rejected (permanent) by the service user: called AE title 'WRONG' not recognised"
    )
    assert (
        rejection_text(1, 1, 3, called_ae="X", calling_ae="ME ")
        == "rejected (permanent) by the service user: calling AE title 'ME' not recognised"
    )
    assert (
        rejection_text(2, 3, 2)
        == "rejected (transient) by the service provider (presentation): local limit exceeded"
    )
    assert rejection_text(2, 2, 1) == (
        "rejected (transient) by the service provider (ACSE): no reason given"
    )


def test_aborts_and_context_results_in_words() -> None:
    assert abort_text(0, 0) == "aborted by the service user"
    assert abort_text(2, 2) == "aborted by the service provider: unexpected PDU"
    assert abort_text(2, 6) == "aborted by the service provider: invalid PDU parameter value"
    assert context_result_text(3) == "abstract syntax not supported"
    assert context_result_text(4) == "none of the transfer syntaxes supported"


def test_exit_ok_is_zero() -> None:
    assert EXIT_OK == 0


# -- 6. the table on a terminal ------------------------------------------------------------------
def test_terminal_table_draws_aligned_rows_and_keeps_peer_text_as_text() -> None:
    import io
    import re

    from dimsefsm.cli.keys import build_identifier, parse_key
    from dimsefsm.cli.output import table_columns
    from dimsefsm.cli.terminal_table import TerminalMatchTable

    keys = [parse_key("PatientName"), parse_key("Modality")]
    out = io.StringIO()
    table = TerminalMatchTable(table_columns(build_identifier(keys), keys), out)
    for name in ("Doe^[bold]Jane", "Roe^Richard"):
        match = Dataset()
        match.PatientName = name
        match.Modality = "CT"
        table.add(match)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    assert lines[0].split() == ["#", "PatientName", "Modality"]
    assert set(lines[1]) == {"─"}
    assert lines[2].split() == ["1", "Doe^[bold]Jane", "CT"]  # markup from a peer stays text
    assert lines[3].split() == ["2", "Roe^Richard", "CT"]
    assert lines[2].index("CT") == lines[3].index("CT") == lines[0].index("Modality")
