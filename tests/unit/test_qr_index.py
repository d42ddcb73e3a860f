"""The Q/R SCP's database index: same answers as the matcher, from SQL, without opening files."""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import Dataset
from sqlalchemy import insert, update

from dimsefsm.archive.db.query import compile_find, like_pattern
from dimsefsm.archive.db.schema import SCHEMA_VERSION, SchemaError, open_engine, schema_table
from dimsefsm.archive.index import ArchiveIndex, Match, Record
from dimsefsm.qr.matching import compile_query
from tests.data.make import make_instance, make_study, write_instance, write_study
from tests.pg import BACKENDS, index_url

# The archive holds malformed dates on purpose: pydicom warns when it reads them.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")


@pytest.fixture
def index(tmp_path: Path, database_url: str) -> Iterator[ArchiveIndex]:
    """On SQLite and on PostgreSQL: the same queries, the same answers."""
    archive = ArchiveIndex(tmp_path, database_url)
    archive.open()
    yield archive
    archive.close()


def load(index: ArchiveIndex, tmp_path: Path) -> list[Dataset]:
    studies = [make_study(4, n_series=2), make_study(3, n_series=1), make_study(2, n_series=2)]
    for n, study in enumerate(studies):
        for path in write_study(tmp_path / f"s{n}", study):
            assert index.add_file(path) is not None
    return [ds for study in studies for ds in study]


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


def uids(records: Iterator[Record] | list[Record]) -> list[str]:
    """The SOP Instance UIDs of retrieve records, by their files' names (``<UID>.dcm``)."""
    return [r.path.stem for r in records if r.path is not None]


def everything(index: ArchiveIndex) -> list[Dataset]:
    return [m.header for m in index.find(image_query(), "study-root")]


def full_scan(index: ArchiveIndex, query: Dataset) -> list[str]:
    matcher = compile_query(query)
    return [str(h.SOPInstanceUID) for h in everything(index) if matcher.matches(h)]


def test_uid_keys_select_their_instances_in_storage_order(
    index: ArchiveIndex, tmp_path: Path
) -> None:
    instances = load(index, tmp_path)
    second = [str(ds.SOPInstanceUID) for ds in instances[4:7]]
    study = str(instances[4].StudyInstanceUID)
    assert uids(index.query(image_query(StudyInstanceUID=study), "study-root")) == second
    picked = [str(instances[8].SOPInstanceUID), str(instances[0].SOPInstanceUID)]
    got = uids(index.query(image_query(SOPInstanceUID=picked), "study-root"))
    assert got == [picked[1], picked[0]]
    series = str(instances[0].SeriesInstanceUID)
    both = image_query(StudyInstanceUID=study, SeriesInstanceUID=series)
    assert list(index.query(both, "study-root")) == []  # that series is in another study
    assert len(everything(index)) == len(instances) == len(index)


def test_uid_queries_match_exactly_what_a_full_scan_matches(
    index: ArchiveIndex, tmp_path: Path
) -> None:
    instances = load(index, tmp_path)
    queries = [
        image_query(StudyInstanceUID=str(instances[0].StudyInstanceUID)),
        image_query(SeriesInstanceUID=[str(instances[0].SeriesInstanceUID), "1.2.3.4"]),
        image_query(SOPInstanceUID=str(instances[5].SOPInstanceUID), PatientName="*"),
        image_query(StudyInstanceUID="1.2.3.999"),
    ]
    for query in queries:
        got = [str(m.header.SOPInstanceUID) for m in index.find(query, "study-root")]
        assert got == full_scan(index, query)


