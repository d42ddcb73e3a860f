"""The Q/R SCP's instance index: UID keys narrow the candidates, results stay the same."""

from __future__ import annotations

import copy
from pathlib import Path

from pydicom import Dataset

from dimsefsm.qr.index import INDEXED_TAGS, InstanceIndex, Record
from dimsefsm.qr.matching import compile_query
from tests.data.make import make_study, write_instance, write_study


def load(tmp_path: Path) -> tuple[InstanceIndex, list[Dataset]]:
    studies = [make_study(4, n_series=2), make_study(3, n_series=1), make_study(2, n_series=2)]
    instances = [ds for study in studies for ds in study]
    index = InstanceIndex()
    for n, study in enumerate(studies):
        for path in write_study(tmp_path / f"s{n}", study):
            index.add_file(path)
    return index, instances


def level_query(level: str, unique: str, **keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    setattr(ds, unique, "")
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def image_query(**keys: object) -> Dataset:
    return level_query("IMAGE", "SOPInstanceUID", **keys)


def study_query(**keys: object) -> Dataset:
    return level_query("STUDY", "StudyInstanceUID", **keys)


def uids(records: list[Record]) -> list[str]:
    return [str(r.header.SOPInstanceUID) for r in records]


def full_scan(index: InstanceIndex, query: Dataset) -> list[str]:
    matcher = compile_query(query)
    return [str(r.header.SOPInstanceUID) for r in index.snapshot() if matcher.matches(r.header)]


def test_uid_keys_narrow_the_candidates_in_storage_order(tmp_path: Path) -> None:
    index, instances = load(tmp_path)
    second = [str(ds.SOPInstanceUID) for ds in instances[4:7]]
    study = str(instances[4].StudyInstanceUID)
    assert uids(index.candidates(image_query(StudyInstanceUID=study))) == second
    picked = [str(instances[8].SOPInstanceUID), str(instances[0].SOPInstanceUID)]
    assert uids(index.candidates(image_query(SOPInstanceUID=picked))) == [picked[1], picked[0]]
    series = str(instances[0].SeriesInstanceUID)
    both = image_query(StudyInstanceUID=study, SeriesInstanceUID=series)
    assert index.candidates(both) == []  # that series is in another study
    assert len(index.candidates(image_query())) == len(instances)  # universal keys: all


def test_narrowed_queries_match_exactly_what_a_full_scan_matches(tmp_path: Path) -> None:
    index, instances = load(tmp_path)
    queries = [
        image_query(StudyInstanceUID=str(instances[0].StudyInstanceUID)),
        image_query(SeriesInstanceUID=[str(instances[0].SeriesInstanceUID), "1.2.3.4"]),
        image_query(SOPInstanceUID=str(instances[5].SOPInstanceUID), PatientName="*"),
        image_query(StudyInstanceUID="1.2.3.999"),
    ]
    for query in queries:
        got = [str(r.header.SOPInstanceUID) for r in index.query(query, "study-root")]
        assert got == full_scan(index, query)


def test_a_uid_found_again_in_another_study_keeps_the_first(tmp_path: Path) -> None:
    """Item 11.7: the first study must not lose an instance to a second file of its UID."""
    index, instances = load(tmp_path)
    old_study = str(instances[0].StudyInstanceUID)
    first = index.get(str(instances[0].SOPInstanceUID))
    moved = copy.deepcopy(instances[0])
    moved.StudyInstanceUID = "1.2.3.42"
    assert index.add_file(write_instance(tmp_path / "moved.dcm", moved)) is None
    assert str(moved.SOPInstanceUID) in uids(
        index.candidates(image_query(StudyInstanceUID=old_study))
    )
    assert uids(index.candidates(image_query(StudyInstanceUID="1.2.3.42"))) == []
    assert index.get(str(moved.SOPInstanceUID)) == first
    assert len(index) == len(instances)


def test_a_uid_found_again_in_the_same_series_is_replaced(tmp_path: Path) -> None:
    index, instances = load(tmp_path)
    again = copy.deepcopy(instances[0])
    again.PatientName = "Corrected^Name"
    path = write_instance(tmp_path / "again.dcm", again)
    assert index.add_file(path) is not None
    record = index.get(str(again.SOPInstanceUID))
    assert record is not None and record.path == path
    assert len(index) == len(instances)


def test_a_torn_file_is_not_indexed(tmp_path: Path) -> None:
    """Item 11.9: a file cut short (a crash, a full disk) is not served malformed."""
    index, instances = load(tmp_path)
    torn = copy.deepcopy(instances[0])
    torn.SOPInstanceUID = "1.2.3.4.99"
    path = write_instance(tmp_path / "torn.dcm", torn)
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size - 100)
    assert index.add_file(path) is None
    assert index.get("1.2.3.4.99") is None


