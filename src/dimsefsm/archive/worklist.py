"""Modality Worklist items kept as files in a directory, matched per C-FIND.

pynetdicom's qrscp answers worklist queries with nothing, and its users ask
for a worklist "from a file".  dcmtk's ``wlmscpfs`` reads a directory of
``.wl`` files; this does the same: every DICOM file in the directory (with or
without a Part-10 header, whatever its name ends in) is one Scheduled
Procedure Step item.  A scheduler writes, replaces or deletes files and the
next query sees it: the directory is rescanned per query, and a file is
parsed again only when its size or modification time changed, so a query
over a few hundred items costs a directory listing and the matching.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset

from dimsefsm.datasets import DatasetDecodeError, decode_dataset
from dimsefsm.part10 import MAGIC, META_START, PREAMBLE_LENGTH, Part10Error, read_part10
from dimsefsm.qr.matching import compile_query
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN

LOG = logging.getLogger("dimsefsm.qr.worklist")


@dataclass(frozen=True, slots=True)
class _Cached:
    stamp: tuple[int, int]  # (size, mtime_ns): a changed file is read again
    item: Dataset | None  # None: the file is not a readable worklist item


class WorklistDirectory:
    """The worklist items in ``directory``; thread-safe, reloaded as files change."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[Path, _Cached] = {}
        self._lock = threading.Lock()

    def items(self) -> list[Dataset]:
        """Every readable item, in file-name order; unreadable files are logged once."""
        try:
            entries = sorted(
                (entry for entry in os.scandir(self.directory) if entry.is_file()),
                key=lambda entry: entry.name,
            )
        except OSError as exc:
            LOG.warning("worklist directory %s cannot be read: %s", self.directory, exc)
            return []
        found: list[Dataset] = []
        with self._lock:
            fresh: dict[Path, _Cached] = {}
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = Path(entry.path)
                stat = entry.stat()
                stamp = (stat.st_size, stat.st_mtime_ns)
                cached = self._cache.get(path)
                if cached is None or cached.stamp != stamp:
                    cached = _Cached(stamp, _read_item(path))
                fresh[path] = cached
                if cached.item is not None:
                    found.append(cached.item)
            self._cache = fresh
        return found

    def query(self, identifier: Dataset) -> Iterator[Dataset]:
        """The items matching a Modality Worklist C-FIND identifier (PS3.4 K.6.1.2)."""
        matcher = compile_query(identifier)
        for item in self.items():
            if matcher.matches(item):
                yield item


def _read_item(path: Path) -> Dataset | None:
    """A Part-10 file, or a bare data set in explicit or implicit VR little endian.

    Each is checked element by element (``decode_dataset``), so a stray text
    or half-written file is skipped with a log line instead of becoming an
    item of garbage tags that matches universal queries.
    """
    try:
        if path.stat().st_size >= META_START:
            with open(path, "rb") as file:
                is_part10 = file.read(META_START)[PREAMBLE_LENGTH:] == MAGIC
        else:
            is_part10 = False
        if is_part10:
            info, data = read_part10(path)
            item = decode_dataset(data, info.transfer_syntax)
        else:
            item = _bare_data_set(path.read_bytes())
    except (OSError, Part10Error, DatasetDecodeError) as exc:
        LOG.warning("worklist file %s skipped: %s", path, exc)
        return None
    if len(item) == 0:
        LOG.warning("worklist file %s skipped: no data elements", path)
        return None
    item.remove_private_tags()
    return item


def _bare_data_set(data: bytes) -> Dataset:
    try:
        return decode_dataset(data, EXPLICIT_VR_LITTLE_ENDIAN)
    except DatasetDecodeError:
        pass
    try:
        return decode_dataset(data, IMPLICIT_VR_LITTLE_ENDIAN)
    except DatasetDecodeError:
        raise DatasetDecodeError(
            "neither a Part-10 file nor a data set in explicit or implicit VR little endian"
        ) from None
