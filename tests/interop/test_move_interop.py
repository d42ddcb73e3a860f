"""C-MOVE against real peers on 127.0.0.1: dcmtk movescu, storescp and dcmqrscp, our CLI and API.

The study is C-GET's (two series, CT and MR, the second instance of each
large), so what arrives is compared with the source file element by element,
pixel data byte for byte.  A C-MOVE involves three parties; each test names
them as SCU -> SCP -> destination.

A move SCP learns its destinations at start (``qrscp --dest``, dcmqrscp's
HostTable), so destinations are started first, shared by the module, and
each test empties their directories; a test that needs a destination of its
own binds a port the SCPs were told about in advance.  The last tests face
a destination scripted from the codec (only a script vanishes exactly in the
middle of an instance), and an SCP run in this process, whose handler can
show that it was closed.
"""

from __future__ import annotations

import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from dimsefsm import AE, evt
from dimsefsm.assoc.negotiation import AcceptorPolicy, accept_or_reject
from dimsefsm.datasets import EXPLICIT_VR_LITTLE_ENDIAN
from dimsefsm.dimse.commands import encode_command, store_rsp
from dimsefsm.dimse.fragment import encode_message
from dimsefsm.dimse.reassemble import Reassembler
from dimsefsm.pdu import PduFramer, encode_pdu
from dimsefsm.pdu.model import AssociateRQ, PDataTF
from dimsefsm.qr.registry import STUDY_ROOT_MOVE
from dimsefsm.services.storage import StorageConfig
from tests.data.make import (
    CT_IMAGE_STORAGE,
    LARGE_PIXEL_BYTES,
    SMALL_PIXEL_BYTES,
    make_instance,
    write_instance,
)
from tests.interop.peers import (
    DcmtkServer,
    DimsefsmServer,
    dcmqrscp_config,
    free_port,
    run_tool,
    wait_until,
)
from tests.interop.test_get_interop import (
    LEVELS,
    MR_IMAGE_STORAGE,
    Study,
    assert_received,
    load_into,
)

DIMSEFSM = [sys.executable, "-m", "dimsefsm"]
LOCALHOST = "127.0.0.1"
QR_AET = "DIMSEFSM"
DCMQRSCP_AET = "COMMON"
MOVER = "MOVER"  # every C-MOVE SCU's AE title: the Move Originator destinations must see
SUCCESS = 0x0000
PENDING = 0xFF00
WARNING_SUBOPS_FAILED = 0xB000
OUT_OF_RESOURCES_SUBOPS = 0xA702
DESTINATION_UNKNOWN = 0xA801
HANDLER_FAILED = 0xC511
# How long a test waits for a peer's reaction; nothing here takes a tenth of it.
PATIENCE = 10.0

# The destinations every SCP of the module knows, by AE title.
DCMTK_DEST = "STORESCP"  # dcmtk storescp -d: logs each C-STORE-RQ's command fields
CLI_DEST = "DIMSESTORE"  # dimsefsm storescp
API_DEST = "APISTORE"  # our AE in this process, recording what its handler sees
REFUSER = "REFUSER"  # dimsefsm storescp -aet OTHER: rejects the called AE title
VANISHING = "VANISHING"  # scripted: takes one instance, then closes mid-instance
STORE_SELF = "MOVESCU"  # dimsefsm movescu --store, moving to itself


# -- test data -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """Series 1 CT, series 2 MR; in each the second instance is large (C-GET's study)."""
    directory = tmp_path_factory.mktemp("sources")
    first = make_instance()
    patient_id, study_uid = "PID-MOVE-1", str(first.StudyInstanceUID)
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


def key_args(keys: dict[str, str]) -> list[str]:
    return [arg for keyword, value in keys.items() for arg in ("-k", f"{keyword}={value}")]


