"""C-MOVE: the request over two in-memory engines, the sub-association answered in
memory too (its effects performed by :class:`Destination`): no socket anywhere.
Every transition of c-move-scp and c-move-scu."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset, config
from pydicom.dataelem import DataElement

from dimsefsm import evt
from dimsefsm.assoc.negotiation import (
    AcceptedContext,
    AcceptorPolicy,
    RequestorProposal,
    propose_contexts,
)
from dimsefsm.datasets import encode_dataset
from dimsefsm.dimse.commands import cancel_rq, move_rq
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.fsm import RECORDER
from dimsefsm.instances import FileInstances
from dimsefsm.services.dispatch import RequestDispatcher
from dimsefsm.services.move import (
    SCP_CHART,
    SCU_CHART,
    CloseSubAssociation,
    MoveScp,
    MoveScu,
    OpenSubAssociation,
    SendSubStore,
)
from dimsefsm.sop_class import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN as EVRLE
from tests.data.make import make_instance, write_instance
from tests.pair import EnginePair
from tests.scenarios import run_module_scenarios

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"


class Destination:
    """The C-MOVE destination in memory: performs the sub-association effects as the test says.

    ``mode``: "accept" (the SOP classes in ``classes``), "reject" (A-ASSOCIATE-RJ) or
    "unreachable"; ``answer`` gives the C-STORE status per SOP Instance UID; with
    ``hold`` the C-STOREs wait in ``waiting`` until the test answers them.
    """

    def __init__(self) -> None:
        self.received: list[tuple[str, tuple[Any, Any]]] = []
        self.answer: Callable[[str], int] = lambda uid: 0
        self.mode = "accept"
        self.classes = {CT_IMAGE_STORAGE}
        self.port = 11112
        self.opened: list[OpenSubAssociation] = []
        self.closed: list[bool] = []
        self.hold = False
        self.waiting: list[SendSubStore] = []
        self.lose_at: str | None = None  # the connection drops under this instance's C-STORE

    def perform(self, effect: Any) -> None:
        if effect.op.done and not isinstance(effect, CloseSubAssociation):
            return  # the operation ended before its effect ran: its outcome has nobody to go to
        if isinstance(effect, OpenSubAssociation):
            self.opened.append(effect)
            if self.mode == "reject" or effect.called_ae != "DEST":
                effect.op.sub_assoc_rejected("association rejected (result 1, source 1, reason 7)")
            elif self.mode == "unreachable":
                effect.op.sub_assoc_aborted("cannot connect: connection refused")
            else:
                accepted = [
                    AcceptedContext(2 * n + 1, sop_class, syntaxes[0], True, False)
                    for n, (sop_class, syntaxes) in enumerate(effect.contexts)
                    if sop_class in self.classes
                ]
                effect.op.sub_assoc_accepted(accepted)
        elif isinstance(effect, SendSubStore):
            if self.hold:
                self.waiting.append(effect)
            else:
                self.store(effect)
        elif isinstance(effect, CloseSubAssociation):
            self.closed.append(effect.release)

    def store(self, effect: SendSubStore) -> None:
        identity = FileInstances().identity(effect.item)
        uid = identity.sop_instance_uid
        if uid is None or identity.sop_class_uid is None:
            effect.op.store_not_sent(f"{effect.item} cannot be read")
            return
        if identity.sop_class_uid not in self.classes:
            effect.op.store_not_sent("no accepted presentation context for its SOP class")
            return
        if len(uid) > 64:
            effect.op.store_not_sent(f"UI value longer than 64 characters: {uid!r}")
            return
        if uid == self.lose_at:
            effect.op.sub_assoc_aborted("connection reset by peer")
            return
        effect.op.store_sent()
        self.received.append((uid, (effect.originator_aet, effect.originator_id)))
        effect.op.store_response(self.answer(uid))


@pytest.fixture
def dest() -> Destination:
    return Destination()


DESTINATION = Destination()  # the one make_pair wires in; reset for every test


@pytest.fixture(autouse=True)
def _reset(dest: Destination) -> None:
    global DESTINATION
    DESTINATION = dest


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
        perform=DESTINATION.perform,
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


def test_unreachable_destination_fails_every_sub_operation(dest: Destination) -> None:
    dest.mode = "unreachable"
    op = start(make_pair(handler_for(dest.port, (0xFF00, instance(1)), (0xFF00, instance(2)))))
    assert responses(op) == [(0xA702, -1, 0, 2, 0)]
    assert RECORDER.count("c-move-scp", "destination_unreachable") >= 1


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
    for _ in range(4):  # destination, count (the sub-association), two sub-operations
        pair.step()
        pair._deliver(pair.acceptor, pair.requestor, "ac->rq")  # the effects run
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


def test_pending_response_is_held_until_the_next_c_store_is_out(dest: Destination) -> None:
    """The Pending response of sub-operation 1 goes out when the C-STORE of sub-operation 2
    is on the wire (``store_sent``), not before and not after its response."""
    dest.hold = True
    pair = make_pair(handler_for(dest.port, *((0xFF00, instance(n)) for n in (1, 2))))
    op = start(pair)
    assert len(dest.waiting) == 1 and responses(op) == []
    first = dest.waiting.pop()
    first.op.store_sent()
    first.op.store_response(0x0000)  # sub-operation 1 done: its Pending is held
    pair.run()
    assert responses(op) == []
    second = dest.waiting.pop()
    second.op.store_sent()  # the C-STORE of sub-operation 2 is out: Pending 1 goes
    pair.run()
    assert responses(op) == [(0xFF00, 1, 1, 0, 0)]
    second.op.store_response(0x0000)
    pair.run()
    assert responses(op) == [(0xFF00, 1, 1, 0, 0), (0xFF00, 0, 2, 0, 0), (0x0000, -1, 2, 0, 0)]
    assert dest.closed == [True]


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


# -- inputs the chart names: the count, the association's end, cancels while storing ------------
def test_count_over_65535_is_c516_not_an_abort(dest: Destination) -> None:
    """A count the US counts cannot carry is answered 0xC516; the association stays up."""
    pair = make_pair(handler_for(dest.port, (0xFF00, instance(1)), count=70000))
    op = start(pair)
    assert [r[0] for r in responses(op)] == [0xC516]
    assert pair.acceptor.is_established and dest.opened == []


def test_a701_instead_of_a_count_is_named(dest: Destination) -> None:
    def uncountable(event: Any) -> Iterator[Any]:
        yield "127.0.0.1", dest.port
        yield 0xA701, None

    def refused(event: Any) -> Iterator[Any]:
        yield "127.0.0.1", dest.port
        yield 0xA700, None

    assert [r[0] for r in responses(start(make_pair(uncountable)))] == [0xA701]
    assert [r[0] for r in responses(start(make_pair(refused)))] == [0xC513]


def test_destination_lost_under_a_c_store_fails_it_and_every_later_one(dest: Destination) -> None:
    dest.lose_at = "1.2.3.5.1"
    items = [(0xFF00, instance(n)) for n in (1, 2)]
    op = start(make_pair(handler_for(dest.port, *items)))
    assert responses(op) == [(0xFF00, 1, 0, 1, 0), (0xFF00, 0, 0, 2, 0), (0xA702, -1, 0, 2, 0)]
    assert list(op.results[-1][1].FailedSOPInstanceUIDList) == ["1.2.3.5.1", "1.2.3.5.2"]  # type: ignore[union-attr]
    assert dest.closed == []  # nothing left to release


def _running(dest: Destination, state: str) -> tuple[EnginePair, MoveScu, MoveScp]:
    """A C-MOVE of two instances driven until its SCP is in ``state`` (C-STOREs held)."""
    dest.hold = True
    pair = make_pair(handler_for(dest.port, *((0xFF00, instance(n)) for n in (1, 2))))
    op = start(pair, run=False)
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    scp = next(iter(pair.acceptor.scp_operations.values()))
    assert isinstance(scp, MoveScp)
    for _ in range(10):  # destination, count (the sub-association), the first C-STORE
        if scp.state == state:
            break
        pair.step()
        pair._deliver(pair.acceptor, pair.requestor, "ac->rq")
    assert scp.state == state
    return pair, op, scp


@pytest.mark.parametrize(
    "state", ["ResolvingDestination", "AwaitingCount", "SubOps", "Storing", "Cancelling"]
)
def test_association_ending_in_each_state_aborts_the_sub_association(
    dest: Destination, state: str
) -> None:
    if state == "Cancelling":
        pair, op, scp = _running(dest, "Storing")
        pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
        pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    else:
        pair, op, scp = _running(dest, state)
    assert scp.state == state
    pair.close_transport()
    assert scp.state == "Aborted" and pair.acceptor.scp_operations == {}
    assert dest.closed == ([False] if state in ("SubOps", "Storing", "Cancelling") else [])


@pytest.mark.parametrize(
    ("outcome", "transition", "counts"),
    [
        (0x0000, "cancelled_after_completed", (1, 1, 0, 0)),
        (0xB007, "cancelled_after_warning", (1, 0, 0, 1)),
        (0xA700, "cancelled_after_failed", (1, 0, 1, 0)),
        ("unsendable", "cancelled_after_unsendable", (1, 0, 1, 0)),
        ("lost", "cancelled_after_lost", (1, 0, 1, 0)),
    ],
)
def test_cancel_while_a_c_store_is_out_waits_for_its_outcome(
    dest: Destination, outcome: Any, transition: str, counts: tuple[int, ...]
) -> None:
    pair, op, scp = _running(dest, "Storing")
    op.cancel_sent()
    pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    assert scp.state == "Cancelling" and responses(op) == []
    before = RECORDER.count("c-move-scp", transition)
    store = dest.waiting.pop()
    if outcome == "unsendable":
        scp.store_not_sent("UI value longer than 64 characters")
    elif outcome == "lost":
        scp.sub_assoc_aborted("connection reset by peer")
    else:
        dest.answer = lambda uid: outcome
        dest.store(store)
    pair.run()
    assert responses(op) == [(0xFE00, *counts)] and scp.state == "Cancelled"
    assert RECORDER.count("c-move-scp", transition) == before + 1


def test_cancel_before_the_sub_association_is_settled(dest: Destination) -> None:
    """The C-CANCEL overtakes the sub-association: Cancel at once, nothing is opened."""
    pair = make_pair(handler_for(dest.port, (0xFF00, instance(1))))
    op = start(pair, run=False)
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    pair.step()  # the destination
    pair.step()  # the count: the sub-association is asked for, not opened yet
    op.cancel_sent()
    pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
    pair.run()
    assert responses(op) == [(0xFE00, 1, 0, 0, 0)] and dest.opened == []


def test_a_second_cancel_while_cancelling_is_ignored(dest: Destination) -> None:
    pair, op, scp = _running(dest, "Storing")
    op.cancel_sent()
    for _ in range(2):
        pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    assert scp.state == "Cancelling"
    dest.store(dest.waiting.pop())
    pair.run()
    assert responses(op) == [(0xFE00, 1, 1, 0, 0)] and scp.state == "Cancelled"
    assert dest.closed == [True]


def test_both_charts_fully_covered(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Order-free: every scenario of this module runs again inside one coverage window."""

    def use_destination(values: dict[str, Any]) -> None:  # what the autouse _reset does
        global DESTINATION
        DESTINATION = values.get("dest") or Destination()

    fixtures = {"dest": Destination, "tmp_path": lambda: tmp_path_factory.mktemp("scenario")}
    with RECORDER.during() as run:
        calls = run_module_scenarios(sys.modules[__name__], fixtures, before_each=use_destination)
    assert calls > 30
    for chart in (SCP_CHART, SCU_CHART):
        missing = set(chart.declared_edges()) - run.fired(chart.name)
        assert missing == set(), f"{chart.name} missing {sorted(missing)}"
