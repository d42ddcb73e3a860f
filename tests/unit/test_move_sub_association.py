"""The transport's side of C-MOVE: the sub-association effects carried out over real sockets
on 127.0.0.1 (the chart itself is tested in memory in test_move.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from pydicom import Dataset

from dimsefsm import AE, evt
from dimsefsm.sop_class import CT_IMAGE_STORAGE

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


def instance(n: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = f"1.2.3.5.{n}"
    ds.PatientName = "Doe^Jane"
    return ds


def identifier() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = "1.2.3"
    return ds


def handler_for(port: int, *items: Any) -> Callable[[Any], Iterator[Any]]:
    def handler(event: Any) -> Iterator[Any]:
        yield "127.0.0.1", port
        yield len(items)
        yield from items

    return handler


def move(
    handler: Callable[[Any], Iterator[Any]], destination: str = "DEST"
) -> list[tuple[int, ...]]:
    """Run one C-MOVE against a real SCP; (status, completed, failed) per response."""
    scp = AE("SCP")
    scp.add_supported_context(STUDY_ROOT_MOVE)
    server = scp.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_MOVE, handler)]
    )
    try:
        scu = AE("ORIGIN")
        scu.add_requested_context(STUDY_ROOT_MOVE)
        assoc = scu.associate(*server.address, ae_title="SCP")
        out: list[tuple[int, ...]] = [
            (
                int(s.Status),
                int(s.get("NumberOfCompletedSuboperations", -1)),
                int(s.get("NumberOfFailedSuboperations", -1)),
            )
            for s, _ in assoc.send_c_move(identifier(), destination, STUDY_ROOT_MOVE)
        ]
        assoc.release()
    finally:
        server.shutdown()
    return out


class Destination:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.answer: Callable[[str], int] = lambda uid: 0
        ae = AE("DEST")
        ae.add_supported_context(CT_IMAGE_STORAGE)
        ae.require_called_aet = True
        self.server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self.on_store)]
        )
        self.port = self.server.address[1]

    def on_store(self, event: Any) -> int:
        uid = str(event.dataset.SOPInstanceUID)
        self.received.append(uid)
        return self.answer(uid)


def test_pending_response_travels_while_the_next_sub_operation_is_stored() -> None:
    """The Pending response of sub-operation 1 is held only until the C-STORE of
    sub-operation 2 is sent, never until that C-STORE is answered: the destination answers
    instance 2 only once the originator has seen Pending #1."""
    dest = Destination()
    first_pending = threading.Event()
    dest.answer = lambda uid: 0 if uid != "1.2.3.5.2" or first_pending.wait(10) else 0xA700
    scp = AE("SCP")
    scp.add_supported_context(STUDY_ROOT_MOVE)
    items = [(0xFF00, instance(n)) for n in (1, 2, 3)]
    server = scp.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[(evt.EVT_C_MOVE, handler_for(dest.port, *items))],
    )
    try:
        scu = AE("ORIGIN")
        scu.add_requested_context(STUDY_ROOT_MOVE)
        assoc = scu.associate(*server.address, ae_title="SCP")
        statuses = []
        for status, _ in assoc.send_c_move(identifier(), "DEST", STUDY_ROOT_MOVE):
            statuses.append(status.Status)
            if status.Status == 0xFF00:
                first_pending.set()
        assoc.release()
    finally:
        server.shutdown()
        dest.server.shutdown()
    assert statuses == [0xFF00, 0xFF00, 0xFF00, 0x0000]
    assert dest.received == ["1.2.3.5.1", "1.2.3.5.2", "1.2.3.5.3"]


def test_destination_refusing_the_association_fails_every_sub_operation() -> None:
    dest = Destination()
    try:
        out = move(handler_for(dest.port, (0xFF00, instance(1))), destination="NOTDEST")
    finally:
        dest.server.shutdown()
    assert out == [(0xA702, 0, 1)] and dest.received == []


def test_unreachable_destination_fails_every_sub_operation() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert move(handler_for(port, (0xFF00, instance(1)), (0xFF00, instance(2)))) == [(0xA702, 0, 2)]


def test_destination_storing_with_failures_and_warnings() -> None:
    dest = Destination()
    dest.answer = lambda uid: {"1.2.3.5.1": 0xB000, "1.2.3.5.2": 0xA700}.get(uid, 0)
    try:
        out = move(handler_for(dest.port, *((0xFF00, instance(n)) for n in (1, 2, 3))))
    finally:
        dest.server.shutdown()
    assert out[-1] == (0xB000, 1, 1)
