"""An instance's header as kept in the index: Explicit VR Little Endian bytes, no pixel data.

The header is read anyway when an instance is received (the admission
checks); its attributes are usually still undecoded little endian elements,
whose value bytes can be copied as they are (~50 times faster than pydicom's
writer, which decodes each value first).  Anything else falls back to the
project's encoder.  Reading it back decodes lazily: a response converts only
the values it returns.
"""

from __future__ import annotations

import functools
import logging
import struct

from pydicom import Dataset
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import DicomDictionary, dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from dimsefsm.datasets import decode_dataset, encode_dataset
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN

LOG = logging.getLogger("dimsefsm.qr.index")

_PIXEL_DATA = 0x7FE00010


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
    """The stored form of a header; None when it cannot be encoded."""
    copied = copy_raw(header)
    if copied is not None:
        return copied
    try:
        return encode_dataset(header, EXPLICIT_VR_LITTLE_ENDIAN)
    except (ValueError, TypeError, OverflowError, KeyError) as exc:
        LOG.debug("header not encodable: %s", exc)
        return None


def header_bytes(header: Dataset) -> bytes:
    """The stored form of ``header`` (pixel data left out); ``ValueError`` if not encodable."""
    if _PIXEL_DATA in header:
        header = Dataset(
            {tag: header.get_item(tag) for tag in list(header.keys()) if tag < _PIXEL_DATA}
        )
    encoded = encode_header(header)
    if encoded is None:  # e.g. a private element of unknown VR: keep what can be written
        known = Dataset(
            {tag: header.get_item(tag) for tag in list(header.keys()) if tag in DicomDictionary}
        )
        encoded = encode_header(known)
    if encoded is None:
        raise ValueError("the header cannot be encoded for the index")
    return encoded


def header_of(blob: bytes) -> Dataset:
    """The header kept in the index, values converted when first read.

    A C-FIND response is built from one header per match, so the index's own
    blobs (written by :func:`header_bytes`, checked then) are split into raw
    elements by :func:`_raw_elements` (~6 times faster than pydicom's reader);
    a blob it does not take (an undefined length) goes through the full decoder.
    """
    elements = _raw_elements(blob)
    if elements is None:
        return decode_dataset(blob, EXPLICIT_VR_LITTLE_ENDIAN, convert_values=False)
    dataset = Dataset(elements, parent_encoding=default_encoding)
    charset = elements.get(_CHARSET)
    encoding = _encoding(charset.value) if isinstance(charset, RawDataElement) else default_encoding
    dataset.set_original_encoding(False, True, encoding)
    return dataset


_CHARSET = BaseTag(0x00080005)
_HEAD = struct.Struct("<HH2sH")
_LONG_LENGTH = struct.Struct("<I")
_LONG_VR_BYTES = frozenset(vr.encode() for vr in _LONG_VRS)
_SHORT_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH"}
    | {"SL", "SS", "ST", "TM", "UI", "UL", "US"}
)
_VR_TEXT = {vr.encode(): vr for vr in _LONG_VRS | _SHORT_VRS}
_TAGS: dict[int, BaseTag] = {}
"""One ``BaseTag`` per tag seen, reused: headers share most of their tags."""


def _raw_elements(blob: bytes) -> dict[BaseTag, DataElement | RawDataElement] | None:
    """The top-level elements of an Explicit VR Little Endian blob, values as bytes.

    What pydicom's reader yields for them (sequences of defined length
    included: pydicom parses their bytes when first read); None for anything
    unexpected, which the full decoder then reads or reports.
    """
    elements: dict[BaseTag, DataElement | RawDataElement] = {}
    position, size = 0, len(blob)
    head, long_length, long_vrs, vr_text, tags = (
        _HEAD.unpack_from,
        _LONG_LENGTH.unpack_from,
        _LONG_VR_BYTES,
        _VR_TEXT,
        _TAGS,
    )
    while position < size:
        if size - position < 8:
            return None
        group, number, vr_bytes, length = head(blob, position)
        vr = vr_text.get(vr_bytes)
        if vr is None:
            return None
        if vr_bytes in long_vrs:
            if size - position < 12:
                return None
            length = long_length(blob, position + 8)[0]
            start = position + 12
        else:
            start = position + 8
        end = start + length
        if length == 0xFFFFFFFF or end > size:
            return None
        key = group << 16 | number
        tag = tags.get(key)
        if tag is None:
            tag = tags.setdefault(key, BaseTag(key))
        elements[tag] = RawDataElement(tag, vr, length, blob[start:end], start, False, True)
        position = end
    return elements


@functools.lru_cache(maxsize=64)
def _encoding(raw: bytes | None) -> str | list[str]:
    """The Python codecs of a raw Specific Character Set value (few distinct ones)."""
    item = RawDataElement(_CHARSET, "CS", len(raw or b""), raw, 0, False, True)
    return convert_encodings(convert_raw_data_element(item).value)
