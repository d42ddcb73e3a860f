"""Data sets as bytes in a transfer syntax: facts, checks, decode, encode, convert.

pydicom is the data model (design principle 4), but its reader is forgiving: a
truncated value comes back shorter, garbage comes back as a private element.
A peer's data set that cannot be decoded must end in status 0xC210, so
`DatasetChecker` walks the encoding itself (tags, VRs, lengths, items and
delimiters) before pydicom sees it. The checker needs no pydicom objects and
takes the bytes in any pieces, so the Storage SCP can run it alongside a
`Part10Writer` as fragments arrive and still abort before a bad file is kept.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO

from pydicom.datadict import DicomDictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import correct_ambiguous_vr, write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from dimsefsm.fast_encode import fast_encode
from dimsefsm.sop_class import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)

__all__ = [
    "DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_BIG_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "MAX_SEQUENCE_DEPTH",
    "UNCOMPRESSED",
    "ConversionError",
    "DatasetChecker",
    "DatasetDecodeError",
    "DatasetTooLarge",
    "TransferSyntaxFacts",
    "UnknownTransferSyntaxError",
    "check_dataset_bytes",
    "convert_dataset_bytes",
    "decode_dataset",
    "encode_dataset",
    "is_deflated",
    "is_encapsulated",
    "is_implicit",
    "is_little_endian",
    "transfer_syntax_facts",
]

UNCOMPRESSED: tuple[str, ...] = (
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
)


class UnknownTransferSyntaxError(ValueError):
    """The UID is not a transfer syntax this library knows how the data set is encoded in."""


class DatasetDecodeError(ValueError):
    """The bytes are not a well-formed data set in the given transfer syntax (-> 0xC210)."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at byte {offset})")
        self.offset = offset


