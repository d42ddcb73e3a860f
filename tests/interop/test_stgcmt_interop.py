"""Storage Commitment over real sockets: qrscp as SCP, ``stgcmtscu`` as SCU, Orthanc both ways.

* ``stgcmtscu`` against qrscp, the report on the same association: the
  instances qrscp holds are committed, one it does not hold fails with 0x0112.
* qrscp's report on a new association: a request journaled by an earlier run
  is checked and reported when qrscp starts again, to the requestor's address
  (a peer that may receive), with the SCP role proposed and accepted.
* Orthanc 1.10 as SCU against qrscp (REST ``/modalities/qr/storage-commitment``,
  then its ``/storage-commitment/ID`` until the report came) and as SCP for
  ``stgcmtscu --port`` (Orthanc always reports on a new association; the
  same-association path of ``stgcmtscu`` is tested against qrscp and pynetdicom).
* Bad input: an unknown Action Type ID (0x0123) and a request without its
  Transaction UID (0x0120), each with an ErrorComment, nothing journaled.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread

from dimsefsm import status as st
from dimsefsm.archive.commitment import CommitmentJournal, JournalEntry
from dimsefsm.services.commitment import (
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH_MODEL,
    CommitmentRequest,
    Reference,
)
from dimsefsm.storage_commitment import ReportCollector, ReportListener, commitment_ae
from tests.data.make import make_instance, make_study, write_instance, write_study
from tests.interop.peers import (
    LOCALHOST,
    DimsefsmServer,
    LineReadyServer,
    OrthancServer,
    free_port,
    run_tool,
    wait_until,
)

DIMSEFSM = [sys.executable, "-m", "dimsefsm"]
REPO_ROOT = Path(__file__).resolve().parents[2]
QR_AET = "QRSCP"
SCU_AET = "STGCMTSCU"


@pytest.fixture
def study(tmp_path: Path) -> list[Path]:
    return write_study(tmp_path / "study", make_study(3, n_series=1, patient_id="STGCMT"))


@pytest.fixture
def absent(tmp_path: Path) -> Path:
    """A file of an instance no peer holds."""
    return write_instance(tmp_path / "absent.dcm", make_instance())


def uids(paths: list[Path]) -> list[str]:
    return sorted(str(dcmread(path).SOPInstanceUID) for path in paths)


def stgcmtscu(*args: str, expect: int) -> list[str]:
    result = run_tool([*DIMSEFSM, "stgcmtscu", *args], timeout=60)
    assert result.returncode == expect, result.stdout + result.stderr
    return result.stdout.splitlines()


def store(port: int, files: list[Path]) -> None:
    result = run_tool(
        [*DIMSEFSM, "storescu", "-aec", QR_AET, LOCALHOST, str(port), *map(str, files)]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def journal_of(store_dir: Path) -> CommitmentJournal:
    return CommitmentJournal.for_storage(store_dir)


def test_stgcmtscu_same_association_against_qrscp(
    dimsefsm_server: Callable[..., DimsefsmServer],
    tmp_path: Path,
    study: list[Path],
    absent: Path,
) -> None:
    store_dir = tmp_path / "store"
    qrscp = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(store_dir), "--workers", "1")
    store(qrscp.port, study)
    port = str(qrscp.port)
    lines = stgcmtscu("-aec", QR_AET, LOCALHOST, port, *map(str, study), expect=0)
    assert sorted(line.split()[1] for line in lines if line.startswith("committed")) == uids(study)
    lines = stgcmtscu("-aec", QR_AET, LOCALHOST, port, *map(str, study), str(absent), expect=1)
    failed = [line for line in lines if line.startswith("failed")]
    assert failed == [f"failed     {uids([absent])[0]}  0x0112 No such object instance"]
    assert len([line for line in lines if line.startswith("committed")]) == len(study)
    wait_until(lambda: journal_of(store_dir).entries() == [], "journal emptied")
    assert "report delivered to STGCMTSCU on its association" in qrscp.output()


def test_qrscp_reports_a_journaled_request_on_a_new_association_when_it_starts(
    dimsefsm_server: Callable[..., DimsefsmServer],
    tmp_path: Path,
    study: list[Path],
    absent: Path,
) -> None:
    store_dir = tmp_path / "store"
    first = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(store_dir), "--workers", "1")
    store(first.port, study)
    first.stop()
    held = [Reference(str(dcmread(p).SOPClassUID), str(dcmread(p).SOPInstanceUID)) for p in study]
    missing = Reference(str(dcmread(absent).SOPClassUID), uids([absent])[0])
    request = CommitmentRequest("1.2.826.0.1.3680043.2.1143.77", (*held, missing))
    journal_of(store_dir).write(JournalEntry(request, SCU_AET))
    collector = ReportCollector()
    listen = free_port()
    with ReportListener(SCU_AET, (LOCALHOST, listen), collector):
        dimsefsm_server(
            "qrscp",
            "-aet",
            QR_AET,
            "-od",
            str(store_dir),
            "--workers",
            "1",
            "--dest",
            f"{SCU_AET}={LOCALHOST}:{listen}",
        )
        outcome = collector.wait(request.transaction_uid, 30)
    assert outcome is not None
    assert sorted(r.sop_instance_uid for r in outcome.committed) == uids(study)
    assert outcome.failed == ((missing, 0x0112),)
    wait_until(lambda: journal_of(store_dir).entries() == [], "journal emptied")


def n_action(port: int, action_type: int, information: Dataset) -> Dataset:
    ae = commitment_ae("BADSCU")
    assoc = ae.associate(LOCALHOST, port, ae_title=QR_AET)
    assert assoc.is_established
    status, _ = assoc.send_n_action(
        information, action_type, STORAGE_COMMITMENT_PUSH_MODEL, STORAGE_COMMITMENT_INSTANCE
    )
    assoc.release()
    return status


def test_bad_requests_get_the_standard_status_and_nothing_is_journaled(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    store_dir = tmp_path / "store"
    qrscp = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(store_dir), "--workers", "1")
    good = Dataset()
    good.TransactionUID = "1.2.3.4"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.3.4.5"
    good.ReferencedSOPSequence = [item]
    status = n_action(qrscp.port, 7, good)
    assert status.Status == st.NO_SUCH_ACTION
    assert "Action Type ID 7" in status.ErrorComment
    no_uid = Dataset()
    no_uid.ReferencedSOPSequence = [item]
    status = n_action(qrscp.port, 1, no_uid)
    assert status.Status == st.MISSING_ATTRIBUTE
    assert "TransactionUID" in status.ErrorComment
    assert journal_of(store_dir).entries() == []
    assert "refused (0x0123)" in qrscp.output()


# -- Orthanc ---------------------------------------------------------------------------------
@pytest.mark.parametrize("same_association", [True, False], ids=["same", "new"])
def test_orthanc_asks_qrscp_for_commitment_and_gets_the_report(
    orthanc_server: Callable[..., OrthancServer],
    dimsefsm_server: Callable[..., DimsefsmServer],
    tmp_path: Path,
    study: list[Path],
    absent: Path,
    same_association: bool,
) -> None:
    """Orthanc takes the report on one qrscp opens to it (the SCP role proposed), forced
    with ``[commitment] same_association = false``.  With the default, qrscp tries
    Orthanc's own association first; Orthanc releases it right after the N-ACTION
    response, so which association carries the report is a race either may win."""
    config = tmp_path / "qrscp.toml"
    config.write_text(f"[commitment]\nsame_association = {str(same_association).lower()}\n")
    orthanc_port = free_port()
    qrscp = dimsefsm_server(
        "qrscp",
        "--config",
        str(config),
        "-aet",
        QR_AET,
        "-od",
        str(tmp_path / "store"),
        "--workers",
        "1",
        "--dest",
        f"ORTHANC={LOCALHOST}:{orthanc_port}",
    )
    orthanc = orthanc_server({"qr": (QR_AET, LOCALHOST, qrscp.port)}, dicom_port=orthanc_port)
    store(qrscp.port, study)
    instances = [
        {"SOPClassUID": str(ds.SOPClassUID), "SOPInstanceUID": str(ds.SOPInstanceUID)}
        for ds in map(dcmread, [*study, absent])
    ]
    started = orthanc.post("/modalities/qr/storage-commitment", {"DicomInstances": instances})
    assert isinstance(started, dict)
    reports: list[object] = []

    def reported() -> bool:
        reports.append(orthanc.get(started["Path"]))
        last = reports[-1]
        return isinstance(last, dict) and last.get("Status") != "Pending"

    wait_until(reported, "Orthanc received the report", timeout=30)
    report = reports[-1]
    assert isinstance(report, dict) and report["Status"] == "Failure", report
    assert sorted(s["SOPInstanceUID"] for s in report["Success"]) == uids(study)
    assert [(f["SOPInstanceUID"], f["FailureReason"]) for f in report["Failures"]] == [
        (uids([absent])[0], 0x0112)
    ]
    carried = ("its association", "a new association") if same_association else ("a new",)
    wait_until(
        lambda: any(f"report delivered to ORTHANC on {c}" in qrscp.output() for c in carried),
        "the delivery logged",
    )


def test_stgcmtscu_same_association_against_pynetdicom(
    tmp_path: Path, study: list[Path], absent: Path
) -> None:
    """pynetdicom's SCP (the benchmark's) reports on the requesting association."""
    refs = tmp_path / "refs.json"
    held = [[str(ds.SOPClassUID), str(ds.SOPInstanceUID)] for ds in map(dcmread, study)]
    refs.write_text(json.dumps(held))
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.commitment_server", str(port), str(refs)]
    with LineReadyServer(command, port, cwd=REPO_ROOT) as server:
        args = ["-aec", "STGCMTSCP", LOCALHOST, str(server.port)]
        lines = stgcmtscu(*args, *map(str, study), str(absent), expect=1)
    assert sorted(line.split()[1] for line in lines if line.startswith("committed")) == uids(study)
    assert [line.split()[1:3] for line in lines if line.startswith("failed")] == [
        [uids([absent])[0], "0x0112"]
    ]


def test_stgcmtscu_gets_orthanc_report_on_a_new_association(
    orthanc_server: Callable[..., OrthancServer], study: list[Path], absent: Path
) -> None:
    listen = free_port()
    orthanc = orthanc_server({"scu": (SCU_AET, LOCALHOST, listen)})
    for path in study:
        answer = orthanc.post("/instances", path.read_bytes())
        assert isinstance(answer, dict) and answer["Status"] == "Success", answer
    args = ["-aet", SCU_AET, "-aec", "ORTHANC", "--port", str(listen)]
    address = [LOCALHOST, str(orthanc.dicom_port)]
    lines = stgcmtscu(*args, *address, *map(str, study), expect=0)
    assert sorted(line.split()[1] for line in lines if line.startswith("committed")) == uids(study)
    lines = stgcmtscu(*args, *address, *map(str, study), str(absent), expect=1)
    assert [line.split()[1:3] for line in lines if line.startswith("failed")] == [
        [uids([absent])[0], "0x0112"]
    ]
