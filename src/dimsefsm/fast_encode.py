"""A fast path for encoding small, plain data sets (C-FIND identifiers, DIMSE-N data sets).

pydicom's writer is general and costs ~50 us for a five-element identifier;
a query SCP sends one per match, and a Storage Commitment report of 1,000
references costs it ~100 ms.  This encoder handles the common case —
little endian, sequences of defined length whose items are plain in turn
(a Referenced SOP Sequence), text and binary numbers, values still as read
(raw elements: their bytes), ASCII text (in the
default repertoire or a character set that writes ASCII as ASCII: Latin-1,
UTF-8 ... the sets of most archives' headers) — in a few microseconds, and
returns None for anything else so the caller falls back to pydicom.  Same
bytes as pydicom for what it accepts (a test checks that).
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom import Dataset
from pydicom.dataelem import DataElement, RawDataElement

_SPECIFIC_CHARACTER_SET = 0x00080005
_TEXT_PAD = {
    "AE": b" ",
    "AS": b" ",
    "CS": b" ",
    "DA": b" ",
    "DS": b" ",
    "DT": b" ",
    "IS": b" ",
    "LO": b" ",
    "LT": b" ",
    "PN": b" ",
    "SH": b" ",
    "ST": b" ",
    "TM": b" ",
    "UC": b" ",
    "UR": b" ",
    "UT": b" ",
    "UI": b"\x00",
}
_SINGLE_VALUE_TEXT = frozenset({"LT", "ST", "UT", "UR"})
_NUMBER_FORMAT = {"US": "H", "UL": "I", "SS": "h", "SL": "i", "FL": "f", "FD": "d"}
_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"}
)
_SHORT_HEADER = struct.Struct("<HH2sH")
_LONG_HEADER = struct.Struct("<HH2sHI")
_IMPLICIT_HEADER = struct.Struct("<HHI")


_ASCII_SUPERSETS = frozenset(
    {
        "",
        "ISO_IR 6",
        *(f"ISO_IR {number}" for number in (100, 101, 109, 110, 126, 127, 138, 144, 148)),
        *(f"ISO_IR {number}" for number in (166, 192, 203)),
    }
)
"""Single-valued Specific Character Sets in which ASCII text is written as ASCII (pydicom
encodes it byte for byte so); a text value outside ASCII is declined whatever the set."""

_TEXT_TYPES = frozenset({"PersonName", "DSfloat", "DSdecimal", "IS", "DA", "DT", "TM", "UID"})


def _text(value: Any, vr: str) -> str | None:
    """The text pydicom would write, for the value types whose text is unambiguous."""
    if isinstance(value, str):
        return value
    name = type(value).__name__
    if name in _TEXT_TYPES or (vr == "IS" and type(value) is int):
        return str(value)
    return None


def _raw_bytes(elem: RawDataElement) -> bytes | None:
    """The value of an undecoded little endian element as read: the same bytes are written.

    Raw bytes are in the data set's declared character set, which the caller
    keeps; sequences, undefined lengths and unknown VRs are left to pydicom.
    """
    if (
        not elem.is_little_endian
        or elem.VR in (None, "SQ", "UN")
        or elem.length == 0xFFFFFFFF
        or not isinstance(elem.value, bytes)
        or len(elem.value) & 1
    ):
        return None
    return elem.value


def _value_bytes(vr: str, value: Any) -> bytes | None:
    if value is None or value == "":
        return b""
    pad = _TEXT_PAD.get(vr)
    if pad is not None:
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            if vr in _SINGLE_VALUE_TEXT:
                return None
            texts = [_text(v, vr) for v in value]
            if any(t is None for t in texts):
                return None
            text = "\\".join(t for t in texts if t is not None)
        else:
            single = _text(value, vr)
            if single is None:
                return None
            text = single
        try:
            raw = text.encode("ascii")
        except UnicodeEncodeError:
            return None
        return raw + pad if len(raw) & 1 else raw
    fmt = _NUMBER_FORMAT.get(vr)
    if fmt is not None:
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        try:
            return struct.pack(f"<{len(values)}{fmt}", *values)
        except struct.error:
            return None
    return None


_ITEM_HEADER = struct.Struct("<HHI")


def _sequence_bytes(elem: DataElement, implicit: bool) -> bytes | None:
    """The items of a sequence as pydicom writes one made in memory: defined lengths, no
    delimiters.  One read with undefined lengths (kept so by pydicom) is declined."""
    if elem.is_undefined_length:
        return None
    parts: list[bytes] = []
    for item in elem.value:
        if not isinstance(item, Dataset) or item.is_undefined_length_sequence_item:
            return None
        body = fast_encode(item, implicit)
        if body is None:
            return None
        parts.append(_ITEM_HEADER.pack(0xFFFE, 0xE000, len(body)))
        parts.append(body)
    return b"".join(parts)


def fast_encode(dataset: Dataset, implicit: bool) -> bytes | None:
    """Little-endian encoding of a plain data set, or None when it is not plain."""
    if _SPECIFIC_CHARACTER_SET in dataset.keys():  # noqa: SIM118 (a Dataset's "in" costs a Tag())
        charset = dataset.SpecificCharacterSet
        if not isinstance(charset, str):  # several values: code extensions (ISO 2022)
            charset = charset[0] if len(charset) == 1 else None
        if charset not in _ASCII_SUPERSETS:
            return None
    parts: list[bytes] = []
    for tag in sorted(dataset.keys(), key=int):  # int keys compare in C, BaseTag's in Python
        elem = dataset.get_item(tag)
        if isinstance(elem, RawDataElement):
            value = _raw_bytes(elem)
            vr = elem.VR or ""
        elif isinstance(elem, DataElement):
            vr = elem.VR
            sequence = vr == "SQ"
            value = _sequence_bytes(elem, implicit) if sequence else _value_bytes(vr, elem.value)
        else:
            return None
        if tag >> 16 == 0x0002:
            return None
        if value is None:
            return None
        group, element = tag >> 16, tag & 0xFFFF
        if implicit:
            parts.append(_IMPLICIT_HEADER.pack(group, element, len(value)))
        elif vr in _LONG_VRS:
            parts.append(_LONG_HEADER.pack(group, element, vr.encode(), 0, len(value)))
        else:
            if len(value) > 0xFFFF:
                return None
            parts.append(_SHORT_HEADER.pack(group, element, vr.encode(), len(value)))
        parts.append(value)
    return b"".join(parts)
