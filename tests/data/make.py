"""Build DICOM test instances and write them as Part-10 files.

Instances carry real pixel data of a chosen size in a byte pattern whose 16-bit
words are not palindromes, so a missing or doubled byte swap shows. The huge
instance for the memory benchmark is written frame by frame and never exists in
memory as a whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, generate_uid

from dimsefsm.datasets import (
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    encode_dataset,
    transfer_syntax_facts,
)
from dimsefsm.part10 import Part10Info, build_file_meta, read_part10_info

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MULTIFRAME_GRAYSCALE_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"

IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.10.1138.1"
IMPLEMENTATION_VERSION_NAME = "DIMSEFSM_TEST"

SMALL_PIXEL_BYTES = 8 * 1024  # 64 x 64 x 16 bit: a ~9 KB file with its header
LARGE_PIXEL_BYTES = 512 * 1024  # 512 x 512 x 16 bit
HUGE_FILE_BYTES = 500 * 1024 * 1024  # the memory benchmark's instance

_FRAME_ROWS = 512
_FRAME_COLUMNS = 512
_FRAME_BYTES = _FRAME_ROWS * _FRAME_COLUMNS * 2


def pixel_pattern(size: int) -> bytes:
    """`size` bytes cycling 0..250 (251 is prime: no two adjacent bytes of a word repeat)."""
    cycle = bytes(range(251))
    return (cycle * (size // len(cycle) + 1))[:size]


def _grid(samples: int) -> tuple[int, int]:
    for columns in (512, 256, 128, 64, 32, 16, 8, 4, 2, 1):
        if samples % columns == 0 and samples // columns <= 0xFFFF:
            return samples // columns, columns
    raise ValueError(f"{samples} samples do not fit one frame; use write_large_instance")


def fake_jpeg_frame(size: int) -> bytes:
    """An even-length byte string framed like a JPEG stream (SOI ... EOI), not decodable."""
    size = max(size + size % 2, 4)
    return b"\xff\xd8" + pixel_pattern(size - 4) + b"\xff\xd9"


def rle_frame(plane: bytes) -> bytes:
    """A real RLE Lossless frame (PS3.5 Annex G) of one 8-bit segment: literal runs only."""
    runs = bytearray()
    for start in range(0, len(plane), 128):
        run = plane[start : start + 128]
        runs.append(len(run) - 1)
        runs += run
    if len(runs) % 2:
        runs.append(0x80)  # a no-op run byte keeps the segment even
    header = (1).to_bytes(4, "little") + (64).to_bytes(4, "little") + bytes(56)
    return header + bytes(runs)


def make_instance(
    sop_class_uid: str = CT_IMAGE_STORAGE,
    *,
    pixel_bytes: int = SMALL_PIXEL_BYTES,
    transfer_syntax: str = EXPLICIT_VR_LITTLE_ENDIAN,
    sop_instance_uid: str | None = None,
    **attrs: object,
) -> Dataset:
    """An image instance with `pixel_bytes` of pixel data, ready for `write_instance`.

    Uncompressed syntaxes get 16-bit native pixel data (OW); JPEG Baseline gets
    one fake JPEG fragment and RLE Lossless a real 8-bit RLE frame, both
    encapsulated with a basic offset table. `attrs` set or override attributes
    by keyword.
    """
    if pixel_bytes <= 0 or pixel_bytes % 2:
        raise ValueError(f"pixel_bytes must be a positive even number, got {pixel_bytes}")
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid or generate_uid()
    ds.StudyDate = "20240115"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC0001"
    ds.Modality = "CT"
    ds.ReferringPhysicianName = "Welby^Marcus"
    ds.StudyDescription = "Chest"
    ds.SeriesDescription = "Axial 5mm"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = "5.0"
    reference = Dataset()
    reference.ReferencedSOPClassUID = sop_class_uid
    reference.ReferencedSOPInstanceUID = generate_uid()
    ds.ReferencedImageSequence = [reference]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    facts = transfer_syntax_facts(transfer_syntax)
    if facts.encapsulated:
        _set_encapsulated_pixels(ds, pixel_bytes, transfer_syntax)
    else:
        ds.Rows, ds.Columns = _grid(pixel_bytes // 2)
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.SmallestImagePixelValue = 0  # "US or SS": exercises ambiguous VR handling
        ds.LargestImagePixelValue = 4095
        ds.PixelData = pixel_pattern(pixel_bytes)
        ds["PixelData"].VR = "OW"
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    ds.file_meta = _file_meta(ds, transfer_syntax)
    return ds


def _set_encapsulated_pixels(ds: Dataset, pixel_bytes: int, transfer_syntax: str) -> None:
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.Rows, ds.Columns = _grid(pixel_bytes)
    if transfer_syntax == RLE_LOSSLESS:
        frame = rle_frame(pixel_pattern(pixel_bytes))
    else:
        frame = fake_jpeg_frame(pixel_bytes // 4)
    ds.PixelData = encapsulate([frame], has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def _file_meta(ds: Dataset, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def write_instance(
    path: str | os.PathLike[str], ds: Dataset, transfer_syntax: str | None = None
) -> Path:
    """Write `ds` as a Part-10 file with dimsefsm's own meta writer and encoder."""
    syntax = transfer_syntax or str(ds.file_meta.TransferSyntaxUID)
    meta = build_file_meta(
        str(ds.SOPClassUID),
        str(ds.SOPInstanceUID),
        syntax,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
    )
    target = Path(path)
    target.write_bytes(meta + encode_dataset(ds, syntax))
    return target