# -- destinations --------------------------------------------------------------------------
@dataclass
class Destination:
    """A storage SCP writing into ``directory``; ``fresh()`` empties it between tests."""

    port: int
    directory: Path
    server: DcmtkServer | DimsefsmServer | None = None

    def fresh(self) -> int:
        """Empty the directory; returns where the server's output stands now."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in self.directory.iterdir():
            path.unlink()
        return len(self.server.output()) if self.server is not None else 0

    def log_since(self, mark: int) -> str:
        assert self.server is not None
        return self.server.output()[mark:]


@dataclass
class Stored:
    """What one EVT_C_STORE handler call saw."""

    sop_instance_uid: str
    move_originator: tuple[str | None, int | None]
    calling_ae: str
    called_ae: str


@dataclass
class ApiDestination:
    """Our AE as a storage SCP in this process, recording every C-STORE it answers."""

    port: int
    stored: list[Stored] = field(default_factory=list)

    def on_store(self, event: Any) -> int:
        negotiated = event.assoc.negotiated
        self.stored.append(
            Stored(
                str(event.dataset.SOPInstanceUID),
                event.move_originator,
                negotiated.peer_ae.strip(),
                negotiated.local_ae.strip(),
            )
        )
        return SUCCESS


@dataclass(frozen=True)
class Ports:
    """Ports chosen before any SCP starts, for destinations that a test opens itself."""

    vanishing: int = field(default_factory=free_port)
    store_self: int = field(default_factory=free_port)


@pytest.fixture(scope="module")
def ports() -> Ports:
    return Ports()


@pytest.fixture(scope="module")
def dcmtk_dest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Destination]:
    directory = tmp_path_factory.mktemp("storescp")
    port = free_port()
    with DcmtkServer(["storescp", "-d", "-aet", DCMTK_DEST, "-od", str(directory)], port) as srv:
        assert isinstance(srv, DcmtkServer)
        yield Destination(port, directory, srv)


@pytest.fixture(scope="module")
def cli_dest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Destination]:
    directory = tmp_path_factory.mktemp("dimsefsm-storescp")
    port = free_port()
    args = ["storescp", str(port), "-aet", CLI_DEST, "-od", str(directory), "-v"]
    with DimsefsmServer(args) as srv:
        assert isinstance(srv, DimsefsmServer)
        yield Destination(port, directory, srv)


@pytest.fixture(scope="module")
def refuser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Destination]:
    directory = tmp_path_factory.mktemp("refuser")
    port = free_port()
    args = ["storescp", str(port), "-aet", "OTHER", "-od", str(directory)]
    with DimsefsmServer(args) as srv:
        assert isinstance(srv, DimsefsmServer)
        yield Destination(port, directory, srv)


@pytest.fixture(scope="module")
def api_dest() -> Iterator[ApiDestination]:
    ae = AE(API_DEST)
    for sop_class in (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE):
        ae.add_supported_context(sop_class)
    ae.storage = StorageConfig(mode="dataset")
    destination = ApiDestination(0)
    server = ae.start_server(
        (LOCALHOST, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, destination.on_store)]
    )
    destination.port = server.address[1]
    yield destination
    server.shutdown()


@pytest.fixture
def api_stored(api_dest: ApiDestination) -> list[Stored]:
    api_dest.stored.clear()
    return api_dest.stored


# -- SCPs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qrscp(
    study: Study,
    tmp_path_factory: pytest.TempPathFactory,
    dcmtk_dest: Destination,
    cli_dest: Destination,
    refuser: Destination,
    api_dest: ApiDestination,
    ports: Ports,
    module_qrscp_backend: str,
) -> Iterator[DimsefsmServer]:
    """``dimsefsm qrscp`` over the study, knowing every destination; moves change nothing."""
    directory = load_into(tmp_path_factory.mktemp("qrscp"), study)
    destinations = {
        DCMTK_DEST: dcmtk_dest.port,
        CLI_DEST: cli_dest.port,
        REFUSER: refuser.port,
        API_DEST: api_dest.port,
        VANISHING: ports.vanishing,
    }
    dest_args = [f"--dest={aet}={LOCALHOST}:{port}" for aet, port in destinations.items()]
    args = ["qrscp", str(free_port()), "-od", str(directory), "-aet", QR_AET, "-v", *dest_args]
    with DimsefsmServer(args) as server:
        assert isinstance(server, DimsefsmServer)
        yield server


@pytest.fixture(scope="module")
def dcmqrscp(
    study: Study,
    tmp_path_factory: pytest.TempPathFactory,
    api_dest: ApiDestination,
    ports: Ports,
) -> Iterator[DcmtkServer]:
    """dcmtk's dcmqrscp loaded through storescu; its HostTable knows our movescu and API AE."""
    port = free_port()
    hosts = {STORE_SELF: (LOCALHOST, ports.store_self), API_DEST: (LOCALHOST, api_dest.port)}
    config = dcmqrscp_config(tmp_path_factory.mktemp("dcmqrscp"), port, [DCMQRSCP_AET], hosts)
    with DcmtkServer(["dcmqrscp", "-c", str(config)], port) as server:
        assert isinstance(server, DcmtkServer)
        files = [str(path) for path in study.files.values()]
        loaded = run_tool(["storescu", "-aec", DCMQRSCP_AET, LOCALHOST, str(port), *files])
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        assert "E:" not in loaded.stderr, loaded.stderr
        yield server