class DatasetTooLarge(DatasetDecodeError):
    """The data set is longer than the caller's bound (raw, or once inflated)."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ConversionError(ValueError):
    """The data set cannot be re-encoded in the target syntax without a codec."""


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class TransferSyntaxFacts:
    uid: str
    implicit: bool
    little_endian: bool
    # The data set bytes are raw deflate (RFC 1951) of their Explicit VR LE encoding.
    deflated: bool
    # Pixel data (if any) is encapsulated: fragments in items, only passed through.
    encapsulated: bool


# pydicom's registry misses these, or calls them not deflated while their data set is.
_SUPPLEMENT: dict[str, tuple[bool, bool, bool, bool]] = {
    # uid: (implicit, little endian, deflated, encapsulated)
    "1.2.840.10008.1.2.4.95": (False, True, True, True),  # JPIP Referenced Deflate
    "1.2.840.10008.1.2.4.205": (False, True, True, True),  # JPIP HTJ2K Referenced Deflate
    "1.2.840.10008.1.2.4.110": (False, True, False, True),  # JPEG XL Lossless
    "1.2.840.10008.1.2.4.111": (False, True, False, True),  # JPEG XL JPEG Recompression
    "1.2.840.10008.1.2.4.112": (False, True, False, True),  # JPEG XL
    "1.2.840.10008.1.2.8.1": (False, True, False, True),  # Deflated Image Frame Compression
}


@lru_cache(maxsize=256)
def transfer_syntax_facts(transfer_syntax: str) -> TransferSyntaxFacts:
    """How a data set is encoded in `transfer_syntax`; `UnknownTransferSyntaxError` if unknown."""
    known = _SUPPLEMENT.get(transfer_syntax)
    if known is not None:
        return TransferSyntaxFacts(transfer_syntax, *known)
    uid = UID(transfer_syntax)
    if not uid.is_transfer_syntax:
        raise UnknownTransferSyntaxError(f"{transfer_syntax!r} is not a known transfer syntax")
    return TransferSyntaxFacts(
        transfer_syntax,
        implicit=uid.is_implicit_VR,
        little_endian=uid.is_little_endian,
        deflated=uid.is_deflated,
        encapsulated=uid.is_encapsulated,
    )


def is_implicit(transfer_syntax: str) -> bool:
    return transfer_syntax_facts(transfer_syntax).implicit


def is_little_endian(transfer_syntax: str) -> bool:
    return transfer_syntax_facts(transfer_syntax).little_endian


def is_deflated(transfer_syntax: str) -> bool:
    return transfer_syntax_facts(transfer_syntax).deflated


def is_encapsulated(transfer_syntax: str) -> bool:
    return transfer_syntax_facts(transfer_syntax).encapsulated


def _facts_for_decode(transfer_syntax: str) -> TransferSyntaxFacts:
    try:
        return transfer_syntax_facts(transfer_syntax)
    except UnknownTransferSyntaxError as exc:
        raise DatasetDecodeError(str(exc)) from None


# --------------------------------------------------------------------------- checker

_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_DELIMITER = 0xFFFEE00D
_SEQUENCE_DELIMITER = 0xFFFEE0DD
_ITEM_GROUP = 0xFFFE

_SHORT_VRS = frozenset(b"AE AS AT CS DA DS DT FL FD IS LO LT PN SH SL SS ST TM UI UL US".split())
_UPPER = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")

_TAG_LE = struct.Struct("<HH").unpack_from
_TAG_BE = struct.Struct(">HH").unpack_from
_US_LE = struct.Struct("<H").unpack_from
_US_BE = struct.Struct(">H").unpack_from
_UL_LE = struct.Struct("<L").unpack_from
_UL_BE = struct.Struct(">L").unpack_from

# Frame kinds: what the bytes inside a frame may be.
_ELEMENTS = 0  # the data set or an item's data set
_ITEMS = 1  # a sequence: items holding data sets
_FRAGMENTS = 2  # encapsulated pixel data: items holding opaque bytes

_INFLATE_STEP = 1 << 20
# Real data sets nest sequences a handful deep; a hostile one could nest millions
# of empty levels, and pydicom's reader recurses once per level.
MAX_SEQUENCE_DEPTH = 64
_MAX_FRAMES = 1 + 2 * MAX_SEQUENCE_DEPTH


@lru_cache(maxsize=1)
def _sequence_tags() -> frozenset[int]:
    # Implicit VR gives no VR; a defined-length SQ is recognised by its tag.
    return frozenset(tag for tag, entry in DicomDictionary.items() if entry[0] == "SQ")


class _Frame:
    __slots__ = ("end", "implicit", "kind", "limit", "little")

    def __init__(
        self, kind: int, end: int | None, limit: int | None, implicit: bool, little: bool
    ) -> None:
        self.kind = kind
        self.end = end  # offset where a defined-length frame ends, None if delimited
        self.limit = limit  # nearest enclosing defined end: nothing may cross it
        self.implicit = implicit
        self.little = little


class DatasetChecker:
    """Incremental structural check of a data set's encoding, in constant memory.

    `feed()` the bytes in any pieces, then `finish()`; either raises
    `DatasetDecodeError` at the first fault: an element or item running past its
    enclosing item or sequence, a delimiter where none may be, a missing VR in an
    explicit syntax, or the data ending inside an element, item or sequence.
    Values are skipped, not read, so a 500 MB pixel data element costs nothing.
    It checks framing only; value contents are pydicom's business.
    """

    def __init__(self, transfer_syntax: str) -> None:
        facts = _facts_for_decode(transfer_syntax)
        self._init(facts.implicit, facts.little_endian, facts.deflated)

    @classmethod
    def for_encoding(cls, implicit: bool, little_endian: bool) -> DatasetChecker:
        checker = cls.__new__(cls)
        checker._init(implicit, little_endian, deflated=False)
        return checker

    def _init(self, implicit: bool, little: bool, deflated: bool) -> None:
        self._stack = [_Frame(_ELEMENTS, None, None, implicit, little)]
        self._plain = little and not implicit  # top-level fast path applies
        self._offset = 0  # of the (inflated) data set bytes consumed so far
        self._skip = 0  # value bytes still to pass over
        self._pending = b""  # start of an element header split across feeds
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS) if deflated else None
        self._finished = False

    @property
    def offset(self) -> int:
        """Data set bytes checked so far (after inflation for a deflated syntax)."""
        return self._offset

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._finished:
            raise ValueError("feed() after finish()")
        inflater = self._inflater
        if inflater is None:
            self._walk(data)
            return
        if inflater.eof:
            self._check_deflate_trailer(data)
            return
        pending: bytes | bytearray | memoryview = data
        while True:
            # Inflate in bounded steps: a small deflated piece may expand enormously.
            try:
                out = inflater.decompress(pending, _INFLATE_STEP)
            except zlib.error as exc:
                raise DatasetDecodeError(f"deflated data set is corrupt: {exc}") from None
            self._walk(out)
            if inflater.eof:
                self._check_deflate_trailer(inflater.unused_data)
                return
            pending = inflater.unconsumed_tail
            if not pending and len(out) < _INFLATE_STEP:
                return

    def finish(self) -> None:
        """Raise unless the bytes fed so far end exactly where a data set may end."""
        self._finished = True
        if self._inflater is not None and not self._inflater.eof:
            raise DatasetDecodeError("deflated data set ends before its deflate stream does")
        if self._pending:
            raise DatasetDecodeError("data set ends inside an element header", self._offset)
        if self._skip:
            raise DatasetDecodeError(
                f"data set ends {self._skip} bytes short of the end of a value", self._offset
            )
        if len(self._stack) > 1:
            what = {_ELEMENTS: "an item", _ITEMS: "a sequence", _FRAGMENTS: "pixel data"}
            raise DatasetDecodeError(
                f"data set ends inside {what[self._stack[-1].kind]}", self._offset
            )

    def _check_deflate_trailer(self, data: bytes | bytearray | memoryview) -> None:
        # An odd-length deflated stream is padded with a NUL to even length; tolerate NULs.
        if bytes(data).strip(b"\x00"):
            raise DatasetDecodeError("bytes follow the end of the deflated data set")

    def _walk(self, data: bytes | bytearray | memoryview) -> None:
        size = len(data)
        position = 0
        if self._pending:
            # Complete the split header from the front of this piece (12 bytes suffice).
            carried = len(self._pending)
            joined = self._pending + bytes(data[: 12 - carried])
            header_length = self._element(joined, 0, len(joined))
            if header_length == 0:
                self._pending = joined
                return
            self._pending = b""
            position = header_length - carried
        while True:
            skip = self._skip
            if skip:
                available = size - position
                if available < skip:
                    self._skip = skip - available
                    self._offset += available
                    return
                position += skip
                self._offset += skip
                self._skip = 0
                self._close_frames()
            if position >= size:
                return
            if self._plain and len(self._stack) == 1:
                position = self._walk_top_level(data, position, size)
                if position >= size:
                    return
            header_length = self._element(data, position, size)
            if header_length == 0:
                self._pending = bytes(data[position:])
                return
            position += header_length

    def _walk_top_level(
        self, data: bytes | bytearray | memoryview, position: int, size: int
    ) -> int:
        """Skip whole top-level explicit VR little endian elements; return where it stopped.

        Nearly every element of a stored instance is one of these, and for them
        the general path's frame bookkeeping has nothing to do (no enclosing
        limit, no frame to close).  Anything else (a sequence, an undefined
        length, an item tag, a value running past this piece, a bad VR) stops
        the loop and is left to :meth:`_element`, which also reports errors.
        """
        offset = self._offset
        tag_of, short_length, long_length = _TAG_LE, _US_LE, _UL_LE
        short_vrs, upper = _SHORT_VRS, _UPPER
        while size - position >= 8:
            group = tag_of(data, position)[0]
            if group == _ITEM_GROUP:
                break
            vr = bytes(data[position + 4 : position + 6])
            if vr in short_vrs:
                end = position + 8 + short_length(data, position + 6)[0]
            elif vr[0] in upper and vr[1] in upper and vr != b"SQ" and size - position >= 12:
                length = long_length(data, position + 8)[0]
                if length == _UNDEFINED:
                    break
                end = position + 12 + length
            else:
                break
            if end > size:
                break
            offset += end - position
            position = end
        self._offset = offset
        return position

    def _element(self, data: bytes | bytearray | memoryview, at: int, size: int) -> int:
        """Read one element or item header at `at`; return its length, 0 if incomplete."""
        frame = self._stack[-1]
        if frame.limit is not None and frame.limit - self._offset < 8:
            raise DatasetDecodeError(
                "element header runs past its enclosing item or sequence", self._offset
            )
        if size - at < 8:
            return 0
        little = frame.little
        group, element = (_TAG_LE if little else _TAG_BE)(data, at)
        vr = b""
        if group == _ITEM_GROUP or frame.implicit:
            (length,) = (_UL_LE if little else _UL_BE)(data, at + 4)
            header = 8
        else:
            vr = bytes(data[at + 4 : at + 6])
            if vr in _SHORT_VRS:
                (length,) = (_US_LE if little else _US_BE)(data, at + 6)
                header = 8
            elif vr[0] in _UPPER and vr[1] in _UPPER:
                if size - at < 12:
                    return 0
                (length,) = (_UL_LE if little else _UL_BE)(data, at + 8)
                header = 12
            else:
                raise DatasetDecodeError(
                    f"element ({group:04X},{element:04X}) has no valid explicit VR ({vr!r})",
                    self._offset,
                )
        start = self._offset
        self._offset = start + header
        self._apply((group << 16) | element, vr, length, start)
        if not self._skip:
            self._close_frames()
        return header

    def _apply(self, tag: int, vr: bytes, length: int, start: int) -> None:
        frame = self._stack[-1]
        kind = frame.kind
        offset = self._offset
        limit = frame.limit
        if limit is not None and offset > limit:
            raise DatasetDecodeError(f"{_tag_text(tag)} header runs past its item", start)
        if kind == _ELEMENTS:
            if tag >> 16 == _ITEM_GROUP:
                if tag == _ITEM_DELIMITER and frame.end is None and len(self._stack) > 1:
                    self._expect_zero(tag, length, start)
                    self._stack.pop()
                    return
                raise DatasetDecodeError(f"unexpected {_tag_text(tag)} among data elements", start)
            if length == _UNDEFINED:
                if frame.implicit or vr == b"SQ":
                    self._push(_ITEMS, None, frame.implicit, frame.little)
                elif vr == b"UN":
                    # PS3.5 6.2.2: an undefined-length UN holds Implicit VR LE items.
                    self._push(_ITEMS, None, True, True)
                elif vr in (b"OB", b"OW"):
                    self._push(_FRAGMENTS, None, False, frame.little)
                else:
                    raise DatasetDecodeError(
                        f"{_tag_text(tag)} with VR {vr.decode('latin-1')} has undefined length",
                        start,
                    )
                return
            self._check_fits(tag, length, limit, start)
            if vr == b"SQ" or (frame.implicit and tag in _sequence_tags()):
                self._push(_ITEMS, offset + length, frame.implicit, frame.little)
            else:
                self._skip = length
            return
        # A sequence or encapsulated pixel data: items, then maybe a delimiter.
        if tag == _ITEM:
            if kind == _ITEMS:
                if length == _UNDEFINED:
                    self._push(_ELEMENTS, None, frame.implicit, frame.little)
                else:
                    self._check_fits(tag, length, limit, start)
                    self._push(_ELEMENTS, offset + length, frame.implicit, frame.little)
                return
            if length == _UNDEFINED:
                raise DatasetDecodeError("pixel data fragment has undefined length", start)
            self._check_fits(tag, length, limit, start)
            self._skip = length
            return
        if tag == _SEQUENCE_DELIMITER and frame.end is None:
            self._expect_zero(tag, length, start)
            self._stack.pop()
            return
        where = "sequence" if kind == _ITEMS else "encapsulated pixel data"
        raise DatasetDecodeError(f"expected an item in {where}, found {_tag_text(tag)}", start)

    def _push(self, kind: int, end: int | None, implicit: bool, little: bool) -> None:
        if len(self._stack) >= _MAX_FRAMES:
            raise DatasetDecodeError(
                f"sequences nested more than {MAX_SEQUENCE_DEPTH} deep", self._offset
            )
        limit = self._stack[-1].limit
        if end is not None and (limit is None or end < limit):
            limit = end
        self._stack.append(_Frame(kind, end, limit, implicit, little))

    def _check_fits(self, tag: int, length: int, limit: int | None, start: int) -> None:
        if limit is not None and self._offset + length > limit:
            raise DatasetDecodeError(
                f"{_tag_text(tag)} of length {length} runs past its enclosing item or sequence",
                start,
            )

    @staticmethod
    def _expect_zero(tag: int, length: int, start: int) -> None:
        if length:
            raise DatasetDecodeError(f"{_tag_text(tag)} has length {length}, not 0", start)

    def _close_frames(self) -> None:
        stack = self._stack
        offset = self._offset
        while len(stack) > 1 and stack[-1].end == offset:
            stack.pop()


def _tag_text(tag: int) -> str:
    names = {_ITEM: "item", _ITEM_DELIMITER: "item delimiter", _SEQUENCE_DELIMITER: "delimiter"}
    name = names.get(tag, "element")
    return f"{name} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def check_dataset_bytes(data: bytes | bytearray | memoryview, transfer_syntax: str) -> None:
    """Raise `DatasetDecodeError` unless `data` is a well-framed data set in the syntax."""
    checker = DatasetChecker(transfer_syntax)
    checker.feed(data)
    checker.finish()


# --------------------------------------------------------------------------- decode


def _inflate(data: bytes | bytearray | memoryview, max_length: int | None = None) -> bytes:
    """Inflate a deflated data set; above ``max_length`` bytes stop and raise `DatasetTooLarge`.

    The bound goes to zlib as its output limit: a deflate bomb is refused after
    ``max_length`` bytes of output, never inflated whole and then measured.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        if max_length is None:
            plain = inflater.decompress(data)
        else:
            plain = inflater.decompress(data, max_length + 1)
    except zlib.error as exc:
        raise DatasetDecodeError(f"deflated data set is corrupt: {exc}") from None
    if max_length is not None and len(plain) > max_length:
        raise DatasetTooLarge(f"deflated data set inflates past {max_length} bytes", max_length)
    if not inflater.eof:
        raise DatasetDecodeError("deflated data set ends before its deflate stream does")
    if inflater.unused_data.strip(b"\x00"):
        raise DatasetDecodeError("bytes follow the end of the deflated data set")
    return plain


