"""The embedded instance index of the Q/R SCP: headers in memory, files on disk.

Each stored instance contributes one header record (the data set without its
pixel data) and its path.  Queries match records with the compiled matcher
and return one record per entity of the query level, keyed by the unique
keys down to that level, so a STUDY query yields each study once however
many instances it holds.

A retrieve or a query naming Study, Series or SOP Instance UIDs (the usual
case: a viewer drilling down, every C-GET and C-MOVE) looks at the records of
those UIDs only, through one dictionary per UID attribute, so its cost follows
the size of the study, not of the archive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError

from dimsefsm.qr.matching import compile_query
from dimsefsm.qr.models import MODELS

LOG = logging.getLogger("dimsefsm.qr.index")


@dataclass(frozen=True, slots=True)
class Record:
    header: Dataset
    path: Path


# UID attributes a query can be narrowed by: matching on them is exact (UID list
# matching, PS3.4 C.2.2.2.2), so the records holding the named UIDs are all the
# candidates there are.
_NARROWING_TAGS: Final = (0x0020000D, 0x0020000E, 0x00080018)


class InstanceIndex:
    """Thread-safe: storage threads add while query threads iterate a snapshot."""

    def __init__(self) -> None:
        self._records: dict[str, Record] = {}
        self._by_uid: dict[int, dict[str, set[str]]] = {tag: {} for tag in _NARROWING_TAGS}
        self._order: dict[str, int] = {}  # storage order, kept when an instance is re-stored
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
            previous = self._records.get(uid)
            if previous is not None:
                self._unlink(uid, previous.header)
            self._records[uid] = record
            self._order.setdefault(uid, len(self._order))
            for tag, by_value in self._by_uid.items():
                for value in _uid_values(header, tag):
                    by_value.setdefault(value, set()).add(uid)
        return record

    def _unlink(self, uid: str, header: Dataset) -> None:
        for tag, by_value in self._by_uid.items():
            for value in _uid_values(header, tag):
                holders = by_value.get(value)
                if holders is not None:
                    holders.discard(uid)
                    if not holders:
                        del by_value[value]

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

    def candidates(self, identifier: Dataset) -> list[Record]:
        """The records the identifier's UID keys allow, in the order they were stored."""
        wanted: set[str] | None = None
        with self._lock:
            for tag, by_value in self._by_uid.items():
                values = _uid_values(identifier, tag)
                if not values:
                    continue  # absent or universal: no narrowing by this attribute
                holders = set().union(*(by_value.get(v, ()) for v in values))
                wanted = holders if wanted is None else wanted & holders
            if wanted is None:
                return list(self._records.values())
            order = self._order
            return [self._records[uid] for uid in sorted(wanted, key=order.__getitem__)]

    def query(self, identifier: Dataset, model: str) -> Iterator[Record]:
        """Records matching ``identifier``, one per entity at its Query/Retrieve Level."""
        matcher = compile_query(identifier)
        level_name = str(identifier.get("QueryRetrieveLevel", ""))
        info = MODELS.get(model)
        uniques = info.unique_keys_down_to(level_name) if info is not None else ()
        seen: set[tuple[str, ...]] = set()
        for record in self.candidates(identifier):
            if not matcher.matches(record.header):
                continue
            if uniques:
                key = tuple(str(record.header.get(tag, "")) for tag in uniques)
                if key in seen:
                    continue
                seen.add(key)
            yield record


def _uid_values(dataset: Dataset, tag: int) -> list[str]:
    """The non-empty UID values of ``tag`` (a UID list has several)."""
    elem = dataset.get(tag)
    if elem is None or elem.value is None or elem.value == "":
        return []
    raw = elem.value
    values = [raw] if isinstance(raw, str) else list(raw)
    texts = [text for text in (str(v).strip("\x00 ") for v in values) if text]
    return [] if texts == ['""'] else texts  # "" asks for empty values: no narrowing
