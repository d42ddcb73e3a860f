"""The index's headers read back: the lean reader gives what pydicom's reader gives."""

from __future__ import annotations

import pytest
from pydicom import Dataset

from dimsefsm.archive.db.header import _raw_elements, header_bytes, header_of
from dimsefsm.datasets import DatasetDecodeError, decode_dataset, encode_dataset
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN
from tests.data.make import make_instance


def full_decode(blob: bytes) -> Dataset:
    return decode_dataset(blob, EXPLICIT_VR_LITTLE_ENDIAN, convert_values=False)


def with_charset(charset: str | list[str], name: str) -> Dataset:
    ds = make_instance(PatientName=name, OperatorsName="Tech^One")
    ds.SpecificCharacterSet = charset
    ds.add_new(0x00091010, "LO", "private value")
    return ds


@pytest.mark.parametrize(
    "ds",
    [
        make_instance(),  # a sequence of defined length (Referenced Image Sequence)
        with_charset("ISO_IR 192", "Müller^Jörg"),
        with_charset(["", "ISO 2022 IR 87"], "Yamada^Tarou=\033$B;3ED\033(B^\033$BB@O:\033(B"),
    ],
)
def test_the_lean_reader_reads_what_pydicom_reads(ds: Dataset) -> None:
    blob = header_bytes(ds)
    assert _raw_elements(blob) is not None
    lean, full = header_of(blob), full_decode(blob)
    assert lean._dict == full._dict
    assert lean.original_character_set == full.original_character_set
    assert lean.original_encoding == full.original_encoding
    assert str(lean.PatientName) == str(full.PatientName)
    assert lean.ReferencedImageSequence[0] == full.ReferencedImageSequence[0]


def test_a_blob_the_lean_reader_does_not_take_goes_through_the_full_decoder() -> None:
    ds = make_instance()
    ds["ReferencedImageSequence"].is_undefined_length = True
    ds.ReferencedImageSequence[0].is_undefined_length_sequence_item = True
    blob = encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN)
    assert _raw_elements(blob) is None
    assert header_of(blob) == full_decode(blob)
    truncated = header_bytes(make_instance())[:-3]
    assert _raw_elements(truncated) is None
    with pytest.raises(DatasetDecodeError):
        header_of(truncated)
