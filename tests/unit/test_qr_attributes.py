"""Keys outside the index's columns: narrowed in SQL by the per-series attribute values.

The matcher still decides every key; ``series_attribute`` only keeps it from
reading the header of every instance of the archive.  So each test checks
both: the same answers as the matcher over every header, and how many
headers were read to give them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import delete, func, select, update

import dimsefsm.archive.index as index_module
from dimsefsm.archive.db.attributes import VALUE_LENGTH, attribute_rows, is_kept
from dimsefsm.archive.db.header import header_of
from dimsefsm.archive.db.schema import (
    SCHEMA_VERSION,
    family_instance,
    open_engine,
    schema_table,
    series_attribute,
)
from dimsefsm.archive.index import ArchiveIndex
from dimsefsm.qr.matching import compile_query
from tests.data.make import make_instance, write_instance

SERIES = 6
PER_SERIES = 3
LONG_COMMENT = "x" * (VALUE_LENGTH + 10) + "needle"


@pytest.fixture
def index(tmp_path: Path, database_url: str) -> Iterator[ArchiveIndex]:
    archive = ArchiveIndex(tmp_path, database_url)
    archive.open()
    yield archive
    archive.close()


def fill(index: ArchiveIndex, folder: Path) -> list[Dataset]:
    """Two patients' studies, six series of three; series 2 is the only one of operator
    ``Tech^Rare``; one instance carries a long Image Comments and a multi-valued key."""
    folder.mkdir(parents=True, exist_ok=True)
    studies = [generate_uid(), generate_uid()]
    instances = []
    for number in range(SERIES):
        series_uid = generate_uid()
        for position in range(PER_SERIES):
            attrs: dict[str, Any] = {
                "PatientID": f"PID{number % 2}",
                "StudyInstanceUID": studies[number % 2],
                "SeriesInstanceUID": series_uid,
                "OperatorsName": "Tech^Rare" if number == 2 else f"Tech^Op{number}",
                "InstanceNumber": position + 1,
                "ProtocolName": f"Protocol 50%_{number}",
            }
            if (number, position) == (4, 1):
                attrs["ImageComments"] = LONG_COMMENT
                attrs["ImageType"] = ["DERIVED", "SECONDARY", "MPR"]
                attrs["OperatorsName"] = ["Smith", "Tech^Op4"]
            ds = make_instance(**attrs)
            write_instance(folder / f"{ds.SOPInstanceUID}.dcm", ds)
            assert index.add_file(folder / f"{ds.SOPInstanceUID}.dcm") is not None
            instances.append(ds)
    return instances


def query(level: str, **keys: object) -> Dataset:
    unique = {"STUDY": "StudyInstanceUID", "IMAGE": "SOPInstanceUID"}[level]
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    setattr(ds, unique, "")
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def expected(instances: list[Dataset], level: str, **keys: object) -> list[str]:
    """What the matcher accepts over every instance, as study or instance UIDs."""
    matcher = compile_query(query(level, **keys))
    unique = "StudyInstanceUID" if level == "STUDY" else "SOPInstanceUID"
    found = [str(ds[unique].value) for ds in instances if matcher.matches(ds)]
    return sorted(set(found))


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the headers the index decodes to answer a query."""
    calls: list[int] = []

    def counting(blob: bytes) -> Dataset:
        calls.append(1)
        return header_of(blob)

    monkeypatch.setattr(index_module, "header_of", counting)
    return calls


def answer(index: ArchiveIndex, level: str, **keys: object) -> list[str]:
    unique = "StudyInstanceUID" if level == "STUDY" else "SOPInstanceUID"
    matches = index.find(query(level, **keys), "study-root")
    return sorted(str(m.header[unique].value) for m in matches)


@pytest.mark.parametrize(
    ("level", "keys"),
    [
        ("STUDY", {"OperatorsName": "Tech^Rare"}),
        ("STUDY", {"OperatorsName": "Tech^Ra*"}),
        ("STUDY", {"OperatorsName": "T?ch^Rare^^"}),  # trailing ^ are not significant
        ("IMAGE", {"OperatorsName": "Tech^Rare"}),
        ("IMAGE", {"OperatorsName": "Smith^*"}),  # "SMITH^*" accepts a stored "Smith"
        ("IMAGE", {"ImageType": "MPR"}),  # a multi-valued candidate
        ("IMAGE", {"ImageType": ["SECONDARY", "DERIVED"]}),  # every key value matched
        ("IMAGE", {"ImageComments": "*needle"}),  # beyond the kept characters
        ("IMAGE", {"ProtocolName": "Protocol 50%_3"}),  # LIKE's own wild cards as text
        ("IMAGE", {"ProtocolName": "Protocol 5?%_3*"}),
    ],
)
def test_a_key_outside_the_columns_reads_only_the_headers_that_may_match(
    index: ArchiveIndex,
    tmp_path: Path,
    decoded: list[int],
    level: str,
    keys: dict[str, object],
) -> None:
    instances = fill(index, tmp_path / "files")
    decoded.clear()
    found = answer(index, level, **keys)
    assert found and found == expected(instances, level, **keys)
    # One or two series hold such a value: their instances' headers, not all 18.
    assert 0 < len(decoded) <= 2 * PER_SERIES


