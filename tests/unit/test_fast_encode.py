"""The fast identifier encoder writes exactly what pydicom writes, or declines."""

from __future__ import annotations

import pytest
from pydicom import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from dimsefsm.fast_encode import fast_encode


def pydicom_bytes(ds: Dataset, implicit: bool) -> bytes:
    out = DicomBytesIO()
    out.is_implicit_VR = implicit
    out.is_little_endian = True
    write_dataset(out, ds)
    return out.getvalue()


def identifier() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.RetrieveAETitle = "COMMON"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P1"
    ds.StudyDate = "20240115"
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SOPInstanceUID = "1.2.3"
    ds.ModalitiesInStudy = ["CT", "MR"]
    ds.NumberOfStudyRelatedInstances = "12"
    ds.Rows = 512
    ds.PixelSpacing = ["0.5", "0.5"]
    ds.AccessionNumber = ""
    ds.StudyDescription = "Head"
    return ds


@pytest.mark.parametrize("implicit", [True, False])
def test_same_bytes_as_pydicom(implicit: bool) -> None:
    ds = identifier()
    assert fast_encode(ds, implicit) == pydicom_bytes(ds, implicit)


def references(count: int) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = "1.2.3.4"
    items = []
    for n in range(count):
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.ReferencedSOPInstanceUID = f"1.2.3.4.{n}"
        if n % 2:
            item.FailureReason = 0x0112
        items.append(item)
    ds.ReferencedSOPSequence = items
    ds.FailedSOPSequence = []
    return ds


@pytest.mark.parametrize("implicit", [True, False])
def test_sequences_of_plain_items_same_bytes_as_pydicom(implicit: bool) -> None:
    """A Referenced SOP Sequence (Storage Commitment's): defined lengths, as pydicom writes."""
    ds = references(3)
    assert fast_encode(ds, implicit) == pydicom_bytes(ds, implicit)
    nested = identifier()
    nested.ReferencedStudySequence = [references(2), Dataset()]
    assert fast_encode(nested, implicit) == pydicom_bytes(nested, implicit)


def test_declines_what_it_does_not_handle() -> None:
    with_sequence = identifier()
    item = Dataset()
    item.PatientName = "Müller"
    with_sequence.ReferencedStudySequence = [item]
    assert fast_encode(with_sequence, False) is None
    undefined = references(1)
    undefined["ReferencedSOPSequence"].is_undefined_length = True
    assert fast_encode(undefined, False) is None
    latin = identifier()
    latin.SpecificCharacterSet = "ISO_IR 100"
    latin.PatientName = "Müller"
    assert fast_encode(latin, False) is None
    non_ascii = identifier()
    non_ascii.PatientName = "Müller"
    assert fast_encode(non_ascii, False) is None


@pytest.mark.parametrize("charset", ["ISO_IR 100", "ISO_IR 192", "ISO_IR 144"])
def test_ascii_text_in_an_ascii_compatible_character_set(charset: str) -> None:
    """Most archives' headers declare Latin-1 or UTF-8: their ASCII values are encoded here."""
    ds = identifier()
    ds.SpecificCharacterSet = charset
    encoded = fast_encode(ds, False)
    assert encoded is not None and encoded == pydicom_bytes(ds, False)


@pytest.mark.parametrize("charset", ["ISO_IR 13", "ISO 2022 IR 87", ["", "ISO 2022 IR 87"]])
def test_declines_character_sets_that_change_ascii(charset: str | list[str]) -> None:
    ds = identifier()
    ds.SpecificCharacterSet = charset
    assert fast_encode(ds, False) is None


@pytest.mark.parametrize("implicit", [True, False])
def test_raw_elements_are_written_as_read(implicit: bool) -> None:
    """Values still undecoded (a stored header's) keep their bytes, Latin-1 text included."""
    from dimsefsm.datasets import decode_dataset
    from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN

    ds = identifier()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Müller^Hans"
    raw = decode_dataset(pydicom_bytes(ds, False), EXPLICIT_VR_LITTLE_ENDIAN, convert_values=False)
    encoded = fast_encode(raw, implicit)
    assert encoded is not None and encoded == pydicom_bytes(ds, implicit)
