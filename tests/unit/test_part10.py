"""Part-10 meta parsing and writing, chunked reads, and the atomic data set writer."""

from __future__ import annotations

import os
import struct
import subprocess
import tracemalloc
from pathlib import Path
from typing import TypedDict, Unpack

import pydicom
import pytest
from pydicom.filereader import read_file_meta_info

from dimsefsm.datasets import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    UNCOMPRESSED,
    DatasetChecker,
    decode_dataset,
    encode_dataset,
)
from dimsefsm.part10 import (
    Part10Error,
    Part10Info,
    Part10Writer,
    build_file_meta,
    iter_file_chunks,
    read_dataset_bytes,
    read_part10,
    read_part10_info,
    remove_stale_temp_files,
    safe_uid_filename,
)
from tests.data.make import (
    CT_IMAGE_STORAGE,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    JPEG_BASELINE,
    MULTIFRAME_GRAYSCALE_WORD_SC,
    RLE_LOSSLESS,
    make_instance,
    make_study,
    pixel_pattern,
    write_instance,
    write_instance_with_pydicom,
    write_large_instance,
    write_study,
)

ALL_SYNTAXES = (*UNCOMPRESSED, JPEG_BASELINE, RLE_LOSSLESS)
INSTANCE_UID = "1.2.826.0.1.3680043.10.1138.99.1"


class Identity(TypedDict):
    """Typed so `**IDENTITY` checks against the writer's keyword-only parameters."""

    implementation_class_uid: str
    implementation_version_name: str


class WriterOptions(TypedDict, total=False):
    source_ae: str | None
    filename: str | None
    fsync: bool


IDENTITY: Identity = {
    "implementation_class_uid": IMPLEMENTATION_CLASS_UID,
    "implementation_version_name": IMPLEMENTATION_VERSION_NAME,
}


def meta_element(element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"UN", b"UT"):
        return struct.pack("<HH2s2xL", 2, element, vr, len(value)) + value
    return struct.pack("<HH2sH", 2, element, vr, len(value)) + value