def _deflate(plain: bytes) -> bytes:
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = deflater.compress(plain) + deflater.flush()
    # Even length for PDV fragments and Part-10 files (PS3.5 A.5).
    return out + b"\x00" if len(out) % 2 else out


def decode_dataset(
    data: bytes | bytearray | memoryview,
    transfer_syntax: str,
    *,
    convert_values: bool = True,
    max_length: int | None = None,
) -> Dataset:
    """Decode a data set, every element parsed; `DatasetDecodeError` on any fault.

    With ``max_length`` a data set longer than that many bytes, as given or once
    inflated, raises `DatasetTooLarge` (a peer's identifier: see
    ``AE.maximum_identifier_size``).

    With ``convert_values=False`` the structure is still checked in full (every
    header, length, item and sequence delimiter) but values are converted when
    first read, as pydicom does for files and pynetdicom for responses: an SCU
    receiving thousands of C-FIND matches spends most of its decode time on
    values the caller may never look at.

    For an encapsulated syntax the elements are read as Explicit VR Little Endian
    and the pixel data stays encapsulated. Bulk values (OW, OF, OL, OD, OV) keep
    the byte order of the syntax, as pydicom does; `encode_dataset` swaps them
    when the target byte order differs.
    """
    facts = _facts_for_decode(transfer_syntax)
    if max_length is not None and len(data) > max_length:
        raise DatasetTooLarge(f"data set of {len(data)} bytes, over {max_length}", max_length)
    plain = _inflate(data, max_length) if facts.deflated else bytes(data)
    checker = DatasetChecker.for_encoding(facts.implicit, facts.little_endian)
    checker.feed(plain)
    checker.finish()
    try:
        source = BytesIO(plain)
        dataset = read_dataset(source, facts.implicit, facts.little_endian)
        if source.tell() != len(plain):
            raise DatasetDecodeError(
                f"decoder stopped after {source.tell()} of {len(plain)} bytes", source.tell()
            )
        if convert_values:
            for element in dataset.iterall():
                _ = element.value
    except DatasetDecodeError:
        raise
    except Exception as exc:
        # pydicom raises many kinds of errors on bad values; they all mean 0xC210.
        raise DatasetDecodeError(f"cannot decode data set: {type(exc).__name__}: {exc}") from exc
    return dataset


