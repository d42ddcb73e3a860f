"""Issue 15 item 5: ``dimsefsm echoscu`` imports only what a C-ECHO needs.

The start-up time of a one-shot check is mostly imports (pydicom alone is
~0.11 s); the figure itself is measured in ``benchmarks/startup.py``.  Here the
structure is checked: after a successful echo the process has not loaded
pydicom, the archive's database layer, the terminal library, the services a
C-ECHO does not use, OpenSSL without a TLS flag, nor the standard library
modules only other paths need (``pathlib``, ``datetime``, ``shutil``), and the
process entry point froze its start-up objects for the garbage collector.
"""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import dimsefsm
from dimsefsm import evt
from dimsefsm.ae import AE
from dimsefsm.cli.common import EXIT_FAILED_STATUS, EXIT_OK
from dimsefsm.cli.main import main
from dimsefsm.sop_class import VERIFICATION
from dimsefsm.transport.server import AssociationServer

LOCALHOST = "127.0.0.1"

# Runs the sub-command as ``python -m dimsefsm echoscu`` does, then reports its
# exit code and every module the process holds.
ECHO_THEN_MODULES = """\
import gc, json, sys
from dimsefsm.cli.main import main
code = main(sys.argv[1:], as_process=True)
print(json.dumps({"code": code, "modules": sorted(sys.modules), "frozen": gc.get_freeze_count(),
                  "collecting": gc.isenabled()}))
"""

NOT_FOR_AN_ECHO = (
    "pydicom",
    "sqlalchemy",
    "rich",
    "dimsefsm.datasets",
    "dimsefsm.fast_encode",
    "dimsefsm.services.find",
    "dimsefsm.services.get",
    "dimsefsm.services.move",
    "dimsefsm.services.retrieve",
    "dimsefsm.services.identifier",
    "dimsefsm.services.multi_response",
    "dimsefsm.transport.file_sink",
    "dimsefsm.transport.sub_association",
    "dimsefsm.qr.models",
    "dimsefsm.archive",
    "dimsefsm.instances",
    "dimsefsm.identity",  # user identity: only with -u
    "dimsefsm.part10",  # files: only storage reads them
    "dimsefsm.transport.server",  # a client opens no server
    "ssl",  # OpenSSL: only with a TLS flag
    "pathlib",  # only storage and the archive handle paths
    "datetime",  # event timestamps: only when an event is made
    "shutil",  # argparse's terminal size, read without it (cli.common.terminal_columns)
    "importlib.metadata",  # the version is a constant, not looked up
    "pkg_resources",
)


def echo_server(status: int) -> Iterator[AssociationServer]:
    ae = AE("STARTUP-SCP")
    ae.add_supported_context(VERIFICATION)
    handlers = [(evt.EVT_C_ECHO, lambda event: status)]
    server = ae.start_server((LOCALHOST, 0), block=False, evt_handlers=handlers)
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def answering_success() -> Iterator[AssociationServer]:
    yield from echo_server(0x0000)


@pytest.fixture
def answering_failure() -> Iterator[AssociationServer]:
    yield from echo_server(0x0122)


def run_echoscu(server: AssociationServer) -> tuple[int, list[str], str]:
    """The exit code, the loaded modules and stderr of one echoscu process."""
    report, stderr = echoscu_report(server)
    return report["code"], report["modules"], stderr


def echoscu_report(server: AssociationServer) -> tuple[dict[str, Any], str]:
    """What ``ECHO_THEN_MODULES`` printed, and stderr, for one echoscu process."""
    port = server.address[1]
    result = subprocess.run(
        [sys.executable, "-c", ECHO_THEN_MODULES, "echoscu", LOCALHOST, str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    return report, result.stderr


def test_echoscu_loads_no_pydicom_and_no_unused_service(
    answering_success: AssociationServer,
) -> None:
    code, modules, stderr = run_echoscu(answering_success)
    assert code == EXIT_OK, stderr
    loaded = [
        name
        for name in modules
        if any(name == banned or name.startswith(banned + ".") for banned in NOT_FOR_AN_ECHO)
    ]
    assert loaded == []
    assert "dimsefsm.services.verification" in modules  # the echo did run through its service


def test_the_process_entry_point_freezes_start_up_objects_and_keeps_collecting(
    answering_success: AssociationServer,
) -> None:
    report, stderr = echoscu_report(answering_success)
    assert report["code"] == EXIT_OK, stderr
    assert report["frozen"] > 10_000  # modules, classes, charts: never walked again
    assert report["collecting"] is True  # the sub-command itself runs with the collector on


def test_main_called_as_a_function_leaves_the_collector_alone(
    answering_success: AssociationServer,
) -> None:
    frozen = gc.get_freeze_count()
    root = logging.getLogger()
    handlers, level, showwarning = root.handlers[:], root.level, warnings.showwarning
    try:
        code = main(["echoscu", LOCALHOST, str(answering_success.address[1])])
    finally:  # the command set up logging for a process: give the test process its own back
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
        warnings.showwarning = showwarning
    assert code == EXIT_OK
    assert (gc.get_freeze_count(), gc.isenabled()) == (frozen, True)


def test_the_script_and_python_m_both_enter_through_run() -> None:
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts["dimsefsm"] == "dimsefsm.cli.main:run"
    main_module = Path(dimsefsm.__file__).with_name("__main__.py").read_text(encoding="utf-8")
    assert "sys.exit(run())" in main_module


def test_echoscu_reports_a_failure_status_as_a_number(
    answering_failure: AssociationServer,
) -> None:
    code, modules, stderr = run_echoscu(answering_failure)
    assert code == EXIT_FAILED_STATUS
    assert stderr.strip().splitlines()[-1] == "echoscu: C-ECHO failed with status 0x0122"
    assert "pydicom" not in modules


def test_echo_and_wait_gives_the_status_number_and_send_c_echo_a_dataset(
    answering_failure: AssociationServer,
) -> None:
    ae = AE("STARTUP-SCU")
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate(LOCALHOST, answering_failure.address[1])
    assert assoc.is_established
    try:
        echo = assoc.echo_and_wait()
        assert (echo.state, echo.status) == ("Failed", 0x0122)
        status = assoc.send_c_echo()  # pynetdicom's API: a status Dataset
        assert type(status).__name__ == "Dataset"
        assert status.Status == 0x0122
    finally:
        assoc.release()
