"""1,000 hostile connections against a live server: it answers each one and keeps serving.

Every connection sends bytes built by hypothesis (random, or a valid PDU stream
mutated), then half-closes.  The server must answer with an A-ABORT or an
A-ASSOCIATE-RJ/AC or just close, never crash, and afterwards hold no extra
thread, no extra file descriptor and no significant memory.
"""

from __future__ import annotations

import os
import socket
import struct
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
from dimsefsm.pdu.model import ReleaseRQ
from dimsefsm.qr.registry import STUDY_ROOT_FIND
from dimsefsm.sop_class import CT_IMAGE_STORAGE, IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION
from dimsefsm.transport.server import AssociationServer
from tests.data.make import make_instance
from tests.interop.peers import LOCALHOST, DimsefsmServer

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
    with DimsefsmServer(["qrscp", "0", "-aet", "QRSCP", "-od", str(tmp_path / "store")]) as qrscp:
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
                    found.append((status.Status, identifier and identifier.PatientID))

            querying = threading.Thread(target=run_query)
            querying.start()
            try:
                assert echo.send_c_echo().Status == 0
            finally:
                querying.join()
        assert found == [(0xFF00, "WANTED"), (0x0000, None)]
