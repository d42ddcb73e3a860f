"""C-GET against real peers on 127.0.0.1: dcmtk getscu and dcmqrscp, our CLI, our Python API.

One study of two series (CT and MR), three instances each, two of them
large (512 KB of pixel data, many P-DATA PDUs at dcmqrscp's 16 KB).  Every
retrieve is checked at the three levels the issue names (study, series, one
instance with the unique keys above it), and what arrives is compared with
the source file element by element, pixel data byte for byte.

Servers that only answer retrieves are shared by the module (a retrieve
changes nothing on the server); tests that end associations badly get their
own.  The last two tests face a retrieve SCP scripted from the codec alone:
no real implementation sends a C-STORE the requestor did not negotiate, and
only a script can abort exactly while a sub-operation's data set is half
written on the requestor's disk.
"""

from __future__ import annotations

import os
import pty
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom import config, dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import generate_uid

from dimsefsm import AE, evt
from dimsefsm.assoc.negotiation import AcceptorPolicy, accept_or_reject
from dimsefsm.cli.common import EXIT_ABORTED
from dimsefsm.datasets import EXPLICIT_VR_LITTLE_ENDIAN, encode_dataset
from dimsefsm.dimse.commands import encode_command, get_rsp, store_rq
from dimsefsm.dimse.fragment import encode_message
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import Reassembler
from dimsefsm.pdu import PduFramer, encode_pdu
from dimsefsm.pdu.model import Abort, AssociateRQ, PDataTF, ReleaseRP, ReleaseRQ
from dimsefsm.qr.registry import STUDY_ROOT_GET
from dimsefsm.services.storage import StorageConfig
from tests.data.make import (
    CT_IMAGE_STORAGE,
    LARGE_PIXEL_BYTES,
    SMALL_PIXEL_BYTES,
    make_instance,
    write_instance,
    write_instance_with_pydicom,
)
from tests.interop.peers import (
    DcmtkServer,
    DimsefsmServer,
    dcmqrscp_config,
    dcmtk_env,
    free_port,
    run_tool,
    wait_until,
)

DIMSEFSM = [sys.executable, "-m", "dimsefsm"]
LOCALHOST = "127.0.0.1"
QR_AET = "DIMSEFSM"
DCMQRSCP_AET = "COMMON"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SUCCESS = 0x0000
PENDING = 0xFF00
WARNING_SUBOPS_FAILED = 0xB000
FAILURE_ALL_SUBOPS_FAILED = 0xA702
OUT_OF_RESOURCES = 0xA700
SOP_CLASS_NOT_SUPPORTED = 0x0122
LEVELS = ("STUDY", "SERIES", "IMAGE")


# -- test data -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Study:
    """The source files, in the order a server that sorts file names sends them."""

    directory: Path
    patient_id: str
    study_uid: str
    series_uids: tuple[str, ...]
    files: dict[str, Path]  # SOP Instance UID -> source file
    series_of: dict[str, str]  # SOP Instance UID -> Series Instance UID

    def keys(self, level: str, model: str) -> dict[str, str]:
        """Unique keys down to ``level`` for the first series' second (large) instance."""
        keys = {"QueryRetrieveLevel": level, "StudyInstanceUID": self.study_uid}
        if model == "P":
            keys = {"QueryRetrieveLevel": level, "PatientID": self.patient_id, **keys}
        if level in ("SERIES", "IMAGE"):
            keys["SeriesInstanceUID"] = self.series_uids[0]
        if level == "IMAGE":
            keys["SOPInstanceUID"] = self.expected("IMAGE")[0]
        return keys

    def expected(self, level: str) -> list[str]:
        """SOP Instance UIDs a retrieve at ``level`` (see ``keys``) must deliver."""
        if level == "STUDY":
            return list(self.files)
        first_series = [
            uid for uid, series in self.series_of.items() if series == self.series_uids[0]
        ]
        return first_series if level == "SERIES" else first_series[1:2]

    def identifier(self, level: str, model: str = "S") -> Dataset:
        ds = Dataset()
        for keyword, value in self.keys(level, model).items():
            setattr(ds, keyword, value)
        return ds


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """Series 1 CT, series 2 MR; in each the second instance is large."""
    directory = tmp_path_factory.mktemp("sources")
    first = make_instance()
    patient_id, study_uid = "PID-GET-1", str(first.StudyInstanceUID)
    files: dict[str, Path] = {}
    series_of: dict[str, str] = {}
    series_uids = []
    for series, (sop_class, modality) in enumerate(
        ((CT_IMAGE_STORAGE, "CT"), (MR_IMAGE_STORAGE, "MR")), start=1
    ):
        series_uid = generate_uid()
        series_uids.append(series_uid)
        for number in (1, 2, 3):
            ds = make_instance(
                sop_class,
                pixel_bytes=LARGE_PIXEL_BYTES if number == 2 else SMALL_PIXEL_BYTES,
                PatientID=patient_id,
                StudyInstanceUID=study_uid,
                SeriesInstanceUID=series_uid,
                SeriesNumber=series,
                InstanceNumber=number,
                Modality=modality,
            )
            uid = str(ds.SOPInstanceUID)
            files[uid] = write_instance(directory / f"s{series}-i{number}.dcm", ds)
            series_of[uid] = series_uid
    return Study(directory, patient_id, study_uid, tuple(series_uids), files, series_of)


