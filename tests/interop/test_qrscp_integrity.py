"""``dimsefsm qrscp`` must never answer with another patient's data (issue 11, items 5-7, 9).

Hostile instances reach a real qrscp over sockets, sent by dcmtk ``storescu``
(crafted files) or by our own SCU with a hand-made file whose meta header
(which names the command's UIDs) and data set disagree.  ``findscu`` and
``getscu`` then show what the archive answers: the first patient, intact.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread

from dimsefsm import AE
from dimsefsm.archive.location import INDEX_DIRECTORY
from dimsefsm.datasets import encode_dataset
from dimsefsm.part10 import build_file_meta
from dimsefsm.sop_class import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_LITTLE_ENDIAN,
    MR_IMAGE_STORAGE,
    VERIFICATION,
)
from tests.data.make import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    make_instance,
    write_instance,
)
from tests.interop.peers import LOCALHOST, DimsefsmServer, LineReadyServer, run_tool, wait_until

QR_AET = "QRSCP"
STORESCU = "/usr/bin/storescu"
FINDSCU = "/usr/bin/findscu"
GETSCU = "/usr/bin/getscu"


def crafted_file(
    path: Path, ds: Dataset, *, meta_instance: str | None = None, meta_class: str | None = None
) -> Path:
    """A Part-10 file written as is: its meta header may name other UIDs than its data set."""
    meta = build_file_meta(
        meta_class or str(ds.SOPClassUID),
        meta_instance or str(ds.SOPInstanceUID),
        EXPLICIT_VR_LITTLE_ENDIAN,
        implementation_class_uid=IMPLEMENTATION_CLASS_UID,
        implementation_version_name=IMPLEMENTATION_VERSION_NAME,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(meta + encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN))
    return path


def dcmtk_store(port: int, *files: Path) -> str:
    """dcmtk storescu, every file on one association; its whole log."""
    result = run_tool([STORESCU, "-v", "-aec", QR_AET, LOCALHOST, str(port), *map(str, files)])
    return result.stdout + result.stderr


def statuses(port: int, *files: Path) -> list[tuple[int, str]]:
    """Our SCU sends the files (command UIDs from each meta header): (status, ErrorComment)."""
    ae = AE("HOSTILE")
    ae.add_requested_context(VERIFICATION)
    for sop_class in (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE):
        ae.add_requested_context(sop_class, [EXPLICIT_VR_LITTLE_ENDIAN])
    with ae.associate(LOCALHOST, port, ae_title=QR_AET) as assoc:
        answers = [assoc.send_c_store(path) for path in files]
        assert assoc.send_c_echo().Status == 0  # the association is still in step
    return [(int(a.Status), str(a.get("ErrorComment", ""))) for a in answers]


def find_images(port: int, out_dir: Path, **keys: str) -> list[Dataset]:
    out_dir.mkdir(parents=True, exist_ok=True)
    # Patient Root: Patient ID is a unique key there, so every match names its patient.
    args = [FINDSCU, "-P", "-aec", QR_AET, "-X", "-od", str(out_dir)]
    wanted = {"QueryRetrieveLevel": "IMAGE", "PatientID": "", "StudyInstanceUID": ""}
    wanted |= {"SeriesInstanceUID": "", "SOPInstanceUID": "", **keys}
    for key, value in wanted.items():
        args += ["-k", f"{key}={value}" if value else key]
    result = run_tool([*args, LOCALHOST, str(port)])
    assert result.returncode == 0, result.stdout + result.stderr
    return [dcmread(path) for path in sorted(out_dir.glob("rsp*.dcm"))]


def get_study(port: int, study_uid: str, out_dir: Path) -> list[Dataset]:
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}"]
    result = run_tool(
        [GETSCU, "-S", "-aec", QR_AET, "-od", str(out_dir), *keys, LOCALHOST, str(port)]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [dcmread(path) for path in sorted(out_dir.iterdir())]


@pytest.fixture
def incoming(tmp_path: Path) -> Path:
    """Where a test writes the files it sends."""
    folder = tmp_path / "in"
    folder.mkdir()
    return folder


@pytest.fixture
def qrscp(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path, qrscp_backend: str
) -> DimsefsmServer:
    return dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(tmp_path / "store"))


# -- item 5: UIDs are checked, file names are injective ------------------------------------
def test_a_uid_with_leading_dots_does_not_overwrite_another_patient(
    qrscp: DimsefsmServer, tmp_path: Path, incoming: Path
) -> None:
    first = make_instance(sop_instance_uid="1.2.826.0.1.3680043.10.1138.5", PatientID="FIRST")
    other = make_instance(sop_instance_uid="1.2.826.0.1.3680043.10.1138.6", PatientID="SECOND")
    other.SOPInstanceUID = "..1.2.826.0.1.3680043.10.1138.5"
    log = dcmtk_store(
        qrscp.port,
        write_instance(incoming / "first.dcm", first),
        crafted_file(incoming / "second.dcm", other),
    )
    assert log.count("Received Store Response (Success)") == 1, log
    assert "Received Store Response (Unknown Status: 0x117)" in log, log
    logged = "AffectedSOPInstanceUID '..1.2.826.0.1.3680043.10.1138.5' has an empty component"
    wait_until(lambda: logged in qrscp.output(), "qrscp logs the refusal")
    found = find_images(qrscp.port, tmp_path / "find")
    assert [(str(ds.SOPInstanceUID), ds.PatientID) for ds in found] == [
        (str(first.SOPInstanceUID), "FIRST")
    ]
    (got,) = get_study(qrscp.port, str(first.StudyInstanceUID), tmp_path / "get")
    assert got.PatientID == "FIRST" and got.PixelData == first.PixelData


@pytest.mark.parametrize(
    ("uid", "comment"),
    [
        ("1.2.3.4\\5", "SOPInstanceUID has 2 values"),
        ("1.2.3.4\x005", "SOPInstanceUID holds a NUL"),
        ("1.2.3.04", "SOPInstanceUID has a component with a leading zero"),
        ("", "data set has no SOPInstanceUID"),
    ],
    ids=["backslash", "nul", "leading-zero", "empty"],
)
def test_an_invalid_uid_in_the_data_set_is_refused_and_nothing_is_kept(
    qrscp: DimsefsmServer, tmp_path: Path, incoming: Path, uid: str, comment: str
) -> None:
    ds = make_instance(sop_instance_uid="1.2.3.4.5")
    ds.SOPInstanceUID = uid
    crafted = crafted_file(incoming / "bad.dcm", ds, meta_instance="1.2.3.4.5")
    ((status, error_comment),) = statuses(qrscp.port, crafted)
    assert status in (0x0117, 0xA900) and error_comment.startswith(comment), error_comment
    assert find_images(qrscp.port, tmp_path / "find") == []
    # Not even a temporary file: the store holds its index folder only (on SQLite).
    assert [p for p in (tmp_path / "store").iterdir() if p.name != INDEX_DIRECTORY] == []


def test_an_over_long_uid_from_dcmtk_is_refused(
    qrscp: DimsefsmServer, tmp_path: Path, incoming: Path
) -> None:
    ds = make_instance()
    ds.SOPInstanceUID = "1.2." + "3" * 70
    log = dcmtk_store(qrscp.port, crafted_file(incoming / "long.dcm", ds))
    assert "Received Store Response (Unknown Status: 0x117)" in log, log
    assert find_images(qrscp.port, tmp_path / "find") == []


# -- item 6: the command and the data set must agree ---------------------------------------
def test_command_and_data_set_that_disagree_are_refused(
    qrscp: DimsefsmServer, tmp_path: Path, incoming: Path
) -> None:
    victim = make_instance(sop_instance_uid="1.2.3.10", PatientID="VICTIM")
    other_uid = make_instance(sop_instance_uid="1.2.3.11", PatientID="HOSTILE")
    other_class = make_instance(sop_instance_uid="1.2.3.12", PatientID="HOSTILE")
    answers = statuses(
        qrscp.port,
        write_instance(incoming / "victim.dcm", victim),
        # named 1.2.3.10 in the command (the file would replace the victim's), 1.2.3.11 inside
        crafted_file(incoming / "uid.dcm", other_uid, meta_instance="1.2.3.10"),
        crafted_file(incoming / "class.dcm", other_class, meta_class=MR_IMAGE_STORAGE),
    )
    assert answers == [
        (0x0000, ""),
        (0xA900, "SOPInstanceUID differs from the command's"),
        (0xA900, "SOPClassUID differs from the command's"),
    ]
    found = find_images(qrscp.port, tmp_path / "find")
    assert [(str(ds.SOPInstanceUID), ds.PatientID) for ds in found] == [("1.2.3.10", "VICTIM")]
    (got,) = get_study(qrscp.port, str(victim.StudyInstanceUID), tmp_path / "get")
    assert got.PatientID == "VICTIM"


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SeriesInstanceUID", "PatientID"])
def test_a_multi_valued_key_cannot_file_into_the_victims_study(
    qrscp: DimsefsmServer, tmp_path: Path, incoming: Path, keyword: str
) -> None:
    victim = make_instance(sop_instance_uid="1.2.3.20", PatientID="VICTIM")
    hostile = make_instance(sop_instance_uid="1.2.3.21", PatientID="HOSTILE")
    setattr(hostile, keyword, [str(victim.get(keyword)), str(hostile.get(keyword))])
    answers = statuses(
        qrscp.port,
        write_instance(incoming / "victim.dcm", victim),
        crafted_file(incoming / "hostile.dcm", hostile),
    )
    assert answers == [(0x0000, ""), (0xA900, f"{keyword} has 2 values")]
    victims = find_images(
        qrscp.port, tmp_path / "find", StudyInstanceUID=str(victim.StudyInstanceUID)
    )
    assert [(str(ds.SOPInstanceUID), ds.PatientID) for ds in victims] == [("1.2.3.20", "VICTIM")]


# -- item 7: one SOP Instance UID, one place -----------------------------------------------
def test_the_same_uid_in_another_study_is_refused_and_the_first_stays(
    qrscp: DimsefsmServer, tmp_path: Path, incoming: Path
) -> None:
    first = make_instance(sop_instance_uid="1.2.3.30", PatientID="FIRST")
    again = make_instance(sop_instance_uid="1.2.3.30", PatientID="FIRST")
    again.StudyInstanceUID, again.SeriesInstanceUID = first.StudyInstanceUID, "1.2.3.31"
    elsewhere = make_instance(sop_instance_uid="1.2.3.30", PatientID="SECOND")
    first_file = write_instance(incoming / "first.dcm", first)
    answers = statuses(
        qrscp.port,
        first_file,
        write_instance(incoming / "again.dcm", again),
        write_instance(incoming / "elsewhere.dcm", elsewhere),
        first_file,  # a retransmission: same patient, study and series
    )
    refused = (0x0117, "SOPInstanceUID already stored in another patient/study/series")
    assert answers == [(0x0000, ""), refused, refused, (0x0000, "")]
    found = find_images(qrscp.port, tmp_path / "find")
    assert [(str(ds.StudyInstanceUID), ds.PatientID) for ds in found] == [
        (str(first.StudyInstanceUID), "FIRST")
    ]
    assert (
        find_images(
            qrscp.port, tmp_path / "find2", StudyInstanceUID=str(elsewhere.StudyInstanceUID)
        )
        == []
    )
    (got,) = get_study(qrscp.port, str(first.StudyInstanceUID), tmp_path / "get")
    assert got.PatientID == "FIRST" and str(got.SeriesInstanceUID) == str(first.SeriesInstanceUID)


@pytest.mark.usefixtures("qrscp_backend")
# -- item 9: torn files, stale temporary files, a failing disk ------------------------------
def test_a_torn_file_and_a_stale_temporary_file_at_start(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    whole = write_instance(store / "1.2.3.40.dcm", make_instance(sop_instance_uid="1.2.3.40"))
    torn = write_instance(store / "1.2.3.41.dcm", make_instance(sop_instance_uid="1.2.3.41"))
    with torn.open("r+b") as file:
        file.truncate(torn.stat().st_size - 1000)
    stale = store / ".1.2.3.42.0123456789ab.part"
    stale.write_bytes(b"the start of a data set a killed server never finished")
    server = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(store))
    assert not stale.exists()
    assert f"removed {stale}" in server.output()
    assert f"not indexed: {torn}: data set is not complete" in server.output()
    found = find_images(server.port, tmp_path / "find")
    assert [str(ds.SOPInstanceUID) for ds in found] == ["1.2.3.40"]
    assert whole.exists() and torn.exists()  # nothing deleted but the temporary file


class LimitedQrscp(LineReadyServer):
    """qrscp whose files may not grow past ``limit`` bytes (RLIMIT_FSIZE: writes fail EFBIG)."""

    def __init__(self, store: Path, limit: int) -> None:
        prlimit = shutil.which("prlimit") or "/usr/bin/prlimit"
        command = [sys.executable, "-m", "dimsefsm", "qrscp", "0", "-aet", QR_AET]
        super().__init__([prlimit, f"--fsize={limit}", *command, "-od", str(store)])


@pytest.mark.usefixtures("qrscp_backend")
def test_a_failed_disk_write_is_out_of_resources_and_the_association_goes_on(
    tmp_path: Path,
    incoming: Path,
) -> None:
    big = write_instance(incoming / "big.dcm", make_instance(pixel_bytes=1 << 20))
    small = write_instance(incoming / "small.dcm", make_instance(pixel_bytes=4096))
    store = tmp_path / "store"
    with LimitedQrscp(store, 256 * 1024) as server:
        log = dcmtk_store(server.port, big)
        assert "Received Store Response (Refused: OutOfResources)" in log, log
        # Our SCU goes on after the failure on the same association (and ends with a C-ECHO).
        assert statuses(server.port, big, small) == [
            (0xA700, "cannot write the file: File too large"),
            (0x0000, ""),
        ]
        logged = "writing to disk failed, temporary file discarded: [Errno 27] File too large"
        wait_until(lambda: logged in server.output(), "qrscp logs the failed write")
        found = find_images(server.port, tmp_path / "find")
        assert [str(ds.SOPInstanceUID) for ds in found] == [str(dcmread(small).SOPInstanceUID)]
    assert sorted(p.name for p in store.iterdir() if p.suffix != "") == [
        f"{dcmread(small).SOPInstanceUID}.dcm"
    ]
    assert not list(store.glob("*.part"))


@pytest.mark.usefixtures("qrscp_backend")
def test_fsync_flag_stores_and_is_announced(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path, incoming: Path
) -> None:
    server = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(tmp_path / "store"), "--fsync")
    files = [write_instance(incoming / f"{n}.dcm", make_instance()) for n in range(3)]
    log = dcmtk_store(server.port, *files)
    assert log.count("Received Store Response (Success)") == 3, log
    assert len(find_images(server.port, tmp_path / "find")) == 3
    help_text = subprocess.run(
        [sys.executable, "-m", "dimsefsm", "storescp", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--fsync" in help_text
