"""CT instances for the benchmarks, written with pydicom into a scratch directory.

Three shapes are needed: many small instances (the per-message cost dominates),
fewer large ones (the per-byte cost dominates) and one huge instance for the
peak-memory test.  The huge one is streamed to disk in pieces: holding 500 MB in
the benchmark's own memory would be wasteful and pointless.

All instances are CT Image Storage in explicit VR little endian, the syntax every
peer accepts without conversion, so no SCP has to re-encode what it receives.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
# 64 x 64 x 16 bit = 8 KiB of pixels; with the header the file is about 9 KB.
SMALL_SIDE = 64
# 512 x 512 x 16 bit = 512 KiB of pixels.
LARGE_SIDE = 512
# The huge instance is a single frame 16384 columns wide; its row count sets the size.
HUGE_COLUMNS = 16384
_CHUNK = 1 << 20
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"


@dataclass(frozen=True)
class InstanceSet:
    """Files of one shape in their own directory (dcmtk's ``+sd`` scans a directory)."""

    directory: Path
    files: tuple[Path, ...]

    @property
    def total_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def scratch_root(needed_bytes: int) -> Path:
    """A tmpfs directory when it has room, so that disk speed does not set the pace."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > needed_bytes:
        return shm
    return Path(tempfile.gettempdir())


@contextlib.contextmanager
def scratch(workload: str, needed_bytes: int) -> Iterator[Path]:
    """A temporary directory for one workload's data, removed afterwards."""
    prefix = f"bench-{workload}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=scratch_root(needed_bytes)) as root:
        yield Path(root)


def _pattern(length: int) -> bytes:
    """Non-zero pixels: a run of zeros could hide a peer that never sends them."""
    block = bytes(range(256))
    return (block * (length // 256 + 1))[:length]


def ct_header(rows: int, columns: int, study: str, series: str, number: int) -> Dataset:
    """A CT image without its pixel data; the caller adds that."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Modality = "CT"
    ds.PatientName = "Bench^Storage"
    ds.PatientID = "BENCH-STORE"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.KVP = 120
    ds.ImagePositionPatient = [0, 0, -number]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    return ds


def write_series(directory: Path, count: int, side: int) -> InstanceSet:
    """``count`` single-frame CT images of ``side`` x ``side`` pixels, one series."""
    directory.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    pixels = _pattern(side * side * 2)
    files = []
    for number in range(1, count + 1):
        ds = ct_header(side, side, study, series, number)
        ds.PixelData = pixels
        ds["PixelData"].VR = "OW"
        path = directory / f"ct{number:05d}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        files.append(path)
    return InstanceSet(directory, tuple(files))


def write_huge(directory: Path, pixel_bytes: int) -> InstanceSet:
    """One CT image whose pixel data (the last element) is streamed in 1 MiB pieces."""
    rows = max(1, pixel_bytes // (HUGE_COLUMNS * 2))
    length = rows * HUGE_COLUMNS * 2
    directory.mkdir(parents=True, exist_ok=True)
    ds = ct_header(rows, HUGE_COLUMNS, generate_uid(), generate_uid(), 1)
    header = io.BytesIO()
    dcmwrite(header, ds, enforce_file_format=True)
    path = directory / "huge.dcm"
    chunk = _pattern(_CHUNK)
    with path.open("wb") as handle:
        handle.write(header.getvalue())
        handle.write(_PIXEL_DATA_TAG + b"OW\x00\x00" + struct.pack("<I", length))
        remaining = length
        while remaining:
            piece = chunk[: min(remaining, _CHUNK)]
            handle.write(piece)
            remaining -= len(piece)
    return InstanceSet(directory, (path,))
