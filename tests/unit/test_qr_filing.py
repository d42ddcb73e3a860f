"""Filing a received instance: as durable as its file, failures as SQLAlchemy's errors (issue 13).

Without ``--fsync`` an acknowledged instance survives a crash of qrscp: its
file is renamed into place and its index commit written to SQLite's log
(``synchronous=NORMAL``) or PostgreSQL's server before the response leaves.
With ``--fsync`` the file is synced before its rename, and the index commit
must survive a power loss as well: SQLite syncs its log at every commit
(``synchronous=FULL``), PostgreSQL sessions wait for the server's WAL flush.
The statements of the filing path run on the driver's cursor; what the
driver raises reaches the callers as SQLAlchemy's errors, as before.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from dimsefsm.archive.index import ArchiveIndex
from dimsefsm.archive.location import default_path
from dimsefsm.archive.scp import QueryRetrieveSCP
from tests.data.make import make_instance, write_instance


@pytest.mark.parametrize("fsync", [False, True], ids=["default", "fsync"])
def test_fsync_makes_the_index_commit_as_durable_as_the_file(
    database_url: str, tmp_path: Path, fsync: bool
) -> None:
    scp = QueryRetrieveSCP("QRSCP", tmp_path / "store", fsync=fsync, database=database_url)
    try:
        scp.load()
        with scp.index.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # FULL (2): the log is synced at every commit; NORMAL (1): at checkpoints.
                level = connection.exec_driver_sql("PRAGMA synchronous").scalar()
                assert level == (2 if fsync else 1)
            else:
                # The tests' throwaway cluster runs with synchronous_commit=off.
                level = connection.exec_driver_sql("SHOW synchronous_commit").scalar()
                assert level == ("on" if fsync else "off")
    finally:
        scp.close()


def test_a_locked_sqlite_index_fails_the_filing_with_sqlalchemys_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    index = ArchiveIndex(store)
    index.open()

    @event.listens_for(index.engine, "checkout")
    def short_wait(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=20")

    holder = sqlite3.connect(default_path(store), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process is writing
    path = write_instance(tmp_path / "one.dcm", make_instance())
    committed: list[Path] = []

    def commit() -> Path:
        committed.append(path)
        return path

    try:
        with pytest.raises(OperationalError, match="database is locked"):
            index.file(dcmread(path, stop_before_pixels=True), commit)
        assert committed == []  # the file is not renamed into place
        holder.execute("ROLLBACK")
        assert index.file(dcmread(path, stop_before_pixels=True), commit) == path
        assert committed == [path] and len(index) == 1
    finally:
        holder.close()
        index.close()