def load_into(directory: Path, study: Study) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for source in study.files.values():
        shutil.copy(source, directory / source.name)
    return directory


@pytest.fixture(scope="module")
def qrscp(
    study: Study, tmp_path_factory: pytest.TempPathFactory, module_qrscp_backend: str
) -> Iterator[DimsefsmServer]:
    """``dimsefsm qrscp`` indexing the study at start; shared: retrieves change nothing."""
    directory = load_into(tmp_path_factory.mktemp("qrscp"), study)
    server = DimsefsmServer(["qrscp", str(free_port()), "-od", str(directory), "-aet", QR_AET])
    with server:
        yield server


@pytest.fixture(scope="module")
def dcmqrscp(study: Study, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DcmtkServer]:
    """dcmtk's dcmqrscp (forking) loaded through storescu, as a user would."""
    port = free_port()
    config = dcmqrscp_config(tmp_path_factory.mktemp("dcmqrscp"), port, [DCMQRSCP_AET])
    server = DcmtkServer(["dcmqrscp", "-c", str(config)], port)
    with server:
        files = [str(path) for path in study.files.values()]
        loaded = run_tool(["storescu", "-aec", DCMQRSCP_AET, LOCALHOST, str(port), *files])
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        assert "E:" not in loaded.stderr, loaded.stderr
        yield server


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "received"
    folder.mkdir()
    return folder


# -- comparing what arrived with what was sent ---------------------------------------------
def assert_same_instance(received: Path, sent: Path) -> None:
    """Same syntax, same elements in the same order with the same values, same pixel bytes."""
    got, want = dcmread(received), dcmread(sent)
    assert got.file_meta.TransferSyntaxUID == want.file_meta.TransferSyntaxUID
    assert got.file_meta.MediaStorageSOPClassUID == want.SOPClassUID
    assert got.file_meta.MediaStorageSOPInstanceUID == want.SOPInstanceUID
    assert [elem.tag for elem in got] == [elem.tag for elem in want]
    for elem in want:
        assert got[elem.tag] == elem, f"{elem.tag} differs in {received}"
    assert bytes(got.PixelData) == bytes(want.PixelData)


def received_by_uid(folder: Path) -> dict[str, Path]:
    """Every file in ``folder``, hidden ones too, by SOP Instance UID (names differ by peer)."""
    return {str(dcmread(path).SOPInstanceUID): path for path in folder.iterdir()}


def assert_received(folder: Path, study: Study, expected: list[str]) -> None:
    """Exactly the expected instances, each complete; no temporary file left behind."""
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".") or ".part" in p.name]
    assert leftovers == []
    received = received_by_uid(folder)
    assert sorted(received) == sorted(expected)
    for uid, path in received.items():
        assert_same_instance(path, study.files[uid])


