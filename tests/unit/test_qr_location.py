"""The default SQLite index lives under its storage directory and is no instance (issue 13).

``<storage>/.dimsefsm/index.sqlite`` goes wherever the storage directory goes;
the archive's own walks of a tree (first-start import, ``--import``) skip it,
its ``-wal``/``-shm`` files and any SQLite index named with ``--database``
inside the tree; an index left at the old place, beside the storage directory,
is moved under it once, its write-ahead log included, unless another process
still has it open.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from dimsefsm.archive import location
from dimsefsm.archive.index import ArchiveIndex
from dimsefsm.archive.location import default_path, old_default_path
from tests.data.make import make_instance, write_instance


def filled_index(store: Path, database: str | None = None) -> ArchiveIndex:
    """An open index of ``store`` holding one instance (imported from the store)."""
    store.mkdir(parents=True, exist_ok=True)
    write_instance(store / "one.dcm", make_instance())
    index = ArchiveIndex(store, database)
    index.open()
    assert index.import_directory(store).imported == 1
    return index


def test_the_default_index_and_its_journal_live_under_the_storage_directory(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    index = filled_index(store)
    try:
        assert index.url == f"sqlite:///{store / '.dimsefsm' / 'index.sqlite'}"
        assert default_path(store) == store / ".dimsefsm" / "index.sqlite"
        assert sorted(p.name for p in (store / ".dimsefsm").iterdir()) == [
            "index.sqlite",
            "index.sqlite-shm",
            "index.sqlite-wal",
        ]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
        # A walk of the store finds the instance only, however often it is imported.
        again = index.import_directory(store)
        assert (again.imported, again.skipped, again.refused) == (0, 1, 0)
    finally:
        index.close()


def test_an_index_named_inside_the_store_is_not_imported_as_an_instance(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    write_instance(store / "one.dcm", make_instance())
    index = ArchiveIndex(store, f"sqlite:///{store / 'archive.sqlite'}")
    try:
        with caplog.at_level(logging.WARNING, "dimsefsm.qr.index"):
            index.open()  # its -wal and -shm are there while it is open
            first = index.import_storage_once()
            again = index.import_directory(store)
        assert first is not None and (first.imported, first.refused) == (1, 0)
        assert (again.imported, again.skipped, again.refused) == (0, 1, 0)
        assert "not indexed" not in caplog.text
    finally:
        index.close()


def test_an_index_at_the_old_place_is_moved_with_its_write_ahead_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A server of the old version killed with its last transaction in the log only.
    running = filled_index(tmp_path / "running", f"sqlite:///{tmp_path / 'running.sqlite'}")
    store = tmp_path / "store"
    old = old_default_path(store)
    assert old == tmp_path / "store.index.sqlite"
    shutil.copyfile(tmp_path / "running.sqlite", old)
    shutil.copyfile(tmp_path / "running.sqlite-wal", old.with_name(old.name + "-wal"))
    running.close()
    index = ArchiveIndex(store)
    try:
        with caplog.at_level(logging.INFO, "dimsefsm.qr.index"):
            index.open()
        assert len(index) == 1
        assert f"index moved from {old} to {default_path(store)}" in caplog.text
        assert index.url == f"sqlite:///{default_path(store)}"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["running", "running.sqlite", "store"]
    finally:
        index.close()


def test_an_old_index_another_process_has_open_is_used_where_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store"
    old = old_default_path(store)
    holder = filled_index(store, f"sqlite:///{old}")
    try:
        index = ArchiveIndex(store)
        with caplog.at_level(logging.WARNING, "dimsefsm.qr.index"):
            index.open()
        assert index.url == f"sqlite:///{old}" and len(index) == 1
        assert f"index {old} is used where it is (another process has it open" in caplog.text
        assert not default_path(store).exists()
        index.close()
    finally:
        holder.close()
    later = ArchiveIndex(store)  # once the other process is gone, the next start moves it
    try:
        later.open()
        assert later.url == f"sqlite:///{default_path(store)}" and len(later) == 1
        assert not old.exists()
    finally:
        later.close()


def test_an_old_index_that_cannot_be_moved_is_used_where_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    old = old_default_path(store)
    filled_index(store, f"sqlite:///{old}").close()

    def refused(*_args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(location.os, "rename", refused)
    index = ArchiveIndex(store)
    try:
        with caplog.at_level(logging.WARNING, "dimsefsm.qr.index"):
            index.open()
        assert index.url == f"sqlite:///{old}" and len(index) == 1
        assert f"index {old} is used where it is: it cannot be moved to" in caplog.text
        assert "Permission denied" in caplog.text
    finally:
        index.close()
