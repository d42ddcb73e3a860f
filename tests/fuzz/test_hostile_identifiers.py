"""Hostile C-FIND identifiers over real sockets: oversize, deflate bombs, over-long keys.

A raw client built from the codec sends what no real SCU would (issue 11.12):
a 10 MB wildcard value, a deflated identifier that inflates to 256 MiB, a key
longer than its VR allows.  The library SCP must answer each with its refusal
status and an ErrorComment, keep at most its bound of the bytes, never call the
handler, and serve the next query on the same association.
"""

from __future__ import annotations

import socket
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom import Dataset

from dimsefsm import AE, evt
from dimsefsm.assoc.negotiation import (
    Negotiated,
    RequestorProposal,
    build_request,
    propose_contexts,
    read_acceptance,
)
from dimsefsm.datasets import encode_dataset
from dimsefsm.dimse.commands import encode_command, find_rq
from dimsefsm.dimse.fragment import encode_message
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import Reassembler
from dimsefsm.engine import AssociationEngine
from dimsefsm.pdu.codec import PduFramer
from dimsefsm.pdu.model import AssociateAC, PDataTF, ReleaseRP, ReleaseRQ
from dimsefsm.qr.registry import STUDY_ROOT_FIND
from dimsefsm.sop_class import DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN as DEFLATED
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN as EVRLE

PLAIN_CONTEXT, DEFLATED_CONTEXT = 1, 3
OUT_OF_RESOURCES = 0xA700
IDENTIFIER_DOES_NOT_MATCH = 0xA900


class Server:
    """A library C-FIND SCP that records every identifier its handler is given."""

    def __init__(self) -> None:
        self.queries: list[Dataset] = []
        self.ae = AE("SCP")
        self.ae.add_supported_context(STUDY_ROOT_FIND, [EVRLE, DEFLATED])
        server = self.ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_FIND, self.on_find)]
        )
        self.address = server.address

    def on_find(self, event: Any) -> Iterator[Any]:
        self.queries.append(event.identifier)
        match = Dataset()
        match.PatientName = "Doe^Jane"
        yield 0xFF00, match


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.ae.shutdown()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes each server association's reassembler holds after every P-DATA-TF PDU."""
    seen: list[int] = []
    on_pdata = AssociationEngine._on_pdata

    def watched(engine: AssociationEngine, primitive: Any) -> None:
        on_pdata(engine, primitive)
        seen.append(engine.reassembler.buffered)

    monkeypatch.setattr(AssociationEngine, "_on_pdata", watched)
    return seen


class RawClient:
    """An association whose messages are written by hand, identifier bytes and all."""

    MAX_PDU = 16384

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address)
        self.sock.settimeout(30)  # a hang fails the test instead of stalling the suite
        self.framer = PduFramer()
        self.reassembler = Reassembler()
        contexts = propose_contexts([(STUDY_ROOT_FIND, [EVRLE]), (STUDY_ROOT_FIND, [DEFLATED])])
        rq = build_request(RequestorProposal("HOSTILE", "SCP", contexts, max_pdu=self.MAX_PDU))
        self.sock.sendall(rq.encode())
        ac = self.next_pdu()
        assert isinstance(ac, AssociateAC), ac
        self.negotiated: Negotiated = read_acceptance(rq, ac)
        assert set(self.negotiated.contexts) == {PLAIN_CONTEXT, DEFLATED_CONTEXT}
        self.message_id = 0

    def next_pdu(self) -> Any:
        while (pdu := self.framer.next_pdu()) is None:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the SCP closed the connection")
            self.framer.feed(data)
        return pdu

    def find(self, context_id: int, identifier: bytes) -> list[Message]:
        """Send one C-FIND-RQ; every response up to the final one."""
        self.message_id += 1
        command = encode_command(find_rq(self.message_id, STUDY_ROOT_FIND))
        for pdu in encode_message(context_id, command, identifier, self.negotiated.peer_max_pdu):
            self.sock.sendall(pdu)
        responses: list[Message] = []
        while not responses or responses[-1].command["Status"] in (0xFF00, 0xFF01):
            pdu = self.next_pdu()
            assert isinstance(pdu, PDataTF), pdu
            responses += self.reassembler.feed(pdu.pdvs)
        return responses

    def release(self) -> None:
        self.sock.sendall(ReleaseRQ().encode())
        assert isinstance(self.next_pdu(), ReleaseRP)
        self.sock.close()


