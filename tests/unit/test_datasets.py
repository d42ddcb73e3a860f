"""Transfer syntax facts, structural checks, decode/encode round trips, conversions."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dimsefsm.datasets import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    MAX_SEQUENCE_DEPTH,
    UNCOMPRESSED,
    ConversionError,
    DatasetChecker,
    DatasetDecodeError,
    DatasetTooLarge,
    UnknownTransferSyntaxError,
    check_dataset_bytes,
    convert_dataset_bytes,
    decode_dataset,
    encode_dataset,
    is_deflated,
    is_encapsulated,
    is_implicit,
    is_little_endian,
    transfer_syntax_facts,
)
from dimsefsm.part10 import read_part10
from tests.data.make import (
    JPEG_BASELINE,
    RLE_LOSSLESS,
    make_instance,
    pixel_pattern,
    write_instance,
)

ENCAPSULATED = (JPEG_BASELINE, RLE_LOSSLESS)
ALL_SYNTAXES = UNCOMPRESSED + ENCAPSULATED
LITTLE_ENDIAN_UNCOMPRESSED = (
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
)


def swap16(data: bytes) -> bytes:
    swapped = bytearray(data)
    swapped[0::2], swapped[1::2] = data[1::2], data[0::2]
    return bytes(swapped)


def explicit_le(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2s2xL", group, element, vr, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def item(body: bytes, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return struct.pack("<HHL", 0xFFFE, 0xE000, size) + body


ITEM_DELIMITER = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
SEQUENCE_DELIMITER = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
PATIENT_NAME = explicit_le(0x0010, 0x0010, b"PN", b"Doe^Jane")


def undefined_sq(body: bytes) -> bytes:
    return struct.pack("<HH2s2xL", 0x0008, 0x1140, b"SQ", 0xFFFFFFFF) + body


# --------------------------------------------------------------------------- facts


@pytest.mark.parametrize(
    ("uid", "implicit", "little", "deflated", "encapsulated"),
    [
        (IMPLICIT_VR_LITTLE_ENDIAN, True, True, False, False),
        (EXPLICIT_VR_LITTLE_ENDIAN, False, True, False, False),
        (DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, False, True, True, False),
        (EXPLICIT_VR_BIG_ENDIAN, False, False, False, False),
        (JPEG_BASELINE, False, True, False, True),
        (RLE_LOSSLESS, False, True, False, True),
        ("1.2.840.10008.1.2.1.98", False, True, False, True),
        ("1.2.840.10008.1.2.4.201", False, True, False, True),
        ("1.2.840.10008.1.2.4.95", False, True, True, True),
        ("1.2.840.10008.1.2.4.110", False, True, False, True),
        ("1.2.840.10008.1.2.8.1", False, True, False, True),
    ],
)
def test_transfer_syntax_facts(
    uid: str, implicit: bool, little: bool, deflated: bool, encapsulated: bool
) -> None:
    assert (is_implicit(uid), is_little_endian(uid), is_deflated(uid), is_encapsulated(uid)) == (
        implicit,
        little,
        deflated,
        encapsulated,
    )


def test_uncompressed_lists_the_four_native_syntaxes() -> None:
    assert set(UNCOMPRESSED) == {
        IMPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_LITTLE_ENDIAN,
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_BIG_ENDIAN,
    }
    assert not any(transfer_syntax_facts(uid).encapsulated for uid in UNCOMPRESSED)


@pytest.mark.parametrize("uid", ["1.2.3.4", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.99999.1"])
def test_unknown_transfer_syntax_is_refused(uid: str) -> None:
    with pytest.raises(UnknownTransferSyntaxError, match="not a known transfer syntax"):
        is_implicit(uid)
    with pytest.raises(DatasetDecodeError, match="not a known transfer syntax"):
        decode_dataset(PATIENT_NAME, uid)


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("syntax", ALL_SYNTAXES)
def test_decode_of_encode_equals_the_source(syntax: str) -> None:
    ds = make_instance(transfer_syntax=syntax)
    decoded = decode_dataset(encode_dataset(ds, syntax), syntax)
    if syntax == EXPLICIT_VR_BIG_ENDIAN:
        # Bulk words keep the byte order of the syntax they were read in (pydicom's model).
        assert decoded.PixelData == swap16(ds.PixelData)
        decoded.PixelData = ds.PixelData
    assert decoded == ds
    assert decoded.original_encoding == (is_implicit(syntax), is_little_endian(syntax))


@pytest.mark.parametrize("syntax", ALL_SYNTAXES)
def test_encode_of_decode_reproduces_the_bytes(syntax: str) -> None:
    encoded = encode_dataset(make_instance(transfer_syntax=syntax), syntax)
    assert encode_dataset(decode_dataset(encoded, syntax), syntax) == encoded


def nested_dataset(defined_lengths: bool) -> Dataset:
    """Sequences three deep, with defined or undefined sequence and item lengths."""
    leaf = Dataset()
    leaf.CodeValue = "T-D3000"
    leaf.CodingSchemeDesignator = "SRT"
    leaf.CodeMeaning = "Chest"
    middle = Dataset()
    middle.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    middle.AnatomicRegionSequence = Sequence([leaf])
    middle.LongitudinalTemporalOffsetFromEvent = 1.5  # FD
    top = Dataset()
    top.PatientName = "Doe^Jane"
    top.ReferencedImageSequence = Sequence([middle, Dataset()])
    top.OtherPatientIDsSequence = Sequence([])
    top.RedPaletteColorLookupTableData = pixel_pattern(64)
    top["RedPaletteColorLookupTableData"].VR = "OW"
    for element in [*top.iterall()]:
        if element.VR == "SQ":
            element.is_undefined_length = not defined_lengths
            for entry in element.value:
                entry.is_undefined_length_sequence_item = not defined_lengths
    return top


@pytest.mark.parametrize("defined_lengths", [True, False])
@pytest.mark.parametrize("syntax", UNCOMPRESSED)
def test_nested_sequences_round_trip(syntax: str, defined_lengths: bool) -> None:
    ds = nested_dataset(defined_lengths)
    encoded = encode_dataset(ds, syntax)
    check_dataset_bytes(encoded, syntax)
    decoded = decode_dataset(encoded, syntax)
    assert encode_dataset(decoded, syntax) == encoded
    leaf = decoded.ReferencedImageSequence[0].AnatomicRegionSequence[0]
    assert leaf.CodeMeaning == "Chest"
    assert decoded.ReferencedImageSequence[0].LongitudinalTemporalOffsetFromEvent == 1.5
    assert len(decoded.ReferencedImageSequence) == 2
    assert len(decoded.OtherPatientIDsSequence) == 0
    lut = decoded.RedPaletteColorLookupTableData
    assert lut == (swap16(pixel_pattern(64)) if syntax == EXPLICIT_VR_BIG_ENDIAN else lut)


def test_big_endian_encoding_matches_dcmtk(tmp_path: Path) -> None:
    ds = make_instance()
    source = write_instance(tmp_path / "le.dcm", ds, EXPLICIT_VR_LITTLE_ENDIAN)
    converted = tmp_path / "be.dcm"
    subprocess.run(["dcmconv", "+tb", str(source), str(converted)], check=True)
    _, dcmtk_bytes = read_part10(converted)
    assert encode_dataset(ds, EXPLICIT_VR_BIG_ENDIAN) == dcmtk_bytes


def test_implicit_encoding_matches_dcmtk(tmp_path: Path) -> None:
    ds = make_instance()
    source = write_instance(tmp_path / "le.dcm", ds, EXPLICIT_VR_LITTLE_ENDIAN)
    converted = tmp_path / "implicit.dcm"
    subprocess.run(["dcmconv", "+ti", str(source), str(converted)], check=True)
    _, dcmtk_bytes = read_part10(converted)
    assert encode_dataset(ds, IMPLICIT_VR_LITTLE_ENDIAN) == dcmtk_bytes


def test_dcmtk_deflated_data_set_decodes(tmp_path: Path) -> None:
    ds = make_instance()
    source = write_instance(tmp_path / "le.dcm", ds, EXPLICIT_VR_LITTLE_ENDIAN)
    converted = tmp_path / "deflated.dcm"
    subprocess.run(["dcmconv", "+td", str(source), str(converted)], check=True)
    info, dcmtk_bytes = read_part10(converted)
    assert info.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    assert decode_dataset(dcmtk_bytes, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) == ds


def test_deflated_encoding_is_raw_deflate_of_explicit_le_with_even_length() -> None:
    ds = make_instance()
    deflated = encode_dataset(ds, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    assert len(deflated) % 2 == 0
    inflated = zlib.decompressobj(-zlib.MAX_WBITS).decompress(deflated)
    assert inflated == encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN)


def test_encoding_to_big_endian_leaves_the_source_untouched() -> None:
    ds = make_instance()
    pixels = ds.PixelData
    encode_dataset(ds, EXPLICIT_VR_BIG_ENDIAN)
    assert ds.PixelData == pixels


def test_encapsulated_pixel_data_stays_encapsulated() -> None:
    ds = make_instance(transfer_syntax=JPEG_BASELINE)
    decoded = decode_dataset(encode_dataset(ds, JPEG_BASELINE), JPEG_BASELINE)
    assert decoded["PixelData"].is_undefined_length
    assert decoded.PixelData == ds.PixelData
    # A basic offset table item holding one offset, then the frame's fragment item.
    assert decoded.PixelData[:12] == b"\xfe\xff\x00\xe0\x04\x00\x00\x00\x00\x00\x00\x00"
    assert decoded.PixelData[12:16] == b"\xfe\xff\x00\xe0"


def test_empty_data_set_decodes_to_an_empty_dataset() -> None:
    assert len(decode_dataset(b"", EXPLICIT_VR_LITTLE_ENDIAN)) == 0


# --------------------------------------------------------------------------- bad bytes


def top_level_boundaries(ds: Dataset, syntax: str) -> set[int]:
    """Offsets where a data set truncated between two top-level elements ends."""
    boundaries = {0}
    partial = Dataset()
    for element in ds:
        partial.add(element)
        boundaries.add(len(encode_dataset(partial, syntax)))
    return boundaries


@pytest.mark.parametrize("syntax", [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN])
def test_every_truncation_inside_an_element_is_detected(syntax: str) -> None:
    ds = make_instance(pixel_bytes=16, transfer_syntax=syntax)
    ds.ReferencedImageSequence[0].is_undefined_length_sequence_item = True
    encoded = encode_dataset(ds, syntax)
    boundaries = top_level_boundaries(ds, syntax)
    assert len(encoded) in boundaries
    for cut in range(len(encoded)):
        if cut in boundaries:
            assert len(decode_dataset(encoded[:cut], syntax)) < len(ds)
        else:
            with pytest.raises(DatasetDecodeError):
                decode_dataset(encoded[:cut], syntax)


@pytest.mark.parametrize("cut", [1, 2, 10, 100, -50, -3])
def test_truncated_deflate_stream_is_detected(cut: int) -> None:
    encoded = encode_dataset(make_instance(), DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    encoded = encoded.rstrip(b"\x00")  # the optional pad byte may go, nothing else
    with pytest.raises(DatasetDecodeError, match="deflate"):
        decode_dataset(encoded[:cut], DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)


def test_deflate_pad_bytes_are_accepted_and_other_trailing_bytes_are_not() -> None:
    ds = make_instance()
    deflated = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflated.compress(encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN)) + deflated.flush()
    assert decode_dataset(body + b"\x00", DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN) == ds
    with pytest.raises(DatasetDecodeError, match="bytes follow the end"):
        decode_dataset(body + b"\x00\x01", DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    with pytest.raises(DatasetDecodeError, match="corrupt"):
        decode_dataset(b"\xff" * 64, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)


@pytest.mark.parametrize("syntax", UNCOMPRESSED)
def test_trailing_garbage_is_detected(syntax: str) -> None:
    encoded = encode_dataset(make_instance(), syntax)
    if is_deflated(syntax):
        garbage = encoded + b"\x12\x34\x56"
    else:
        garbage = encoded + bytes.fromhex("e07f10004f57") + b"\x00" * 3
    with pytest.raises(DatasetDecodeError):
        decode_dataset(garbage, syntax)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x08\x00", "ends inside an element header"),
        (struct.pack("<HH", 0x0010, 0x0010) + b"\x01\x02\x00\x00", "no valid explicit VR"),
        (PATIENT_NAME + ITEM_DELIMITER, "unexpected item delimiter"),
        (item(PATIENT_NAME), "unexpected item"),
        (SEQUENCE_DELIMITER, "unexpected delimiter"),
        (explicit_le(0x0010, 0x0010, b"PN", b"Doe^Jane")[:-2], "short of the end of a value"),
        (undefined_sq(item(PATIENT_NAME)), "ends inside a sequence"),
        (undefined_sq(item(PATIENT_NAME, 0xFFFFFFFF)), "ends inside an item"),
        (undefined_sq(PATIENT_NAME), "expected an item in sequence"),
        (undefined_sq(item(PATIENT_NAME, 12) + SEQUENCE_DELIMITER), "runs past"),
        (undefined_sq(item(PATIENT_NAME, 20) + SEQUENCE_DELIMITER), "runs past"),
        (
            undefined_sq(item(PATIENT_NAME, 0xFFFFFFFF) + SEQUENCE_DELIMITER),
            "unexpected delimiter",
        ),
        (
            undefined_sq(struct.pack("<HHL", 0xFFFE, 0xE0DD, 4) + b"\x00" * 4),
            "has length 4, not 0",
        ),
        (
            struct.pack("<HH2s2xL", 0x0008, 0x1140, b"SQ", 20) + item(PATIENT_NAME),
            "runs past",
        ),
        (struct.pack("<HH2s2xL", 0x7FE0, 0x0010, b"OB", 0xFFFFFFFF) + item(b"ab"), "pixel data"),
        (
            struct.pack("<HH2s2xL", 0x7FE0, 0x0010, b"OB", 0xFFFFFFFF) + PATIENT_NAME,
            "expected an item in encapsulated pixel data",
        ),
        (
            struct.pack("<HH2s2xL", 0x7FE0, 0x0010, b"OB", 0xFFFFFFFF) + item(b"", 0xFFFFFFFF),
            "fragment has undefined length",
        ),
        (struct.pack("<HH2s2xL", 0x0010, 0x4000, b"UT", 0xFFFFFFFF), "has undefined length"),
        (explicit_le(0x0028, 0x0010, b"US", b"\x01\x02\x03"), "cannot decode data set"),
    ],
)
def test_malformed_explicit_data_sets_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(DatasetDecodeError, match=message):
        decode_dataset(data, EXPLICIT_VR_LITTLE_ENDIAN)


def test_implicit_sequence_with_defined_length_is_checked_inside() -> None:
    bad_item = struct.pack("<HHL", 0xFFFE, 0xE000, 4) + b"\x10\x00\x10\x00"
    sequence = struct.pack("<HHL", 0x0008, 0x1140, len(bad_item)) + bad_item
    with pytest.raises(DatasetDecodeError, match="runs past"):
        decode_dataset(sequence, IMPLICIT_VR_LITTLE_ENDIAN)


def test_undefined_length_un_holds_implicit_items() -> None:
    body = item(struct.pack("<HHL", 0x0010, 0x0010, 8) + b"Doe^Jane", 0xFFFFFFFF)
    data = (
        struct.pack("<HH2s2xL", 0x0008, 0x1140, b"UN", 0xFFFFFFFF)
        + body
        + ITEM_DELIMITER
        + SEQUENCE_DELIMITER
    )
    check_dataset_bytes(data, EXPLICIT_VR_LITTLE_ENDIAN)
    decoded = decode_dataset(data, EXPLICIT_VR_LITTLE_ENDIAN)
    assert decoded.ReferencedImageSequence[0].PatientName == "Doe^Jane"


@pytest.mark.parametrize("seed", range(20))
def test_random_garbage_never_escapes_as_another_error(seed: int) -> None:
    import random

    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    for syntax in ALL_SYNTAXES:
        try:
            result = decode_dataset(data, syntax)
        except DatasetDecodeError:
            continue
        assert isinstance(result, Dataset)


# --------------------------------------------------------------------------- checker


@pytest.mark.parametrize("syntax", UNCOMPRESSED)
def test_checker_accepts_bytes_in_any_pieces(syntax: str) -> None:
    encoded = encode_dataset(nested_dataset(defined_lengths=False), syntax)
    for piece in (1, 3, 7, 13):
        checker = DatasetChecker(syntax)
        for start in range(0, len(encoded), piece):
            checker.feed(encoded[start : start + piece])
        checker.finish()
        if not is_deflated(syntax):
            assert checker.offset == len(encoded)


def test_checker_reports_a_fault_whatever_the_piece_size() -> None:
    good = encode_dataset(nested_dataset(defined_lengths=True), EXPLICIT_VR_LITTLE_ENDIAN)
    bad = good[:-1]
    for piece in (1, 2, 5, len(bad)):
        checker = DatasetChecker(EXPLICIT_VR_LITTLE_ENDIAN)
        for start in range(0, len(bad), piece):
            checker.feed(bad[start : start + piece])
        with pytest.raises(DatasetDecodeError):
            checker.finish()


def test_checker_skips_a_huge_value_without_holding_it() -> None:
    size = 64 << 20
    checker = DatasetChecker(EXPLICIT_VR_LITTLE_ENDIAN)
    checker.feed(struct.pack("<HH2s2xL", 0x7FE0, 0x0010, b"OW", size))
    chunk = bytes(1 << 20)
    for _ in range(size // len(chunk)):
        checker.feed(chunk)
    checker.finish()
    assert checker.offset == size + 12


def test_checker_refuses_feed_after_finish() -> None:
    checker = DatasetChecker(EXPLICIT_VR_LITTLE_ENDIAN)
    checker.feed(PATIENT_NAME)
    checker.finish()
    with pytest.raises(ValueError, match="after finish"):
        checker.feed(PATIENT_NAME)


def test_checker_of_deflated_syntax_checks_the_inflated_bytes() -> None:
    explicit = PATIENT_NAME + b"\x10\x00"  # a stray half tag after a good element
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = deflater.compress(explicit) + deflater.flush()
    checker = DatasetChecker(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    checker.feed(deflated)
    with pytest.raises(DatasetDecodeError, match="element header"):
        checker.finish()


# --------------------------------------------------------------------------- convert


@pytest.mark.parametrize("target", UNCOMPRESSED)
@pytest.mark.parametrize("source", UNCOMPRESSED)
def test_conversion_keeps_pixel_data_byte_for_byte(source: str, target: str) -> None:
    ds = make_instance()
    converted = convert_dataset_bytes(encode_dataset(ds, source), source, target)
    assert converted == encode_dataset(ds, target)
    back = convert_dataset_bytes(converted, target, EXPLICIT_VR_LITTLE_ENDIAN)
    assert decode_dataset(back, EXPLICIT_VR_LITTLE_ENDIAN).PixelData == ds.PixelData


def test_explicit_and_deflated_convert_without_a_decode() -> None:
    explicit = encode_dataset(make_instance(), EXPLICIT_VR_LITTLE_ENDIAN)
    deflated = convert_dataset_bytes(
        explicit, EXPLICIT_VR_LITTLE_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    )
    assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(deflated) == explicit
    assert (
        convert_dataset_bytes(
            deflated, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN
        )
        == explicit
    )


def test_same_syntax_conversion_returns_the_bytes_unchanged() -> None:
    encoded = encode_dataset(make_instance(transfer_syntax=JPEG_BASELINE), JPEG_BASELINE)
    assert convert_dataset_bytes(encoded, JPEG_BASELINE, JPEG_BASELINE) == encoded


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (JPEG_BASELINE, EXPLICIT_VR_LITTLE_ENDIAN),
        (EXPLICIT_VR_LITTLE_ENDIAN, JPEG_BASELINE),
        (JPEG_BASELINE, RLE_LOSSLESS),
        (IMPLICIT_VR_LITTLE_ENDIAN, RLE_LOSSLESS),
    ],
)
def test_conversions_that_need_a_codec_are_refused(source: str, target: str) -> None:
    encoded = encode_dataset(make_instance(transfer_syntax=source), source)
    with pytest.raises(ConversionError, match="needs an image codec"):
        convert_dataset_bytes(encoded, source, target)


def test_conversion_of_a_bad_data_set_raises_decode_error() -> None:
    with pytest.raises(DatasetDecodeError):
        convert_dataset_bytes(
            PATIENT_NAME[:-1], EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN
        )


def test_odd_length_word_values_cannot_be_swapped() -> None:
    ds = Dataset()
    ds.add(DataElement(0x00281201, "OW", b"\x01\x02\x03"))
    with pytest.raises(ConversionError, match="byte-swapped"):
        encode_dataset(ds, EXPLICIT_VR_BIG_ENDIAN)


def nested_sequences(depth: int) -> bytes:
    opening = (undefined_sq(b"") + struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)) * depth
    closing = (ITEM_DELIMITER + SEQUENCE_DELIMITER) * depth
    return opening + closing


def test_nesting_up_to_the_limit_decodes_and_deeper_is_refused() -> None:
    deepest = decode_dataset(nested_sequences(MAX_SEQUENCE_DEPTH), EXPLICIT_VR_LITTLE_ENDIAN)
    level = deepest
    for _ in range(MAX_SEQUENCE_DEPTH - 1):
        level = level.ReferencedImageSequence[0]
    assert len(level.ReferencedImageSequence[0]) == 0
    with pytest.raises(DatasetDecodeError, match="nested more than 64 deep"):
        check_dataset_bytes(nested_sequences(100_000), EXPLICIT_VR_LITTLE_ENDIAN)


def test_checker_inflates_a_highly_compressed_piece_in_bounded_steps() -> None:
    size = 8 << 20
    explicit = struct.pack("<HH2s2xL", 0x7FE0, 0x0010, b"OW", size) + bytes(size)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = deflater.compress(explicit) + deflater.flush()
    assert len(deflated) < size // 100
    checker = DatasetChecker(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    checker.feed(deflated)
    checker.finish()
    assert checker.offset == len(explicit)


@pytest.mark.parametrize("syntax", [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN])
def test_lazy_decode_checks_the_structure_and_converts_values_on_access(syntax: str) -> None:
    ds = make_instance(pixel_bytes=16, transfer_syntax=syntax)
    encoded = encode_dataset(ds, syntax)
    lazy = decode_dataset(encoded, syntax, convert_values=False)
    assert lazy == ds
    assert lazy.PatientName == ds.PatientName
    with pytest.raises(DatasetDecodeError):
        decode_dataset(encoded[:-1], syntax, convert_values=False)


def test_max_length_stops_a_deflate_bomb_at_the_bound() -> None:
    """The bound is zlib's output limit: 32 MiB of zeros are refused after 1 MiB + 1."""
    head = struct.pack("<HH2sHL", 0x0040, 0xA160, b"UT", 0, 32 << 20)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    bomb = deflater.compress(head) + deflater.compress(bytes(32 << 20)) + deflater.flush()
    with pytest.raises(DatasetTooLarge, match="inflates past 1048576 bytes") as info:
        decode_dataset(bomb, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, max_length=1 << 20)
    assert info.value.limit == 1 << 20
    assert isinstance(info.value, DatasetDecodeError)  # callers that only know 0xCx10 still work


def test_max_length_bounds_raw_bytes_and_admits_the_exact_size() -> None:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    for syntax in (EXPLICIT_VR_LITTLE_ENDIAN, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN):
        data = encode_dataset(ds, syntax)
        plain = encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN)
        size = max(len(data), len(plain))
        assert decode_dataset(data, syntax, max_length=size).PatientName == "Doe^Jane"
        with pytest.raises(DatasetTooLarge):
            decode_dataset(data, syntax, max_length=min(len(data), len(plain)) - 1)