# -- running the SCUs ----------------------------------------------------------------------
def dcmtk_movescu(
    port: int, called: str, destination: str, keys: dict[str, str], model: str
) -> Any:
    options = ["-v", f"-{model}", "-aet", MOVER, "-aec", called, "-aem", destination]
    return run_tool(["movescu", *options, *key_args(keys), LOCALHOST, str(port)])


def dimsefsm_movescu(
    port: int, called: str, keys: dict[str, str], model: str, *options: str
) -> Any:
    args = [f"-{model}", *key_args(keys), "-aec", called, *options]
    return run_tool([*DIMSEFSM, "movescu", LOCALHOST, str(port), *args])


def counts_line(completed: int, failed: int = 0, warning: int = 0) -> str:
    return f"; {completed} completed, {failed} failed, {warning} warning"


def originators(log: str) -> list[tuple[str, int]]:
    """The Move Originator fields of every C-STORE-RQ in a ``storescp -d`` log."""
    titles = re.findall(r"Move Originator AE Title\s*:\s*(\S+)", log)
    ids = re.findall(r"Move Originator ID\s*:\s*(\d+)", log)
    assert len(titles) == len(ids), log
    return [(title, int(number)) for title, number in zip(titles, ids, strict=True)]


def sent_message_id(log: str) -> int:
    """The Message ID of the C-MOVE-RQ in a ``movescu -v`` log."""
    match = re.search(r"Sending Move Request \(MsgID (\d+)\)", log)
    assert match is not None, log
    return int(match.group(1))


def move_identifier(study: Study, level: str = "STUDY") -> Dataset:
    return study.identifier(level, "S")


def statuses(responses: list[tuple[Dataset, Dataset | None]]) -> list[int]:
    return [int(status.Status) for status, _ in responses]


def counts_of(status: Dataset) -> tuple[int, int, int]:
    return (
        int(status.get("NumberOfCompletedSuboperations", -1)),
        int(status.get("NumberOfFailedSuboperations", -1)),
        int(status.get("NumberOfWarningSuboperations", -1)),
    )


def api_move(
    port: int, called: str, destination: str, identifier: Dataset, msg_id: int
) -> list[tuple[Dataset, Dataset | None]]:
    """Our SCU through the Python API: one association, one C-MOVE, released."""
    ae = AE(MOVER)
    ae.add_requested_context(STUDY_ROOT_MOVE)
    assoc = ae.associate(LOCALHOST, port, ae_title=called)
    assert assoc.is_established, assoc.describe_failure()
    responses = list(assoc.send_c_move(identifier, destination, STUDY_ROOT_MOVE, msg_id=msg_id))
    assoc.release()
    assert assoc.is_released
    return responses


