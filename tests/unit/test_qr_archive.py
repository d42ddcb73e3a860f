"""The archive index as a database: streaming, cancel, import, restart, two indexes on one file."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydicom import Dataset
from sqlalchemy import event

from dimsefsm.archive import index as index_module
from dimsefsm.archive.index import ArchiveIndex, Conflict
from dimsefsm.archive.scp import QueryRetrieveSCP
from tests.data.make import make_instance, make_study, write_instance, write_study
from tests.pg import PostgresCluster


def study_query(**keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.PatientName = ""
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@pytest.fixture
def index(tmp_path: Path, database_url: str) -> Iterator[ArchiveIndex]:
    archive = ArchiveIndex(tmp_path / "store", database_url)
    archive.open()
    yield archive
    archive.close()


def file_studies(index: ArchiveIndex, count: int, tmp_path: Path) -> None:
    """``count`` one-instance studies filed straight into the index (no file is needed)."""
    for n in range(count):
        ds = make_instance(PatientID=f"P{n}", PatientName=f"Name^{n}")
        path = tmp_path / f"{n}.dcm"
        assert index.file(ds, lambda path=path: path) == path  # type: ignore[misc]


class VmSteps:
    """SQLite: counts virtual-machine steps (in hundreds) on every connection of an engine."""

    def __init__(self, index: ArchiveIndex) -> None:
        self._steps = 0
        index.engine.pool.dispose()  # connections opened from now on are counted

        @event.listens_for(index.engine, "connect")
        def counted(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.set_progress_handler(self.step, 100)

    def step(self) -> int:
        self._steps += 1
        return 0  # go on

    @property
    def count(self) -> int:
        return self._steps


class RowsSent:
    """PostgreSQL: the rows server-side cursors have fetched so far.

    Only server-side cursors are counted: a client-side one receives the whole
    result at execution, and would leave this count at 0 and fail the test.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in ("fetchone", "fetchmany", "fetchall"):
            monkeypatch.setattr(psycopg.ServerCursor, name, self._counting(name))

    def _counting(self, name: str) -> Callable[..., Any]:
        original = getattr(psycopg.ServerCursor, name)

        def fetch(cursor: psycopg.ServerCursor[Any], *args: Any, **kwargs: Any) -> Any:
            rows = original(cursor, *args, **kwargs)
            self.count += (rows is not None) if name == "fetchone" else len(rows)
            return rows

        return fetch


def progress(index: ArchiveIndex, monkeypatch: pytest.MonkeyPatch) -> VmSteps | RowsSent:
    """How far the database has got answering: VM steps on SQLite, rows fetched on PostgreSQL."""
    return VmSteps(index) if index.engine.dialect.name == "sqlite" else RowsSent(monkeypatch)