def query(**keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def with_long_value(head: Dataset, tag: int, vr: bytes, size: int, fill: bytes) -> bytes:
    """``head`` in Explicit VR LE followed by one long-VR element of ``size`` bytes of ``fill``."""
    header = struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr, 0, size)
    return encode_dataset(head, EVRLE) + header + fill * size


def assert_next_query_is_served(client: RawClient, server: Server) -> None:
    before = len(server.queries)
    responses = client.find(PLAIN_CONTEXT, encode_dataset(query(PatientName="Doe*"), EVRLE))
    assert [r.command["Status"] for r in responses] == [0xFF00, 0x0000]
    assert len(server.queries) == before + 1


def test_ten_megabyte_wildcard_is_refused_without_being_kept(
    server: Server, held: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """10 MB of ``*`` in a UC key (32-bit length): 0xA700 with an ErrorComment; the SCP
    held at most its 1 MiB bound at any time, logged one line and called no handler."""
    limit = server.ae.maximum_identifier_size
    identifier = with_long_value(query(), 0x00400031, b"UC", 10_000_000, b"*")
    client = RawClient(server.address)
    before = len(server.queries)
    with caplog.at_level("WARNING", logger="dimsefsm.find"):
        (response,) = client.find(PLAIN_CONTEXT, identifier)
    assert response.command["Status"] == OUT_OF_RESOURCES
    assert (
        response.command["ErrorComment"] == f"identifier of {len(identifier)} bytes exceeds {limit}"
    )
    assert len(server.queries) == before
    assert held and max(held) <= limit
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and str(len(identifier)) in refusals[0].getMessage()
    assert_next_query_is_served(client, server)
    client.release()


def test_deflate_bomb_is_refused_after_the_bound(server: Server) -> None:
    """256 MiB of spaces deflated to ~260 KB (under the raw bound): inflation stops at the
    bound, 0xA700; every allocation of the exchange together stays under 32 MiB."""
    inflated = 256 << 20
    head = encode_dataset(query(), EVRLE)
    header = struct.pack("<HH2sHL", 0x0040, 0xA160, b"UT", 0, inflated)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    pieces = [deflater.compress(head + header)]
    spaces = b" " * (1 << 20)
    pieces += [deflater.compress(spaces) for _ in range(inflated >> 20)]
    bomb = b"".join([*pieces, deflater.flush()])
    bomb += b"\x00" * (len(bomb) % 2)
    assert len(bomb) < server.ae.maximum_identifier_size
    client = RawClient(server.address)
    before = len(server.queries)
    tracemalloc.start()
    try:
        (response,) = client.find(DEFLATED_CONTEXT, bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.command["Status"] == OUT_OF_RESOURCES
    assert "inflated" in response.command["ErrorComment"]
    assert len(server.queries) == before
    assert peak < 32 << 20, peak
    assert_next_query_is_served(client, server)
    client.release()


def test_key_longer_than_its_vr_is_a900_naming_it(server: Server) -> None:
    """A 65-character Patient ID (LO allows 64) matches nothing: 0xA900 names (0010,0020)."""
    client = RawClient(server.address)
    before = len(server.queries)
    level, study = Dataset(), Dataset()
    level.QueryRetrieveLevel = "STUDY"
    study.StudyInstanceUID = ""
    patient_id = struct.pack("<HH2sH", 0x0010, 0x0020, b"LO", 66) + b"1" * 65 + b" "
    identifier = encode_dataset(level, EVRLE) + patient_id + encode_dataset(study, EVRLE)
    (response,) = client.find(PLAIN_CONTEXT, identifier)
    assert response.command["Status"] == IDENTIFIER_DOES_NOT_MATCH
    assert response.command["OffendingElement"] == (0x00100020,)
    assert response.command["ErrorComment"] == "PatientID: 65 characters, LO allows 64"
    assert len(server.queries) == before
    assert_next_query_is_served(client, server)
    client.release()
