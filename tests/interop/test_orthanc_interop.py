"""Orthanc 1.10 (Debian ``orthanc``) as a peer, both ways, on 127.0.0.1.

Orthanc as SCP, our SCUs as clients: ``storescu`` stores, ``findscu`` finds
at every level of both roots, ``getscu`` gets (Orthanc is a C-GET SCP since
1.7), ``movescu --store`` moves to itself.

Orthanc as SCU against ``dimsefsm qrscp``, driven through its REST API: echo,
store (a push of a study and of a DX image, once refused), query at every
level and browsing down from a study answer (Orthanc then adds an empty
PatientID and AccessionNumber to its SERIES and IMAGE queries, once refused
with 0xA900), and C-MOVE into Orthanc itself.  Orthanc 1.10 has no C-GET SCU
(``/modalities/{id}/get`` arrived later), so C-GET is tested one way only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from tests.data.make import make_instance, make_study, write_instance, write_study
from tests.interop.peers import (
    LOCALHOST,
    DimsefsmServer,
    OrthancServer,
    free_port,
    run_tool,
)

DIMSEFSM = [sys.executable, "-m", "dimsefsm"]
QR_AET = "QRSCP"
SCU_AET = "DIMSEFSM"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"


class Study:
    """Two patients' studies on disk: A with 4 instances in 2 series, B with 1."""

    def __init__(self, folder: Path) -> None:
        self.a = make_study(4, n_series=2, patient_id="ORTH-A", patient_name="Orthanc^Alice")
        self.b = make_study(1, n_series=1, patient_id="ORTH-B", patient_name="Orthanc^Bob")
        self.files = write_study(folder / "a", self.a) + write_study(folder / "b", self.b)
        self.uid = str(self.a[0].StudyInstanceUID)
        self.series = sorted({str(ds.SeriesInstanceUID) for ds in self.a})
        self.instances = sorted(str(ds.SOPInstanceUID) for ds in self.a)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    return Study(tmp_path_factory.mktemp("orthanc-data"))


def dimsefsm(*args: str, timeout: float = 60) -> str:
    result = run_tool([*DIMSEFSM, *args], timeout=timeout)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    return result.stdout


def upload(orthanc: OrthancServer, files: list[Path]) -> list[str]:
    """Put files into Orthanc over HTTP; its instance ids."""
    ids = []
    for path in files:
        answer = orthanc.post("/instances", path.read_bytes())
        assert isinstance(answer, dict) and answer["Status"] == "Success", answer
        ids.append(answer["ID"])
    return ids


def orthanc_sop_uids(orthanc: OrthancServer) -> list[str]:
    instances = orthanc.get("/instances?expand")
    assert isinstance(instances, list)
    return sorted(item["MainDicomTags"]["SOPInstanceUID"] for item in instances)


# -- Orthanc as SCP -------------------------------------------------------------------------
@pytest.fixture
def orthanc_scp(
    orthanc_server: Callable[..., OrthancServer], study: Study
) -> tuple[OrthancServer, int]:
    """Orthanc holding nothing yet, knowing our SCU (and its move receiver port)."""
    receiver_port = free_port()
    orthanc = orthanc_server({"scu": (SCU_AET, LOCALHOST, receiver_port)})
    return orthanc, receiver_port


def test_storescu_stores_into_orthanc(
    orthanc_scp: tuple[OrthancServer, int], study: Study, tmp_path: Path
) -> None:
    orthanc, _ = orthanc_scp
    dx = write_instance(tmp_path / "dx.dcm", make_instance(DX_FOR_PRESENTATION, Modality="DX"))
    files = [*map(str, study.files), str(dx)]
    dimsefsm(
        "storescu", "-aet", SCU_AET, "-aec", "ORTHANC", LOCALHOST, str(orthanc.dicom_port), *files
    )
    expected = sorted(str(dcmread(path).SOPInstanceUID) for path in files)
    assert orthanc_sop_uids(orthanc) == expected


def findscu_json(orthanc: OrthancServer, model: str, *keys: str) -> list[dict[str, Any]]:
    args = ["findscu", model, "--json", "-aet", SCU_AET, "-aec", "ORTHANC"]
    for key in keys:
        args += ["-k", key]
    out = dimsefsm(*args, LOCALHOST, str(orthanc.dicom_port))
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _values(matches: list[dict[str, Any]], tag: str) -> list[str]:
    """One attribute of every match, from the DICOM JSON model (PS3.18 F.2)."""
    found = []
    for match in matches:
        value = match.get(tag, {}).get("Value", [""])[0]
        found.append(value["Alphabetic"] if isinstance(value, dict) else str(value))
    return sorted(found)