def write_instance_with_pydicom(
    path: str | os.PathLike[str], ds: Dataset, transfer_syntax: str | None = None
) -> Path:
    """Write `ds` with pydicom's `dcmwrite`: an independent writer to test readers against.

    Big endian is refused: pydicom writes OW words unswapped (use `write_instance`).
    """
    syntax = transfer_syntax or str(ds.file_meta.TransferSyntaxUID)
    if syntax == EXPLICIT_VR_BIG_ENDIAN:
        raise ValueError("pydicom does not byte-swap OW values; use write_instance")
    ds.file_meta = _file_meta(ds, syntax)
    target = Path(path)
    ds.save_as(target, enforce_file_format=True)
    return target


def write_large_instance(
    path: str | os.PathLike[str],
    size_bytes: int,
    *,
    transfer_syntax: str = EXPLICIT_VR_LITTLE_ENDIAN,
    sop_instance_uid: str | None = None,
) -> Part10Info:
    """Write a multi-frame instance with at least `size_bytes` of pixel data, frame by frame.

    Memory use is one 512 KB frame whatever the size (500 MB for the benchmark is
    `HUGE_FILE_BYTES`). Only the little endian, non-deflated syntaxes are offered:
    their pixel data element is a plain header followed by the frames.
    """
    if transfer_syntax not in (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN):
        raise ValueError(f"write_large_instance streams only little endian, not {transfer_syntax}")
    frames = max(1, -(-size_bytes // _FRAME_BYTES))
    pixel_length = frames * _FRAME_BYTES
    header = make_instance(
        MULTIFRAME_GRAYSCALE_WORD_SC,
        pixel_bytes=_FRAME_BYTES,
        transfer_syntax=transfer_syntax,
        sop_instance_uid=sop_instance_uid,
        NumberOfFrames=frames,
        Rows=_FRAME_ROWS,
        Columns=_FRAME_COLUMNS,
    )
    del header.PixelData
    with open(path, "wb") as out:
        out.write(
            build_file_meta(
                str(header.SOPClassUID),
                str(header.SOPInstanceUID),
                transfer_syntax,
                implementation_class_uid=IMPLEMENTATION_CLASS_UID,
                implementation_version_name=IMPLEMENTATION_VERSION_NAME,
            )
        )
        out.write(encode_dataset(header, transfer_syntax))
        out.write(_pixel_data_header(pixel_length, transfer_syntax))
        frame = pixel_pattern(_FRAME_BYTES)
        for _ in range(frames):
            out.write(frame)
    return read_part10_info(path)


def _pixel_data_header(length: int, transfer_syntax: str) -> bytes:
    tag = (0x7FE0).to_bytes(2, "little") + (0x0010).to_bytes(2, "little")
    if transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        return tag + length.to_bytes(4, "little")
    return tag + b"OW\x00\x00" + length.to_bytes(4, "little")


def make_study(
    n_instances: int,
    *,
    n_series: int = 3,
    pixel_bytes: int = SMALL_PIXEL_BYTES,
    transfer_syntax: str = EXPLICIT_VR_LITTLE_ENDIAN,
    patient_id: str = "PID0001",
    patient_name: str = "Doe^Jane",
    study_instance_uid: str | None = None,
    modalities: Iterable[str] = ("CT",),
) -> list[Dataset]:
    """`n_instances` of one patient and study, dealt round-robin over `n_series` series."""
    if n_instances < 1 or n_series < 1:
        raise ValueError("a study needs at least one instance and one series")
    study_uid = study_instance_uid or generate_uid()
    modality_cycle = list(modalities)
    series_uids = [generate_uid() for _ in range(min(n_series, n_instances))]
    instances = []
    for index in range(n_instances):
        series = index % len(series_uids)
        instances.append(
            make_instance(
                pixel_bytes=pixel_bytes,
                transfer_syntax=transfer_syntax,
                PatientID=patient_id,
                PatientName=patient_name,
                StudyInstanceUID=study_uid,
                SeriesInstanceUID=series_uids[series],
                SeriesNumber=series + 1,
                SeriesDescription=f"Series {series + 1}",
                Modality=modality_cycle[series % len(modality_cycle)],
                InstanceNumber=index // len(series_uids) + 1,
            )
        )
    return instances


def write_study(directory: str | os.PathLike[str], instances: Iterable[Dataset]) -> list[Path]:
    """Write each instance as `<SOP Instance UID>.dcm` in `directory`."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return [write_instance(folder / f"{ds.SOPInstanceUID}.dcm", ds) for ds in instances]