# -- dcmtk movescu -> dimsefsm qrscp -> destinations --------------------------------------
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("model", ["S", "P"])
def test_dcmtk_movescu_from_dimsefsm_qrscp_to_dcmtk_storescp(
    qrscp: DimsefsmServer, dcmtk_dest: Destination, study: Study, model: str, level: str
) -> None:
    mark = dcmtk_dest.fresh()
    result = dcmtk_movescu(qrscp.port, QR_AET, DCMTK_DEST, study.keys(level, model), model)
    log = result.stdout + result.stderr
    expected = study.expected(level)
    assert result.returncode == 0, log
    assert "Received Final Move Response (Success)" in log
    assert log.count("Received Move Response") == len(expected)  # one Pending per instance
    assert_received(dcmtk_dest.directory, study, expected)
    # The sub-association: our AE title calling the destination's, one instance each,
    # carrying movescu's AE title and the Message ID of its C-MOVE-RQ.
    sent_id = sent_message_id(log)
    dest_log = dcmtk_dest.log_since(mark)
    assert re.findall(r"Calling Application Name:\s*(\S+)", dest_log)[-1] == QR_AET
    assert re.findall(r"Called Application Name:\s*(\S+)", dest_log)[-1] == DCMTK_DEST
    assert originators(dest_log) == [(MOVER, sent_id)] * len(expected)
    wait_until(
        lambda: "Association Release" in dcmtk_dest.log_since(mark), "sub-association released"
    )


def test_dcmtk_movescu_from_dimsefsm_qrscp_to_dimsefsm_storescp(
    qrscp: DimsefsmServer, cli_dest: Destination, study: Study
) -> None:
    cli_dest.fresh()
    result = dcmtk_movescu(qrscp.port, QR_AET, CLI_DEST, study.keys("STUDY", "S"), "S")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert "Received Final Move Response (Success)" in log
    assert_received(cli_dest.directory, study, list(study.files))
    names = sorted(path.name for path in cli_dest.directory.iterdir())
    assert names == sorted(f"{uid}.dcm" for uid in study.files)


@pytest.mark.parametrize("scu", ["dcmtk", "api"])
def test_move_originator_fields_reach_a_python_storage_handler(
    qrscp: DimsefsmServer, api_stored: list[Stored], study: Study, scu: str
) -> None:
    """``event.move_originator`` is the C-MOVE SCU's AE title and its request's Message ID."""
    if scu == "dcmtk":
        result = dcmtk_movescu(qrscp.port, QR_AET, API_DEST, study.keys("SERIES", "S"), "S")
        log = result.stdout + result.stderr
        assert result.returncode == 0, log
        sent_id = sent_message_id(log)
    else:
        sent_id = 4242
        responses = api_move(
            qrscp.port, QR_AET, API_DEST, move_identifier(study, "SERIES"), sent_id
        )
        assert statuses(responses) == [PENDING] * 3 + [SUCCESS]
        assert counts_of(responses[-1][0]) == (3, 0, 0)
    expected = study.expected("SERIES")
    assert sorted(stored.sop_instance_uid for stored in api_stored) == sorted(expected)
    assert {stored.move_originator for stored in api_stored} == {(MOVER, sent_id)}
    assert {(stored.calling_ae, stored.called_ae) for stored in api_stored} == {(QR_AET, API_DEST)}


# -- dimsefsm movescu -> dcmtk dcmqrscp ----------------------------------------------------
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("model", ["S", "P"])
def test_dimsefsm_movescu_from_dcmqrscp_to_itself(
    dcmqrscp: DcmtkServer, ports: Ports, study: Study, tmp_path: Path, model: str, level: str
) -> None:
    out_dir = tmp_path / "received"
    store = ["--store", "--store-port", str(ports.store_self), "-od", str(out_dir)]
    keys = study.keys(level, model)
    result = dimsefsm_movescu(dcmqrscp.port, DCMQRSCP_AET, keys, model, "-aet", STORE_SELF, *store)
    log = result.stdout + result.stderr
    expected = study.expected(level)
    assert result.returncode == 0, log
    assert "movescu: final status 0x0000 Success" in log
    assert counts_line(len(expected)) in log
    assert_received(out_dir, study, expected)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{uid}.dcm" for uid in expected)