def hand_made_meta(group_length_delta: int | None, transfer_syntax: str) -> tuple[bytes, int]:
    """Meta group with an optional, possibly wrong, group length; returns bytes and its end."""
    body = b"".join(
        (
            meta_element(0x0001, b"OB", b"\x00\x01"),
            meta_element(0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.2\x00"),
            meta_element(0x0003, b"UI", INSTANCE_UID.encode()),
            meta_element(0x0010, b"UI", transfer_syntax.encode().ljust(22, b"\x00")),
            meta_element(0x0012, b"UI", b"1.2.3.4\x00"),
        )
    )
    head = bytes(128) + b"DICM"
    if group_length_delta is not None:
        head += meta_element(0x0000, b"UL", struct.pack("<L", len(body) + group_length_delta))
    return head + body, len(head) + len(body)


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize("syntax", ALL_SYNTAXES)
def test_meta_of_our_files_is_parsed(tmp_path: Path, syntax: str) -> None:
    ds = make_instance(transfer_syntax=syntax)
    path = write_instance(tmp_path / "x.dcm", ds, syntax)
    info = read_part10_info(path)
    assert info == Part10Info(
        path=path,
        sop_class_uid=CT_IMAGE_STORAGE,
        sop_instance_uid=ds.SOPInstanceUID,
        transfer_syntax=syntax,
        dataset_offset=info.dataset_offset,
        file_size=path.stat().st_size,
    )
    assert read_dataset_bytes(info) == encode_dataset(ds, syntax)
    assert info.dataset_length == len(encode_dataset(ds, syntax))


@pytest.mark.parametrize(
    "syntax",
    [
        IMPLICIT_VR_LITTLE_ENDIAN,
        EXPLICIT_VR_LITTLE_ENDIAN,
        DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
        JPEG_BASELINE,
    ],
)
def test_meta_of_pydicom_files_is_parsed(tmp_path: Path, syntax: str) -> None:
    ds = make_instance(transfer_syntax=syntax)
    path = write_instance_with_pydicom(tmp_path / "x.dcm", ds, syntax)
    info, data = read_part10(path)
    assert (info.sop_class_uid, info.sop_instance_uid, info.transfer_syntax) == (
        CT_IMAGE_STORAGE,
        ds.SOPInstanceUID,
        syntax,
    )
    assert decode_dataset(data, syntax) == ds


def test_read_part10_equals_info_plus_dataset_bytes(tmp_path: Path) -> None:
    path = write_instance(tmp_path / "x.dcm", make_instance(), EXPLICIT_VR_LITTLE_ENDIAN)
    info, data = read_part10(path)
    assert info == read_part10_info(path)
    assert data == read_dataset_bytes(info)


@pytest.mark.parametrize("delta", [None, 0, -16, -18, +40, -3])
def test_group_length_absent_or_wrong_still_finds_the_data_set(
    tmp_path: Path, delta: int | None
) -> None:
    meta, end = hand_made_meta(delta, EXPLICIT_VR_LITTLE_ENDIAN)
    data = encode_dataset(make_instance(), EXPLICIT_VR_LITTLE_ENDIAN)
    path = tmp_path / "x.dcm"
    path.write_bytes(meta + data)
    info = read_part10_info(path)
    assert info.dataset_offset == end
    assert info.transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN
    assert info.sop_instance_uid == INSTANCE_UID


def test_group_length_is_trusted_when_a_deflated_data_set_looks_like_group_2(
    tmp_path: Path,
) -> None:
    meta, end = hand_made_meta(0, DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN)
    path = tmp_path / "x.dcm"
    path.write_bytes(meta + b"\x02\x00\x10\x00UI\x02\x00ab")
    assert read_part10_info(path).dataset_offset == end


def test_file_with_only_a_meta_group_has_an_empty_data_set(tmp_path: Path) -> None:
    meta, end = hand_made_meta(None, EXPLICIT_VR_LITTLE_ENDIAN)
    path = tmp_path / "x.dcm"
    path.write_bytes(meta)
    info, data = read_part10(path)
    assert (info.dataset_offset, info.file_size, data) == (end, end, b"")


def test_meta_group_larger_than_the_first_read_is_parsed(tmp_path: Path) -> None:
    meta, _ = hand_made_meta(None, EXPLICIT_VR_LITTLE_ENDIAN)
    private_information = meta_element(0x0102, b"OB", bytes(40_000))
    data = encode_dataset(make_instance(), EXPLICIT_VR_LITTLE_ENDIAN)
    path = tmp_path / "x.dcm"
    path.write_bytes(meta + private_information + data)
    info = read_part10_info(path)
    assert info.dataset_offset == len(meta) + len(private_information)
    assert read_dataset_bytes(info) == data


def no_preamble(tmp_path: Path) -> Path:
    path = tmp_path / "raw.dcm"
    path.write_bytes(encode_dataset(make_instance(), IMPLICIT_VR_LITTLE_ENDIAN))
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "too short"),
        (bytes(131), "too short"),
        (bytes(128) + b"DICN" + bytes(64), "no 'DICM'"),
        (bytes(128) + b"DICM" + b"\x08\x00\x05\x00CS\x00\x00", "not followed by a file meta"),
        (bytes(128) + b"DICM" + b"\x02\x00\x10\x00\x16\x00", "file ends inside"),
        (bytes(128) + b"DICM" + b"\x02\x00\x10\x00\x16\x00\x00\x00abc", "no explicit VR"),
        (hand_made_meta(0, EXPLICIT_VR_LITTLE_ENDIAN)[0][:-5], "file ends inside"),
        (bytes(128) + b"DICM" + meta_element(0x0001, b"OB", b"\x00\x01"), "no Transfer Syntax"),
        (
            bytes(128) + b"DICM" + meta_element(0x0010, b"UI", b"1.2.840.10008.1.2\x00"),
            "no Media Storage SOP Class UID",
        ),
        (
            bytes(128)
            + b"DICM"
            + meta_element(0x0002, b"UI", b"1.2\x00")
            + meta_element(0x0003, b"UI", b"\x00\x00")
            + meta_element(0x0010, b"UI", b"1.2.840.10008.1.2\x00"),
            "SOP Instance UID .* is empty",
        ),
        (
            bytes(128)
            + b"DICM"
            + meta_element(0x0002, b"UI", b"1.2\x00")
            + meta_element(0x0003, b"UI", b"\xff\x00")
            + meta_element(0x0010, b"UI", b"1.2.840.10008.1.2\x00"),
            "is not ASCII",
        ),
        (
            bytes(128) + b"DICM" + struct.pack("<HH2s2xL", 2, 1, b"OB", 0xFFFFFFFF),
            "undefined length",
        ),
    ],
)
def test_non_part10_files_raise_part10_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.dcm"
    path.write_bytes(content)
    with pytest.raises(Part10Error, match=message):
        read_part10_info(path)