# -- SQL answers what the matcher answers --------------------------------------------------
VARIED = [
    {"PatientName": "Smith^John", "PatientID": "P1", "StudyDate": "20240115", "Modality": "CT"},
    {"PatientName": "Smith", "PatientID": "P2", "StudyDate": "20240116", "Modality": "MR"},
    {"PatientName": "SMITH^JOHN^^^", "PatientID": "P3", "StudyDate": "20231231"},
    {"PatientName": "Smyth^Jon=Sumisu^Jon", "PatientID": "P%4", "StudyDate": "2024.02.01"},
    {"PatientName": "O_Brien^Pat", "PatientID": "P_5", "StudyTime": "235959.5"},
    {"PatientName": "", "PatientID": "", "AccessionNumber": "", "StudyTime": "0800"},
    {"PatientName": "Müller^Jürgen", "PatientID": "P6", "StudyDate": "bad", "StudyTime": "12"},
    {"PatientName": "Smith^*", "PatientID": "P*7", "StudyDescription": "Chest*Abdomen"},
    {"PatientName": "Jones", "PatientID": "P8", "PatientComments": "Likes tea"},
    {"PatientName": "Jones", "PatientID": "P9", "PatientComments": "Likes coffee"},
    {"PatientName": "Jones", "PatientID": "P9", "OperatorsName": "Tech^Tom"},
]

QUERIES = [
    {"PatientName": "Smith^John"},
    {"PatientName": "smith^john"},
    {"PatientName": "Smith*"},
    {"PatientName": "Smith^*"},
    {"PatientName": "S?ith^J*"},
    {"PatientName": "*^J?hn"},
    {"PatientName": "SMITH^JOHN"},
    {"PatientName": "Smyth^Jon"},
    {"PatientName": "Smyth^Jon=Sumisu^Jon"},
    {"PatientName": "O_Brien*"},
    {"PatientName": "O?Brien*"},
    {"PatientName": "M?ller*"},
    {"PatientName": '""'},
    {"PatientName": "*"},
    {"PatientName": "*^*"},
    {"PatientID": "P%4"},
    {"PatientID": "P%*"},
    {"PatientID": "P_*"},
    {"PatientID": "P?5"},
    {"PatientID": "P\\*"},
    {"PatientID": '""'},
    {"PatientID": "p1"},
    {"AccessionNumber": '""'},
    {"AccessionNumber": "ACC*"},
    {"StudyDescription": "Chest*"},
    {"StudyDate": "20240115"},
    {"StudyDate": "20240101-"},
    {"StudyDate": "-20231231"},
    {"StudyDate": "20240116-20240201"},
    {"StudyDate": "2024.01.15"},
    {"StudyDate": "-"},
    {"StudyDate": "garbage"},
    {"StudyTime": "1015"},
    {"StudyTime": "10-12"},
    {"StudyTime": "2359-"},
    {"StudyTime": "-0800"},
    {"StudyDate": "20240115", "PatientName": "Smith*"},
    {"PatientComments": "Likes*"},
    {"PatientComments": "*tea", "PatientName": "Jones"},
    {"BitsAllocated": 16, "PatientName": "Jones"},
    {"OperatorsName": "Tech*"},
]


@pytest.fixture(scope="module", params=BACKENDS)
def varied(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArchiveIndex]:
    """Built once per back end: the queries only read it."""
    directory = tmp_path_factory.mktemp("varied")
    index = ArchiveIndex(directory, index_url(request.param, directory / "store", request))
    for n, attrs in enumerate(VARIED):
        ds = make_instance(**attrs)  # type: ignore[arg-type]
        assert index.add_file(write_instance(directory / f"v{n}.dcm", ds)) is not None
    yield index
    index.close()


@pytest.mark.parametrize("keys", QUERIES, ids=lambda keys: repr(keys))
@pytest.mark.parametrize("level", ["IMAGE", "STUDY"])
def test_sql_matches_what_the_matcher_matches(
    varied: ArchiveIndex, keys: dict[str, str], level: str
) -> None:
    query = image_query(**keys) if level == "IMAGE" else study_query(**keys)
    got = [str(m.header.SOPInstanceUID) for m in varied.find(query, "study-root")]
    assert got == full_scan(varied, query)