def test_findscu_finds_every_level_on_orthanc(
    orthanc_scp: tuple[OrthancServer, int], study: Study
) -> None:
    orthanc, _ = orthanc_scp
    upload(orthanc, study.files)
    patients = findscu_json(
        orthanc, "-P", "QueryRetrieveLevel=PATIENT", "PatientID=ORTH-*", "PatientName"
    )
    assert _values(patients, "00100020") == ["ORTH-A", "ORTH-B"]
    assert _values(patients, "00100010") == ["Orthanc^Alice", "Orthanc^Bob"]
    studies = findscu_json(
        orthanc, "-P", "QueryRetrieveLevel=STUDY", "PatientID=ORTH-A", "StudyInstanceUID"
    )
    assert _values(studies, "0020000D") == [study.uid]
    series = findscu_json(
        orthanc,
        "-S",
        "QueryRetrieveLevel=SERIES",
        f"StudyInstanceUID={study.uid}",
        "SeriesInstanceUID",
        "Modality",
    )
    assert _values(series, "0020000E") == study.series
    images = findscu_json(
        orthanc,
        "-S",
        "QueryRetrieveLevel=IMAGE",
        f"StudyInstanceUID={study.uid}",
        f"SeriesInstanceUID={study.series[0]}",
        "SOPInstanceUID",
    )
    in_series = sorted(
        str(ds.SOPInstanceUID) for ds in study.a if ds.SeriesInstanceUID == study.series[0]
    )
    assert _values(images, "00080018") == in_series


def test_getscu_gets_a_study_from_orthanc(
    orthanc_scp: tuple[OrthancServer, int], study: Study, tmp_path: Path
) -> None:
    orthanc, _ = orthanc_scp
    upload(orthanc, study.files)
    out = tmp_path / "got"
    dimsefsm(
        "getscu",
        "-S",
        "-aet",
        SCU_AET,
        "-aec",
        "ORTHANC",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study.uid}",
        "-od",
        str(out),
        LOCALHOST,
        str(orthanc.dicom_port),
    )
    got = sorted(str(dcmread(path).SOPInstanceUID) for path in out.iterdir())
    assert got == study.instances


def test_movescu_moves_a_series_from_orthanc_to_itself(
    orthanc_scp: tuple[OrthancServer, int], study: Study, tmp_path: Path
) -> None:
    orthanc, receiver_port = orthanc_scp
    upload(orthanc, study.files)
    out = tmp_path / "moved"
    dimsefsm(
        "movescu",
        "-S",
        "-aet",
        SCU_AET,
        "-aec",
        "ORTHANC",
        "--store",
        "--store-port",
        str(receiver_port),
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={study.uid}",
        "-k",
        f"SeriesInstanceUID={study.series[1]}",
        LOCALHOST,
        str(orthanc.dicom_port),
    )
    moved = sorted(str(dcmread(path).SOPInstanceUID) for path in out.rglob("*") if path.is_file())
    assert moved == sorted(
        str(ds.SOPInstanceUID) for ds in study.a if ds.SeriesInstanceUID == study.series[1]
    )


# -- Orthanc as SCU against qrscp ---------------------------------------------------------------
class Peers:
    def __init__(self, orthanc: OrthancServer, qrscp: DimsefsmServer, store: Path) -> None:
        self.orthanc = orthanc
        self.qrscp = qrscp
        self.store = store


@pytest.fixture
def orthanc_scu(
    orthanc_server: Callable[..., OrthancServer],
    dimsefsm_server: Callable[..., DimsefsmServer],
    tmp_path: Path,
    qrscp_backend: str,
) -> Peers:
    """qrscp knowing Orthanc as a C-MOVE destination; Orthanc knowing qrscp as "qr"."""
    orthanc_port = free_port()
    store = tmp_path / "qrscp-store"
    qrscp = dimsefsm_server(
        "qrscp",
        "-aet",
        QR_AET,
        "-od",
        str(store),
        "--dest",
        f"ORTHANC={LOCALHOST}:{orthanc_port}",
        "-v",
    )
    orthanc = orthanc_server({"qr": (QR_AET, LOCALHOST, qrscp.port)}, dicom_port=orthanc_port)
    return Peers(orthanc, qrscp, store)