def uid_list(value: Any) -> list[str]:
    """FailedSOPInstanceUIDList as a list: pydicom gives a str for one value."""
    return [str(v) for v in value] if isinstance(value, MultiValue | list) else [str(value)]


# -- dcmtk getscu -> dimsefsm qrscp --------------------------------------------------------
def dcmtk_final_counts(log: str) -> dict[str, int]:
    """``getscu -v``'s final status report: Remaining/Completed/Failed/Warning."""
    report = log.split("Final status report from last C-GET message:", 1)
    assert len(report) == 2, log
    counts = dict(re.findall(r"Number of (\w+) Suboperations\s*:\s*(\d+)", report[1]))
    return {name: int(value) for name, value in counts.items()}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("model", ["S", "P"])
def test_dcmtk_getscu_from_dimsefsm_qrscp(
    qrscp: DimsefsmServer, study: Study, out_dir: Path, model: str, level: str
) -> None:
    keys = [arg for k, v in study.keys(level, model).items() for arg in ("-k", f"{k}={v}")]
    options = ["-v", f"-{model}", "-aec", QR_AET, "-od", str(out_dir), *keys]
    result = run_tool(["getscu", *options, LOCALHOST, str(qrscp.port)])
    log = result.stdout + result.stderr
    expected = study.expected(level)
    assert result.returncode == 0, log
    assert "Received C-GET Response (Success)" in log
    assert log.count("Received C-GET Response (Pending)") == len(expected)
    assert log.count("Sending C-STORE Response (Success)") == len(expected)
    counts = dcmtk_final_counts(log)
    assert counts == {"Remaining": 0, "Completed": len(expected), "Failed": 0, "Warning": 0}
    assert_received(out_dir, study, expected)
    assert qrscp.alive


# -- dimsefsm getscu -> dcmtk dcmqrscp, and -> dimsefsm qrscp ------------------------------
def dimsefsm_getscu(port: int, called: str, out_dir: Path, keys: dict[str, str], model: str) -> Any:
    args = [arg for k, v in keys.items() for arg in ("-k", f"{k}={v}")]
    options = [f"-{model}", *args, "-od", str(out_dir), "-aec", called]
    return run_tool([*DIMSEFSM, "getscu", LOCALHOST, str(port), *options])


def summary(done: int) -> str:
    return (
        "getscu: final status 0x0000 Success: Sub-operations complete, no failures; "
        f"{done} completed, 0 failed, 0 warning"
    )


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("model", ["S", "P"])
def test_dimsefsm_getscu_from_dcmqrscp(
    dcmqrscp: DcmtkServer, study: Study, out_dir: Path, model: str, level: str
) -> None:
    keys = study.keys(level, model)
    result = dimsefsm_getscu(dcmqrscp.port, DCMQRSCP_AET, out_dir, keys, model)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    expected = study.expected(level)
    assert summary(len(expected)) in log
    assert_received(out_dir, study, expected)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{uid}.dcm" for uid in expected)


@pytest.mark.parametrize("level", LEVELS)
def test_dimsefsm_getscu_from_dimsefsm_qrscp(
    qrscp: DimsefsmServer, study: Study, out_dir: Path, level: str
) -> None:
    result = dimsefsm_getscu(qrscp.port, QR_AET, out_dir, study.keys(level, "S"), "S")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    expected = study.expected(level)
    assert summary(len(expected)) in log
    assert_received(out_dir, study, expected)


def read_terminal(master: int) -> str:
    """Everything written to a pseudo-terminal until its last writer closed it."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every slave end is closed (Linux)
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_dimsefsm_getscu_draws_progress_on_a_terminal(
    qrscp: DimsefsmServer, study: Study, out_dir: Path
) -> None:
    """The total comes from the first Pending's counts; the bar counts up to it."""
    keys = [arg for k, v in study.keys("STUDY", "S").items() for arg in ("-k", f"{k}={v}")]
    options = ["-S", *keys, "-od", str(out_dir), "-aec", QR_AET]
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [*DIMSEFSM, "getscu", LOCALHOST, str(qrscp.port), *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=slave,
            env=dcmtk_env(),
        )
        os.close(slave)
        shown = read_terminal(master)
        assert process.wait(timeout=30) == 0, shown
    finally:
        os.close(master)
    total = len(study.files)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)  # rich's colours and cursor moves
    counts = re.findall(r"getscu [━ ]*(\d+)/(\d+)", plain)
    assert counts and counts[-1] == (str(total), str(total)), shown
    assert summary(total) in shown
    assert_received(out_dir, study, list(study.files))