def test_data_set_without_preamble_raises_part10_error(tmp_path: Path) -> None:
    with pytest.raises(Part10Error, match="not a DICOM Part-10 file"):
        read_part10_info(no_preamble(tmp_path))


def test_missing_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_part10_info(tmp_path / "absent.dcm")


def test_part10_error_is_a_value_error() -> None:
    assert issubclass(Part10Error, ValueError)


@pytest.mark.parametrize("chunk_size", [1, 1000, 4096, 1 << 20])
def test_iter_file_chunks_reads_the_rest_of_the_file_in_bounded_pieces(
    tmp_path: Path, chunk_size: int
) -> None:
    path = write_instance(tmp_path / "x.dcm", make_instance(), EXPLICIT_VR_LITTLE_ENDIAN)
    info = read_part10_info(path)
    chunks = list(iter_file_chunks(path, info.dataset_offset, chunk_size))
    assert all(0 < len(chunk) <= chunk_size for chunk in chunks)
    assert b"".join(chunks) == read_dataset_bytes(info)


def test_iter_file_chunks_refuses_a_non_positive_chunk_size(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    with pytest.raises(ValueError, match="chunk_size"):
        list(iter_file_chunks(path, 0, 0))


# --------------------------------------------------------------------------- meta writing


@pytest.mark.parametrize("source_ae", [None, "STORESCU", "ODD"])
def test_build_file_meta_is_read_back_by_pydicom(tmp_path: Path, source_ae: str | None) -> None:
    meta = build_file_meta(
        CT_IMAGE_STORAGE,
        INSTANCE_UID,
        EXPLICIT_VR_LITTLE_ENDIAN,
        implementation_class_uid="1.2.3",
        implementation_version_name="ABCDE",
        source_ae=source_ae,
    )
    assert meta[:128] == bytes(128)
    assert meta[128:132] == b"DICM"
    path = tmp_path / "meta.dcm"
    path.write_bytes(meta)
    read = read_file_meta_info(path)
    assert read.FileMetaInformationGroupLength == len(meta) - 132 - 12
    assert read.FileMetaInformationVersion == b"\x00\x01"
    assert read.MediaStorageSOPClassUID == CT_IMAGE_STORAGE
    assert read.MediaStorageSOPInstanceUID == INSTANCE_UID
    assert read.TransferSyntaxUID == EXPLICIT_VR_LITTLE_ENDIAN
    assert read.ImplementationClassUID == "1.2.3"
    assert read.ImplementationVersionName == "ABCDE"
    assert read.get("SourceApplicationEntityTitle") == source_ae
    assert len(meta) % 2 == 0


def test_build_file_meta_pads_uids_with_nul_and_text_with_space() -> None:
    meta = build_file_meta(
        "1.2.3",
        "1.2.34",
        "1.2.840.10008.1.2",
        implementation_class_uid="1.2.3",
        implementation_version_name="ABC",
        source_ae="AE1",
    )
    assert b"UI\x06\x001.2.3\x00" in meta
    assert b"UI\x06\x001.2.34" in meta
    assert b"SH\x04\x00ABC " in meta
    assert b"AE\x04\x00AE1 " in meta


def test_build_file_meta_refuses_non_ascii() -> None:
    with pytest.raises(ValueError):
        build_file_meta("1.2", "1.2", "1.2.840.10008.1.2", **IDENTITY, source_ae="ÄE")


@pytest.mark.parametrize("syntax", ALL_SYNTAXES)
def test_dcmdump_reads_our_files(tmp_path: Path, syntax: str) -> None:
    ds = make_instance(transfer_syntax=syntax)
    path = write_instance(tmp_path / "x.dcm", ds, syntax)
    result = subprocess.run(["dcmdump", str(path)], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")
    assert ds.SOPInstanceUID in result.stdout


def test_rle_test_instance_is_real_rle_that_dcmtk_decodes(tmp_path: Path) -> None:
    ds = make_instance(transfer_syntax=RLE_LOSSLESS)
    path = write_instance(tmp_path / "rle.dcm", ds, RLE_LOSSLESS)
    decoded = tmp_path / "decoded.dcm"
    subprocess.run(["dcmdrle", str(path), str(decoded)], check=True)
    read = pydicom.dcmread(decoded)
    assert read.file_meta.TransferSyntaxUID == EXPLICIT_VR_LITTLE_ENDIAN
    assert read.PixelData == pixel_pattern(ds.Rows * ds.Columns)


# --------------------------------------------------------------------------- the writer


def writer_for(directory: Path, **options: Unpack[WriterOptions]) -> Part10Writer:
    return Part10Writer(
        directory,
        CT_IMAGE_STORAGE,
        INSTANCE_UID,
        EXPLICIT_VR_LITTLE_ENDIAN,
        **IDENTITY,
        **options,
    )


@pytest.mark.parametrize("syntax", ALL_SYNTAXES)
def test_writer_output_is_read_by_pydicom_and_dcmdump(tmp_path: Path, syntax: str) -> None:
    ds = make_instance(transfer_syntax=syntax, sop_instance_uid=INSTANCE_UID)
    data = encode_dataset(ds, syntax)
    writer = Part10Writer(tmp_path, CT_IMAGE_STORAGE, INSTANCE_UID, syntax, **IDENTITY)
    for start in range(0, len(data), 1000):
        writer.write(memoryview(data)[start : start + 1000])
    path = writer.close()
    assert path == tmp_path / f"{INSTANCE_UID}.dcm"
    assert writer.bytes_written == len(data)
    assert path.read_bytes()[writer.meta_length :] == data
    read = pydicom.dcmread(path)
    assert read.file_meta.TransferSyntaxUID == syntax
    assert read.file_meta.MediaStorageSOPInstanceUID == INSTANCE_UID
    if syntax == EXPLICIT_VR_BIG_ENDIAN:
        read.PixelData = ds.PixelData  # pydicom keeps big endian words as read
    read.file_meta = ds.file_meta
    assert read == ds
    dump = subprocess.run(["dcmdump", str(path)], capture_output=True, text=True)
    assert (dump.returncode, dump.stderr) == (0, "")
    assert INSTANCE_UID in dump.stdout


def test_final_name_is_absent_until_close(tmp_path: Path) -> None:
    writer = writer_for(tmp_path)
    writer.write(b"\x10\x00\x10\x00PN\x08\x00Doe^Jane")
    assert not writer.path.exists()
    assert [p.name for p in tmp_path.iterdir()] == [writer.temp_path.name]
    assert writer.temp_path.name.startswith(f".{INSTANCE_UID}.")
    assert writer.temp_path.name.endswith(".part")
    path = writer.close()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert pydicom.dcmread(path).PatientName == "Doe^Jane"


def test_abort_leaves_no_file(tmp_path: Path) -> None:
    writer = writer_for(tmp_path)
    writer.write(b"\x10\x00\x10\x00PN\x08\x00Doe^")
    writer.abort()
    writer.abort()  # twice is harmless
    assert list(tmp_path.iterdir()) == []
    assert writer.closed


def test_leaving_the_context_without_close_aborts(tmp_path: Path) -> None:
    with pytest.raises(ConnectionAbortedError), writer_for(tmp_path) as writer:
        writer.write(b"\x10\x00\x10\x00")
        raise ConnectionAbortedError("peer sent A-ABORT")
    with writer_for(tmp_path) as writer:
        writer.write(b"\x10\x00\x10\x00")
    assert list(tmp_path.iterdir()) == []


def test_closing_inside_the_context_keeps_the_file(tmp_path: Path) -> None:
    with writer_for(tmp_path) as writer:
        path = writer.close()
    assert path.exists()
    assert read_part10_info(path).sop_instance_uid == INSTANCE_UID


def test_writer_refuses_use_after_close(tmp_path: Path) -> None:
    writer = writer_for(tmp_path)
    path = writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(b"ab")
    with pytest.raises(ValueError, match="already closed"):
        writer.close()
    writer.abort()  # a no-op once closed: the file stays
    assert path.exists()


def test_writer_replaces_an_existing_file_only_at_close(tmp_path: Path) -> None:
    final = tmp_path / f"{INSTANCE_UID}.dcm"
    final.write_bytes(b"old")
    writer = writer_for(tmp_path)
    writer.write(b"\x10\x00\x10\x00PN\x00\x00")
    assert final.read_bytes() == b"old"
    writer.close()
    assert read_part10_info(final).sop_instance_uid == INSTANCE_UID


def test_writer_options_filename_source_ae_and_fsync(tmp_path: Path) -> None:
    writer = writer_for(tmp_path, filename="chosen.dcm", source_ae="STORESCU", fsync=True)
    path = writer.close()
    assert path == tmp_path / "chosen.dcm"
    assert read_file_meta_info(path).SourceApplicationEntityTitle == "STORESCU"


@pytest.mark.parametrize("filename", ["../escape.dcm", "a/b.dcm", "", "..", "."])
def test_writer_refuses_a_filename_with_a_path(tmp_path: Path, filename: str) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        writer_for(tmp_path, filename=filename)
    assert list(tmp_path.iterdir()) == []


def test_writer_sanitizes_a_hostile_uid(tmp_path: Path) -> None:
    writer = Part10Writer(
        tmp_path, CT_IMAGE_STORAGE, "../../etc/passwd", EXPLICIT_VR_LITTLE_ENDIAN, **IDENTITY
    )
    path = writer.close()
    assert path.parent == tmp_path
    assert path.name == "x_.._2f.._2fetc_2fpasswd.dcm"


def test_final_file_gets_default_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = writer_for(tmp_path).close()
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_streaming_a_large_instance_uses_bounded_memory(tmp_path: Path) -> None:
    source = write_large_instance(tmp_path / "large.dcm", 24 << 20)
    assert source.dataset_length > 24 << 20
    out = tmp_path / "out"
    out.mkdir()
    tracemalloc.start()
    try:
        writer = Part10Writer(
            out, source.sop_class_uid, source.sop_instance_uid, source.transfer_syntax, **IDENTITY
        )
        checker = DatasetChecker(source.transfer_syntax)
        for chunk in iter_file_chunks(source.path, source.dataset_offset, 256 * 1024):
            checker.feed(chunk)
            writer.write(chunk)
        checker.finish()
        path = writer.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20
    copied = read_part10_info(path)
    assert copied.dataset_length == source.dataset_length
    assert copied.sop_class_uid == MULTIFRAME_GRAYSCALE_WORD_SC
    with open(source.path, "rb") as a, open(path, "rb") as b:
        a.seek(source.dataset_offset)
        b.seek(copied.dataset_offset)
        assert a.read() == b.read()
    header = pydicom.dcmread(path, stop_before_pixels=True)
    assert header.NumberOfFrames == 48
    dump = subprocess.run(["dcmdump", "-q", "-M", str(path)], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr


# --------------------------------------------------------------------------- names and studies


@pytest.mark.parametrize(
    ("uid", "name"),
    [
        ("1.2.840.113619.2.55.3", "1.2.840.113619.2.55.3.dcm"),
        ("1.2.3\x00", "1.2.3.dcm"),
        ("../../etc/passwd", "x_.._2f.._2fetc_2fpasswd.dcm"),
        (".hidden", "x_.hidden.dcm"),
        ("a b\\c:d", "x_a_20b_5cc_3ad.dcm"),
        ("..1.2.3", "x_..1.2.3.dcm"),
        ("1.2.03", "x_1.2.03.dcm"),
        ("x_1", "x_x_5f1.dcm"),
    ],
)
def test_safe_uid_filename(uid: str, name: str) -> None:
    assert safe_uid_filename(uid) == name


@pytest.mark.parametrize("uid", ["", "\x00\x00"])
def test_safe_uid_filename_refuses_empty_names(uid: str) -> None:
    with pytest.raises(ValueError, match="cannot build a file name"):
        safe_uid_filename(uid)


def test_safe_uid_filename_is_injective() -> None:
    """Item 11.5: no two distinct UIDs share a file (``..1.2.3`` overwrote ``1.2.3``)."""
    uids = [
        "1.2.3",
        "..1.2.3",
        ".1.2.3",
        "1.2.3.",
        "1.2.3 ",
        " 1.2.3",
        "1.2/3",
        "1.2_2f3",
        "x_1.2.3",
        "1.2\\3",
        "1.2.3\x001",
        "1.2.3\u00e9",
        "1." * 40 + "1",
        "1." * 40 + "2",
        "sha256_" + "0" * 64,
    ]
    names = [safe_uid_filename(uid) for uid in uids]
    assert len(set(names)) == len(uids), names
    assert all(Path(name).name == name and not name.startswith(".") for name in names)


def test_safe_uid_filename_keeps_long_uids_short_and_distinct() -> None:
    first = safe_uid_filename("1." * 200 + "1")
    second = safe_uid_filename("1." * 200 + "2")
    assert first != second
    assert len(first) <= 128 + len(".dcm")


def test_remove_stale_temp_files_keeps_everything_else(tmp_path: Path) -> None:
    writer = Part10Writer(
        tmp_path,
        CT_IMAGE_STORAGE,
        INSTANCE_UID,
        EXPLICIT_VR_LITTLE_ENDIAN,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
    )
    writer.write(b"half a data set")
    writer.flush()  # a killed server: neither close() nor abort() ever runs
    kept = [tmp_path / "1.2.3.dcm", tmp_path / ".dimsefsm-index", tmp_path / "notes.part"]
    for path in kept:
        path.write_bytes(b"x")
    assert remove_stale_temp_files(tmp_path) == [writer.temp_path]
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_study_builder_shares_patient_and_study_across_series(tmp_path: Path) -> None:
    study = make_study(7, n_series=3, modalities=("CT", "MR"))
    assert len({ds.StudyInstanceUID for ds in study}) == 1
    assert len({ds.SeriesInstanceUID for ds in study}) == 3
    assert len({ds.SOPInstanceUID for ds in study}) == 7
    assert {ds.PatientID for ds in study} == {"PID0001"}
    assert sorted((ds.SeriesNumber, ds.InstanceNumber) for ds in study)[:3] == [
        (1, 1),
        (1, 2),
        (1, 3),
    ]
    assert [ds.Modality for ds in study[:3]] == ["CT", "MR", "CT"]
    paths = write_study(tmp_path / "study", study)
    assert {read_part10_info(p).sop_instance_uid for p in paths} == {
        ds.SOPInstanceUID for ds in study
    }


def test_small_instance_file_is_about_nine_kilobytes(tmp_path: Path) -> None:
    path = write_instance(tmp_path / "x.dcm", make_instance(), EXPLICIT_VR_LITTLE_ENDIAN)
    assert 8_500 < path.stat().st_size < 9_800


def test_flushed_temp_file_holds_meta_and_data_before_close(tmp_path: Path) -> None:
    writer = writer_for(tmp_path)
    writer.write(b"\x10\x00\x10\x00PN\x08\x00Doe^Jane")
    writer.flush()
    content = writer.temp_path.read_bytes()
    assert content[writer.dataset_offset :] == b"\x10\x00\x10\x00PN\x08\x00Doe^Jane"
    assert read_part10_info(writer.temp_path).dataset_offset == writer.dataset_offset
    writer.abort()
    with pytest.raises(ValueError, match="closed"):
        writer.flush()
