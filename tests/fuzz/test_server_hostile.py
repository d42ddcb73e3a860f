"""1,000 hostile connections against a live server: it answers each one and keeps serving.

Every connection sends bytes built by hypothesis (random, or a valid PDU stream
mutated), then half-closes.  The server must answer with an A-ABORT or an
A-ASSOCIATE-RJ/AC or just close, never crash, and afterwards hold no extra
thread, no extra file descriptor and no significant memory.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from dimsefsm import AE
from dimsefsm.assoc.negotiation import RequestorProposal, build_request, propose_contexts
from dimsefsm.dimse.commands import encode_command
from dimsefsm.dimse.fragment import encode_message
from dimsefsm.pdu.codec import PduFramer
from dimsefsm.pdu.model import Abort, AssociateAC, ReleaseRQ
from dimsefsm.qr.registry import STUDY_ROOT_FIND
from dimsefsm.sop_class import CT_IMAGE_STORAGE, IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION
from dimsefsm.transport.server import AssociationServer
from tests.data.make import make_instance
from tests.interop.peers import LOCALHOST, DimsefsmServer, run_tool

RQ = build_request(
    RequestorProposal(
        "FUZZ", "SCP", propose_contexts([(VERIFICATION, [IMPLICIT_VR_LITTLE_ENDIAN])])
    )
).encode()
ECHO = b"".join(
    encode_message(
        1,
        encode_command(
            {
                "CommandField": 0x30,
                "MessageID": 1,
                "AffectedSOPClassUID": VERIFICATION,
                "CommandDataSetType": 0x0101,
            }
        ),
        None,
        16384,
    )
)
VALID_STREAM = RQ + ECHO + ReleaseRQ().encode()


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    buf = bytearray(data)
    for pos, value in edits:
        buf[pos % len(buf)] = value
    return bytes(buf[: max(1, cut % (len(buf) + 1))])


hostile = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.builds(
        _mutate,
        st.just(VALID_STREAM),
        st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
        st.integers(0, 10_000),
    ),
    st.builds(
        lambda t, n: struct.pack(">BBL", t, 0, n), st.integers(0, 255), st.integers(0, 0xFFFFFFFF)
    ),
    st.builds(lambda tail: RQ + tail, st.binary(min_size=1, max_size=200)),
)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _join_association_threads() -> None:
    for t in threading.enumerate():
        if t.name.startswith("dimsefsm-assoc-"):
            t.join(10)


@pytest.fixture(scope="module")
def server() -> Iterator[AssociationServer]:
    ae = AE("SCP")
    ae.add_supported_context(VERIFICATION)
    ae.artim_timeout = 5
    srv = ae.start_server(("127.0.0.1", 0), block=False)
    yield srv
    srv.shutdown()


ANSWERS: dict[str, int] = {}


def _exchange(address: tuple[str, int], payload: bytes) -> str:
    with socket.create_connection(address) as sock:
        sock.settimeout(10)
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return "reset"
        framer = PduFramer()
        answers = []
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                answers.append("reset")
                break
            if not data:
                break
            framer.feed(data)
            while (pdu := framer.next_pdu()) is not None:
                answers.append(type(pdu).__name__)
        return answers[-1] if answers else "closed"


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(payload=hostile)
def _hostile_run(server: AssociationServer, payload: bytes) -> None:
    answer = _exchange(server.address, payload)
    assert answer in {
        "Abort",
        "AssociateRJ",
        "AssociateAC",
        "PDataTF",
        "ReleaseRP",
        "closed",
        "reset",
    }
    ANSWERS[answer] = ANSWERS.get(answer, 0) + 1


def test_thousand_hostile_connections(server: AssociationServer) -> None:
    ae = AE("CHECK")
    ae.add_requested_context(VERIFICATION)
    with ae.associate(*server.address, ae_title="SCP") as assoc:  # warm up allocations
        assert assoc.send_c_echo().Status == 0
    _join_association_threads()
    threads, fds, rss = threading.active_count(), _fds(), _rss_kib()

    _hostile_run(server)

    _join_association_threads()
    assert threading.active_count() == threads
    assert _fds() == fds
    assert _rss_kib() - rss < 16 * 1024, "memory grew by more than 16 MiB"
    assert ANSWERS.get("Abort", 0) > 0
    with ae.associate(*server.address, ae_title="SCP") as assoc:
        assert assoc.send_c_echo().Status == 0


def test_a_valid_stream_is_served_completely(server: AssociationServer) -> None:
    """AC, the C-ECHO response, then the A-RELEASE-RP: the last PDU we read."""
    assert _exchange(server.address, VALID_STREAM) == "ReleaseRP"


# -- one client must not freeze the others (issue 11, item 10) --------------------------------
@pytest.mark.filterwarnings("ignore:The PN component length:UserWarning")
def test_a_pathological_wild_card_query_leaves_other_associations_served(tmp_path: Path) -> None:
    """``*A*A*A*B`` against a 1,000-character name once froze qrscp (no C-ECHO for 40 s).

    qrscp runs in its own process, so a server holding its interpreter cannot
    stall this test's client threads: the C-ECHO on a second association must
    be answered (within the DIMSE timeout) while the query is being matched,
    and the query must still find exactly the one matching patient.
    """
    near_miss = "A" * 1000
    wanted = "A" * 999 + "B"
    instances = [
        make_instance(PatientName=near_miss, PatientID="NEAR"),
        make_instance(PatientName=wanted, PatientID="WANTED"),
    ]
    # One process: the echo must not wait for the query in the same interpreter.
    args = ["qrscp", "0", "-aet", "QRSCP", "-od", str(tmp_path / "store"), "--workers", "1"]
    with DimsefsmServer(args) as qrscp:
        address = (LOCALHOST, qrscp.port)
        ae = AE("CHECK")
        ae.add_requested_context(VERIFICATION)
        ae.add_requested_context(CT_IMAGE_STORAGE)
        ae.add_requested_context(STUDY_ROOT_FIND)
        ae.dimse_timeout = 20
        with ae.associate(*address, ae_title="QRSCP") as store:
            assert [store.send_c_store(ds).Status for ds in instances] == [0, 0]
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientName = "*A*A*A*B"
        query.PatientID = ""
        query.StudyInstanceUID = ""
        with (
            ae.associate(*address, ae_title="QRSCP") as echo,
            ae.associate(*address, ae_title="QRSCP") as find,
        ):
            assert echo.is_established and find.is_established
            found: list[tuple[int, str | None]] = []

            def run_query() -> None:
                for status, identifier in find.send_c_find(query, STUDY_ROOT_FIND):
                    patient = None if identifier is None else str(identifier.PatientID)
                    found.append((int(status.Status), patient))

            querying = threading.Thread(target=run_query)
            querying.start()
            try:
                assert echo.send_c_echo().Status == 0
            finally:
                querying.join()
        assert found == [(0xFF00, "WANTED"), (0x0000, None)]


# -- one client must not lock the others out (issue 11, item 11) -----------------------------
SCP_AET = "SCP"
# A P-DATA-TF header announcing a 1,000-byte body: trickled, it never completes in a test.
LONG_PDATA = struct.pack(">BBL", 0x04, 0, 1000) + bytes(1000)


class Trickler:
    """Sends ``data`` one byte per ``interval`` on ``sock`` until stopped or refused.

    The pace is the behaviour under test (a slow-loris peer), not a synchronisation.
    """

    def __init__(self, sock: socket.socket, data: bytes, interval: float = 0.05) -> None:
        self.sock, self.data, self.interval = sock, data, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-trickler")
        self.thread.start()

    def _run(self) -> None:
        for index in range(len(self.data)):
            if self.stop.is_set():
                return
            try:
                self.sock.send(self.data[index : index + 1])
            except OSError:
                return  # the server closed us: what the tests wait for
            self.stop.wait(self.interval)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def _dos_server(**attrs: object) -> AssociationServer:
    ae = AE(SCP_AET)
    ae.add_supported_context(VERIFICATION)
    ae.require_called_aet = True
    for name, value in attrs.items():
        assert hasattr(ae, name), name
        setattr(ae, name, value)
    return ae.start_server((LOCALHOST, 0), block=False)


def _echoscu(server: AssociationServer) -> subprocess.CompletedProcess[str]:
    """dcmtk's echoscu (by absolute path, TCP_NODELAY=1): a real peer wanting service."""
    return run_tool(["/usr/bin/echoscu", "-aec", SCP_AET, LOCALHOST, str(server.address[1])])