# --------------------------------------------------------------------------- encode

_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
_ARRAY_CODE = {width: code for code in "HILQ" if (width := array(code).itemsize) in (2, 4, 8)}


def _swap_bytes(value: bytes, width: int, tag: int) -> bytes:
    if len(value) % width:
        raise ConversionError(
            f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) of {len(value)} bytes cannot be "
            f"byte-swapped in {width}-byte words"
        )
    words = array(_ARRAY_CODE[width], value)
    words.byteswap()
    return words.tobytes()


def _with_swapped_words(dataset: Dataset, target_little: bool) -> Dataset:
    """A copy of `dataset` whose OW/OF/OL/OD/OV values are byte-swapped.

    pydicom writes these values as they are, in the order of the source encoding;
    a change of endianness must swap them or 16-bit pixels come out scrambled.
    """
    # Resolve "OB or OW" and "US or SS" first, reading values in the source order.
    correct_ambiguous_vr(dataset, not target_little)
    copy = Dataset()
    implicit, little = dataset.original_encoding
    copy.set_original_encoding(implicit, little, dataset.original_character_set)
    for element in dataset:
        width = _SWAP_WIDTH.get(element.VR)
        if width and isinstance(element.value, bytes | bytearray) and element.value:
            swapped = _swap_bytes(bytes(element.value), width, element.tag)
            copy.add(DataElement(element.tag, element.VR, swapped))
        elif element.VR == "SQ":
            items = [_with_swapped_words(item, target_little) for item in element.value]
            sequence = DataElement(element.tag, "SQ", Sequence(items))
            sequence.is_undefined_length = element.is_undefined_length
            copy.add(sequence)
        else:
            copy.add(element)
    return copy


