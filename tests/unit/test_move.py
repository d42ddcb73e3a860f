"""C-MOVE: the request over two in-memory engines, the sub-association to a real
destination on 127.0.0.1.  Every transition of c-move-scp and c-move-scu."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset, config
from pydicom.dataelem import DataElement

from dimsefsm import AE, evt
from dimsefsm.assoc.negotiation import AcceptorPolicy, RequestorProposal, propose_contexts
from dimsefsm.datasets import encode_dataset
from dimsefsm.dimse.commands import cancel_rq, move_rq
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.fsm import RECORDER
from dimsefsm.services.dispatch import RequestDispatcher
from dimsefsm.services.move import SCP_CHART, SCU_CHART, MoveScu
from dimsefsm.sop_class import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN as EVRLE
from tests.data.make import make_instance, write_instance
from tests.pair import EnginePair

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


class Destination:
    """A storage SCP that records what arrives and answers what the test says."""

    def __init__(self) -> None:
        self.received: list[tuple[str, tuple[Any, Any]]] = []
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
        self.received.append((uid, event.move_originator))
        return self.answer(uid)


@pytest.fixture(scope="module")
def dest() -> Iterator[Destination]:
    d = Destination()
    yield d
    d.server.shutdown()


@pytest.fixture(autouse=True)
def _reset(dest: Destination) -> None:
    dest.received.clear()
    dest.answer = lambda uid: 0


def instance(n: int, sop_class: str = CT_IMAGE_STORAGE) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = f"1.2.3.5.{n}"
    ds.PatientName = "Doe^Jane"
    return ds


def make_pair(handler: Callable[[Any], Iterator[Any]] | None) -> EnginePair:
    proposal = RequestorProposal("ORIGIN", "SCP", propose_contexts([(STUDY_ROOT_MOVE, [EVRLE])]))
    policy = AcceptorPolicy("SCP", {STUDY_ROOT_MOVE: (EVRLE,)})
    dispatch = RequestDispatcher({evt.EVT_C_MOVE: handler} if handler else {})
    pair = EnginePair(
        AssociationEngine(requestor=True, proposal=proposal),
        AssociationEngine(requestor=False, policy=policy, on_request=dispatch),
    )
    pair.connect()
    return pair


def identifier(study: str | None = "1.2.3") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    if study:
        ds.StudyInstanceUID = study
    return ds


def start(
    pair: EnginePair,
    ident: Dataset | bytes | None = None,
    *,
    run: bool = True,
    destination: str | None = "DEST",
    **overrides: Any,
) -> MoveScu:
    engine = pair.requestor
    assert engine.negotiated is not None
    message_id = engine.next_message_id()
    op = MoveScu(message_id, engine.negotiated.contexts[1])
    engine.start_operation(message_id, op)
    op.sent()
    command = move_rq(message_id, STUDY_ROOT_MOVE, destination or "X")
    if destination is None:
        del command["MoveDestination"]
    for key, value in overrides.items():
        if value is None:
            command.pop(key, None)
        else:
            command[key] = value
    ident = identifier() if ident is None else ident
    data = ident if isinstance(ident, bytes) else encode_dataset(ident, EVRLE)
    engine.send_message(Message(1, command, data))
    if run:
        pair.run()
    return op


def handler_for(
    port: int, *items: Any, count: int | None = None, destination: Any = None
) -> Callable[[Any], Iterator[Any]]:
    def handler(event: Any) -> Iterator[Any]:
        assert event.move_destination in ("DEST", "NOTDEST")
        yield destination if destination is not None else ("127.0.0.1", port)
        yield len(items) if count is None else count
        yield from items

    return handler


def responses(op: MoveScu) -> list[tuple[int, ...]]:
    return [
        (
            s.Status,
            *(
                int(s.get(k, -1))
                for k in (
                    "NumberOfRemainingSuboperations",
                    "NumberOfCompletedSuboperations",
                    "NumberOfFailedSuboperations",
                    "NumberOfWarningSuboperations",
                )
            ),
        )
        for s, _ in op.results
    ]


def recording(calls: list[Any]) -> Callable[[Any], Iterator[Any]]:
    """A handler that notes each call and yields nothing (the tests expect no call)."""

    def handler(event: Any) -> Iterator[Any]:
        calls.append(event)
        yield from ()

    return handler


def test_moves_with_move_originator_fields(dest: Destination, tmp_path: Path) -> None:
    """The destination sees the C-MOVE requestor's AE title and Message ID on every C-STORE."""
    path = write_instance(tmp_path / "f.dcm", make_instance(sop_instance_uid="1.2.3.5.99"))
    op = start(make_pair(handler_for(dest.port, (0xFF00, instance(1)), (0xFF00, path))))
    assert responses(op) == [(0xFF00, 1, 1, 0, 0), (0xFF00, 0, 2, 0, 0), (0x0000, -1, 2, 0, 0)]
    assert dest.received == [
        ("1.2.3.5.1", ("ORIGIN", op.message_id)),
        ("1.2.3.5.99", ("ORIGIN", op.message_id)),
    ]