def test_dimsefsm_getscu_no_match_is_success_with_nothing(
    qrscp: DimsefsmServer, out_dir: Path
) -> None:
    keys = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "1.2.826.0.1.3680043.10.1138.404"}
    result = dimsefsm_getscu(qrscp.port, QR_AET, out_dir, keys, "S")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert summary(0) in log
    assert list(out_dir.iterdir()) == []


# -- a requestor whose storage refuses sub-operations --------------------------------------
def retrieving_ae(storage: StorageConfig, *sop_classes: str) -> AE:
    """A requestor asking to be the Storage SCP for ``sop_classes`` (CT and MR by default)."""
    ae = AE("GETAPI")
    ae.storage = storage
    ae.add_requested_context(STUDY_ROOT_GET)
    for uid in sop_classes or (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE):
        ae.add_requested_context(uid, EXPLICIT_VR_LITTLE_ENDIAN)
        ae.propose_role(uid, scu_role=False, scp_role=True)
    return ae


def retrieve(
    ae: AE, port: int, called: str, identifier: Dataset, handlers: list[Any] | None = None
) -> list[tuple[Dataset, Dataset | None]]:
    assoc = ae.associate(LOCALHOST, port, ae_title=called, evt_handlers=handlers)
    assert assoc.is_established, assoc.describe_failure()
    responses = list(assoc.send_c_get(identifier, STUDY_ROOT_GET))
    assoc.release()
    assert assoc.is_released
    return responses


def counts_of(status: Dataset) -> tuple[int, int, int]:
    return (
        int(status.NumberOfCompletedSuboperations),
        int(status.NumberOfFailedSuboperations),
        int(status.NumberOfWarningSuboperations),
    )


@pytest.mark.parametrize("refused", ["one", "all"])
def test_refused_sub_operations_are_failed_and_listed(
    qrscp: DimsefsmServer, study: Study, refused: str
) -> None:
    """0xA700 from our storage handler: failed sub-operations, listed; all failed -> 0xA702."""
    victim = study.expected("IMAGE")[0]
    stored: list[str] = []

    def on_store(event: Any) -> int:
        uid = str(event.dataset.SOPInstanceUID)
        if refused == "all" or uid == victim:
            return OUT_OF_RESOURCES
        stored.append(uid)
        return SUCCESS

    ae = retrieving_ae(StorageConfig(mode="dataset"))
    responses = retrieve(
        ae, qrscp.port, QR_AET, study.identifier("STUDY"), [(evt.EVT_C_STORE, on_store)]
    )
    *pending, (final, failed) = responses
    total = len(study.files)
    assert [status.Status for status, _ in pending] == [PENDING] * total
    assert [int(status.NumberOfRemainingSuboperations) for status, _ in pending] == list(
        range(total - 1, -1, -1)
    )
    assert failed is not None
    if refused == "one":
        assert final.Status == WARNING_SUBOPS_FAILED
        assert counts_of(final) == (total - 1, 1, 0)
        assert uid_list(failed.FailedSOPInstanceUIDList) == [victim]
        assert sorted(stored) == sorted(uid for uid in study.files if uid != victim)
    else:
        assert final.Status == FAILURE_ALL_SUBOPS_FAILED
        assert counts_of(final) == (0, total, 0)
        assert sorted(uid_list(failed.FailedSOPInstanceUIDList)) == sorted(study.files)
        assert stored == []
    assert "NumberOfRemainingSuboperations" not in final
    assert qrscp.alive