def _pdus_until_closed(sock: socket.socket) -> list[object]:
    """Every PDU the server sends until it closes the connection (the event waited for)."""
    sock.settimeout(30)  # a hang guard only: each test's timers are far shorter
    framer = PduFramer()
    pdus: list[object] = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            return pdus
        framer.feed(data)
        while (pdu := framer.next_pdu()) is not None:
            pdus.append(pdu)


def _associate(sock: socket.socket) -> None:
    """Send our A-ASSOCIATE-RQ and read the server's A-ASSOCIATE-AC."""
    sock.sendall(build_request(RequestorProposal("HOSTILE", SCP_AET, CONTEXTS)).encode())
    framer = PduFramer()
    sock.settimeout(30)
    while (pdu := framer.next_pdu()) is None:
        data = sock.recv(65536)
        assert data, "closed before the A-ASSOCIATE-AC"
        framer.feed(data)
    assert isinstance(pdu, AssociateAC), pdu


CONTEXTS = propose_contexts([(VERIFICATION, [IMPLICIT_VR_LITTLE_ENDIAN])])


def _baseline() -> tuple[int, int]:
    _join_association_threads()
    return threading.active_count(), _fds()


def test_silent_and_trickling_connections_hold_no_association_slot() -> None:
    """4 silent sockets and 4 trickling an A-ASSOCIATE-RQ leave both slots to a real peer.

    Before issue 11 every connection took a slot from its first moment, so
    ``maximum_associations`` idle sockets made echoscu's request "local limit
    exceeded" until ARTIM (30 s) closed them.
    """
    threads, fds = _baseline()
    server = _dos_server(maximum_associations=2, maximum_pending_connections=32)
    silent = [socket.create_connection(server.address) for _ in range(4)]
    slow = [socket.create_connection(server.address) for _ in range(4)]
    tricklers = [Trickler(sock, RQ) for sock in slow]
    try:
        for _ in range(2):
            result = _echoscu(server)
            assert result.returncode == 0, result.stdout + result.stderr
        assert server.active_associations == 0
    finally:
        for trickler in tricklers:
            trickler.close()
        for sock in silent + slow:
            sock.close()
        server.shutdown()
    assert _baseline() == (threads, fds)