def test_destination_failures_and_warnings(dest: Destination) -> None:
    """All failed -> 0xA702; some -> 0xB000 with the failed list (PS3.4 C.4.2.3.1)."""
    dest.answer = lambda uid: 0xA700
    op = start(make_pair(handler_for(dest.port, (0xFF00, instance(1)))))
    assert responses(op)[-1] == (0xA702, -1, 0, 1, 0)
    dest.answer = lambda uid: 0xB000 if uid.endswith("1") else 0
    op = start(make_pair(handler_for(dest.port, (0xFF00, instance(1)), (0xFF00, instance(2)))))
    assert responses(op)[-1] == (0xB000, -1, 1, 0, 1)


def test_no_context_and_not_a_dataset(dest: Destination) -> None:
    op = start(
        make_pair(
            handler_for(
                dest.port,
                (0xFF00, instance(1, MR_IMAGE_STORAGE)),
                (0xFF00, 42),
                (0xFF00, instance(3)),
            )
        )
    )
    assert responses(op)[-1] == (0xB000, -1, 1, 2, 0)
    failed = op.results[-1][1]
    assert failed is not None and "1.2.3.5.1" in str(failed.FailedSOPInstanceUIDList)


def test_unsendable_instances_fail_alone_and_the_move_goes_on(
    dest: Destination, tmp_path: Path
) -> None:
    """Issue 11.8: an instance no C-STORE can carry is a failed sub-operation, listed and
    logged; the sub-association stays up for the next one (a Dataset without a SOP Class
    UID used to end the whole association)."""
    long_uid = "1.2." + "9" * 70
    over_long = instance(2)
    over_long.add(DataElement(0x00080018, "UI", long_uid, validation_mode=config.IGNORE))
    no_class = instance(4)
    del no_class.SOPClassUID
    items = [instance(1), over_long, tmp_path / "gone.dcm", no_class, instance(5)]
    before = RECORDER.count("c-move-scp", "unsendable")
    op = start(make_pair(handler_for(dest.port, *((0xFF00, item) for item in items))))
    assert responses(op) == [
        (0xFF00, 4, 1, 0, 0),
        (0xFF00, 3, 1, 1, 0),
        (0xFF00, 2, 1, 2, 0),
        (0xFF00, 1, 1, 3, 0),
        (0xFF00, 0, 2, 3, 0),
        (0xB000, -1, 2, 3, 0),
    ]
    assert [uid for uid, _ in dest.received] == ["1.2.3.5.1", "1.2.3.5.5"]
    failed = op.results[-1][1]
    assert failed is not None
    assert list(failed.FailedSOPInstanceUIDList) == [long_uid, "1.2.3.5.4"]
    assert RECORDER.count("c-move-scp", "unsendable") == before + 3


def test_nothing_sendable_opens_no_sub_association_and_fails_all(
    dest: Destination, tmp_path: Path
) -> None:
    """No instance read ahead names a SOP class: no sub-association, each one fails (0xA702)."""
    items = [(0xFF00, tmp_path / "gone.dcm"), (0xFF00, 42)]
    op = start(make_pair(handler_for(dest.port, *items)))
    assert responses(op) == [(0xFF00, 1, 0, 1, 0), (0xFF00, 0, 0, 2, 0), (0xA702, -1, 0, 2, 0)]
    assert dest.received == [] and op.results[-1][1] is None


