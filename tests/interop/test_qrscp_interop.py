"""``dimsefsm qrscp`` (the main job) driven only by dcmtk programs on 127.0.0.1.

Storage then query: dcmtk ``storescu`` fills the store, dcmtk ``findscu`` finds
what was stored.  Modality Worklist: ``--worklist DIR`` serves the DICOM files
of a directory the way dcmtk's ``wlmscpfs`` does; a file written after the
server started is seen by the next query, and a file that is not DICOM is
skipped with a log line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.data.make import make_study, write_study
from tests.interop.peers import DimsefsmServer, run_tool
from tests.interop.test_find_interop import _worklist_item, _write_worklist_item

QR_AET = "QRSCP"
LOCALHOST = "127.0.0.1"


def findscu(port: int, model: str, keys: list[str], out_dir: Path) -> tuple[str, list[Dataset]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["findscu", "-v", model, "-aec", QR_AET, "-X", "-od", str(out_dir)]
    for key in keys:
        args += ["-k", key]
    result = run_tool([*args, LOCALHOST, str(port)])
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "Received Final Find Response (Success)" in log, log
    return log, [dcmread(path) for path in sorted(out_dir.glob("rsp*.dcm"))]


@pytest.mark.usefixtures("qrscp_backend")
def test_storescu_stores_and_findscu_finds_each_level(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    study = make_study(4, n_series=2, patient_name="Store^Query")
    files = write_study(tmp_path / "in", study)
    server = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(tmp_path / "store"))
    sent = run_tool(["storescu", "-aec", QR_AET, LOCALHOST, str(server.port), *map(str, files)])
    assert sent.returncode == 0, sent.stderr
    study_uid = str(study[0].StudyInstanceUID)
    _, studies = findscu(
        server.port,
        "-S",
        ["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientName"],
        tmp_path / "studies",
    )
    assert [(str(ds.StudyInstanceUID), str(ds.PatientName)) for ds in studies] == [
        (study_uid, "Store^Query")
    ]
    assert studies[0].RetrieveAETitle == QR_AET
    _, images = findscu(
        server.port,
        "-S",
        ["QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={study_uid}", "SOPInstanceUID"],
        tmp_path / "images",
    )
    assert sorted(str(ds.SOPInstanceUID) for ds in images) == sorted(
        str(ds.SOPInstanceUID) for ds in study
    )


@pytest.mark.usefixtures("qrscp_backend")
def test_findscu_filters_and_lists_studies_by_modalities_in_study(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    ct = make_study(3, n_series=1, modalities=("CT",))
    mixed = make_study(4, n_series=2, modalities=("CT", "MR"))
    files = write_study(tmp_path / "ct", ct) + write_study(tmp_path / "mixed", mixed)
    server = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(tmp_path / "store"))
    sent = run_tool(["storescu", "-aec", QR_AET, LOCALHOST, str(server.port), *map(str, files)])
    assert sent.returncode == 0, sent.stderr
    keys = [
        "QueryRetrieveLevel=STUDY",
        "StudyInstanceUID",
        "ModalitiesInStudy=MR",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ]
    _, studies = findscu(server.port, "-S", keys, tmp_path / "mr")
    assert [str(ds.StudyInstanceUID) for ds in studies] == [str(mixed[0].StudyInstanceUID)]
    (study,) = studies
    assert list(study.ModalitiesInStudy) == ["CT", "MR"]
    assert (study.NumberOfStudyRelatedSeries, study.NumberOfStudyRelatedInstances) == (2, 4)


@pytest.mark.usefixtures("qrscp_backend")
def test_worklist_directory_answers_findscu(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    worklist = tmp_path / "worklist"
    worklist.mkdir()
    items = [
        _worklist_item(("P1", "Alpha^Anna"), "ACC-1", "CT", "CT01", "20261124"),
        _worklist_item(("P2", "Beta^Bob"), "ACC-2", "MR", "MR01", "20261124"),
        _worklist_item(("P3", "Gamma^Gus"), "ACC-3", "CT", "CT02", "20261125"),
    ]
    for item in items[:2]:
        _write_worklist_item(worklist / f"{item.AccessionNumber}.wl", item)
    (worklist / "notes.txt").write_text("not a worklist item\n")
    server = dimsefsm_server(
        "qrscp", "-aet", QR_AET, "-od", str(tmp_path / "store"), "--worklist", str(worklist), "-v"
    )
    ct_keys = [
        "AccessionNumber",
        "PatientName",
        "ScheduledProcedureStepSequence[0].Modality=CT",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261124-20261130",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
    ]
    _, first = findscu(server.port, "-W", ct_keys, tmp_path / "first")
    assert [str(ds.AccessionNumber) for ds in first] == ["ACC-1"]
    (step,) = first[0].ScheduledProcedureStepSequence
    assert {elem.keyword for elem in step} == {
        "Modality",
        "ScheduledProcedureStepStartDate",
        "ScheduledStationAETitle",
    }
    assert step.ScheduledStationAETitle == "CT01"
    assert "RetrieveAETitle" not in first[0] and "QueryRetrieveLevel" not in first[0]

    _write_worklist_item(worklist / "ACC-3.wl", items[2])  # scheduled while serving
    _, second = findscu(server.port, "-W", ct_keys, tmp_path / "second")
    assert sorted(str(ds.AccessionNumber) for ds in second) == ["ACC-1", "ACC-3"]
    assert "notes.txt skipped" in server.output()


def test_worklist_flag_must_name_a_directory(tmp_path: Path) -> None:
    result = run_tool(
        [sys.executable, "-m", "dimsefsm", "qrscp", "0", "--worklist", str(tmp_path / "none")]
    )
    assert result.returncode == 2
    assert "is not a directory" in result.stderr