def test_column_keys_are_decided_in_sql_and_others_by_the_matcher() -> None:
    in_sql = compile_find(study_query(PatientName="Sm?th*", StudyDate="20240101-"), "study-root")
    assert in_sql.residual is None and in_sql.depth == 1
    text = str(in_sql.statement)
    assert "LIKE" in text and "study.study_date >=" in text
    study_key = compile_find(study_query(PatientComments="Likes*"), "study-root")
    assert study_key.residual is not None and study_key.depth == 1  # one header per study
    series_key = compile_find(study_query(OperatorsName="Tech*"), "study-root")
    assert series_key.residual is not None and series_key.depth == 2  # one per series
    outside = compile_find(study_query(BitsAllocated=16), "study-root")
    assert outside.residual is not None and outside.depth == 3  # rows are instances then
    assert like_pattern("a%b_c\\d*e?") == "a\\%b\\_c\\\\d%e_"


# -- filing ---------------------------------------------------------------------------------
def test_a_uid_found_again_in_another_study_keeps_the_first(
    index: ArchiveIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 11.7: the first study must not lose an instance to a second file of its UID."""
    instances = load(index, tmp_path)
    old_study = str(instances[0].StudyInstanceUID)
    first = index.get(str(instances[0].SOPInstanceUID))
    moved = copy.deepcopy(instances[0])
    moved.StudyInstanceUID = "1.2.3.42"
    with caplog.at_level(logging.WARNING, logger="dimsefsm.qr.index"):
        assert index.add_file(write_instance(tmp_path / "moved.dcm", moved)) is None
    assert "under another patient, study or series" in caplog.text
    assert str(moved.SOPInstanceUID) in uids(
        index.query(image_query(StudyInstanceUID=old_study), "study-root")
    )
    assert list(index.query(image_query(StudyInstanceUID="1.2.3.42"), "study-root")) == []
    again = index.get(str(moved.SOPInstanceUID))
    assert again is not None and first is not None and again.path == first.path
    assert len(index) == len(instances)


def test_a_uid_found_again_in_the_same_series_is_replaced(
    index: ArchiveIndex, tmp_path: Path
) -> None:
    instances = load(index, tmp_path)
    again = copy.deepcopy(instances[0])
    again.PatientName = "Corrected^Name"
    path = write_instance(tmp_path / "again.dcm", again)
    assert index.add_file(path) is not None
    record = index.get(str(again.SOPInstanceUID))
    assert record is not None and record.path == path
    assert record.header.PatientName == "Corrected^Name"
    assert len(index) == len(instances)
    # A patient's name is the latest one stored: every study of the patient is found under it.
    found = list(index.find(study_query(PatientName="Corrected^Name"), "study-root"))
    assert len(found) == 3 and str(again.StudyInstanceUID) in [
        str(m.header.StudyInstanceUID) for m in found
    ]
    assert list(index.find(study_query(PatientName="Doe^Jane"), "study-root")) == []


def test_the_database_refuses_a_second_place_for_a_uid(index: ArchiveIndex, tmp_path: Path) -> None:
    """The rule holds in the database itself (another process has no Python lock of ours)."""
    instances = load(index, tmp_path)
    from sqlalchemy.exc import IntegrityError

    from dimsefsm.archive.db.schema import instance

    with index.engine.begin() as connection, pytest.raises(IntegrityError):
        connection.execute(
            insert(instance).values(
                series_pk=1, sop_uid=str(instances[0].SOPInstanceUID), path="x", header=b""
            )
        )


def test_a_nul_inside_a_text_is_handled_alike_on_every_back_end(
    index: ArchiveIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL text cannot hold NUL: such a value is no column value (the header keeps it),
    and an identity value with one is refused with a log line, not a database failure."""
    ds = make_instance(StudyDescription="Chest\0Abdomen", PatientID="P1")
    assert index.add_file(write_instance(tmp_path / "nul.dcm", ds)) is not None
    assert list(index.find(study_query(StudyDescription="Chest*"), "study-root")) == []
    found = list(index.find(study_query(StudyDescription=""), "study-root"))
    assert [str(m.header.StudyDescription) for m in found] == ["Chest\0Abdomen"]
    bad = write_instance(tmp_path / "nul-id.dcm", make_instance(PatientID="P\0X"))
    with caplog.at_level(logging.WARNING, logger="dimsefsm.qr.index"):
        assert index.add_file(bad) is None
    assert f"not indexed: {bad}:" in caplog.text and "NUL" in caplog.text
    assert len(index) == 1


def test_a_torn_file_is_not_indexed(index: ArchiveIndex, tmp_path: Path) -> None:
    """Item 11.9: a file cut short (a crash, a full disk) is not served malformed."""
    instances = load(index, tmp_path)
    torn = copy.deepcopy(instances[0])
    torn.SOPInstanceUID = "1.2.3.4.99"
    path = write_instance(tmp_path / "torn.dcm", torn)
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size - 100)
    assert index.add_file(path) is None
    assert index.get("1.2.3.4.99") is None


