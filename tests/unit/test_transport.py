"""The socket transport on 127.0.0.1: association lifecycle, timeouts, clean shutdown."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from dimsefsm import AE, evt
from dimsefsm.assoc.negotiation import RequestorProposal, build_request, propose_contexts
from dimsefsm.pdu.codec import PduFramer, encode_pdu
from dimsefsm.pdu.model import Abort, AssociateAC, AssociateRJ, ReleaseRP, ReleaseRQ
from dimsefsm.sop_class import IMPLICIT_VR_LITTLE_ENDIAN as IVRLE
from dimsefsm.sop_class import VERIFICATION
from dimsefsm.transport.server import AssociationServer


def assoc_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("dimsefsm-")]


@pytest.fixture
def scp() -> Iterator[tuple[AE, AssociationServer]]:
    ae = AE("SCP")
    ae.add_supported_context(VERIFICATION)
    ae.require_called_aet = True
    ae.maximum_associations = 2
    ae.artim_timeout = 0.3
    ae.network_timeout = 5
    server = ae.start_server(("127.0.0.1", 0), block=False)
    yield ae, server
    server.shutdown()
    assert assoc_threads() == []


def scu(**attrs: object) -> AE:
    ae = AE("SCU")
    ae.add_requested_context(VERIFICATION)
    for k, v in attrs.items():
        setattr(ae, k, v)
    return ae


def read_pdu(sock: socket.socket) -> object:
    framer = PduFramer()
    while True:
        pdu = framer.next_pdu()
        if pdu is not None:
            return pdu
        data = sock.recv(65536)
        if not data:
            return None
        framer.feed(data)


def test_echo_release_and_no_leaks(scp: tuple[AE, AssociationServer]) -> None:
    _, server = scp
    host, port = server.address
    with scu().associate(host, port, ae_title="SCP") as assoc:
        assert assoc.is_established
        assert [assoc.send_c_echo().Status for _ in range(3)] == [0, 0, 0]
    assert assoc.is_released and assoc.driver is not None and assoc.driver.sock is None


def test_wrong_called_ae_is_rejected(scp: tuple[AE, AssociationServer]) -> None:
    host, port = scp[1].address
    assoc = scu().associate(host, port, ae_title="NOBODY")
    assert assoc.is_rejected and assoc.rejection == (1, 1, 7)
    assert "rejected" in assoc.describe_failure()


def test_connection_refused_is_reported_as_aborted() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assoc = scu().associate("127.0.0.1", port, ae_title="SCP")
    assert assoc.is_aborted and "cannot connect" in assoc.describe_failure()


def test_an_embedding_program_sees_nothing_on_stderr_unless_it_configures_logging() -> None:
    """pynetdicom #321: a library reports through return values; printing is the app's call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    program = (
        "from dimsefsm import AE\n"
        "from dimsefsm.sop_class import VERIFICATION\n"
        "ae = AE('SCU'); ae.add_requested_context(VERIFICATION)\n"
        f"assoc = ae.associate('127.0.0.1', {port})\n"
        "print(assoc.is_aborted)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "True\n" and done.stderr == ""


def test_local_limit_exceeded(scp: tuple[AE, AssociationServer]) -> None:
    host, port = scp[1].address
    first = scu().associate(host, port, ae_title="SCP")
    second = scu().associate(host, port, ae_title="SCP")
    third = scu().associate(host, port, ae_title="SCP")
    assert first.is_established and second.is_established
    assert third.is_rejected and third.rejection == (2, 3, 2)
    first.release()
    second.release()


def test_silent_connection_is_closed_by_artim(scp: tuple[AE, AssociationServer]) -> None:
    """Sta2: no A-ASSOCIATE-RQ before ARTIM expires -> the server closes (AA-2)."""
    with socket.create_connection(scp[1].address) as sock:
        sock.settimeout(5)
        assert sock.recv(10) == b""


def test_garbage_before_association_gets_an_abort(scp: tuple[AE, AssociationServer]) -> None:
    """Sta2 + Evt19 -> AA-1: A-ABORT, then the server waits for us to close."""
    with socket.create_connection(scp[1].address) as sock:
        sock.settimeout(5)
        sock.sendall(b"\x09\x00\x00\x00\x00\x02\x00\x00")
        assert read_pdu(sock) == Abort(source=0, reason=0)


def test_dimse_timeout_aborts(scp: tuple[AE, AssociationServer]) -> None:
    release = threading.Event()
    ae = AE("SLOW")
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[(evt.EVT_C_ECHO, lambda event: 0 if release.wait(10) else 0x0110)],
    )
    try:
        assoc = scu(dimse_timeout=0.2).associate(*server.address, ae_title="SLOW")
        assert assoc.is_established
        status = assoc.send_c_echo()
        assert "Status" not in status and assoc.is_aborted
    finally:
        release.set()
        server.shutdown()


def test_shutdown_aborts_live_associations(scp: tuple[AE, AssociationServer]) -> None:
    ae = AE("SCP2")
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server(("127.0.0.1", 0), block=False)
    assoc = scu().associate(*server.address, ae_title="SCP2")
    assert assoc.is_established
    server.shutdown()
    status = assoc.send_c_echo()
    assert "Status" not in status and assoc.is_aborted
    assert (assoc.engine.abort_source, assoc.engine.abort_reason) == (0, 0)


def test_rejected_pdu_object_round_trip() -> None:
    assert AssociateRJ(1, 1, 7).encode() == b"\x03\x00\x00\x00\x00\x04\x00\x01\x01\x07"


def idle_server(response: str) -> tuple[AE, AssociationServer]:
    ae = AE("SCP")
    ae.add_supported_context(VERIFICATION)
    ae.network_timeout = 0.2
    ae.acse_timeout = 0.5
    ae.network_timeout_response = response
    return ae, ae.start_server(("127.0.0.1", 0), block=False)


def raw_association(address: tuple[str, int]) -> socket.socket:
    """A peer that negotiates and then goes quiet, reading PDUs by hand."""
    rq = build_request(RequestorProposal("SCU", "SCP", propose_contexts([(VERIFICATION, [IVRLE])])))
    sock = socket.create_connection(address, timeout=10)
    sock.sendall(encode_pdu(rq))
    assert isinstance(read_pdu(sock), AssociateAC)
    return sock


@pytest.mark.parametrize("answer", [True, False], ids=["answered", "unanswered"])
def test_idle_association_is_released_when_configured(answer: bool) -> None:
    """network_timeout_response="A-RELEASE": an A-RELEASE-RQ, then abort only if unanswered."""
    _, server = idle_server("A-RELEASE")
    try:
        with raw_association(server.address) as sock:
            assert isinstance(read_pdu(sock), ReleaseRQ)
            if answer:
                sock.sendall(encode_pdu(ReleaseRP()))
                assert read_pdu(sock) is None  # released: the server closes the connection
            else:
                assert isinstance(read_pdu(sock), Abort)
    finally:
        server.shutdown()
    assert assoc_threads() == []


def test_idle_association_is_aborted_by_default() -> None:
    _, server = idle_server("A-ABORT")
    try:
        with raw_association(server.address) as sock:
            assert isinstance(read_pdu(sock), Abort)
    finally:
        server.shutdown()
    assert AE().network_timeout_response == "A-ABORT"


def test_unknown_network_timeout_response_is_refused() -> None:
    ae = AE("SCP")
    ae.add_supported_context(VERIFICATION)
    ae.network_timeout_response = "A-SHRUG"
    with pytest.raises(ValueError, match="A-ABORT' or 'A-RELEASE"):
        ae.start_server(("127.0.0.1", 0), block=False)