def stored_sop_uids(store: Path) -> list[str]:
    return sorted(str(dcmread(path).SOPInstanceUID) for path in store.rglob("*.dcm"))


def test_orthanc_echoes_and_pushes_a_study_and_a_dx_image_to_qrscp(
    orthanc_scu: Peers, study: Study, tmp_path: Path
) -> None:
    orthanc = orthanc_scu.orthanc
    assert orthanc.post("/modalities/qr/echo") == {}
    dx = write_instance(tmp_path / "dx.dcm", make_instance(DX_FOR_PRESENTATION, Modality="DX"))
    ids = upload(orthanc, [*study.files, dx])
    job = orthanc.post("/modalities/qr/store", {"Resources": ids, "Synchronous": True})
    assert isinstance(job, dict)
    assert (job["InstancesCount"], job["FailedInstancesCount"]) == (len(ids), 0), job
    assert stored_sop_uids(orthanc_scu.store) == sorted(
        [*study.instances, str(study.b[0].SOPInstanceUID), str(dcmread(dx).SOPInstanceUID)]
    )


def query(orthanc: OrthancServer, level: str, keys: dict[str, str]) -> tuple[str, list[Any]]:
    """An Orthanc C-FIND to qrscp: the query id and its answers (simplified tags)."""
    started = orthanc.post("/modalities/qr/query", {"Level": level, "Query": keys})
    assert isinstance(started, dict)
    answers = orthanc.get(f"/queries/{started['ID']}/answers?expand&simplify")
    assert isinstance(answers, list)
    return started["ID"], answers


def test_orthanc_queries_qrscp_at_every_level_and_browses_down(
    orthanc_scu: Peers, study: Study
) -> None:
    dimsefsm(
        "storescu", "-aec", QR_AET, LOCALHOST, str(orthanc_scu.qrscp.port), *map(str, study.files)
    )
    orthanc = orthanc_scu.orthanc
    _, patients = query(orthanc, "Patient", {"PatientID": "ORTH-*", "PatientName": ""})
    assert sorted(a["PatientName"] for a in patients) == ["Orthanc^Alice", "Orthanc^Bob"]
    study_query, studies = query(
        orthanc, "Study", {"PatientID": "ORTH-A", "StudyInstanceUID": "", "StudyDate": ""}
    )
    assert [a["StudyInstanceUID"] for a in studies] == [study.uid]
    _, series = query(orthanc, "Series", {"StudyInstanceUID": study.uid, "Modality": ""})
    assert sorted(a["SeriesInstanceUID"] for a in series) == study.series
    _, images = query(
        orthanc, "Instance", {"StudyInstanceUID": study.uid, "SeriesInstanceUID": study.series[0]}
    )
    assert sorted(a["SOPInstanceUID"] for a in images) == sorted(
        str(ds.SOPInstanceUID) for ds in study.a if ds.SeriesInstanceUID == study.series[0]
    )
    # Browsing from the study answer down: Orthanc's own SERIES and IMAGE queries.
    browsed = orthanc.post(f"/queries/{study_query}/answers/0/query-series")
    assert isinstance(browsed, dict)
    series_answers = orthanc.get(f"/queries/{browsed['ID']}/answers?expand&simplify")
    assert isinstance(series_answers, list)
    assert sorted(a["SeriesInstanceUID"] for a in series_answers) == study.series
    assert {a.get("PatientID") for a in series_answers} == {"ORTH-A"}
    browsed = orthanc.post(f"/queries/{study_query}/answers/0/query-instances")
    assert isinstance(browsed, dict)
    image_answers = orthanc.get(f"/queries/{browsed['ID']}/answers?expand&simplify")
    assert isinstance(image_answers, list)
    assert sorted(a["SOPInstanceUID"] for a in image_answers) == study.instances


def test_orthanc_moves_a_study_from_qrscp_into_itself(orthanc_scu: Peers, study: Study) -> None:
    dimsefsm(
        "storescu", "-aec", QR_AET, LOCALHOST, str(orthanc_scu.qrscp.port), *map(str, study.files)
    )
    orthanc = orthanc_scu.orthanc
    job = orthanc.post(
        "/modalities/qr/move",
        {
            "Level": "Study",
            "Resources": [{"StudyInstanceUID": study.uid}],
            "TargetAet": "ORTHANC",
            "Synchronous": True,
        },
    )
    assert job is not None
    assert orthanc_sop_uids(orthanc) == study.instances