def encode_dataset(dataset: Dataset, transfer_syntax: str) -> bytes:
    """Encode `dataset` in `transfer_syntax` (deflating for a deflated syntax).

    A data set created in memory is taken to hold bulk values in little endian
    order; one decoded by pydicom, in the order it was read in.
    """
    facts = transfer_syntax_facts(transfer_syntax)
    if facts.little_endian and not facts.deflated and not facts.encapsulated:
        fast = fast_encode(dataset, facts.implicit)
        if fast is not None:
            return fast
    source_little = dataset.original_encoding[1]
    if source_little is None:
        source_little = True
    if source_little != facts.little_endian:
        dataset = _with_swapped_words(dataset, facts.little_endian)
    out = DicomBytesIO()
    out.is_implicit_VR = facts.implicit
    out.is_little_endian = facts.little_endian
    write_dataset(out, dataset)
    encoded = out.getvalue()
    return _deflate(encoded) if facts.deflated else encoded


# --------------------------------------------------------------------------- convert


def convert_dataset_bytes(data: bytes | bytearray | memoryview, from_ts: str, to_ts: str) -> bytes:
    """Re-encode a data set from one transfer syntax into another.

    Equal syntaxes return the bytes untouched (no check). Deflate and its
    Explicit VR Little Endian payload convert without decoding. An encapsulated
    syntax converts to nothing else, and nothing converts into one: that needs
    an image codec, which a networking library does not carry.
    """
    if from_ts == to_ts:
        return bytes(data)
    source = _facts_for_decode(from_ts)
    target = transfer_syntax_facts(to_ts)
    if source.encapsulated or target.encapsulated:
        raise ConversionError(
            f"cannot convert a data set from {_name(from_ts)} to {_name(to_ts)}: "
            "compressed pixel data needs an image codec"
        )
    if source.deflated and to_ts == EXPLICIT_VR_LITTLE_ENDIAN:
        return _inflate(data)
    if target.deflated and from_ts == EXPLICIT_VR_LITTLE_ENDIAN:
        return _deflate(bytes(data))
    return encode_dataset(decode_dataset(data, from_ts), to_ts)


def _name(transfer_syntax: str) -> str:
    name = UID(transfer_syntax).name
    return f"{name} ({transfer_syntax})" if name != transfer_syntax else transfer_syntax