def test_extra_yields_are_ignored(dest: Destination) -> None:
    op = start(
        make_pair(handler_for(dest.port, (0xFF00, instance(1)), (0xFF00, instance(2)), count=1))
    )
    assert responses(op)[-1] == (0x0000, -1, 1, 0, 0)


@pytest.mark.parametrize(
    ("destination", "status"),
    [((None, None), 0xA801), (("127.0.0.1", "port"), 0xC515), ("nonsense", 0xC515)],
)
def test_destination_problems(dest: Destination, destination: Any, status: int) -> None:
    op = start(make_pair(handler_for(dest.port, destination=destination)))
    assert [r[0] for r in responses(op)] == [status]


def test_handler_without_destination_or_count_is_c514() -> None:
    def nothing(event: Any) -> Iterator[Any]:
        yield from ()

    def only_destination(event: Any) -> Iterator[Any]:
        yield "127.0.0.1", 1

    assert [r[0] for r in responses(start(make_pair(nothing)))] == [0xC514]
    assert [r[0] for r in responses(start(make_pair(only_destination)))] == [0xC514]


def test_bad_count_is_c513(dest: Destination) -> None:
    op = start(make_pair(handler_for(dest.port, count=-3)))
    assert [r[0] for r in responses(op)] == [0xC513]


def test_unreachable_destination_fails_every_sub_operation() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    op = start(make_pair(handler_for(port, (0xFF00, instance(1)), (0xFF00, instance(2)))))
    assert responses(op) == [(0xA702, -1, 0, 2, 0)]


def test_destination_refusing_the_association(dest: Destination) -> None:
    op = start(make_pair(handler_for(dest.port, (0xFF00, instance(1)))), destination="NOTDEST")
    assert responses(op) == [(0xA702, -1, 0, 1, 0)]


def test_handler_raising_in_each_phase_is_c511(dest: Destination) -> None:
    def on_call(event: Any) -> Iterator[Any]:
        raise RuntimeError("boom")

    def before_destination(event: Any) -> Iterator[Any]:
        raise RuntimeError("boom")
        yield  # pragma: no cover

    def before_count(event: Any) -> Iterator[Any]:
        yield "127.0.0.1", dest.port
        raise RuntimeError("boom")

    def mid(event: Any) -> Iterator[Any]:
        yield "127.0.0.1", dest.port
        yield 2
        yield 0xFF00, instance(1)
        raise RuntimeError("between yields")

    for handler in (on_call, before_destination, before_count):
        assert [r[0] for r in responses(start(make_pair(handler)))] == [0xC511]
    op = start(make_pair(mid))
    assert responses(op) == [(0xFF00, 1, 1, 0, 0), (0xC511, -1, 1, 0, 0)]


@pytest.mark.parametrize(
    ("status", "final"),
    [
        (0x0000, 0x0000),
        (0xFE00, 0xFE00),
        (0xA801, 0xA801),
        (0xB000, 0xB000),
        (0xD000, 0xD000),
        (Dataset(), 0xC001),
        ("x", 0xC002),
    ],
)
def test_handler_final_statuses(dest: Destination, status: Any, final: int) -> None:
    op = start(make_pair(handler_for(dest.port, (0xFF00, instance(1)), (status, None), count=3)))
    assert responses(op)[-1][0] == final and responses(op)[-1][2:] == (1, 0, 0)


def test_not_a_pair_is_c002(dest: Destination) -> None:
    op = start(make_pair(handler_for(dest.port, "not a pair", count=1)))
    assert responses(op)[-1][0] == 0xC002


def test_cancel_between_sub_operations_releases_the_sub_association(dest: Destination) -> None:
    pair = make_pair(handler_for(dest.port, *((0xFF00, instance(n)) for n in range(6))))
    op = start(pair, run=False)
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    for _ in range(4):  # destination, count, two sub-operations
        pair.step()
    op.cancel_sent()
    pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
    pair.run()
    assert responses(op)[-1] == (0xFE00, 4, 2, 0, 0) and op.state == "Cancelled"
    assert len(dest.received) == 2


def test_originator_abort_closes_the_handler_and_the_sub_association(dest: Destination) -> None:
    closed: list[bool] = []

    def handler(event: Any) -> Iterator[Any]:
        try:
            yield "127.0.0.1", dest.port
            yield 3
            for n in range(3):
                yield 0xFF00, instance(n)
        finally:
            closed.append(True)

    pair = make_pair(handler)
    op = start(pair, run=False)
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    for _ in range(3):
        pair.step()
    pair.requestor.abort()
    pair.run()
    assert closed == [True] and op.state == "Aborted" and pair.acceptor.scp_operations == {}