def test_the_first_match_leaves_before_the_last_row_is_read(
    index: ArchiveIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 13.2: responses stream from a cursor; the statement is not run to the end first."""
    file_studies(index, 400, tmp_path)
    steps = progress(index, monkeypatch)
    matches = index.find(study_query(), "study-root")
    first = next(matches)
    at_first = steps.count
    rest = list(matches)
    assert first.header.PatientID == "P0" and len(rest) == 399
    assert at_first * 3 < steps.count, (at_first, steps.count)


def test_closing_the_stream_stops_the_cursor_and_returns_the_connection(
    index: ArchiveIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A C-CANCEL closes the generator: no further row is read, the connection is returned."""
    file_studies(index, 400, tmp_path)
    steps = progress(index, monkeypatch)
    matches = index.find(study_query(), "study-root")
    next(matches)
    assert index.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    matches.close()
    at_close = steps.count
    assert index.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    complete = list(index.find(study_query(), "study-root"))
    assert len(complete) == 400 and at_close * 3 < steps.count - at_close


def test_a_store_is_filed_while_a_query_is_streaming(index: ArchiveIndex, tmp_path: Path) -> None:
    """A streaming reader holds no write lock (SQLite WAL): a C-STORE meanwhile commits."""
    file_studies(index, 200, tmp_path)
    matches = index.find(study_query(), "study-root")
    next(matches)
    ds = make_instance(PatientID="DURING")
    assert index.file(ds, lambda: tmp_path / "during.dcm") == tmp_path / "during.dcm"
    assert index.get(str(ds.SOPInstanceUID)) is not None
    assert len(list(matches)) >= 199
    matches.close()


def test_two_indexes_on_one_database_keep_one_place_per_uid(
    tmp_path: Path, database_url: str
) -> None:
    """Item 11.7 through the database: two processes' indexes, no shared Python lock; both
    open the new database at once (SQLite: both switch it to WAL)."""
    store = tmp_path / "store"
    first, second = ArchiveIndex(store, database_url), ArchiveIndex(store, database_url)
    rounds = 10
    results: dict[int, list[str]] = {n: [] for n in range(rounds)}
    barrier = threading.Barrier(2)

    def file_all(index: ArchiveIndex, side: str) -> None:
        for n in range(rounds):
            ds = make_instance(sop_instance_uid=f"1.2.3.8.{n + 1}", PatientID=side)
            barrier.wait(timeout=30)
            path = tmp_path / f"{side}{n}.dcm"
            outcome = index.file(ds, lambda path=path: path)  # type: ignore[misc]
            results[n].append("conflict" if isinstance(outcome, Conflict) else side)

    threads = [
        threading.Thread(target=file_all, args=(index, side))
        for index, side in ((first, "A"), (second, "B"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        for n, outcomes in results.items():
            assert sorted(outcomes)[0] in ("A", "B") and sorted(outcomes)[1] == "conflict"
            record = second.get(f"1.2.3.8.{n + 1}")
            winner = next(o for o in outcomes if o != "conflict")
            assert record is not None and record.header.PatientID == winner
            assert record.path == tmp_path / f"{winner}{n}.dcm"
        assert len(first) == len(second) == rounds
    finally:
        first.close()
        second.close()


# -- import ---------------------------------------------------------------------------------
def test_import_reports_progress_refuses_torn_files_and_is_idempotent(
    index: ArchiveIndex,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    files = write_study(elsewhere / "a", make_study(4, n_series=2))
    files += write_study(elsewhere / "b", make_study(2, n_series=1))
    torn = files[-1]
    with torn.open("r+b") as file:
        file.truncate(torn.stat().st_size - 100)
    seen: list[tuple[int, int]] = []
    with caplog.at_level(logging.INFO, logger="dimsefsm.qr.index"):
        counts = index.import_directory(elsewhere, progress=lambda d, t: seen.append((d, t)))
    assert (counts.imported, counts.skipped, counts.refused) == (5, 0, 1)
    assert seen == [(n, 6) for n in range(1, 7)]
    assert f"not indexed: {torn}: data set is not complete" in caplog.text
    assert len(index) == 5
    record = index.get(files[0].stem)
    assert record is not None and record.path == files[0]  # indexed where it is

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("an indexed file was read again")

    monkeypatch.setattr(index_module, "dcmread", no_reading)
    again = index.import_directory(elsewhere)
    assert (again.imported, again.skipped, again.refused) == (0, 5, 1)
    assert len(index) == 5


# -- start-up -------------------------------------------------------------------------------
def test_a_restart_reads_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 13.3: the first start imports the storage directory once; later ones read nothing."""
    store = tmp_path / "store"
    study = make_study(5, n_series=2, patient_name="Before^Restart")
    write_study(store, study)
    first = QueryRetrieveSCP("QRSCP", store)
    assert first.load() == 5
    first.close()
    for path in store.glob("*.dcm"):  # the instances, not the index folder
        path.write_bytes(b"not DICOM any more")  # a start that read them would drop them

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file was read at start")

    monkeypatch.setattr(index_module, "dcmread", no_reading)
    monkeypatch.setattr(index_module, "check_structure", no_reading)
    second = QueryRetrieveSCP("QRSCP", store)
    try:
        assert second.load() == 5
        names = {str(m.header.PatientName) for m in second.index.find(study_query(), "study-root")}
        assert names == {"Before^Restart"}
    finally:
        second.close()


def test_files_put_into_the_store_later_are_not_imported_at_start(tmp_path: Path) -> None:
    """The automatic import happens on the first start only; later ones use --import."""
    store = tmp_path / "store"
    scp = QueryRetrieveSCP("QRSCP", store)
    assert scp.load() == 0
    scp.close()
    write_instance(store / "late.dcm", make_instance())
    again = QueryRetrieveSCP("QRSCP", store)
    try:
        assert again.load() == 0
        assert again.index.import_directory(store).imported == 1
    finally:
        again.close()


def test_an_explicit_database_url_is_used(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    scp = QueryRetrieveSCP("QRSCP", tmp_path / "store", database=url)
    try:
        scp.load()
        assert (tmp_path / "elsewhere.sqlite").is_file()
        assert not (tmp_path / "store" / ".dimsefsm").exists()
    finally:
        scp.close()


def test_filing_loses_every_race_to_another_node_and_still_files(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    """On PostgreSQL a filer's inserts can each lose to another node committing the same
    patient, study and series first: each loss is seen on the next attempt.  The same
    instance cannot be filed in between: the filer holds the UID's advisory lock (the
    other node would wait for our commit, then find our row)."""
    url = postgres.fresh_url()
    ours, other = ArchiveIndex(tmp_path / "store", url), ArchiveIndex(tmp_path / "store", url)
    ds = make_instance(StudyInstanceUID="1.2.3.60", SeriesInstanceUID="1.2.3.60.1")
    # What the other node files just before each of our inserts: the same patient (another
    # study), the same study (another series), the same series.
    ahead = {
        "patient": make_instance(StudyInstanceUID="1.2.3.61"),
        "study": make_instance(StudyInstanceUID="1.2.3.60", SeriesInstanceUID="1.2.3.60.2"),
        "series": make_instance(StudyInstanceUID="1.2.3.60", SeriesInstanceUID="1.2.3.60.1"),
    }
    lost: list[str] = []

    @event.listens_for(ours.engine, "before_cursor_execute")
    def other_node_first(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        for table, instance in ahead.items():
            if statement.startswith(f"INSERT INTO {table} ") and table not in lost:
                lost.append(table)
                path = tmp_path / f"other-{table}.dcm"
                assert other.file(instance, lambda path=path: path) == path  # type: ignore[misc]

    try:
        assert ours.file(ds, lambda: tmp_path / "ours.dcm") == tmp_path / "ours.dcm"
        assert lost == ["patient", "study", "series"]
        record = other.get(str(ds.SOPInstanceUID))
        assert record is not None and record.path == tmp_path / "ours.dcm"
        assert len(other) == 4
    finally:
        ours.close()
        other.close()
