"""The embedded instance index of the Q/R SCP: headers in memory, files on disk.

Each stored instance contributes one header record (the data set without its
pixel data) and its path.  Queries match records with the compiled matcher
and return one record per entity of the query level, keyed by the unique
keys down to that level, so a STUDY query yields each study once however
many instances it holds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError

from dimsefsm.qr.matching import compile_query
from dimsefsm.qr.models import MODELS

LOG = logging.getLogger("dimsefsm.qr.index")


@dataclass(frozen=True, slots=True)
class Record:
    header: Dataset
    path: Path


class InstanceIndex:
    """Thread-safe: storage threads add while query threads iterate a snapshot."""

    def __init__(self) -> None:
        self._records: dict[str, Record] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records)

    def add_file(self, path: Path) -> Record | None:
        try:
            header = dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError) as exc:
            LOG.warning("not indexed: %s: %s", path, exc)
            return None
        uid = str(header.get("SOPInstanceUID", ""))
        if not uid:
            LOG.warning("not indexed: %s has no SOP Instance UID", path)
            return None
        record = Record(header, path)
        with self._lock:
            self._records[uid] = record
        return record

    def load(self, directory: Path) -> int:
        """Index every Part-10 file below ``directory`` (temporary files are skipped)."""
        count = 0
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.name.startswith(".") and self.add_file(path):
                count += 1
        return count

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self._records.values())

    def query(self, identifier: Dataset, model: str) -> Iterator[Record]:
        """Records matching ``identifier``, one per entity at its Query/Retrieve Level."""
        matcher = compile_query(identifier)
        level_name = str(identifier.get("QueryRetrieveLevel", ""))
        info = MODELS.get(model)
        uniques = info.unique_keys_down_to(level_name) if info is not None else ()
        seen: set[tuple[str, ...]] = set()
        for record in self.snapshot():
            if not matcher.matches(record.header):
                continue
            if uniques:
                key = tuple(str(record.header.get(tag, "")) for tag in uniques)
                if key in seen:
                    continue
                seen.add(key)
            yield record