def test_dcmqrscp_sends_our_move_originator_to_our_storage(
    dcmqrscp: DcmtkServer, api_stored: list[Stored], study: Study
) -> None:
    """Our SCU's Message ID, as dcmqrscp echoes it, parsed by our storage side."""
    responses = api_move(dcmqrscp.port, DCMQRSCP_AET, API_DEST, move_identifier(study), 77)
    total = len(study.files)
    assert statuses(responses)[-1] == SUCCESS
    assert set(statuses(responses)[:-1]) <= {PENDING}
    assert counts_of(responses[-1][0]) == (total, 0, 0)
    assert sorted(stored.sop_instance_uid for stored in api_stored) == sorted(study.files)
    assert {stored.move_originator for stored in api_stored} == {(MOVER, 77)}
    assert {(stored.calling_ae, stored.called_ae) for stored in api_stored} == {
        (DCMQRSCP_AET, API_DEST)
    }


# -- destinations that cannot be reached ---------------------------------------------------
def test_refusing_destination_fails_every_sub_operation_quickly(
    qrscp: DimsefsmServer, refuser: Destination, study: Study
) -> None:
    """The destination rejects the called AE title: 0xA702, all failed, the reason logged."""
    mark = len(qrscp.output())
    started = time.monotonic()
    result = dcmtk_movescu(qrscp.port, QR_AET, REFUSER, study.keys("STUDY", "S"), "S")
    dcmtk_seconds = time.monotonic() - started
    log = result.stdout + result.stderr
    assert result.returncode != 0, log
    assert "Received Final Move Response (Refused: OutOfResourcesSubOperations)" in log
    assert dcmtk_seconds < PATIENCE / 2, log

    result = dimsefsm_movescu(qrscp.port, QR_AET, study.keys("STUDY", "S"), "S", "-aem", REFUSER)
    log = result.stdout + result.stderr
    assert result.returncode == 1, log
    assert "movescu: final status 0xA702" in log
    assert counts_line(0, len(study.files)) in log
    assert f"movescu: {len(study.files)} failed SOP instance(s):" in log
    assert sorted(re.findall(r"^  ([\d.]+)$", log, re.MULTILINE)) == sorted(study.files)
    wait_until(
        lambda: re.search(rf"destination {REFUSER} .*rejected", qrscp.output()[mark:]) is not None,
        "the SCP logs why the destination refused",
    )
    assert list(refuser.directory.iterdir()) == []
    assert qrscp.alive


@pytest.mark.usefixtures("module_qrscp_backend")
@pytest.mark.parametrize("scp", ["dimsefsm", "dcmqrscp"])
def test_unknown_destination_is_refused_with_a801(
    request: pytest.FixtureRequest, study: Study, scp: str
) -> None:
    server = request.getfixturevalue("qrscp" if scp == "dimsefsm" else "dcmqrscp")
    called = QR_AET if scp == "dimsefsm" else DCMQRSCP_AET
    keys = study.keys("STUDY", "S")
    result = dimsefsm_movescu(server.port, called, keys, "S", "-aem", "NOBODY")
    log = result.stdout + result.stderr
    assert result.returncode == 1, log
    assert "movescu: final status 0xA801" in log
    if scp == "dimsefsm":  # and dcmtk's SCU reads our status the same way
        result = dcmtk_movescu(server.port, called, "NOBODY", keys, "S")
        log = result.stdout + result.stderr
        assert "Received Final Move Response (Refused: MoveDestinationUnknown)" in log
    assert server.alive