def test_an_invalid_uid_on_disk_is_not_imported(
    index: ArchiveIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Import applies the admission checks of a C-STORE (issue 11 items 5-6)."""
    path = write_instance(
        tmp_path / "bad.dcm", make_instance(sop_instance_uid="1.2.3", PatientID="A")
    )
    ds = make_instance(StudyInstanceUID="1..2")
    bad = write_instance(tmp_path / "bad2.dcm", ds)
    with caplog.at_level(logging.WARNING, logger="dimsefsm.qr.index"):
        assert index.add_file(path) is not None
        assert index.add_file(bad) is None
    assert f"not indexed: {bad}: StudyInstanceUID" in caplog.text


# -- computed attributes --------------------------------------------------------------------
def mixed_archive(index: ArchiveIndex, tmp_path: Path) -> list[list[Dataset]]:
    """Three studies: CT+MR (5 instances, 2 series), CT (3, 1), US (2, 2); one patient owns two."""
    studies = [
        make_study(5, n_series=2, modalities=("CT", "MR"), patient_id="P1"),
        make_study(3, n_series=1, modalities=("CT",), patient_id="P1"),
        make_study(2, n_series=2, modalities=("US",), patient_id="P2"),
    ]
    for n, study in enumerate(studies):
        for path in write_study(tmp_path / f"s{n}", study):
            index.add_file(path)
    return studies


def by_study(matches: Iterator[Match]) -> dict[str, Dataset]:
    return {str(m.header.StudyInstanceUID): m.computed for m in matches}


def test_study_level_computed_attributes(index: ArchiveIndex, tmp_path: Path) -> None:
    studies = mixed_archive(index, tmp_path)
    query = study_query(
        ModalitiesInStudy="",
        NumberOfStudyRelatedSeries="",
        NumberOfStudyRelatedInstances="",
        NumberOfPatientRelatedStudies="",
        NumberOfPatientRelatedInstances="",
    )
    found = by_study(index.find(query, "study-root"))
    first = found[str(studies[0][0].StudyInstanceUID)]
    assert list(first.ModalitiesInStudy) == ["CT", "MR"]
    assert (first.NumberOfStudyRelatedSeries, first.NumberOfStudyRelatedInstances) == (2, 5)
    assert (first.NumberOfPatientRelatedStudies, first.NumberOfPatientRelatedInstances) == (2, 8)
    third = found[str(studies[2][0].StudyInstanceUID)]
    assert third.ModalitiesInStudy == "US" and third.NumberOfPatientRelatedStudies == 1


def test_modalities_in_study_filters_studies(index: ArchiveIndex, tmp_path: Path) -> None:
    studies = mixed_archive(index, tmp_path)
    mr = list(by_study(index.find(study_query(ModalitiesInStudy="MR"), "study-root")))
    assert mr == [str(studies[0][0].StudyInstanceUID)]
    ct = list(by_study(index.find(study_query(ModalitiesInStudy="CT"), "study-root")))
    assert ct == [str(studies[0][0].StudyInstanceUID), str(studies[1][0].StudyInstanceUID)]


def test_series_level_instance_count(index: ArchiveIndex, tmp_path: Path) -> None:
    studies = mixed_archive(index, tmp_path)
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = str(studies[0][0].StudyInstanceUID)
    query.SeriesInstanceUID = ""
    query.NumberOfSeriesRelatedInstances = ""
    counts = sorted(
        int(m.computed.NumberOfSeriesRelatedInstances) for m in index.find(query, "study-root")
    )
    assert counts == [2, 3]


def test_a_lower_level_key_returns_a_matching_instances_values(
    index: ArchiveIndex, tmp_path: Path
) -> None:
    studies = mixed_archive(index, tmp_path)
    found = list(index.find(study_query(Modality="MR"), "study-root"))
    assert [str(m.header.StudyInstanceUID) for m in found] == [str(studies[0][0].StudyInstanceUID)]
    assert found[0].header.Modality == "MR"


# -- headers kept whole ---------------------------------------------------------------------
def test_a_key_outside_the_columns_is_matched_and_returned_without_the_files(
    index: ArchiveIndex, tmp_path: Path
) -> None:
    """Bits Allocated (0028,0100) is no column: the header kept in the database answers."""
    instances = load(index, tmp_path)
    for path in tmp_path.rglob("*.dcm"):
        path.write_bytes(b"gone")  # no file is read from here on
    bits = int(instances[0].BitsAllocated)
    query = image_query(StudyInstanceUID=str(instances[0].StudyInstanceUID), BitsAllocated=bits)
    matches = list(index.find(query, "study-root"))
    assert len(matches) == 4 and all(int(m.header.BitsAllocated) == bits for m in matches)
    assert list(index.find(image_query(BitsAllocated=bits + 8), "study-root")) == []
    assert "PixelData" not in matches[0].header


# -- schema version -------------------------------------------------------------------------
def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index-db'}"
    engine = open_engine(url)
    with engine.begin() as connection:
        connection.execute(update(schema_table).values(version=SCHEMA_VERSION + 1))
    engine.dispose()
    with pytest.raises(SchemaError, match=f"schema version {SCHEMA_VERSION + 1}, a newer one"):
        open_engine(url)


def test_a_foreign_database_with_our_table_names_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "foreign-db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE instance (id INTEGER, blob BLOB)")
    with pytest.raises(SchemaError, match="not a dimsefsm index"):
        open_engine(f"sqlite:///{path}")


def test_the_schema_is_created_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index-db'}"
    for _ in range(2):
        open_engine(url).dispose()
    engine = open_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(schema_table.select()).all()
    engine.dispose()
    assert [row.version for row in rows] == [SCHEMA_VERSION]


def test_the_statements_compile_for_postgresql() -> None:
    """Nothing SQLite-only in the query compiler: every kind of key renders for PostgreSQL."""
    from sqlalchemy.dialects import postgresql

    query = study_query(
        PatientName="Sm?th^*",
        PatientID='""',
        StudyDate="20240101-20241231",
        StudyTime="1000-",
        Modality="CT",
        SOPClassUID=["1.2.3", "1.2.4"],
        PatientComments="x*",
    )
    compiled = compile_find(query, "study-root")
    text = str(compiled.statement.compile(dialect=postgresql.dialect()))
    assert "LIKE" in text and "ESCAPE" in text and "EXISTS" in text and "||" in text


def test_nodes_opening_a_new_database_at_once_all_start(database_url: str) -> None:
    """Several qrscp started together on an empty shared index: one creates the tables,
    the others find them (PostgreSQL refused all but one with a duplicate type)."""
    barrier = threading.Barrier(3)
    failures: list[BaseException] = []

    def start() -> None:
        barrier.wait(timeout=30)
        try:
            open_engine(database_url).dispose()
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    engine = open_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(schema_table.select()).all()
    engine.dispose()
    assert [row.version for row in rows] == [SCHEMA_VERSION]
