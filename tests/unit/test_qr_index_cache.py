"""The index cache: a restart reads only files that changed, and a bad cache costs only time."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread

from dimsefsm.datasets import decode_dataset, encode_dataset
from dimsefsm.qr.index import InstanceIndex, _compact
from dimsefsm.qr.index_cache import CACHE_NAME, copy_raw
from dimsefsm.sop_class import (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)
from tests.data.make import make_study, write_instance, write_study


def store(tmp_path: Path, count: int = 4) -> tuple[Path, list[Path]]:
    directory = tmp_path / "store"
    return directory, write_study(directory, make_study(count, n_series=2))


def names(index: InstanceIndex) -> list[str]:
    return sorted(str(r.header.PatientName) for r in index.snapshot())


def test_a_restart_takes_unchanged_headers_from_the_cache(tmp_path: Path) -> None:
    directory, _ = store(tmp_path)
    first = InstanceIndex()
    assert first.load(directory) == 4 and first.cache_hits == 0
    assert (directory / CACHE_NAME).is_file()
    second = InstanceIndex()
    assert second.load(directory) == 4 and second.cache_hits == 4
    assert names(second) == names(first)
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.SOPInstanceUID = ""
    query.PatientName = "*"
    assert len(list(second.query(query, "study-root"))) == 4


def test_changed_added_and_removed_files_are_read_again(tmp_path: Path) -> None:
    directory, files = store(tmp_path)
    InstanceIndex().load(directory)
    changed = dcmread(files[0])
    changed.PatientName = "Renamed^Patient"
    write_instance(files[0], changed)
    stat = files[0].stat()
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    files[1].unlink()
    extra = make_study(1, n_series=1)[0]
    write_instance(directory / "extra.dcm", extra)
    index = InstanceIndex()
    assert index.load(directory) == 4
    assert index.cache_hits == 2  # the two untouched files
    assert "Renamed^Patient" in names(index)
    assert InstanceIndex().load(directory) == 4  # and the rewritten cache now has them all


@pytest.mark.parametrize("damage", ["foreign", "truncated"])
def test_a_bad_cache_only_means_reading_every_header(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    directory, _ = store(tmp_path)
    InstanceIndex().load(directory)
    cache = directory / CACHE_NAME
    blob = cache.read_bytes()
    cache.write_bytes(b"something else" if damage == "foreign" else blob[: len(blob) - 7])
    index = InstanceIndex()
    with caplog.at_level(logging.WARNING, logger="dimsefsm.qr.index"):
        assert index.load(directory) == 4
    assert index.cache_hits == 0
    assert "every header is read again" in caplog.text


@pytest.mark.parametrize("syntax", [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN])
def test_the_byte_copy_equals_what_pydicom_writes(tmp_path: Path, syntax: str) -> None:
    ds = make_study(1, n_series=1)[0]
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.OtherPatientIDsSequence = [Dataset()]
    ds.OtherPatientIDsSequence[0].PatientID = "OTHER-1"
    path = write_instance(tmp_path / "one.dcm", ds, transfer_syntax=syntax)
    compact = _compact(dcmread(path, stop_before_pixels=True))
    copied = copy_raw(compact)
    if syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        assert copied is None  # an implicit VR sequence cannot be copied into explicit VR
        return
    assert copied is not None
    expected = encode_dataset(compact, EXPLICIT_VR_LITTLE_ENDIAN)
    assert decode_dataset(copied, EXPLICIT_VR_LITTLE_ENDIAN) == decode_dataset(
        expected, EXPLICIT_VR_LITTLE_ENDIAN
    )


def test_a_flipped_byte_never_serves_a_patient_id_no_file_holds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Item 11.9: damage that still parses (same length, other letters) is caught."""
    directory, paths = store(tmp_path)
    InstanceIndex().load(directory)
    cache = directory / CACHE_NAME
    blob = cache.read_bytes()
    held = {str(dcmread(p).PatientID) for p in paths}
    (patient_id,) = held
    at = blob.index(patient_id.encode())
    cache.write_bytes(blob[:at] + b"X" + blob[at + 1 :])
    with caplog.at_level(logging.WARNING, logger="dimsefsm.qr.index"):
        index = InstanceIndex()
        assert index.load(directory) == 4
    assert index.cache_hits == 0
    assert {str(r.header.PatientID) for r in index.snapshot()} == held
    assert "fails its checksum" in caplog.text
    # The cache was written again, whole: the next start uses it.
    again = InstanceIndex()
    assert again.load(directory) == 4 and again.cache_hits == 4