# -- a destination that vanishes in the middle of an instance -----------------------------
class VanishingDestination:
    """Accepts the sub-association, answers the first C-STORE, then closes mid-instance."""

    MAX_PDU = 16384

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server((LOCALHOST, port))
        self.stored: list[str] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="vanishing-dest", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(PATIENCE)
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(PATIENCE)
                self._serve(conn)
        except BaseException as exc:  # the test thread re-raises it in finish()
            self.error = exc
        finally:
            self.listener.close()

    def _serve(self, conn: socket.socket) -> None:
        framer, reassembler = PduFramer(), Reassembler()

        def next_pdu() -> Any:
            while (pdu := framer.next_pdu()) is None:
                data = conn.recv(65536)
                if not data:
                    raise ConnectionError("the SCP closed the sub-association")
                framer.feed(data)
            return pdu

        rq = next_pdu()
        assert isinstance(rq, AssociateRQ), rq
        syntaxes = (EXPLICIT_VR_LITTLE_ENDIAN,)
        supported = {CT_IMAGE_STORAGE: syntaxes, MR_IMAGE_STORAGE: syntaxes}
        ac, negotiated = accept_or_reject(
            rq, AcceptorPolicy(VANISHING, supported, max_pdu=self.MAX_PDU)
        )
        assert negotiated is not None, ac
        conn.sendall(encode_pdu(ac))
        while not (messages := reassembler.feed(self._pdvs(next_pdu()))):
            pass
        store = messages[0]
        uid = str(store.command["AffectedSOPInstanceUID"])
        command = store_rsp(
            int(store.command["MessageID"]),
            SUCCESS,
            sop_class_uid=str(store.command["AffectedSOPClassUID"]),
            sop_instance_uid=uid,
        )
        conn.sendall(
            b"".join(encode_message(store.context_id, encode_command(command), None, self.MAX_PDU))
        )
        self.stored.append(uid)
        # Part of the next instance, then gone without a word: no A-ABORT, no A-RELEASE.
        next_pdu()
        conn.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _pdvs(pdu: Any) -> Any:
        assert isinstance(pdu, PDataTF), pdu
        return pdu.pdvs

    def finish(self) -> None:
        self.thread.join(timeout=PATIENCE)
        assert not self.thread.is_alive(), "the scripted destination did not finish"
        if self.error is not None:
            raise self.error


def test_destination_vanishing_mid_transfer_ends_with_counts(
    qrscp: DimsefsmServer, ports: Ports, study: Study
) -> None:
    """One instance completed, the rest failed and listed: 0xB000, nothing hangs."""
    destination = VanishingDestination(ports.vanishing)
    mark = len(qrscp.output())
    started = time.monotonic()
    result = dimsefsm_movescu(qrscp.port, QR_AET, study.keys("STUDY", "S"), "S", "-aem", VANISHING)
    seconds = time.monotonic() - started
    destination.finish()
    log = result.stdout + result.stderr
    total = len(study.files)
    assert result.returncode == 1, log
    assert "movescu: final status 0xB000" in log
    assert counts_line(1, total - 1) in log
    failed = re.findall(r"^  ([\d.]+)$", log, re.MULTILINE)  # one failed UID per line
    assert f"movescu: {len(failed)} failed SOP instance(s):" in log
    assert sorted(failed + destination.stored) == sorted(study.files)
    assert seconds < PATIENCE / 2, log
    # The reason, as the SCP's log gives it today: the sub-association's abort.
    wait_until(lambda: "association aborted" in qrscp.output()[mark:], "the SCP logs the abort")
    assert qrscp.alive


# -- an SCP in this process: what happens to the handler -----------------------------------
@dataclass
class HandlerProbe:
    """A C-MOVE handler over the study's files that records how far each call got."""

    study: Study
    destination: tuple[str, int]
    raise_after: int | None = None
    ended: list[int] = field(default_factory=list)  # instances yielded, per closed call

    def __call__(self, event: Any) -> Iterator[Any]:
        yielded = 0
        try:
            yield self.destination
            paths = [str(path) for path in self.study.files.values()]
            yield len(paths)
            for path in paths:
                if self.raise_after is not None and yielded == self.raise_after:
                    raise RuntimeError("the archive went away")
                yielded += 1
                yield PENDING, path
        finally:
            self.ended.append(yielded)


@pytest.fixture
def move_scp() -> Iterator[Callable[[HandlerProbe], int]]:
    """``move_scp(handler)``: our AE as a C-MOVE SCP in this process; returns its port."""
    started: list[Any] = []

    def start(handler: HandlerProbe) -> int:
        ae = AE("APISCP")
        ae.add_supported_context(STUDY_ROOT_MOVE)
        server = ae.start_server(
            (LOCALHOST, 0), block=False, evt_handlers=[(evt.EVT_C_MOVE, handler)]
        )
        started.append(server)
        port: int = server.address[1]
        return port

    yield start
    for server in started:
        server.shutdown()