def test_silent_connections_are_closed_when_artim_expires() -> None:
    """Sta2 + ARTIM (AE.artim_timeout): each silent or trickling socket sees the server close it.

    ARTIM runs from the connection, not from the last byte: an A-ASSOCIATE-RQ
    trickled a byte at a time (it would take seconds) is cut off as well.
    """
    threads, fds = _baseline()
    server = _dos_server(artim_timeout=0.5, network_timeout=60)
    silent = [socket.create_connection(server.address) for _ in range(4)]
    slow = [socket.create_connection(server.address) for _ in range(2)]
    tricklers = [Trickler(sock, RQ) for sock in slow]
    try:
        assert [_pdus_until_closed(sock) for sock in silent + slow] == [[]] * 6
        result = _echoscu(server)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        for trickler in tricklers:
            trickler.close()
        for sock in silent + slow:
            sock.close()
        server.shutdown()
    assert _baseline() == (threads, fds)


def test_a_trickled_pdu_is_aborted_and_frees_its_slot(caplog: pytest.LogCaptureFixture) -> None:
    """Both slots held by associations trickling a P-DATA PDU: each is aborted at its deadline.

    Every byte used to restart the idle (network) timer, so a peer sending one
    byte a second held its slot for ever.  The PDU deadline counts from the
    PDU's first byte: A-ABORT (service provider), a log line, the slot freed.
    """
    threads, fds = _baseline()
    server = _dos_server(
        maximum_associations=2, pdu_timeout=0.5, network_timeout=60, artim_timeout=0.5
    )
    socks = [socket.create_connection(server.address) for _ in range(2)]
    tricklers: list[Trickler] = []
    try:
        for sock in socks:
            _associate(sock)
        assert server.active_associations == 2
        tricklers = [Trickler(sock, LONG_PDATA) for sock in socks]
        for sock in socks:
            assert _pdus_until_closed(sock) == [Abort(source=2, reason=0)]
        result = _echoscu(server)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        for trickler in tricklers:
            trickler.close()
        for sock in socks:
            sock.close()
        server.shutdown()
    assert _baseline() == (threads, fds)
    overdue = [r for r in caplog.records if "of a PDU and not the rest within" in r.message]
    assert len(overdue) == 2


def test_pending_connections_beyond_the_cap_close_the_oldest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At ``maximum_pending_connections`` a new connection closes the oldest pending one."""
    threads, fds = _baseline()
    server = _dos_server(maximum_pending_connections=3, artim_timeout=60)
    silent = [socket.create_connection(server.address) for _ in range(3)]
    try:
        newest = socket.create_connection(server.address)
        silent.append(newest)
        assert _pdus_until_closed(silent[0]) == []  # the oldest: closed to make room
        still_open, _, _ = select.select(silent[1:], [], [], 0)
        assert still_open == []
        result = _echoscu(server)  # evicts the next oldest, then is served
        assert result.returncode == 0, result.stdout + result.stderr
        assert _pdus_until_closed(silent[1]) == []
        assert server.pending_connections <= 3
    finally:
        for sock in silent:
            sock.close()
        server.shutdown()
    assert _baseline() == (threads, fds)
    assert any("closing the oldest" in r.message for r in caplog.records)


def test_cli_timeout_flag_sets_artim() -> None:
    """``echoscp -to S``: a silent connection is closed after S seconds, not a fixed 30."""
    with (
        DimsefsmServer(["echoscp", "0", "-aet", SCP_AET, "-to", "0.5"]) as echoscp,
        socket.create_connection((LOCALHOST, echoscp.port)) as silent,
    ):
        assert _pdus_until_closed(silent) == []
