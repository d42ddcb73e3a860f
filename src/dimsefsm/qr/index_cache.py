"""The index's key attributes saved next to the store, so a restart reads no file twice.

Reading every stored header at start costs a file open and a pydicom parse per
instance (about 0.7 ms for a CT): a minute for 100,000 instances.  The cache
keeps, per file, its size and modification time and the record's key
attributes encoded in Explicit VR Little Endian; at start a file whose size and
time still match is taken from the cache, anything else (new, changed, not
cached) is read as before, and files that are gone are simply not found.  The
cache is a hint, never the truth: a missing, truncated, foreign or damaged
cache file only means every header is read again.  A checksum over the whole
cache guards against damage that would still parse (a flipped byte in a
Patient ID would otherwise be served as a Patient ID no file holds).

Format (all little endian): the magic ``DIMSEFSM-INDEX-2\\n``, the SHA-256 of
everything after it, then per record ``u16`` path length, the path relative
to the store (UTF-8), ``u64`` size, ``u64`` mtime in ns, ``u32`` data length,
the encoded data set.  It is written to a temporary file and renamed, so a
crash never leaves half a cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset
from pydicom.datadict import DicomDictionary, dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.multival import MultiValue

from dimsefsm.datasets import DatasetDecodeError, decode_dataset, encode_dataset
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN

LOG = logging.getLogger("dimsefsm.qr.index")

CACHE_NAME = ".dimsefsm-index"
_MAGIC = b"DIMSEFSM-INDEX-2\n"
_DIGEST_SIZE = 32  # SHA-256
_ENTRY = struct.Struct("<QQI")
_PATH_LENGTH = struct.Struct("<H")

Stamp = tuple[int, int]  # (size, mtime_ns)


def stamp_of(path: Path) -> Stamp:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@dataclass(frozen=True, slots=True)
class CachedHeader:
    stamp: Stamp
    data: bytes

    def header(self) -> Dataset | None:
        try:
            return decode_dataset(self.data, EXPLICIT_VR_LITTLE_ENDIAN, convert_values=False)
        except DatasetDecodeError:
            return None


def read_cache(directory: Path) -> dict[str, CachedHeader]:
    """The cached headers by relative path; empty when there is no usable cache."""
    path = directory / CACHE_NAME
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        LOG.warning("index cache %s not read: %s", path, exc)
        return {}
    if not blob.startswith(_MAGIC):
        LOG.warning("index cache %s is not ours; every header is read again", path)
        return {}
    start = len(_MAGIC) + _DIGEST_SIZE
    if hashlib.sha256(memoryview(blob)[start:]).digest() != blob[len(_MAGIC) : start]:
        LOG.warning(
            "index cache %s fails its checksum: discarded, every header is read again", path
        )
        return {}
    try:
        return dict(_entries(blob, start))
    except (struct.error, UnicodeDecodeError, ValueError):
        LOG.warning("index cache %s is damaged; every header is read again", path)
        return {}


def _entries(blob: bytes, offset: int) -> Iterator[tuple[str, CachedHeader]]:
    end = len(blob)
    while offset < end:
        (length,) = _PATH_LENGTH.unpack_from(blob, offset)
        offset += _PATH_LENGTH.size
        name = blob[offset : offset + length].decode("utf-8")
        offset += length
        size, mtime, data_length = _ENTRY.unpack_from(blob, offset)
        offset += _ENTRY.size
        if offset + data_length > end:
            raise ValueError("truncated entry")
        yield name, CachedHeader((size, mtime), blob[offset : offset + data_length])
        offset += data_length


_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
_SHORT_HEADER = struct.Struct("<HH2sH")
_LONG_HEADER = struct.Struct("<HH2s2xI")


def copy_raw(header: Dataset) -> bytes | None:
    """Explicit VR LE bytes copied from undecoded little endian elements; None otherwise.

    The records' attributes are usually still as read from the file, so their
    value bytes can be written as they are: ~50 times faster than pydicom's
    writer, which decodes each value first.  Anything else (a decoded element,
    big endian, a sequence, an unknown VR) falls back to :func:`encode_dataset`.
    """
    parts: list[bytes] = []
    for tag in sorted(header.keys()):
        item = header.get_item(tag)
        if isinstance(item, RawDataElement):
            if not item.is_little_endian or item.length == 0xFFFFFFFF:
                return None
            value = bytes(item.value) if item.value is not None else b""
            vr = item.VR or (dictionary_VR(tag) if tag in DicomDictionary else None)
            if vr == "SQ" and item.is_implicit_VR:
                return None  # its items are implicit VR: not copyable into explicit
        else:
            vr, value = item.VR, _text_value(item)
        if vr is None or " or " in vr or value is None:
            return None
        group, element = tag >> 16, tag & 0xFFFF
        if vr in _LONG_VRS:
            parts.append(_LONG_HEADER.pack(group, element, vr.encode(), len(value)))
        elif len(value) > 0xFFFF:
            return None
        else:
            parts.append(_SHORT_HEADER.pack(group, element, vr.encode(), len(value)))
        parts.append(value)
    return b"".join(parts)


def _text_value(elem: DataElement) -> bytes | None:
    """An already decoded plain ASCII text element (Specific Character Set is one)."""
    if elem.VR not in ("CS", "AE", "SH", "LO", "UI"):
        return None
    values = elem.value if isinstance(elem.value, (list, MultiValue)) else [elem.value]
    if not all(isinstance(v, str) and v.isascii() for v in values):
        return None
    raw = "\\".join(values).encode("ascii")
    return raw + (b"\x00" if elem.VR == "UI" else b" ") if len(raw) % 2 else raw


def encode_header(header: Dataset) -> bytes | None:
    """The cache form of a record's header; None when it cannot be encoded (not cached)."""
    copied = copy_raw(header)
    if copied is not None:
        return copied
    try:
        return encode_dataset(header, EXPLICIT_VR_LITTLE_ENDIAN)
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        LOG.debug("header not cached: %s", exc)
        return None


def write_cache(directory: Path, entries: Iterable[tuple[Path, Stamp, bytes]]) -> int:
    """Write the cache atomically; returns the number of records written."""
    parts: list[bytes] = []
    count = 0
    for path, (size, mtime), data in entries:
        name = path.relative_to(directory).as_posix().encode("utf-8")
        if len(name) > 0xFFFF:
            continue
        parts += [_PATH_LENGTH.pack(len(name)), name, _ENTRY.pack(size, mtime, len(data)), data]
        count += 1
    target = directory / CACHE_NAME
    temporary = directory / f"{CACHE_NAME}.tmp"
    body = b"".join(parts)
    try:
        temporary.write_bytes(_MAGIC + hashlib.sha256(body).digest() + body)
        os.replace(temporary, target)
    except OSError as exc:
        LOG.warning("index cache %s not written: %s", target, exc)
        temporary.unlink(missing_ok=True)
        return 0
    return count