def test_handler_raising_between_yields_ends_with_c511_and_the_counts_so_far(
    move_scp: Callable[[HandlerProbe], int], dcmtk_dest: Destination, study: Study
) -> None:
    mark = dcmtk_dest.fresh()
    handler = HandlerProbe(study, (LOCALHOST, dcmtk_dest.port), raise_after=2)
    port = move_scp(handler)
    responses = api_move(port, "APISCP", DCMTK_DEST, move_identifier(study), 5)
    assert statuses(responses) == [PENDING, PENDING, HANDLER_FAILED]
    final = responses[-1][0]
    assert counts_of(final) == (2, 0, 0)
    assert "RuntimeError" in str(final.get("ErrorComment", "")), final
    assert handler.ended == [2]  # closed after the second instance
    sent = list(study.files)[:2]
    assert_received(dcmtk_dest.directory, study, sent)
    wait_until(
        lambda: "Association Release" in dcmtk_dest.log_since(mark), "sub-association released"
    )


class BlockingDestination:
    """pynetdicom's storage SCP, an independent peer, that holds the second C-STORE."""

    def __init__(self) -> None:
        from pynetdicom import AE as PynetdicomAE
        from pynetdicom import evt as pynetdicom_evt

        self.release = threading.Event()
        self.holding = threading.Event()
        self.stored: list[str] = []
        self.ended: list[str] = []
        ae = PynetdicomAE(ae_title="BLOCKING")
        for sop_class in (CT_IMAGE_STORAGE, MR_IMAGE_STORAGE):
            ae.add_supported_context(sop_class, EXPLICIT_VR_LITTLE_ENDIAN)
        handlers: list[Any] = [
            (pynetdicom_evt.EVT_C_STORE, self.on_store),
            (pynetdicom_evt.EVT_RELEASED, lambda event: self.ended.append("released")),
            (pynetdicom_evt.EVT_ABORTED, lambda event: self.ended.append("aborted")),
        ]
        server = ae.start_server((LOCALHOST, 0), block=False, evt_handlers=handlers)
        assert server is not None  # block=False returns the running server
        self.server = server
        self.port: int = server.server_address[1]

    def on_store(self, event: Any) -> int:
        if self.stored:
            self.holding.set()
            self.release.wait(PATIENCE)
        self.stored.append(str(event.request.AffectedSOPInstanceUID))
        return SUCCESS

    def shutdown(self) -> None:
        self.release.set()
        self.server.shutdown()


def test_originator_abort_mid_move_closes_the_handler_and_the_sub_association(
    move_scp: Callable[[HandlerProbe], int], study: Study
) -> None:
    destination = BlockingDestination()
    try:
        handler = HandlerProbe(study, (LOCALHOST, destination.port))
        port = move_scp(handler)
        ae = AE(MOVER)
        ae.add_requested_context(STUDY_ROOT_MOVE)
        assoc = ae.associate(LOCALHOST, port, ae_title="APISCP")
        assert assoc.is_established, assoc.describe_failure()
        seen = []
        for status, _ in assoc.send_c_move(move_identifier(study), "BLOCKING", STUDY_ROOT_MOVE):
            seen.append(int(status.Status))
            wait_until(destination.holding.is_set, "the destination holds the second instance")
            assoc.abort()
        assert seen == [PENDING]
        assert assoc.is_aborted
        destination.release.set()  # the sub-operation in flight may now end
        wait_until(lambda: bool(handler.ended), "the SCP closes the handler's generator")
        wait_until(lambda: bool(destination.ended), "the sub-association ends")
        assert destination.ended == ["aborted"] or destination.ended == ["released"]
        assert 2 <= len(destination.stored) < len(study.files)

        # The same SCP serves the next originator as if nothing had happened.
        destination.stored.clear()
        responses = api_move(port, "APISCP", "BLOCKING", move_identifier(study), 9)
        assert statuses(responses) == [PENDING] * len(study.files) + [SUCCESS]
        assert sorted(destination.stored) == sorted(study.files)
        assert len(handler.ended) == 2
    finally:
        destination.shutdown()
