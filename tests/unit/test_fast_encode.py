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


def test_declines_what_it_does_not_handle() -> None:
    with_sequence = identifier()
    with_sequence.ReferencedStudySequence = [Dataset()]
    assert fast_encode(with_sequence, False) is None
    latin = identifier()
    latin.SpecificCharacterSet = "ISO_IR 100"
    latin.PatientName = "Müller"
    assert fast_encode(latin, False) is None
    non_ascii = identifier()
    non_ascii.PatientName = "Müller"
    assert fast_encode(non_ascii, False) is None
