"""Where the embedded SQLite index lives: ``<storage>/.dimsefsm/index.sqlite``.

The index belongs to its storage directory, as dcmqrscp's ``index.dat`` sits
in its storage area and Orthanc's ``index`` in its storage directory: copy,
back up or move the directory and the index goes with it.  It is kept in a
hidden folder of the server's own (with SQLite's ``-wal`` and ``-shm`` files)
so that whatever walks the tree for instances (``ls``, ``storescu +sd``, the
archive's own first-start import and ``--import``) sees instances only.

Earlier versions kept the file beside the storage directory, named after it
(``dicom-store.index.sqlite``).  :func:`adopt_old_index` moves such a file to
its new place once, at start, after folding its write-ahead log into it, and
says so in the log; while another process still has the old file open it is
used where it is, with a warning, and moved at a later start.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Final

from sqlalchemy.engine import make_url

__all__ = [
    "INDEX_DIRECTORY",
    "INDEX_FILE",
    "adopt_old_index",
    "default_path",
    "default_url",
    "old_default_path",
    "sqlite_files",
    "sqlite_path",
]

LOG = logging.getLogger("dimsefsm.qr.index")

INDEX_DIRECTORY: Final = ".dimsefsm"
INDEX_FILE: Final = "index.sqlite"
_OLD_SUFFIX: Final = ".index.sqlite"
_COMPANIONS: Final = ("-wal", "-shm", "-journal")
"""Files SQLite keeps beside a database: they belong to it and are not DICOM."""


def default_path(storage: Path) -> Path:
    """``dicom-store`` -> ``dicom-store/.dimsefsm/index.sqlite`` (absolute)."""
    return storage.absolute() / INDEX_DIRECTORY / INDEX_FILE


def default_url(storage: Path) -> str:
    return f"sqlite:///{default_path(storage)}"


def old_default_path(storage: Path) -> Path:
    """Where versions before this one kept the default index: beside the storage directory."""
    resolved = storage.absolute()
    return resolved.with_name(resolved.name + _OLD_SUFFIX)


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (absolute); None for another back end or memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).absolute()


def sqlite_files(url: str) -> frozenset[Path]:
    """The database file of a SQLite URL and its companions (``-wal``, ``-shm``, ``-journal``)."""
    path = sqlite_path(url)
    if path is None:
        return frozenset()
    return frozenset({path, *(path.with_name(path.name + end) for end in _COMPANIONS)})


def adopt_old_index(storage: Path) -> Path:
    """The default index file of ``storage``, moved from its old place first if it is there.

    The old file's write-ahead log is checkpointed into it and its last
    connection closed, which deletes ``-wal`` and ``-shm``: one file then
    holds everything and moves by one rename (or a copy, fsync and rename
    when the storage directory is another file system).  If the log is still
    there afterwards, another process (a server of the old version) has the
    file open: it is used where it is and moved at a later start.
    """
    new = default_path(storage)
    old = old_default_path(storage)
    if new.exists() or not old.is_file():
        if old.is_file():
            LOG.warning("index %s is not used: %s is the index of %s", old, new, storage)
        return new
    try:
        connection = sqlite3.connect(old, timeout=60.0)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()
    except sqlite3.Error as exc:  # not a database: opening it says so with the usual error
        LOG.warning("index %s is not moved: %s", old, exc)
        return old
    busy = [path for path in sqlite_files(f"sqlite:///{old}") if path != old and path.exists()]
    if busy:
        LOG.warning(
            "index %s is used where it is (another process has it open: %s); stop it and "
            "restart to move the index to %s",
            old,
            ", ".join(path.name for path in sorted(busy)),
            new,
        )
        return old
    try:
        _move(old, new)
    except OSError as exc:
        LOG.warning("index %s is used where it is: it cannot be moved to %s: %s", old, new, exc)
        return old
    LOG.warning(
        "index moved from %s to %s: the default index now lives under the storage directory",
        old,
        new,
    )
    return new


def _move(old: Path, new: Path) -> None:
    """Rename ``old`` to ``new`` durably; across file systems copy, fsync, rename, delete."""
    new.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(old, new)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        partial = new.with_name(new.name + ".moving")
        shutil.copyfile(old, partial)
        with partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, new)
        _fsync_directory(new.parent)
        old.unlink()
    _fsync_directory(new.parent)
    _fsync_directory(old.parent)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