# -- an SCP whose store holds instances no C-STORE can carry ------------------------------
LONG_UID = "1.2." + "9" * 70  # 74 characters: over the 64 of UI (PS3.5 9.1)


@pytest.fixture
def broken_store(study: Study, tmp_path: Path) -> Iterator[tuple[AE, int, list[Path]]]:
    """A library C-GET SCP over the study's first series plus an over-long UID and a vanished
    file (deleted between the count and the send), in that order: bad ones in the middle."""
    good = [study.files[uid] for uid in study.expected("SERIES")]
    long_uid = make_instance(PatientID=study.patient_id, StudyInstanceUID=study.study_uid)
    long_uid.add(DataElement(0x00080018, "UI", LONG_UID, validation_mode=config.IGNORE))
    bad = write_instance_with_pydicom(tmp_path / "long-uid.dcm", long_uid)  # our writer may refuse
    vanished = tmp_path / "vanished.dcm"
    files = [good[0], bad, vanished, *good[1:]]

    def on_get(event: Any) -> Iterator[Any]:
        yield len(files)
        for path in files:
            yield PENDING, str(path)

    ae = AE(QR_AET)
    ae.add_supported_context(STUDY_ROOT_GET)
    for uid in (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE):
        ae.add_supported_context(uid, scp_role=True)
    server = ae.start_server((LOCALHOST, 0), block=False, evt_handlers=[(evt.EVT_C_GET, on_get)])
    try:
        yield ae, server.address[1], files
    finally:
        ae.shutdown()