def test_a_key_no_instance_matches_reads_no_header(
    index: ArchiveIndex, tmp_path: Path, decoded: list[int]
) -> None:
    fill(index, tmp_path / "files")
    decoded.clear()
    assert answer(index, "STUDY", OperatorsName="Nobody*") == []
    assert decoded == []


def test_keys_the_values_cannot_narrow_are_still_matched_on_every_header(
    index: ArchiveIndex, tmp_path: Path, decoded: list[int]
) -> None:
    """Numbers, dates and empty value matching: the matcher alone, as before."""
    instances = fill(index, tmp_path / "files")
    for keys in ({"InstanceNumber": "2"}, {"OperatorsName": '""'}, {"OperatorsName": "*?*"}):
        decoded.clear()
        assert answer(index, "IMAGE", **keys) == expected(instances, "IMAGE", **keys)
        assert len(decoded) == SERIES * PER_SERIES


def test_each_series_keeps_each_distinct_value_once(index: ArchiveIndex, tmp_path: Path) -> None:
    fill(index, tmp_path / "files")
    operators = 0x00081070
    with index.engine.connect() as connection:
        rows = connection.execute(
            select(series_attribute.c.value, func.count())
            .where(series_attribute.c.tag == operators)
            .group_by(series_attribute.c.value)
            .order_by(series_attribute.c.value)
        ).all()
        truncated = connection.execute(
            select(series_attribute.c.value).where(series_attribute.c.truncated == 1)
        ).scalars()
        assert list(truncated) == [LONG_COMMENT[:VALUE_LENGTH]]
    # Series-level values once per series, not once per instance.
    assert [tuple(row) for row in rows] == [
        ("Smith\\Tech^Op4", 1),
        ("Tech^Op0", 1),
        ("Tech^Op1", 1),
        ("Tech^Op3", 1),
        ("Tech^Op4", 1),
        ("Tech^Op5", 1),
        ("Tech^Rare", 1),
    ]


def test_only_public_text_attributes_outside_the_columns_are_kept() -> None:
    ds = make_instance(OperatorsName="A^B", InstanceNumber=3)
    ds.add_new(0x00091010, "LO", "private")
    kept = {tag for tag, _, _ in attribute_rows(ds)}
    assert 0x00081070 in kept  # Operators' Name
    assert 0x00200013 not in kept  # Instance Number: IS, left to the matcher
    assert 0x00100020 not in kept and not is_kept(0x00100020)  # Patient ID: a column
    assert 0x00091010 not in kept  # private
    assert 0x7FE00010 not in kept


def test_an_index_of_schema_version_1_gets_the_attribute_values_at_start(
    tmp_path: Path, database_url: str
) -> None:
    """The table is created and filled from the kept headers, once, in the schema check."""
    archive = ArchiveIndex(tmp_path, database_url)
    archive.open()
    instances = fill(archive, tmp_path / "files")
    with archive.engine.begin() as connection:  # what version 1 had: no attribute values
        connection.execute(delete(series_attribute))
        series_attribute.drop(connection)
        family_instance.drop(connection)  # nor the single-level models' table (version 4)
        connection.execute(update(schema_table).values(version=1))
    archive.close()
    archive = ArchiveIndex(tmp_path, database_url)
    archive.open()
    try:
        with archive.engine.connect() as connection:
            version = connection.execute(select(schema_table.c.version)).scalar_one()
            count = connection.execute(select(func.count()).select_from(series_attribute))
            assert count.scalar_one() > 0
        assert version == SCHEMA_VERSION
        found = answer(archive, "STUDY", OperatorsName="Tech^Rare")
        assert found == expected(instances, "STUDY", OperatorsName="Tech^Rare")
    finally:
        archive.close()
    open_engine(database_url).dispose()  # a second start changes nothing


def test_an_entity_already_answered_has_no_other_header_read(
    index: ArchiveIndex, tmp_path: Path, decoded: list[int]
) -> None:
    """An instance key every instance matches, at STUDY level: one header per study."""
    instances = fill(index, tmp_path / "files")
    decoded.clear()
    keys = {"ImageType": "ORIGINAL"}
    assert answer(index, "STUDY", **keys) == expected(instances, "STUDY", **keys)
    assert len(decoded) == 2