def test_pending_response_travels_while_the_next_sub_operation_is_stored(
    dest: Destination,
) -> None:
    """Over sockets: the Pending response of sub-operation 1 is held only until the
    C-STORE of sub-operation 2 is sent, never until that C-STORE is answered.

    The destination answers instance 2 only once the originator has seen Pending #1;
    if the response waited behind sub-operation 2, the wait would run out and the
    instance would fail.
    """
    first_pending = threading.Event()
    dest.answer = lambda uid: 0 if uid != "1.2.3.5.2" or first_pending.wait(10) else 0xA700
    items = [(0xFF00, instance(n)) for n in (1, 2, 3)]
    scp = AE("SCP")
    scp.add_supported_context(STUDY_ROOT_MOVE)
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
    assert statuses == [0xFF00, 0xFF00, 0xFF00, 0x0000]
    assert [uid for uid, _ in dest.received] == ["1.2.3.5.1", "1.2.3.5.2", "1.2.3.5.3"]


def test_decoding_failures(dest: Destination) -> None:
    h = handler_for(dest.port)
    assert [r[0] for r in responses(start(make_pair(h), b"\x10\x00\x10\x00PN\xff\x00"))] == [0xC510]
    assert [r[0] for r in responses(start(make_pair(h), destination=None))] == [0x0212]
    assert [r[0] for r in responses(start(make_pair(None)))] == [0x0122]
    assert [r[0] for r in responses(start(make_pair(h), identifier(study=None)))] == [0xA900]


def test_identifier_over_the_bound_is_a701(dest: Destination) -> None:
    """Issue 11.12: C-MOVE refuses an oversize identifier like C-GET (0xA701), no handler."""
    called: list[Any] = []
    ident = identifier()
    ident.add_new(0x0040A160, "UT", "*" * (2 << 20))
    op = start(make_pair(recording(called)), ident)
    assert responses(op) == [(0xA701, -1, -1, -1, -1)] and called == []


def test_zero_sub_operations(dest: Destination) -> None:
    assert responses(start(make_pair(handler_for(dest.port)))) == [(0x0000, -1, 0, 0, 0)]


@pytest.mark.parametrize(
    ("status", "trigger", "state"),
    [
        (0xFF00, "pending", "Cancelling"),
        (0x0000, "success", "Succeeded"),
        (0xFE00, "cancelled", "Cancelled"),
        (0xA801, "failure", "Failed"),
        (0xB000, "warning", "Warned"),
        (0xD000, "unknown_status", "Failed"),
    ],
)
def test_scu_while_cancelling(status: int, trigger: str, state: str) -> None:
    pair = make_pair(None)
    assert pair.requestor.negotiated is not None
    op = MoveScu(5, pair.requestor.negotiated.contexts[1])
    op.sent()
    op.cancel_sent()
    op.on_response(
        Message(
            1,
            {
                "CommandField": 0x8021,
                "MessageIDBeingRespondedTo": 5,
                "Status": status,
                "CommandDataSetType": 0x0101,
            },
        )
    )
    assert op.state == state


@pytest.mark.parametrize("source", ["Retrieving", "Cancelling"])
def test_scu_abort_and_timeout(source: str) -> None:
    pair = make_pair(None)
    assert pair.requestor.negotiated is not None
    for end, state in (("on_abort", "Aborted"), ("on_timeout", "TimedOut")):
        op = MoveScu(1, pair.requestor.negotiated.contexts[1])
        op.sent()
        if source == "Cancelling":
            op.cancel_sent()
        getattr(op, end)()
        assert op.state == state


def test_scu_unknown_status_while_retrieving(dest: Destination) -> None:
    op = start(make_pair(handler_for(dest.port, (0xD123, None), count=1)))
    assert op.state == "Failed"


def test_both_charts_fully_covered() -> None:
    for chart in (SCP_CHART, SCU_CHART):
        missing = set(chart.declared_edges()) - RECORDER.fired(chart.name)
        assert missing == set(), f"{chart.name} missing {sorted(missing)}"