def mixed_archive(tmp_path: Path) -> tuple[InstanceIndex, list[list[Dataset]]]:
    """Three studies: CT+MR (5 instances, 2 series), CT (3, 1), US (2, 2); one patient owns two."""
    studies = [
        make_study(5, n_series=2, modalities=("CT", "MR"), patient_id="P1"),
        make_study(3, n_series=1, modalities=("CT",), patient_id="P1"),
        make_study(2, n_series=2, modalities=("US",), patient_id="P2"),
    ]
    index = InstanceIndex()
    for n, study in enumerate(studies):
        for path in write_study(tmp_path / f"s{n}", study):
            index.add_file(path)
    return index, studies


def test_study_level_computed_attributes(tmp_path: Path) -> None:
    index, studies = mixed_archive(tmp_path)
    query = study_query(
        ModalitiesInStudy="",
        NumberOfStudyRelatedSeries="",
        NumberOfStudyRelatedInstances="",
        NumberOfPatientRelatedStudies="",
    )
    found = {
        str(m.record.header.StudyInstanceUID): m.computed for m in index.find(query, "study-root")
    }
    first = found[str(studies[0][0].StudyInstanceUID)]
    assert list(first.ModalitiesInStudy) == ["CT", "MR"]
    assert (first.NumberOfStudyRelatedSeries, first.NumberOfStudyRelatedInstances) == (2, 5)
    assert first.NumberOfPatientRelatedStudies == 2
    third = found[str(studies[2][0].StudyInstanceUID)]
    assert third.ModalitiesInStudy == "US" and third.NumberOfPatientRelatedStudies == 1


def test_modalities_in_study_filters_studies(tmp_path: Path) -> None:
    index, studies = mixed_archive(tmp_path)
    mr = [
        str(m.record.header.StudyInstanceUID)
        for m in index.find(study_query(ModalitiesInStudy="MR"), "study-root")
    ]
    assert mr == [str(studies[0][0].StudyInstanceUID)]
    ct = [
        str(m.record.header.StudyInstanceUID)
        for m in index.find(study_query(ModalitiesInStudy="CT"), "study-root")
    ]
    assert ct == [str(studies[0][0].StudyInstanceUID), str(studies[1][0].StudyInstanceUID)]


def test_series_level_instance_count(tmp_path: Path) -> None:
    index, studies = mixed_archive(tmp_path)
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = str(studies[0][0].StudyInstanceUID)
    query.SeriesInstanceUID = ""
    query.NumberOfSeriesRelatedInstances = ""
    counts = sorted(
        int(m.computed.NumberOfSeriesRelatedInstances) for m in index.find(query, "study-root")
    )
    assert counts == [2, 3]


def test_records_keep_only_the_indexed_attributes(tmp_path: Path) -> None:
    index, _ = load(tmp_path)
    record = index.snapshot()[0]
    kept = {int(elem.tag) for elem in record.header}
    assert kept <= INDEXED_TAGS
    assert 0x00280100 not in kept  # Bits Allocated: no model key
    assert len(record.full_header()) > len(record.header)


def test_a_key_outside_the_index_is_matched_and_returned_from_the_files(tmp_path: Path) -> None:
    """Bits Allocated (0028,0100) is no information-model key: the files answer for it."""
    index, instances = load(tmp_path)
    bits = int(instances[0].BitsAllocated)
    query = image_query(StudyInstanceUID=str(instances[0].StudyInstanceUID), BitsAllocated=bits)
    matches = list(index.find(query, "study-root"))
    assert len(matches) == 4 and all(int(m.header.BitsAllocated) == bits for m in matches)
    assert list(index.find(image_query(BitsAllocated=bits + 8), "study-root")) == []
