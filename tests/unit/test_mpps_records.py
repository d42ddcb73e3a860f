"""MPPS records in the index database (SQLite and PostgreSQL): atomic, per instance, durable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.tag import Tag
from sqlalchemy import inspect, select, update

from dimsefsm import status as st
from dimsefsm.archive.db.schema import SCHEMA_VERSION, family_instance, mpps, schema_table
from dimsefsm.archive.index import ArchiveIndex
from dimsefsm.archive.mpps import ModalityPerformedProcedureStepSCP, ProcedureStepRecords
from tests.unit.mpps_data import create_attributes, final_attributes

UID = "1.2.826.0.1.3680043.10.1.7"


@pytest.fixture
def index(tmp_path: Path, database_url: str) -> Iterator[ArchiveIndex]:
    archive = ArchiveIndex(tmp_path, database_url)
    archive.open()
    try:
        yield archive
    finally:
        archive.close()


@pytest.fixture
def records(index: ArchiveIndex) -> ProcedureStepRecords:
    return ProcedureStepRecords(lambda: index.engine)


def stored_row(index: ArchiveIndex, uid: str = UID) -> Any:
    with index.engine.connect() as connection:
        return connection.execute(select(mpps).where(mpps.c.sop_uid == uid)).first()


def test_a_step_is_kept_and_survives_a_restart(
    tmp_path: Path, database_url: str, records: ProcedureStepRecords, index: ArchiveIndex
) -> None:
    assert records.create(UID, create_attributes()).status == st.SUCCESS
    assert records.set(UID, final_attributes()).status == st.SUCCESS
    index.close()
    again = ArchiveIndex(tmp_path, database_url)
    again.open()
    try:
        reopened = ProcedureStepRecords(lambda: again.engine)
        assert reopened.status_of(UID) == "COMPLETED"
        outcome = reopened.get(UID, [Tag("PerformedProcedureStepStatus"), Tag("PatientID")])
        assert outcome.status == st.SUCCESS
        assert outcome.attributes is not None
        assert outcome.attributes.PatientID == "P1"
        late = Dataset()
        late.PerformedProcedureStepDescription = "late"
        refused = reopened.set(UID, late)
        assert refused.status == st.PROCESSING_FAILURE
        assert refused.error_id == 0xA710
    finally:
        again.close()


def test_a_refused_set_leaves_the_row_as_it_was(
    records: ProcedureStepRecords, index: ArchiveIndex
) -> None:
    records.create(UID, create_attributes())
    before = stored_row(index)
    modification = final_attributes()
    del modification.PerformedProcedureStepEndTime
    assert records.set(UID, modification).status == st.PROCESSING_FAILURE
    assert stored_row(index) == before
    records.set(UID, final_attributes())
    completed = stored_row(index)
    assert completed.status == "COMPLETED"
    assert records.set(UID, final_attributes("DISCONTINUED")).status == st.PROCESSING_FAILURE
    assert stored_row(index) == completed


def test_a_duplicate_create_keeps_the_first(
    records: ProcedureStepRecords, index: ArchiveIndex
) -> None:
    records.create(UID, create_attributes())
    before = stored_row(index)
    other = create_attributes()
    other.PatientID = "P2"
    outcome = records.create(UID, other)
    assert outcome.status == st.DUPLICATE_SOP_INSTANCE
    assert stored_row(index) == before
    assert records.create("1.2.3.4", create_attributes()).status == st.SUCCESS
    assert stored_row(index, "1.2.3.4").patient_id == "P1"


def test_steps_created_at_once_get_one_success(records: ProcedureStepRecords) -> None:
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def create() -> None:
        barrier.wait(timeout=30)
        statuses.append(records.create(UID, create_attributes()).status)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [st.SUCCESS] + [st.DUPLICATE_SOP_INSTANCE] * 3


def test_an_index_of_schema_version_2_gets_the_mpps_table(
    tmp_path: Path, database_url: str
) -> None:
    archive = ArchiveIndex(tmp_path, database_url)
    archive.open()
    with archive.engine.begin() as connection:  # what version 2 had: no mpps table
        mpps.drop(connection)
        family_instance.drop(connection)  # nor the single-level models' (version 4)
        connection.execute(update(schema_table).values(version=2))
    archive.close()
    archive = ArchiveIndex(tmp_path, database_url)
    archive.open()
    try:
        with archive.engine.connect() as connection:
            version = connection.execute(select(schema_table.c.version)).scalar_one()
            assert "mpps" in inspect(connection).get_table_names()
        assert version == SCHEMA_VERSION
        records = ProcedureStepRecords(lambda: archive.engine)
        assert records.create(UID, create_attributes()).status == st.SUCCESS
    finally:
        archive.close()


# -- the handlers, with the events the DIMSE-N core hands them ---------------------------------


def event(command: dict[str, Any], **fields: Any) -> Any:
    negotiated = SimpleNamespace(peer_ae="MODALITY")
    return SimpleNamespace(
        request=SimpleNamespace(command=command),
        assoc=SimpleNamespace(negotiated=negotiated),
        **fields,
    )


def test_the_scp_assigns_a_uid_when_the_request_has_none(records: ProcedureStepRecords) -> None:
    scp = ModalityPerformedProcedureStepSCP(records)
    status, attributes = scp.on_n_create(event({}, attribute_list=create_attributes()))
    assert status.Status == st.SUCCESS
    assert attributes is not None and list(attributes.keys()) == [Tag("SOPInstanceUID")]
    assert records.status_of(attributes.SOPInstanceUID) == "IN PROGRESS"
    status, answer = scp.on_n_create(
        event({"AffectedSOPInstanceUID": UID}, attribute_list=create_attributes())
    )
    assert (status.Status, answer) == (st.SUCCESS, None)  # the SCU knows what it sent


def test_the_scp_answers_missing_attributes_with_their_tags(records: ProcedureStepRecords) -> None:
    scp = ModalityPerformedProcedureStepSCP(records)
    attributes = create_attributes()
    del attributes.PerformedStationAETitle
    del attributes.Modality
    status, answer = scp.on_n_create(
        event({"AffectedSOPInstanceUID": UID}, attribute_list=attributes)
    )
    assert status.Status == st.MISSING_ATTRIBUTE
    assert list(status.AttributeIdentifierList) == [Tag("Modality"), Tag("PerformedStationAETitle")]
    assert "Modality" in status.ErrorComment
    assert answer is None
    assert records.status_of(UID) is None


def test_the_scp_sets_and_gets(records: ProcedureStepRecords) -> None:
    scp = ModalityPerformedProcedureStepSCP(records)
    scp.on_n_create(event({"AffectedSOPInstanceUID": UID}, attribute_list=create_attributes()))
    status, changed = scp.on_n_set(
        event({"RequestedSOPInstanceUID": UID}, modification_list=final_attributes())
    )
    assert (status.Status, changed) == (st.SUCCESS, None)
    assert records.status_of(UID) == "COMPLETED"
    status, got = scp.on_n_get(
        event({"RequestedSOPInstanceUID": UID}, attribute_identifiers=[Tag("Modality")])
    )
    assert status.Status == st.SUCCESS
    assert got is not None and [e.keyword for e in got] == ["Modality"]
    status, _ = scp.on_n_set(
        event({"RequestedSOPInstanceUID": UID}, modification_list=final_attributes())
    )
    assert status.Status == st.PROCESSING_FAILURE
    assert status.ErrorComment == "Performed Procedure Step Object may no longer be updated"
    assert status.ErrorID == 0xA710


class _Refusing:
    """An access policy under which MODALITY may not store."""

    def may(self, calling: str, permission: str) -> bool:
        return not (calling == "MODALITY" and permission == "store")


def test_a_peer_that_may_not_store_may_not_report_steps(records: ProcedureStepRecords) -> None:
    scp = ModalityPerformedProcedureStepSCP(records, _Refusing())  # type: ignore[arg-type]
    status, answer = scp.on_n_create(
        event({"AffectedSOPInstanceUID": UID}, attribute_list=create_attributes())
    )
    assert (status.Status, answer) == (st.NOT_AUTHORIZED, None)
    assert status.ErrorComment == "MODALITY may not report procedure steps"
    status, _ = scp.on_n_set(
        event({"RequestedSOPInstanceUID": UID}, modification_list=final_attributes())
    )
    assert status.Status == st.NOT_AUTHORIZED
    assert records.status_of(UID) is None


def test_a_damaged_row_fails_0x0110_and_stays_as_it_was(
    records: ProcedureStepRecords, index: ArchiveIndex
) -> None:
    records.create(UID, create_attributes())
    with index.engine.begin() as connection:
        connection.execute(update(mpps).values(attributes=b"\x08\x00\x05\x00CS\xff\xffbad"))
    before = stored_row(index)
    scp = ModalityPerformedProcedureStepSCP(records)
    status, _ = scp.on_n_set(
        event({"RequestedSOPInstanceUID": UID}, modification_list=final_attributes())
    )
    assert status.Status == st.PROCESSING_FAILURE
    assert status.ErrorComment == "the stored step is unreadable; nothing changed"
    assert stored_row(index) == before


def test_attributes_that_cannot_be_encoded_are_refused_and_nothing_is_written(
    records: ProcedureStepRecords, index: ArchiveIndex
) -> None:
    scp = ModalityPerformedProcedureStepSCP(records)
    attributes = create_attributes()
    attributes.add_new(0x00091001, "US", "not a number")  # a value its VR cannot write
    status, _ = scp.on_n_create(event({"AffectedSOPInstanceUID": UID}, attribute_list=attributes))
    assert status.Status == st.INVALID_ATTRIBUTE_VALUE
    assert stored_row(index) is None
