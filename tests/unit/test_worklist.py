"""Worklist items from a directory: what is read, what is skipped, what is seen again."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pydicom import Dataset

from dimsefsm.archive.worklist import WorklistDirectory
from dimsefsm.datasets import encode_dataset
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN
from tests.interop.test_find_interop import _worklist_item, _write_worklist_item


def item(accession: str, modality: str = "CT", date: str = "20261124") -> Dataset:
    return _worklist_item(("P1", "Alpha^Anna"), accession, modality, "ST1", date)


def query(modality: str) -> Dataset:
    step = Dataset()
    step.Modality = modality
    ds = Dataset()
    ds.AccessionNumber = ""
    ds.ScheduledProcedureStepSequence = [step]
    return ds


def accessions(items: list[Dataset]) -> list[str]:
    return [str(ds.AccessionNumber) for ds in items]


def test_part10_and_bare_data_sets_in_either_little_endian_syntax(tmp_path: Path) -> None:
    _write_worklist_item(tmp_path / "a.wl", item("A"))
    (tmp_path / "b.wl").write_bytes(encode_dataset(item("B"), EXPLICIT_VR_LITTLE_ENDIAN))
    (tmp_path / "c").write_bytes(encode_dataset(item("C", "MR"), IMPLICIT_VR_LITTLE_ENDIAN))
    (tmp_path / ".hidden.wl").write_bytes(encode_dataset(item("H"), EXPLICIT_VR_LITTLE_ENDIAN))
    worklist = WorklistDirectory(tmp_path)
    assert accessions(worklist.items()) == ["A", "B", "C"]
    assert accessions(list(worklist.query(query("CT")))) == ["A", "B"]
    assert accessions(list(worklist.query(query("MR")))) == ["C"]


def test_a_file_that_is_not_dicom_is_skipped_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _write_worklist_item(tmp_path / "a.wl", item("A"))
    (tmp_path / "junk.wl").write_bytes(b"not dicom at all, just some text")
    (tmp_path / "half.wl").write_bytes(encode_dataset(item("X"), EXPLICIT_VR_LITTLE_ENDIAN)[:-5])
    worklist = WorklistDirectory(tmp_path)
    with caplog.at_level(logging.WARNING, logger="dimsefsm.qr.worklist"):
        assert accessions(worklist.items()) == ["A"]
        assert accessions(worklist.items()) == ["A"]
    skipped = sorted(r.getMessage().split()[2] for r in caplog.records)
    assert skipped == [str(tmp_path / "half.wl"), str(tmp_path / "junk.wl")]


def test_changed_added_and_removed_files_are_seen_by_the_next_query(tmp_path: Path) -> None:
    path = tmp_path / "a.wl"
    _write_worklist_item(path, item("A"))
    worklist = WorklistDirectory(tmp_path)
    first = worklist.items()
    assert accessions(first) == ["A"]
    assert worklist.items()[0] is first[0]  # unchanged: not parsed again
    _write_worklist_item(path, item("A2-MOVED"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    _write_worklist_item(tmp_path / "b.wl", item("B"))
    assert accessions(worklist.items()) == ["A2-MOVED", "B"]
    path.unlink()
    assert accessions(worklist.items()) == ["B"]


def test_a_missing_directory_gives_no_items_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dimsefsm.qr.worklist"):
        assert WorklistDirectory(tmp_path / "gone").items() == []
    assert "cannot be read" in caplog.text
