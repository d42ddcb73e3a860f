"""The archive index and the single-level Q/R models: filing, matching, retrieving, migrating.

Every test runs on SQLite and on PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset
from sqlalchemy import event, func, insert, select, update

from dimsefsm.archive.db.columns import columns_of
from dimsefsm.archive.db.header import header_bytes
from dimsefsm.archive.db.schema import (
    SCHEMA_VERSION,
    family_instance,
    instance,
    patient,
    schema_table,
    series,
    study,
)
from dimsefsm.archive.index import ArchiveIndex, Conflict
from dimsefsm.qr import registry
from tests.data.families import (
    FAMILIES,
    XA_DPP_STORAGE,
    code,
    color_palette,
    defined_procedure_protocol,
    hanging_protocol,
)
from tests.data.make import make_instance, write_instance


@pytest.fixture
def index(tmp_path: Path, database_url: str) -> Iterator[ArchiveIndex]:
    archive = ArchiveIndex(tmp_path / "store", database_url)
    archive.open()
    yield archive
    archive.close()


def filed(index: ArchiveIndex, ds: Dataset, path: Path) -> Path | Conflict:
    write_instance(path, ds)
    return index.file(ds, lambda: path)


def found(index: ArchiveIndex, model: str, **keys: object) -> list[str]:
    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return [str(match.header.SOPInstanceUID) for match in index.find(query, model)]


@pytest.mark.parametrize("model", list(FAMILIES))
def test_each_family_is_filed_found_by_its_key_and_retrieved(
    index: ArchiveIndex, tmp_path: Path, model: str
) -> None:
    build, keys = FAMILIES[model]
    ds = build()
    other = make_instance()
    assert filed(index, ds, tmp_path / "family.dcm") == tmp_path / "family.dcm"
    assert filed(index, other, tmp_path / "ct.dcm") == tmp_path / "ct.dcm"
    uid = str(ds.SOPInstanceUID)
    assert found(index, model, SOPInstanceUID="", **keys) == [uid]
    assert found(index, model, SOPInstanceUID=uid) == [uid]
    assert found(index, model, SOPInstanceUID="1.2.3.4.5") == []
    # Another model's query does not see it, nor does a patient's.
    others = [m for m in FAMILIES if m != model]
    assert found(index, others[0], SOPInstanceUID="") == []
    study_query = Dataset()
    study_query.QueryRetrieveLevel = "IMAGE"
    study_query.SOPInstanceUID = uid
    assert list(index.query(study_query, registry.STUDY_ROOT)) == []
    retrieve = Dataset()
    retrieve.SOPInstanceUID = [uid, "1.2.3.4.5"]
    assert [record.path for record in index.query(retrieve, model)] == [tmp_path / "family.dcm"]
    assert len(index) == 2
    record = index.get(uid)
    assert record is not None and record.path == tmp_path / "family.dcm"


def test_hanging_protocol_user_sequence_matching(index: ArchiveIndex, tmp_path: Path) -> None:
    """PS3.4 U.6.1.2: the user code sequence is matched item by item (C.2.2.2.6)."""
    mine, theirs = hanging_protocol(user="jdoe"), hanging_protocol(user="asmith")
    assert isinstance(filed(index, mine, tmp_path / "a.dcm"), Path)
    assert isinstance(filed(index, theirs, tmp_path / "b.dcm"), Path)
    model = registry.HANGING_PROTOCOL
    key = Dataset()
    key.CodeValue = "asmith"
    key.CodingSchemeDesignator = "99HOSP"
    assert found(index, model, HangingProtocolUserIdentificationCodeSequence=[key]) == [
        str(theirs.SOPInstanceUID)
    ]
    wild = Dataset()
    wild.CodeValue = "*doe"
    assert found(index, model, HangingProtocolUserIdentificationCodeSequence=[wild]) == [
        str(mine.SOPInstanceUID)
    ]
    definition = Dataset()
    definition.Modality = "MR"
    assert found(index, model, HangingProtocolDefinitionSequence=[definition]) == []
    definition.Modality = "CT"
    definition.AnatomicRegionSequence = [code("T-D3000", "SRT", "")]
    assert len(found(index, model, HangingProtocolDefinitionSequence=[definition])) == 2
    assert found(index, model, HangingProtocolLevel="SITE") == []


def test_dpp_equipment_keys_and_class_list(index: ArchiveIndex, tmp_path: Path) -> None:
    """HH.6.1.2: Equipment Modality and the Model Specification Sequence's Manufacturer;
    both DPP storage classes are one model, told apart by SOP Class UID."""
    ct = defined_procedure_protocol(manufacturer="Acme")
    xa = defined_procedure_protocol(sop_class=XA_DPP_STORAGE, manufacturer="Other")
    assert isinstance(filed(index, ct, tmp_path / "ct.dcm"), Path)
    assert isinstance(filed(index, xa, tmp_path / "xa.dcm"), Path)
    model = registry.DEFINED_PROCEDURE_PROTOCOL
    spec = Dataset()
    spec.Manufacturer = "Ac*"
    assert found(index, model, ModelSpecificationSequence=[spec]) == [str(ct.SOPInstanceUID)]
    assert found(index, model, EquipmentModality="XA") == [str(xa.SOPInstanceUID)]
    assert found(index, model, SOPClassUID=XA_DPP_STORAGE) == [str(xa.SOPInstanceUID)]
    assert len(found(index, model, InstanceCreationDate="20250101-")) == 2
    assert found(index, model, InstanceCreationDate="-20241231") == []


def test_implant_effective_datetime_range(index: ArchiveIndex, tmp_path: Path) -> None:
    build, _ = FAMILIES[registry.GENERIC_IMPLANT_TEMPLATE]
    ds = build()
    assert isinstance(filed(index, ds, tmp_path / "t.dcm"), Path)
    model = registry.GENERIC_IMPLANT_TEMPLATE
    assert found(index, model, EffectiveDateTime="2024-2024") == [str(ds.SOPInstanceUID)]
    assert found(index, model, EffectiveDateTime="2025-") == []


def test_a_uid_keeps_its_place_across_families_and_patients(
    index: ArchiveIndex, tmp_path: Path
) -> None:
    """One UID, one place: a re-store of the same class replaces the file; one as another
    family's class, or as a patient's instance, is refused and the first file stays."""
    palette = color_palette()
    uid = str(palette.SOPInstanceUID)
    assert filed(index, palette, tmp_path / "first.dcm") == tmp_path / "first.dcm"
    assert filed(index, palette, tmp_path / "again.dcm") == tmp_path / "again.dcm"
    as_hp = hanging_protocol(uid)
    refused = filed(index, as_hp, tmp_path / "hp.dcm")
    assert isinstance(refused, Conflict) and refused.path == tmp_path / "again.dcm"
    assert refused.sop_class_uid == str(palette.SOPClassUID)
    assert "another SOP class" in refused.place
    as_ct = make_instance(SOPInstanceUID=uid)
    assert isinstance(filed(index, as_ct, tmp_path / "ct.dcm"), Conflict)
    ct = make_instance()
    assert isinstance(filed(index, ct, tmp_path / "ct2.dcm"), Path)
    as_family = color_palette(str(ct.SOPInstanceUID))
    refused = filed(index, as_family, tmp_path / "cp.dcm")
    assert isinstance(refused, Conflict) and refused.sop_class_uid is None
    assert refused.path == tmp_path / "ct2.dcm"
    record = index.get(uid)
    assert record is not None and record.path == tmp_path / "again.dcm"
    assert len(index) == 2


def test_a_failed_commit_leaves_no_row(index: ArchiveIndex, tmp_path: Path) -> None:
    """The rename failing (disk full) rolls the family row back: nothing half-filed."""

    def full() -> Path:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        index.file(hanging_protocol(), full)
    assert len(index) == 0


def test_one_uid_filed_as_two_classes_at_once_has_one_winner(
    tmp_path: Path, database_url: str
) -> None:
    """Two nodes (two indexes on one database) filing one UID into the two tables at once.

    While node A is inside its filing transaction (its row inserted, not committed),
    node B files a CT image of the same UID.  B must wait for A (PostgreSQL: the
    per-UID lock; SQLite: the write transaction) and then be refused; without the lock
    each checked the other's table, saw nothing and both won.  The bounded wait below
    is how long B is given to finish early, which only the broken code does.
    """
    nodes = [ArchiveIndex(tmp_path / "store", database_url) for _ in range(2)]
    for node in nodes:
        node.open()
    uid = "1.2.826.0.1.3680043.9.7133.77"
    protocol, image = hanging_protocol(uid), make_instance(SOPInstanceUID=uid)
    b_outcome: list[Path | Conflict] = []
    b_done = threading.Event()

    def node_b() -> None:
        path = write_instance(tmp_path / "b.dcm", image)
        b_outcome.append(nodes[1].file(image, lambda: path))
        b_done.set()

    thread = threading.Thread(target=node_b)

    @event.listens_for(nodes[0].engine, "before_cursor_execute")
    def b_meanwhile(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("INSERT INTO family_instance") and not thread.is_alive():
            thread.start()
            assert not b_done.wait(timeout=2), "node B filed while node A was filing"

    try:
        a_path = write_instance(tmp_path / "a.dcm", protocol)
        assert nodes[0].file(protocol, lambda: a_path) == a_path
        thread.join(timeout=60)
        assert len(b_outcome) == 1 and isinstance(b_outcome[0], Conflict)
        assert len(nodes[0]) == 1
    finally:
        for node in nodes:
            node.close()


def _as_version_4(index: ArchiveIndex, ds: Dataset, path: Path) -> None:
    """File ``ds`` as version 4 did: under the empty Patient ID, study and series."""
    identity, levels = columns_of(ds)
    with index.engine.begin() as connection:

        def new_row(statement: Any) -> int:
            key = connection.execute(statement).inserted_primary_key
            assert key is not None
            return int(key[0])

        patient_pk = new_row(insert(patient).values(patient_id=""))
        study_pk = new_row(insert(study).values(patient_pk=patient_pk, study_uid=""))
        series_pk = new_row(insert(series).values(study_pk=study_pk, series_uid=""))
        connection.execute(
            insert(instance).values(
                dict(
                    levels["IMAGE"],
                    series_pk=series_pk,
                    sop_uid=identity[3],
                    path=str(path),
                    header=header_bytes(ds),
                )
            )
        )
        family_instance.drop(connection)
        connection.execute(update(schema_table).values(version=4))


def test_an_index_of_version_4_moves_its_family_instances_at_start(
    tmp_path: Path, database_url: str
) -> None:
    archive = ArchiveIndex(tmp_path / "store", database_url)
    archive.open()
    ct = make_instance()
    assert isinstance(filed(archive, ct, tmp_path / "ct.dcm"), Path)
    protocol = hanging_protocol()
    _as_version_4(archive, protocol, tmp_path / "hp.dcm")
    archive.close()
    archive = ArchiveIndex(tmp_path / "store", database_url)
    archive.open()
    try:
        uid = str(protocol.SOPInstanceUID)
        assert found(archive, registry.HANGING_PROTOCOL, SOPInstanceUID="") == [uid]
        with archive.engine.connect() as connection:
            version = connection.execute(select(schema_table.c.version)).scalar_one()
            patients = connection.execute(select(patient.c.patient_id)).scalars().all()
            counts = [
                connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (instance, family_instance)
            ]
        assert version == SCHEMA_VERSION == 5
        assert patients == [str(ct.PatientID)]  # the empty place went with its instance
        assert counts == [1, 1]
        record = archive.get(uid)
        assert record is not None and record.path == tmp_path / "hp.dcm"
    finally:
        archive.close()


def test_files_of_each_family_found_on_disk_are_imported_once(
    index: ArchiveIndex, tmp_path: Path
) -> None:
    """``--import`` (and the first start over a storage directory) files them like a C-STORE."""
    folder = tmp_path / "old"
    folder.mkdir()
    uids = {}
    for model, (build, _keys) in FAMILIES.items():
        ds = build()
        write_instance(folder / f"{model}.dcm", ds)
        uids[model] = str(ds.SOPInstanceUID)
    counts = index.import_directory(folder)
    assert (counts.imported, counts.skipped, counts.refused) == (len(FAMILIES), 0, 0)
    for model, uid in uids.items():
        assert found(index, model, SOPInstanceUID="") == [uid]
    again = index.import_directory(folder)
    assert (again.imported, again.skipped) == (0, len(FAMILIES))
