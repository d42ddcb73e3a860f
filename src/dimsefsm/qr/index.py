"""The embedded instance index of the Q/R SCP: query keys in memory, files on disk.

Each stored instance contributes one record: the attributes the information
models name as keys (plus the few the SCP computes from), still undecoded,
and its path.  A whole CT header kept in memory costs about 90 KiB with
pydicom; the key attributes a tenth of that, so an archive of 100,000
instances fits in a few hundred MiB.  A query or a response that names an
attribute outside that set still works: the matched candidates' headers are
read from their files, slower but exact.  Queries match records with the compiled matcher
and return one record per entity of the query level, keyed by the unique
keys down to that level, so a STUDY query yields each study once however
many instances it holds.

One SOP Instance UID belongs to one place: a record is replaced only by a
record of the same Patient ID, Study and Series (a retransmission).  At
load, a second file holding an indexed UID under another patient, study or
series is not indexed (a warning names both files), so no study lists an
instance that would be delivered from another study's file.  A file is
structure-checked the first time it is indexed (a truncated file is not
served); the files the SCP writes itself are complete by construction.

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
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag

from dimsefsm.datasets import DatasetChecker, DatasetDecodeError
from dimsefsm.part10 import iter_file_chunks, read_part10_info
from dimsefsm.qr.admission import identity_of
from dimsefsm.qr.index_cache import (
    CachedHeader,
    Stamp,
    copy_raw,
    encode_header,
    read_cache,
    stamp_of,
    write_cache,
)
from dimsefsm.qr.matching import compile_query
from dimsefsm.qr.models import LEVEL_INDEPENDENT_TAGS, MODELS

LOG = logging.getLogger("dimsefsm.qr.index")


@dataclass(frozen=True, slots=True)
class Record:
    header: Dataset  # the INDEXED_TAGS attributes of the instance
    path: Path
    stamp: Stamp = (0, 0)  # the file's (size, mtime_ns) when it was read, for the cache

    def full_header(self) -> Dataset:
        """Every attribute but the pixel data, read from the file (for non-indexed keys)."""
        try:
            return dcmread(self.path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError) as exc:
            LOG.warning(
                "%s cannot be read again (%s); using its indexed attributes", self.path, exc
            )
            return self.header


def _indexed_tags() -> frozenset[int]:
    tags: set[int] = set()
    for model in MODELS.values():
        for level in model.levels:
            tags |= level.keys
    # The character set decodes the text values; SOP Class UID and Modality feed the
    # computed keys; the time zone offset, DT matching.
    return frozenset(tags | {0x00080005, 0x00080016, 0x00080060, 0x00080201})


INDEXED_TAGS: Final[frozenset[int]] = _indexed_tags()


def _compact(header: Dataset) -> Dataset:
    """The indexed attributes, left as read (undecoded until a query looks at them)."""
    kept: dict[BaseTag, DataElement | RawDataElement] = {
        tag: header.get_item(tag) for tag in list(header.keys()) if tag in INDEXED_TAGS
    }
    return Dataset(kept)


def _needs_full_headers(identifier: Dataset) -> bool:
    """True when a key is outside the indexed attributes (nor control, nor computed)."""
    tags = (int(elem.tag) for elem in identifier)
    return any(
        tag not in INDEXED_TAGS
        and tag not in COMPUTED_KEYS
        and tag not in LEVEL_INDEPENDENT_TAGS
        and tag >> 16 > 0x0002
        for tag in tags
    )


@dataclass(frozen=True, slots=True)
class Match:
    """One C-FIND match: its record, the header it matched on, the computed attributes."""

    record: Record
    header: Dataset
    computed: Dataset


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
        self._encoded: dict[str, bytes] = {}  # cache form of each header, once written
        self._lock = threading.Lock()
        self.cache_hits = 0  # headers the last load() took from the index cache

    def __len__(self) -> int:
        return len(self._records)

    def get(self, sop_instance_uid: str) -> Record | None:
        with self._lock:
            return self._records.get(sop_instance_uid)

    def add_file(self, path: Path, cached: CachedHeader | None = None) -> Record | None:
        """Index one file found in the store; ``cached`` is used when its size and time match.

        A file not taken from the cache is structure-checked first (a torn
        file is not indexed), and a file holding an indexed SOP Instance UID
        under another patient, study or series is not indexed: the first stays.
        """
        encoded: bytes | None = None
        try:
            stamp = stamp_of(path)
            header = cached.header() if cached is not None and cached.stamp == stamp else None
            if header is None:
                check_structure(path)
                header = _compact(dcmread(path, stop_before_pixels=True))
                encoded = copy_raw(header)  # before any value is decoded: a byte copy
            else:
                encoded = cached.data if cached is not None else None
        except (InvalidDicomError, OSError, ValueError) as exc:
            LOG.warning("not indexed: %s: %s", path, exc)
            return None
        uid = str(header.get("SOPInstanceUID", ""))
        if not uid:
            LOG.warning("not indexed: %s has no SOP Instance UID", path)
            return None
        previous = self.get(uid)
        if previous is not None and previous.path != path:
            try:
                same = identity_of(previous.header) == identity_of(header)
            except (ValueError, TypeError, UnicodeError):
                same = False
            if not same:
                LOG.warning(
                    "not indexed: %s holds SOP Instance UID %s, already indexed from %s "
                    "under another patient, study or series",
                    path,
                    uid,
                    previous.path,
                )
                return None
        return self._insert(uid, Record(header, path, stamp), encoded)

    def add_header(self, path: Path, header: Dataset) -> Record:
        """Index a file the SCP has just written and examined: no second read, no check.

        ``header`` is the file's data set (at least its indexed attributes, as
        read); the caller has decided that it may replace any record of its UID.
        """
        compact = _compact(header)
        uid = str(compact.get("SOPInstanceUID", ""))
        return self._insert(uid, Record(compact, path, stamp_of(path)), copy_raw(compact))

    def _insert(self, uid: str, record: Record, encoded: bytes | None) -> Record:
        header = record.header
        with self._lock:
            previous = self._records.get(uid)
            if previous is not None:
                self._unlink(uid, previous.header)
            self._records[uid] = record
            self._order.setdefault(uid, len(self._order))
            if encoded is None:
                self._encoded.pop(uid, None)
            else:
                self._encoded[uid] = encoded
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
        """Index every Part-10 file below ``directory`` (hidden and temporary files skipped).

        Headers whose file is unchanged since the last :meth:`save` come from the
        cache; the cache is rewritten afterwards.
        """
        cache = read_cache(directory)
        count = hits = 0
        for path in sorted(directory.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            cached = cache.get(path.relative_to(directory).as_posix())
            record = self.add_file(path, cached)
            if record is None:
                continue
            count += 1
            if cached is not None and self._encoded.get(_uid_of(record)) is cached.data:
                hits += 1
        self.cache_hits = hits
        LOG.info("indexed %d file(s), %d of them from the index cache", count, hits)
        if hits != count or len(cache) != count:
            self.save(directory)
        return count

    def save(self, directory: Path) -> int:
        """Write the index cache of the records stored below ``directory``.

        A header is encoded once, the first time it is saved; later saves
        reuse those bytes, so saving costs a file write, not a re-encode.
        """
        with self._lock:
            records = [
                (uid, r) for uid, r in self._records.items() if r.path.is_relative_to(directory)
            ]
        entries = []
        for uid, record in records:
            encoded = self._encoded.get(uid)
            if encoded is None:
                encoded = encode_header(record.header)
                if encoded is None:
                    continue
                self._encoded[uid] = encoded
            entries.append((record.path, record.stamp, encoded))
        return write_cache(directory, entries)

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
        for record, _ in self._matches(identifier, model, per_entity=True):
            yield record

    def find(self, identifier: Dataset, model: str) -> Iterator[Match]:
        """C-FIND matches, with the attributes no single instance holds computed per entity.

        Viewers list studies with Modalities in Study and the related-instance
        counts, and filter by modality (``ModalitiesInStudy=MR``); those values
        describe the whole study, series or patient, so they are computed from
        its instances and matched after the instance-level keys.
        """
        wanted = [tag for tag in COMPUTED_KEYS if tag in identifier]
        if not wanted:
            for record, header in self._matches(identifier, model, per_entity=True):
                yield Match(record, header, Dataset())
            return
        plain, extra = Dataset(), Dataset()
        for elem in identifier:
            (extra if int(elem.tag) in COMPUTED_KEYS else plain).add(elem)
        extra_matcher = compile_query(extra)
        info = MODELS.get(model)
        level_name = str(identifier.get("QueryRetrieveLevel", ""))
        uniques = info.unique_keys_down_to(level_name) if info is not None else ()
        groups: dict[tuple[str, ...], list[tuple[Record, Dataset]]] = {}
        for record, header in self._matches(plain, model, per_entity=False):
            key = tuple(str(record.header.get(tag, "")) for tag in uniques)
            groups.setdefault(key, []).append((record, header))
        patients = self._by_patient() if any(t in _PATIENT_SCOPE for t in wanted) else {}
        for members in groups.values():
            records = [record for record, _ in members]
            patient = str(records[0].header.get(_PATIENT_ID, ""))
            computed = computed_attributes(wanted, records, patients.get(patient, records))
            if extra_matcher.matches(computed):
                yield Match(records[0], members[0][1], computed)

    def _matches(
        self, identifier: Dataset, model: str, *, per_entity: bool
    ) -> Iterator[tuple[Record, Dataset]]:
        """Matching records with the header they matched on (full only when keys need it)."""
        matcher = compile_query(identifier)
        full = _needs_full_headers(identifier)
        level_name = str(identifier.get("QueryRetrieveLevel", ""))
        info = MODELS.get(model)
        uniques = info.unique_keys_down_to(level_name) if info is not None and per_entity else ()
        seen: set[tuple[str, ...]] = set()
        for record in self.candidates(identifier):
            header = record.full_header() if full else record.header
            if not matcher.matches(header):
                continue
            if uniques:
                key = tuple(str(record.header.get(tag, "")) for tag in uniques)
                if key in seen:
                    continue
                seen.add(key)
            yield record, header

    def _by_patient(self) -> dict[str, list[Record]]:
        grouped: dict[str, list[Record]] = {}
        for record in self.snapshot():
            grouped.setdefault(str(record.header.get(_PATIENT_ID, "")), []).append(record)
        return grouped


# Attributes of a patient, study or series that no instance carries: (VR, scope).
COMPUTED_KEYS: Final[dict[int, tuple[str, str]]] = {
    0x00080061: ("CS", "study"),  # Modalities in Study
    0x00080062: ("UI", "study"),  # SOP Classes in Study
    0x00201200: ("IS", "patient"),  # Number of Patient Related Studies
    0x00201202: ("IS", "patient"),  # Number of Patient Related Series
    0x00201204: ("IS", "patient"),  # Number of Patient Related Instances
    0x00201206: ("IS", "study"),  # Number of Study Related Series
    0x00201208: ("IS", "study"),  # Number of Study Related Instances
    0x00201209: ("IS", "series"),  # Number of Series Related Instances
}
_PATIENT_SCOPE: Final = frozenset(
    t for t, (_, scope) in COMPUTED_KEYS.items() if scope == "patient"
)
_PATIENT_ID: Final = 0x00100020
_STUDY_UID: Final = 0x0020000D
_SERIES_UID: Final = 0x0020000E


def computed_attributes(tags: list[int], entity: list[Record], patient: list[Record]) -> Dataset:
    """The values of ``tags`` for an entity made of ``entity``'s instances.

    Study- and series-scope counts use the records of the matched entity (at
    STUDY level: the study's instances); patient-scope counts use every
    record of the same Patient ID.
    """
    result = Dataset()
    for tag in tags:
        vr, scope = COMPUTED_KEYS[tag]
        records = patient if scope == "patient" else entity
        if tag == 0x00080061:
            value: object = _distinct(records, 0x00080060)
        elif tag == 0x00080062:
            value = _distinct(records, 0x00080016)
        elif tag == 0x00201200:
            value = str(len(_distinct(records, _STUDY_UID)))
        elif tag in (0x00201202, 0x00201206):
            value = str(len(_distinct(records, _SERIES_UID)))
        else:
            value = str(len(records))
        result.add(DataElement(tag, vr, value))
    return result


def _distinct(records: list[Record], tag: int) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        elem = record.header.get(tag)
        if elem is None or elem.value in (None, ""):
            continue
        values = [elem.value] if isinstance(elem.value, str) else list(elem.value)
        for value in values:
            seen.setdefault(str(value), None)
    return list(seen)


def check_structure(path: Path) -> None:
    """Raise ``ValueError`` unless the file's data set is complete and well framed.

    Only element framing is walked (values are skipped), so a torn file, cut
    in its pixel data, is caught at the cost of reading it once.
    """
    info = read_part10_info(path)
    checker = DatasetChecker(info.transfer_syntax)
    try:
        for chunk in iter_file_chunks(path, info.dataset_offset):
            checker.feed(chunk)
        checker.finish()
    except DatasetDecodeError as exc:
        raise ValueError(f"data set is not complete: {exc}") from None


def _uid_of(record: Record) -> str:
    return str(record.header.get("SOPInstanceUID", ""))


def _uid_values(dataset: Dataset, tag: int) -> list[str]:
    """The non-empty UID values of ``tag`` (a UID list has several)."""
    elem = dataset.get(tag)
    if elem is None or elem.value is None or elem.value == "":
        return []
    raw = elem.value
    values = [raw] if isinstance(raw, str) else list(raw)
    texts = [text for text in (str(v).strip("\x00 ") for v in values) if text]
    return [] if texts == ['""'] else texts  # "" asks for empty values: no narrowing
