"""The Q/R SCP application over real sockets: store, index, query, restart."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread

from dimsefsm import AE, evt
from dimsefsm.archive.scp import QueryRetrieveSCP
from dimsefsm.qr.registry import PATIENT_ROOT_FIND, STUDY_ROOT_FIND
from dimsefsm.sop_class import CT_IMAGE_STORAGE
from dimsefsm.transport.server import AssociationServer
from tests.data.make import make_instance, make_study, write_instance, write_study


@pytest.fixture
def running(
    tmp_path: Path, database_url: str
) -> Iterator[tuple[QueryRetrieveSCP, AssociationServer]]:
    """A Q/R SCP on each back end of the index (SQLite, PostgreSQL)."""
    scp = QueryRetrieveSCP("QRSCP", tmp_path / "store", database=database_url)
    scp.load()
    server = scp.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=scp.handlers)
    yield scp, server
    server.shutdown()
    scp.close()  # the database connections go back (PostgreSQL counts them)


def scu() -> AE:
    ae = AE("SCU")
    ae.add_requested_context(CT_IMAGE_STORAGE)
    ae.add_requested_context(STUDY_ROOT_FIND)
    ae.add_requested_context(PATIENT_ROOT_FIND)
    return ae


def study_query(level: str, **keys: str) -> Dataset:
    """Hierarchical: only STUDY-level queries may carry non-unique study keys."""
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = ""
    if level == "STUDY":
        ds.PatientName = ""
    for k, v in keys.items():
        setattr(ds, k, v)
    return ds


def test_store_then_query_each_level(
    running: tuple[QueryRetrieveSCP, AssociationServer], tmp_path: Path
) -> None:
    scp, server = running
    files = write_study(tmp_path / "in", make_study(6, n_series=2))
    with scu().associate(*server.address, ae_title="QRSCP") as assoc:
        assert [assoc.send_c_store(f).Status for f in files] == [0] * 6
        studies = list(assoc.send_c_find(study_query("STUDY"), STUDY_ROOT_FIND))
        series = list(
            assoc.send_c_find(study_query("SERIES", SeriesInstanceUID=""), STUDY_ROOT_FIND)
        )
        images = list(assoc.send_c_find(study_query("IMAGE", SOPInstanceUID=""), STUDY_ROOT_FIND))
    assert len(scp.index) == 6
    assert [s.Status for s, _ in studies] == [0xFF00, 0x0000]
    assert [s.Status for s, _ in series] == [0xFF00] * 2 + [0x0000]
    assert len(images) == 7
    match = studies[0][1]
    assert match is not None and match.RetrieveAETitle == "QRSCP"
    assert match.QueryRetrieveLevel == "STUDY" and "SeriesInstanceUID" not in match


def test_index_survives_a_restart_and_matching_filters(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_study(store, make_study(3, n_series=1))
    scp = QueryRetrieveSCP("QRSCP", store)
    assert scp.load() == 3
    server = scp.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=scp.handlers)
    try:
        with scu().associate(*server.address, ae_title="QRSCP") as assoc:
            query = study_query("STUDY", PatientName="Nobody*")
            assert [s.Status for s, _ in assoc.send_c_find(query, STUDY_ROOT_FIND)] == [0]
            bad = study_query("FRAME")
            result = list(assoc.send_c_find(bad, STUDY_ROOT_FIND))
            assert result[0][0].Status == 0xA900 and "FRAME" in result[0][0].ErrorComment
    finally:
        server.shutdown()


def test_cancel_over_sockets_stops_an_endless_handler() -> None:
    """Our SCU cancels after two matches; our SCP sees it between two pending responses."""
    closed: list[int] = []

    def endless(event: object) -> Iterator[tuple[int, Dataset]]:
        n = 0
        try:
            while True:
                n += 1
                ds = Dataset()
                ds.StudyInstanceUID = f"1.2.{n}"
                yield 0xFF00, ds
        finally:
            closed.append(n)

    ae = AE("ENDLESS")
    ae.add_supported_context(STUDY_ROOT_FIND)
    server = ae.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, endless)]
    )
    try:
        with scu().associate(*server.address, ae_title="ENDLESS") as assoc:
            seen = []
            for status, _ in assoc.send_c_find(study_query("STUDY"), STUDY_ROOT_FIND):
                seen.append(status.Status)
                if len(seen) == 2:
                    assert assoc.last_message_id is not None
                    assoc.send_c_cancel(assoc.last_message_id)
    finally:
        server.shutdown()
    assert seen[:2] == [0xFF00, 0xFF00] and seen[-1] == 0xFE00
    assert all(code == 0xFF00 for code in seen[:-1])
    assert len(closed) == 1


def test_zero_length_keys_above_the_level_return_the_patient_and_study_values(
    running: tuple[QueryRetrieveSCP, AssociationServer], tmp_path: Path
) -> None:
    """What Orthanc sends to browse series and instances: empty PatientID, AccessionNumber."""
    _, server = running
    study = make_study(2, n_series=1)
    files = write_study(tmp_path / "in", study)
    with scu().associate(*server.address, ae_title="QRSCP") as assoc:
        assert [assoc.send_c_store(f).Status for f in files] == [0] * 2
        for level, model in (("SERIES", STUDY_ROOT_FIND), ("IMAGE", PATIENT_ROOT_FIND)):
            query = study_query(level, PatientID="", AccessionNumber="", SOPInstanceUID="")
            query.StudyInstanceUID = study[0].StudyInstanceUID
            query.SeriesInstanceUID = study[0].SeriesInstanceUID if level == "IMAGE" else ""
            if model == PATIENT_ROOT_FIND:
                query.PatientID = study[0].PatientID
            responses = list(assoc.send_c_find(query, model))
            assert responses[-1][0].Status == 0x0000
            matches = [ds for _, ds in responses[:-1]]
            assert matches and all(ds is not None for ds in matches)
            assert {(ds.PatientID, ds.AccessionNumber) for ds in matches if ds} == {
                (study[0].PatientID, study[0].AccessionNumber)
            }


def test_two_associations_storing_one_uid_into_two_studies_at_once(
    running: tuple[QueryRetrieveSCP, AssociationServer], tmp_path: Path
) -> None:
    """Item 11.7: the index check and the commit are one step; exactly one study gets the UID."""
    scp, server = running
    rounds = 12
    sides = []
    for side in ("A", "B"):
        files = []
        for n in range(rounds):
            ds = make_instance(sop_instance_uid=f"1.2.3.7.{n + 1}", PatientID=f"P{side}")
            files.append(write_instance(tmp_path / f"{side}{n}.dcm", ds))
        sides.append(files)
    barrier = threading.Barrier(2)
    results: dict[int, list[int]] = {n: [] for n in range(rounds)}

    def store(files: list[Path]) -> None:
        with scu().associate(*server.address, ae_title="QRSCP") as assoc:
            for n, path in enumerate(files):
                barrier.wait(timeout=30)
                results[n].append(int(assoc.send_c_store(path).Status))

    threads = [threading.Thread(target=store, args=(files,)) for files in sides]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(sorted(codes) == [0x0000, 0x0117] for codes in results.values()), results
    for n in range(rounds):
        record = scp.index.get(f"1.2.3.7.{n + 1}")
        assert record is not None and record.path is not None
        on_disk = dcmread(record.path, stop_before_pixels=True)
        assert on_disk.PatientID == record.header.PatientID  # the index answers what it delivers
    assert len(list((tmp_path / "store").glob("*.dcm"))) == rounds


def test_fsync_makes_file_and_directory_durable_before_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    scp = QueryRetrieveSCP("QRSCP", tmp_path / "store", fsync=True)
    scp.load()
    server = scp.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=scp.handlers)
    try:
        path = write_instance(tmp_path / "one.dcm", make_instance())
        with scu().associate(*server.address, ae_title="QRSCP") as assoc:
            assert assoc.send_c_store(path).Status == 0
            # The data when the transfer ends, then the directory entry after the rename.
            assert len(synced) == 2
    finally:
        server.shutdown()
