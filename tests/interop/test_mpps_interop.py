"""Modality Performed Procedure Step with pynetdicom, both directions, over real sockets.

pynetdicom's AE as the modality (``send_n_create``, ``send_n_set``,
``send_n_get``) against ``dimsefsm qrscp`` (on SQLite and on PostgreSQL),
and our ``Association.send_n_*`` and ``dimsefsm mppsscu`` against pynetdicom
as the MPPS SCP its documentation writes (``tests.interop.pynetdicom_mpps_scp``).
The bad inputs of issue 16 are answered with the standard's status and an
Error Comment, and the step on the server stays as it was.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.tag import Tag
from pydicom.uid import generate_uid

from tests.interop.peers import DimsefsmServer, LineReadyServer, free_port, wait_until
from tests.unit.mpps_data import create_attributes, final_attributes

MPPS = "1.2.840.10008.3.1.2.3.3"
MPPS_RETRIEVE = "1.2.840.10008.3.1.2.3.4"
QR_AET = "QRSCP"
LOCALHOST = "127.0.0.1"


def pynetdicom_scu(port: int, *contexts: str) -> Any:
    """An established pynetdicom association to ``port`` proposing ``contexts``."""
    from pynetdicom import AE

    ae = AE(ae_title="MODALITY")
    ae.dimse_timeout = 20
    for context in contexts or (MPPS, MPPS_RETRIEVE):
        ae.add_requested_context(context)
    assoc = ae.associate(LOCALHOST, port, ae_title=QR_AET)
    assert assoc.is_established
    return assoc


def status_of(status: Dataset) -> int:
    return int(status.Status)


@pytest.fixture
def qrscp(
    qrscp_backend: str, dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> Callable[[], DimsefsmServer]:
    """Start (or restart) qrscp over the same storage directory and index."""

    def start() -> DimsefsmServer:
        return dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(tmp_path / "store"))

    return start


# -- pynetdicom as the modality, qrscp as the SCP --------------------------------------------


def test_pynetdicom_reports_a_step_that_survives_a_restart(
    qrscp: Callable[[], DimsefsmServer],
) -> None:
    server = qrscp()
    uid = generate_uid()
    assoc = pynetdicom_scu(server.port)
    try:
        status, _ = assoc.send_n_create(create_attributes(), MPPS, uid)
        assert status_of(status) == 0x0000
        progress = Dataset()
        progress.PerformedProcedureStepDescription = "CT head, contrast"
        status, _ = assoc.send_n_set(progress, MPPS, uid)
        assert status_of(status) == 0x0000
        status, _ = assoc.send_n_set(final_attributes("COMPLETED"), MPPS, uid)
        assert status_of(status) == 0x0000
        status, got = assoc.send_n_get([0x00400252, 0x00100020], MPPS_RETRIEVE, uid)
        assert status_of(status) == 0x0000
        assert (got.PerformedProcedureStepStatus, got.PatientID) == ("COMPLETED", "P1")
    finally:
        assoc.release()
    server.stop()
    server = qrscp()
    assoc = pynetdicom_scu(server.port)
    try:
        status, got = assoc.send_n_get([0x00400252, 0x00400340], MPPS_RETRIEVE, uid)
        assert status_of(status) == 0x0000
        assert got.PerformedProcedureStepStatus == "COMPLETED"
        assert len(got.PerformedSeriesSequence) == 1
        late = Dataset()
        late.PerformedProcedureStepDescription = "too late"
        status, _ = assoc.send_n_set(late, MPPS, uid)
        assert status_of(status) == 0x0110
        assert status.ErrorComment == "Performed Procedure Step Object may no longer be updated"
        status, got = assoc.send_n_get([0x00400254, 0x00100020], MPPS_RETRIEVE, uid)
        assert got.PerformedProcedureStepDescription == "CT head, contrast"
    finally:
        assoc.release()


def test_pynetdicom_create_without_a_uid_gets_one_assigned(
    qrscp: Callable[[], DimsefsmServer],
) -> None:
    server = qrscp()
    assoc = pynetdicom_scu(server.port)
    try:
        status, created = assoc.send_n_create(create_attributes(), MPPS)
        assert status_of(status) == 0x0000
        uid = str(created.SOPInstanceUID)
        assert uid
        status, got = assoc.send_n_get([0x00400252, 0x00100020], MPPS_RETRIEVE, uid)
        assert (status_of(status), got.PerformedProcedureStepStatus) == (0x0000, "IN PROGRESS")
    finally:
        assoc.release()


def test_bad_input_gets_the_standards_status_and_changes_nothing(
    qrscp: Callable[[], DimsefsmServer],
) -> None:
    server = qrscp()
    uid = generate_uid()
    assoc = pynetdicom_scu(server.port)
    try:
        incomplete = create_attributes()
        del incomplete.PerformedStationAETitle
        status, _ = assoc.send_n_create(incomplete, MPPS, uid)
        assert status_of(status) == 0x0120
        # pynetdicom keeps no Attribute Identifier List of an N-CREATE-RSP (our SCU does).
        assert "PerformedStationAETitle" in status.ErrorComment
        status, _ = assoc.send_n_get([0x00400252, 0x00100020], MPPS_RETRIEVE, uid)
        assert status_of(status) == 0x0112  # nothing was created
        assert status_of(assoc.send_n_create(create_attributes(), MPPS, uid)[0]) == 0x0000
        other = create_attributes()
        other.PatientID = "SOMEONE-ELSE"
        status, _ = assoc.send_n_create(other, MPPS, uid)
        assert status_of(status) == 0x0111
        assert status.ErrorComment == "an MPPS of this SOP Instance UID already exists"
        identity = final_attributes()
        identity.PatientID = "SOMEONE-ELSE"
        status, _ = assoc.send_n_set(identity, MPPS, uid)
        assert status_of(status) == 0x0105
        assert Tag(status.AttributeIdentifierList) == Tag("PatientID")
        unfinished = final_attributes()
        del unfinished.PerformedSeriesSequence
        status, _ = assoc.send_n_set(unfinished, MPPS, uid)
        assert status_of(status) == 0x0110
        assert "PerformedSeriesSequence" in status.ErrorComment
        status, got = assoc.send_n_get([0x00400252, 0x00100020], MPPS_RETRIEVE, uid)
        assert (got.PerformedProcedureStepStatus, got.PatientID) == ("IN PROGRESS", "P1")
    finally:
        assoc.release()


def test_our_scu_sees_the_missing_attributes_qrscp_names(
    qrscp: Callable[[], DimsefsmServer],
) -> None:
    from dimsefsm import AE

    server = qrscp()
    ae = AE("MODALITY")
    ae.add_requested_context(MPPS)
    assoc = ae.associate(LOCALHOST, server.port, ae_title=QR_AET)
    assert assoc.is_established
    try:
        incomplete = create_attributes()
        del incomplete.Modality
        incomplete.PerformedProcedureStepID = ""
        uid = generate_uid()
        status, answer = assoc.send_n_create(incomplete, MPPS, uid)
        assert (status.Status, answer) == (0x0120, None)
        assert Tag(status.AttributeIdentifierList) == Tag("Modality")
        del incomplete.PerformedProcedureStepID  # now both are absent: both are named
        status, _ = assoc.send_n_create(incomplete, MPPS, uid)
        assert list(status.AttributeIdentifierList) == [Tag("Modality"), Tag(0x00400253)]
        incomplete.Modality = "CT"
        incomplete.PerformedProcedureStepID = ""
        status, _ = assoc.send_n_create(incomplete, MPPS, uid)
        assert status.Status == 0x0121
        assert Tag(status.AttributeIdentifierList) == Tag("PerformedProcedureStepID")
    finally:
        assoc.release()


def mppsscu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dimsefsm", "mppsscu", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_mppsscu_against_qrscp_says_why_a_completed_step_is_refused(
    qrscp: Callable[[], DimsefsmServer], tmp_path: Path
) -> None:
    server = qrscp()
    where = [LOCALHOST, str(server.port), "-aec", QR_AET]
    keys = _create_keys()
    created = mppsscu("create", *where, *keys)
    assert created.returncode == 0, created.stderr
    uid = created.stdout.strip()
    series = ["-k", f"PerformedSeriesSequence[0].SeriesInstanceUID={generate_uid()}"]
    series += ["-k", "PerformedSeriesSequence[0].ProtocolName=Head"]
    done = mppsscu("set", *where, uid, "--status", "COMPLETED", *series)
    assert done.returncode == 0, done.stderr
    again = mppsscu("set", *where, uid, "--status", "DISCONTINUED", *series)
    assert again.returncode == 1
    assert "0x0110" in again.stderr
    assert "may no longer be updated" in again.stderr
    got = mppsscu("get", *where, uid, "-k", "PerformedProcedureStepStatus")
    assert got.returncode == 0, got.stderr
    assert '"COMPLETED"' in got.stdout


def _create_keys() -> list[str]:
    keys = [
        f"ScheduledStepAttributesSequence[0].StudyInstanceUID={generate_uid()}",
        "PatientID=P1",
        "PerformedProcedureStepID=PPS1",
        "PerformedStationAETitle=CT01",
        "Modality=CT",
    ]
    return [word for key in keys for word in ("-k", key)]


# -- our SCU, pynetdicom as the SCP --------------------------------------------------------------


@pytest.fixture
def pynetdicom_mpps() -> Iterator[LineReadyServer]:
    port = free_port()
    command = [sys.executable, "-m", "tests.interop.pynetdicom_mpps_scp", str(port)]
    server = LineReadyServer(command, port, cwd=Path(__file__).parents[2])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_our_association_reports_a_step_to_pynetdicom(pynetdicom_mpps: LineReadyServer) -> None:
    from dimsefsm import AE

    ae = AE("MODALITY")
    ae.add_requested_context(MPPS)
    ae.add_requested_context(MPPS_RETRIEVE)
    assoc = ae.associate(LOCALHOST, pynetdicom_mpps.port, ae_title="ANY-SCP")
    assert assoc.is_established
    uid = generate_uid()
    try:
        status, _ = assoc.send_n_create(create_attributes(), MPPS, uid)
        assert status.Status == 0x0000
        status, _ = assoc.send_n_set(final_attributes("DISCONTINUED"), MPPS, uid)
        assert status.Status == 0x0000
        status, got = assoc.send_n_get([0x00400252, 0x00100020], MPPS_RETRIEVE, uid)
        assert status.Status == 0x0000
        assert got is not None and got.PerformedProcedureStepStatus == "DISCONTINUED"
        status, _ = assoc.send_n_set(final_attributes(), MPPS, generate_uid())
        assert status.Status == 0x0112
    finally:
        assoc.release()
    wait_until(
        lambda: f"N-SET {uid} DISCONTINUED" in pynetdicom_mpps.output(),
        "pynetdicom logged the N-SET",
    )
    assert f"N-CREATE {uid}" in pynetdicom_mpps.output()


def test_mppsscu_reports_a_step_to_pynetdicom(pynetdicom_mpps: LineReadyServer) -> None:
    where = [LOCALHOST, str(pynetdicom_mpps.port)]
    created = mppsscu("create", *where, *_create_keys())
    assert created.returncode == 0, created.stderr
    uid = created.stdout.strip()
    assert uid
    wait_until(lambda: f"N-CREATE {uid}" in pynetdicom_mpps.output(), "pynetdicom got it")
    series = ["-k", f"PerformedSeriesSequence[0].SeriesInstanceUID={generate_uid()}"]
    done = mppsscu("set", *where, uid, "--status", "COMPLETED", *series)
    assert done.returncode == 0, done.stderr
    wait_until(
        lambda: f"N-SET {uid} COMPLETED" in pynetdicom_mpps.output(), "pynetdicom got the N-SET"
    )
    unknown = mppsscu("set", *where, generate_uid(), "--status", "COMPLETED")
    assert unknown.returncode == 1
    assert "0x0112" in unknown.stderr