def test_dcmtk_getscu_gets_every_good_instance_past_unsendable_ones(
    broken_store: tuple[AE, int, list[Path]],
    study: Study,
    out_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11.8: an over-long UID and a vanished file are failed sub-operations; the
    instances after them arrive and the C-GET ends with Warning 0xB000.  Before, the SCP
    waited for a C-STORE response that never came until its network timeout aborted."""
    _, port, files = broken_store
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study.study_uid}"]
    options = ["-v", "-S", "-aec", QR_AET, "-od", str(out_dir), *keys]
    with caplog.at_level("WARNING", logger="dimsefsm.get"):
        result = run_tool(["getscu", *options, LOCALHOST, str(port)])
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "DIMSE status is: Warning: SubOperationsCompleteOneOrMoreFailures" in log
    assert log.count("Received C-GET Response") == len(files) + 1
    good = study.expected("SERIES")
    assert dcmtk_final_counts(log) == {
        "Remaining": 0,
        "Completed": len(good),
        "Failed": 2,
        "Warning": 0,
    }
    assert_received(out_dir, study, good)
    lines = [r.getMessage() for r in caplog.records if "failed before sending" in r.getMessage()]
    assert len(lines) == 2 and LONG_UID in lines[0] and "vanished.dcm" in lines[1], lines


def test_unsendable_instances_are_listed_in_the_final_response(
    broken_store: tuple[AE, int, list[Path]], study: Study
) -> None:
    """The same over sockets with our SCU: the failed list names the UID it could read."""
    _, port, files = broken_store
    stored: list[str] = []

    def on_store(event: Any) -> int:
        stored.append(str(event.dataset.SOPInstanceUID))
        return SUCCESS

    ae = retrieving_ae(StorageConfig(mode="dataset"))
    responses = retrieve(ae, port, QR_AET, study.identifier("STUDY"), [(evt.EVT_C_STORE, on_store)])
    *pending, (final, failed) = responses
    assert [status.Status for status, _ in pending] == [PENDING] * len(files)
    assert final.Status == WARNING_SUBOPS_FAILED
    good = study.expected("SERIES")
    assert counts_of(final) == (len(good), 2, 0)
    assert failed is not None and uid_list(failed.FailedSOPInstanceUIDList) == [LONG_UID]
    assert stored == good


# -- a requestor that aborts in the middle -------------------------------------------------
ENDED = re.compile(r"c-get-scp ended by the association after (\d+) completed, (\d+) failed")


@pytest.mark.usefixtures("qrscp_backend")
def test_abort_mid_get_keeps_complete_files_only_and_the_scp_serves_on(
    study: Study, tmp_path: Path, out_dir: Path
) -> None:
    directory = load_into(tmp_path / "store", study)
    server = DimsefsmServer(
        ["qrscp", str(free_port()), "-od", str(directory), "-aet", QR_AET, "-v"]
    )
    with server:
        ae = retrieving_ae(StorageConfig(mode="file", directory=out_dir))
        assoc = ae.associate(LOCALHOST, server.port, ae_title=QR_AET)
        assert assoc.is_established, assoc.describe_failure()
        seen = []
        for status, _ in assoc.send_c_get(study.identifier("STUDY"), STUDY_ROOT_GET):
            seen.append(status.Status)
            assoc.abort()  # after the first Pending: the next instance is a large one
        assert seen == [PENDING]
        assert assoc.is_aborted
        # Whatever had arrived of the next instance is gone; what was stored is whole.
        kept = received_by_uid(out_dir)
        assert 1 <= len(kept) < len(study.files)
        assert_received(out_dir, study, list(kept))

        # The SCP closed the handler's generator and said how far it had got.
        wait_until(lambda: ENDED.search(server.output()) is not None, "the SCP logs the counts")
        ended = ENDED.search(server.output())
        assert ended is not None
        assert 1 <= int(ended.group(1)) <= len(kept)

        again = out_dir.parent / "again"
        again.mkdir()
        keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study.study_uid}"]
        options = ["-v", "-S", "-aec", QR_AET, "-od", str(again), *keys]
        result = run_tool(["getscu", *options, LOCALHOST, str(server.port)])
        log = result.stdout + result.stderr
        assert result.returncode == 0, log
        assert dcmtk_final_counts(log)["Completed"] == len(study.files)
        assert_received(again, study, list(study.files))
        assert server.alive


# -- retrieve SCPs that misbehave, built from the codec ----------------------------------
class Session:
    """One accepted association of a scripted C-GET SCP, seen as DIMSE messages."""

    MAX_PDU = 16384

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.framer = PduFramer()
        self.reassembler = Reassembler()
        rq = self.next_pdu()
        assert isinstance(rq, AssociateRQ), rq
        storage = {
            uid: (EXPLICIT_VR_LITTLE_ENDIAN,) for uid in (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE)
        }
        policy = AcceptorPolicy(
            "ROGUE",
            {STUDY_ROOT_GET: (EXPLICIT_VR_LITTLE_ENDIAN,), **storage},
            scp_role_for=frozenset(storage),
        )
        ac, negotiated = accept_or_reject(rq, policy)
        assert negotiated is not None, ac
        conn.sendall(encode_pdu(ac))
        self.context_of = {c.abstract_syntax: c.context_id for c in negotiated.contexts.values()}
        self.get = self.next_message()
        assert self.get.command["AffectedSOPClassUID"] == STUDY_ROOT_GET

    def next_pdu(self) -> Any:
        while (pdu := self.framer.next_pdu()) is None:
            data = self.conn.recv(65536)
            if not data:
                raise ConnectionError("the requestor closed the connection")
            self.framer.feed(data)
        return pdu

    def next_message(self) -> Message:
        while True:
            pdu = self.next_pdu()
            assert isinstance(pdu, PDataTF), pdu
            messages = self.reassembler.feed(pdu.pdvs)
            if messages:
                return messages[0]

    def store_pdus(self, number: int, context: str, instance: Dataset) -> list[bytes]:
        """A C-STORE-RQ on the context negotiated for ``context``, whatever the instance is."""
        command = encode_command(
            store_rq(number, str(instance.SOPClassUID), str(instance.SOPInstanceUID))
        )
        data = encode_dataset(instance, EXPLICIT_VR_LITTLE_ENDIAN)
        return encode_message(self.context_of[context], command, data, self.MAX_PDU)

    def store(self, number: int, context: str, instance: Dataset) -> int:
        """Send one sub-operation and return the requestor's C-STORE status."""
        self.conn.sendall(b"".join(self.store_pdus(number, context, instance)))
        return int(self.next_message().command["Status"])

    def respond(self, status: int, remaining: int | None, counts: tuple[int, int, int]) -> None:
        completed, failed, warning = counts
        command = get_rsp(
            int(self.get.command["MessageID"]),
            status,
            sop_class_uid=STUDY_ROOT_GET,
            remaining=remaining,
            completed=completed,
            failed=failed,
            warning=warning,
        )
        pdus = encode_message(self.get.context_id, encode_command(command), None, self.MAX_PDU)
        self.conn.sendall(b"".join(pdus))

    def release(self) -> None:
        assert isinstance(self.next_pdu(), ReleaseRQ)
        self.conn.sendall(encode_pdu(ReleaseRP()))


class ScriptedGetScp:
    """Accepts one association in a thread and runs ``script`` on it; failures re-raised."""

    def __init__(self, script: Callable[[Session], None]) -> None:
        self.script = script
        self.error: BaseException | None = None
        self.listener = socket.create_server((LOCALHOST, 0))
        self.port: int = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, name="scripted-get-scp", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(10)
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(10)
                self.script(Session(conn))
        except BaseException as exc:  # the test thread re-raises it in finish()
            self.error = exc
        finally:
            self.listener.close()

    def finish(self) -> None:
        self.thread.join(timeout=15)
        assert not self.thread.is_alive(), "the scripted SCP did not finish"
        if self.error is not None:
            raise self.error


def test_c_store_outside_the_negotiated_roles_is_refused_with_0122(
    study: Study, out_dir: Path
) -> None:
    """An MR instance on the CT context, then on an MR context where we are not the SCP."""
    mr = dcmread(study.directory / "s2-i1.dcm")
    statuses: list[int] = []

    def script(session: Session) -> None:
        statuses.append(session.store(1, CT_IMAGE_STORAGE, mr))
        statuses.append(session.store(2, MR_IMAGE_STORAGE, mr))
        session.respond(FAILURE_ALL_SUBOPS_FAILED, None, (0, 2, 0))
        session.release()

    peer = ScriptedGetScp(script)
    ae = retrieving_ae(StorageConfig(mode="file", directory=out_dir), CT_IMAGE_STORAGE)
    ae.add_requested_context(MR_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN)  # no SCP role asked
    responses = retrieve(ae, peer.port, "ROGUE", study.identifier("STUDY"))
    peer.finish()
    assert statuses == [SOP_CLASS_NOT_SUPPORTED, SOP_CLASS_NOT_SUPPORTED]
    assert [status.Status for status, _ in responses] == [FAILURE_ALL_SUBOPS_FAILED]
    assert list(out_dir.iterdir()) == []


def test_scp_aborting_mid_sub_operation_leaves_complete_files_only(
    study: Study, out_dir: Path
) -> None:
    """The SCP A-ABORTs halfway through the second (large) instance: no partial file stays."""
    first, second = (dcmread(study.directory / f"s1-i{n}.dcm") for n in (1, 2))
    statuses: list[int] = []

    def partial_file() -> bool:
        return any(p.name.endswith(".part") for p in out_dir.iterdir())

    def script(session: Session) -> None:
        statuses.append(session.store(1, CT_IMAGE_STORAGE, first))
        session.respond(PENDING, 1, (1, 0, 0))
        pdus = session.store_pdus(2, CT_IMAGE_STORAGE, second)
        assert len(pdus) > 20
        session.conn.sendall(b"".join(pdus[: len(pdus) // 2]))
        wait_until(partial_file, "the requestor writes the second instance to a temporary file")
        session.conn.sendall(encode_pdu(Abort()))

    peer = ScriptedGetScp(script)
    keys = study.keys("SERIES", "S")
    result = dimsefsm_getscu(peer.port, "ROGUE", out_dir, keys, "S")
    peer.finish()
    log = result.stdout + result.stderr
    assert result.returncode == EXIT_ABORTED, log
    assert "getscu: no final response" in log
    assert statuses == [SUCCESS]
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{first.SOPInstanceUID}.dcm"]
    assert_received(out_dir, study, [str(first.SOPInstanceUID)])
