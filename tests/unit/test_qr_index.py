"""The Q/R SCP's instance index: UID keys narrow the candidates, results stay the same."""

from __future__ import annotations

import copy
from pathlib import Path

from pydicom import Dataset

from dimsefsm.qr.index import InstanceIndex, Record
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


def image_query(**keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.SOPInstanceUID = ""
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


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


def test_a_re_stored_instance_is_found_under_its_new_study_only(tmp_path: Path) -> None:
    index, instances = load(tmp_path)
    old_study = str(instances[0].StudyInstanceUID)
    moved = copy.deepcopy(instances[0])
    moved.StudyInstanceUID = "1.2.3.42"
    index.add_file(write_instance(tmp_path / "moved.dcm", moved))
    assert str(moved.SOPInstanceUID) not in uids(
        index.candidates(image_query(StudyInstanceUID=old_study))
    )
    assert uids(index.candidates(image_query(StudyInstanceUID="1.2.3.42"))) == [
        str(moved.SOPInstanceUID)
    ]
    assert len(index) == len(instances)
