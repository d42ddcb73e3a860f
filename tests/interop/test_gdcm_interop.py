"""GDCM's ``gdcmscu`` 3.0 (Debian ``libgdcm-tools``) as SCU against ``dimsefsm qrscp``.

gdcmscu needs a command's last fragment and its data set's first fragment in
separate P-DATA-TF PDUs (as dcmtk, pynetdicom and Orthanc send them): when
both shared one PDU it lost the C-FIND identifiers and waited forever, and a
C-MOVE to itself stored 0 of 10 instances.

Two facts about gdcmscu 3.0.21 shape these tests:

* it aborts (SIGABRT, "ProtocolStream as nullptr is invalid") right after a
  successful A-RELEASE, against every peer (dcmtk's storescp and dcmqrscp
  too), so its exit status says nothing; what it received is read from its
  ``-D`` transcript and from what it wrote, and our server's log must show a
  released association;
* it prints C-FIND results only after the association ends, i.e. never; the
  transcript still shows every response it decoded.  Its ``--get`` is a stub
  that returns 1 without connecting, so C-GET is not tested with it.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.data.make import make_study, write_study
from tests.interop.peers import LOCALHOST, DimsefsmServer, free_port, run_tool, wait_until

GDCMSCU = "/usr/bin/gdcmscu"
QR_AET = "QRSCP"
GDCM_AET = "GDCMSCU"
GDCM_ABORT_AFTER_RELEASE = "ProtocolStream as nullptr is invalid"
PENDING = re.compile(r"\(0000,0900\) \?\? \(US\) 65280 ")
TIMEOUT = 30  # a hang (the old defect) fails here instead of blocking the suite


def gdcmscu(server: DimsefsmServer, *args: str, associations: int = 1) -> str:
    """Run gdcmscu -D against ``server``; its transcript once it released the association.

    ``associations`` counts the C-MOVE sub-association to gdcmscu too.
    """
    released = server.output().count("association released")
    result = run_tool(
        [GDCMSCU, "-D", "--call", QR_AET, *args, LOCALHOST, str(server.port)], TIMEOUT
    )
    log = result.stdout + result.stderr
    assert result.returncode in (0, -signal.SIGABRT), log
    if result.returncode:
        assert GDCM_ABORT_AFTER_RELEASE in log, log
    wait_until(
        lambda: server.output().count("association released") == released + associations,
        f"{associations} association(s) released\n{server.output()}",
    )
    return log


class Archive:
    def __init__(self, server: DimsefsmServer, scp_port: int, folder: Path) -> None:
        self.server = server
        self.scp_port = scp_port  # where gdcmscu receives C-MOVE sub-operations
        self.folder = folder
        self.study = make_study(10, n_series=2, patient_id="GDCM-1", patient_name="Gdcm^Ada")
        self.other = make_study(1, n_series=1, patient_id="GDCM-2", patient_name="Gdcm^Bob")
        self.uid = str(self.study[0].StudyInstanceUID)
        self.series = sorted({str(ds.SeriesInstanceUID) for ds in self.study})

    def in_series(self, series_uid: str) -> list[str]:
        return sorted(
            str(ds.SOPInstanceUID) for ds in self.study if ds.SeriesInstanceUID == series_uid
        )


@pytest.fixture(scope="module")
def archive(
    tmp_path_factory: pytest.TempPathFactory, module_qrscp_backend: str
) -> Iterator[Archive]:
    """qrscp holding two patients (stored by dcmtk), gdcmscu known as a C-MOVE destination."""
    folder = tmp_path_factory.mktemp("gdcm")
    scp_port = free_port()
    server = DimsefsmServer(
        [
            "qrscp",
            str(free_port()),
            "-aet",
            QR_AET,
            "-od",
            str(folder / "store"),
            "--dest",
            f"{GDCM_AET}={LOCALHOST}:{scp_port}",
            "-v",
        ]
    )
    with server:
        data = Archive(server, scp_port, folder)
        files = write_study(folder / "in", data.study + data.other)
        stored = run_tool(
            ["/usr/bin/storescu", "-aec", QR_AET, LOCALHOST, str(server.port), *map(str, files)]
        )
        assert stored.returncode == 0, stored.stderr
        yield data


def test_gdcmscu_echo(archive: Archive) -> None:
    log = gdcmscu(archive.server, "--echo")
    assert "(0000,0100) ?? (US) 32816 " in log  # C-ECHO-RSP
    assert "C-ECHO (Message ID 1) answered 0x0000" in archive.server.output()


@pytest.mark.usefixtures("qrscp_backend")
def test_gdcmscu_stores_a_directory_into_qrscp(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    study = make_study(3, n_series=1, patient_id="GDCM-3")
    write_study(tmp_path / "in", study)
    store = tmp_path / "store"
    server = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(store), "-v")
    gdcmscu(server, "--store", "-r", "-i", str(tmp_path / "in"))
    stored = sorted(str(dcmread(path).SOPInstanceUID) for path in store.rglob("*.dcm"))
    assert stored == sorted(str(ds.SOPInstanceUID) for ds in study)


@pytest.mark.parametrize(
    ("root", "level", "keys", "matches"),
    [
        ("--patientroot", "--patient", ["10,20=GDCM-*", "10,10="], 2),
        ("--studyroot", "--study", ["10,20=GDCM-1", "20,d=", "8,20="], 1),
        ("--studyroot", "--series", ["20,d={study}", "20,e=", "8,60="], 2),
        ("--studyroot", "--image", ["20,d={study}", "20,e={series}", "8,18="], 5),
        ("--patientroot", "--image", ["10,20=GDCM-1", "20,d={study}", "20,e={series}", "8,18="], 5),
    ],
    ids=["patient", "study", "series", "image", "patient-root-image"],
)
def test_gdcmscu_finds_every_level(
    archive: Archive, root: str, level: str, keys: list[str], matches: int
) -> None:
    args = ["--find", root, level]
    for key in keys:
        args += ["--key", key.format(study=archive.uid, series=archive.series[0])]
    log = gdcmscu(archive.server, *args)
    assert "C-Find was successful" in log, log
    # The transcript prints each Pending response's command twice (PDU, then message).
    assert len(PENDING.findall(log)) == 2 * matches, log
    assert f"ended 0x0000 after {matches} matches" in archive.server.output()


@pytest.mark.parametrize(
    ("level", "keys", "expected"),
    [
        ("--study", ["20,d={study}"], "study"),
        ("--series", ["20,d={study}", "20,e={series}"], "series"),
    ],
)
def test_gdcmscu_moves_to_itself(
    archive: Archive, tmp_path: Path, level: str, keys: list[str], expected: str
) -> None:
    out = tmp_path / "moved"
    out.mkdir()  # gdcmscu creates it for --output, not for -o
    args = ["--move", "--studyroot", level, "--aetitle", GDCM_AET]
    args += ["--port-scp", str(archive.scp_port), "-o", str(out)]
    for key in keys:
        args += ["--key", key.format(study=archive.uid, series=archive.series[1])]
    try:
        gdcmscu(archive.server, *args, associations=2)
    except subprocess.TimeoutExpired:
        pytest.fail("gdcmscu did not finish the C-MOVE")
    moved = sorted(str(dcmread(path).SOPInstanceUID) for path in out.iterdir())
    if expected == "study":
        assert moved == sorted(str(ds.SOPInstanceUID) for ds in archive.study)
    else:
        assert moved == archive.in_series(archive.series[1])
