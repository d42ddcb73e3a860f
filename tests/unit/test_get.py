"""C-GET between two in-memory engines: every transition of c-get-scp and c-get-scu.

Each test docstring names the rule it checks (PS3.4 C.4.3, PS3.7 9.1.3).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset, config
from pydicom.dataelem import DataElement

from dimsefsm import evt
from dimsefsm.assoc.negotiation import AcceptorPolicy, RequestorProposal, propose_contexts
from dimsefsm.datasets import encode_dataset
from dimsefsm.dimse.commands import cancel_rq, get_rq
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.fsm import RECORDER
from dimsefsm.pdu.model import RoleSelection
from dimsefsm.services.dispatch import RequestDispatcher
from dimsefsm.services.get import SCP_CHART, SCU_CHART, GetScu, strip_bulk_data
from dimsefsm.sop_class import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN as EVRLE
from tests.data.make import JPEG_BASELINE, make_instance, write_instance
from tests.pair import EnginePair
from tests.scenarios import run_module_scenarios

STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"


def instance(n: int, sop_class: str = CT_IMAGE_STORAGE) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = f"1.2.3.4.{n}"
    ds.PatientName = "Doe^Jane"
    ds.StudyInstanceUID = "1.2.3"
    return ds


def identifier(level: str = "STUDY", study: str | None = "1.2.3") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    if study is not None:
        ds.StudyInstanceUID = study
    return ds


Handler = Callable[[Any], Iterator[Any]]


def make_pair(
    handler: Handler | None,
    store_status: Callable[[Any], int] = lambda e: 0,
) -> tuple[EnginePair, list[str]]:
    stored: list[str] = []

    def on_store(event: Any) -> int:
        stored.append(event.dataset.SOPInstanceUID)
        return store_status(event)

    proposal = RequestorProposal(
        "SCU",
        "SCP",
        propose_contexts(
            [(STUDY_ROOT_GET, [EVRLE]), (CT_IMAGE_STORAGE, [EVRLE]), (MR_IMAGE_STORAGE, [EVRLE])]
        ),
        roles=(RoleSelection(CT_IMAGE_STORAGE, False, True),),
    )
    policy = AcceptorPolicy(
        "SCP",
        {STUDY_ROOT_GET: (EVRLE,), CT_IMAGE_STORAGE: (EVRLE,), MR_IMAGE_STORAGE: (EVRLE,)},
        scp_role_for=frozenset({CT_IMAGE_STORAGE}),
    )
    scu_dispatch = RequestDispatcher({evt.EVT_C_STORE: on_store})
    scp_dispatch = RequestDispatcher({evt.EVT_C_GET: handler} if handler else {})
    pair = EnginePair(
        AssociationEngine(requestor=True, proposal=proposal, on_request=scu_dispatch),
        AssociationEngine(requestor=False, policy=policy, on_request=scp_dispatch),
    )
    pair.connect()
    return pair, stored


def start(
    pair: EnginePair, ident: Dataset | bytes | None = None, *, run: bool = True, **overrides: Any
) -> GetScu:
    engine = pair.requestor
    assert engine.negotiated is not None
    message_id = engine.next_message_id()
    op = GetScu(message_id, engine.negotiated.contexts[1])
    engine.start_operation(message_id, op)
    op.sent()
    command = get_rq(message_id, STUDY_ROOT_GET)
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


def yields(*items: Any) -> Handler:
    def handler(event: Any) -> Iterator[Any]:
        yield from items

    return handler


def responses(op: GetScu) -> list[tuple[int, ...]]:
    """(status, remaining, completed, failed, warning) per response; -1 where absent."""
    out = []
    for status, _ in op.results:
        out.append(
            (
                status.Status,
                *(
                    int(status.get(k, -1))
                    for k in (
                        "NumberOfRemainingSuboperations",
                        "NumberOfCompletedSuboperations",
                        "NumberOfFailedSuboperations",
                        "NumberOfWarningSuboperations",
                    )
                ),
            )
        )
    return out


def failed_list(op: GetScu) -> list[str]:
    _, ident = op.results[-1]
    if ident is None:
        return []
    value = ident.FailedSOPInstanceUIDList
    return [value] if isinstance(value, str) else list(value)


def fired(chart: str, name: str) -> int:
    return RECORDER.count(chart, name)


def recording(calls: list[Any]) -> Callable[[Any], Iterator[Any]]:
    """A handler that notes each call and yields nothing (the tests expect no call)."""

    def handler(event: Any) -> Iterator[Any]:
        calls.append(event)
        yield from ()

    return handler


def test_all_succeed_pending_carries_four_counts_final_has_no_remaining() -> None:
    """PS3.7 9.1.3: Pending shall carry all four counts; Success shall not carry Remaining."""
    pair, stored = make_pair(yields(3, *((0xFF00, instance(n)) for n in range(3))))
    op = start(pair)
    assert responses(op) == [
        (0xFF00, 2, 1, 0, 0),
        (0xFF00, 1, 2, 0, 0),
        (0xFF00, 0, 3, 0, 0),
        (0x0000, -1, 3, 0, 0),
    ]
    assert stored == ["1.2.3.4.0", "1.2.3.4.1", "1.2.3.4.2"]
    assert op.state == "Succeeded" and failed_list(op) == []


def test_all_failed_is_a702_not_b000() -> None:
    """PS3.4 C.4.3.3.1: all sub-operations failed -> Failure (the seed answered Warning)."""
    pair, _ = make_pair(
        yields(2, (0xFF00, instance(1)), (0xFF00, instance(2))), store_status=lambda e: 0xA700
    )
    op = start(pair)
    assert responses(op)[-1] == (0xA702, -1, 0, 2, 0)
    assert failed_list(op) == ["1.2.3.4.1", "1.2.3.4.2"] and op.state == "Failed"


def test_some_failed_is_b000_with_the_failed_list() -> None:
    """PS3.4 C.4.3.3.1: at least one succeeded and one failed -> Warning 0xB000."""
    pair, _ = make_pair(
        yields(2, (0xFF00, instance(1)), (0xFF00, instance(2))),
        store_status=lambda e: 0xA700 if e.dataset.SOPInstanceUID.endswith("2") else 0,
    )
    op = start(pair)
    assert responses(op)[-1] == (0xB000, -1, 1, 1, 0)
    assert failed_list(op) == ["1.2.3.4.2"] and op.state == "Warned"


def test_warned_sub_operation_counts_as_warning() -> None:
    """A sub-operation answered with B000 counts in Warning; the final status is B000."""
    before = fired("c-get-scp", "sub_op_warning")
    pair, _ = make_pair(yields(1, (0xFF00, instance(1))), store_status=lambda e: 0xB000)
    op = start(pair)
    assert responses(op) == [(0xFF00, 0, 0, 0, 1), (0xB000, -1, 0, 0, 1)]
    assert fired("c-get-scp", "sub_op_warning") == before + 1


def test_no_usable_context_is_a_failed_sub_operation_not_a_crash() -> None:
    """MR was accepted but the SCU did not take the SCP role for it: no C-STORE possible."""
    pair, stored = make_pair(
        yields(2, (0xFF00, instance(1, MR_IMAGE_STORAGE)), (0xFF00, instance(2)))
    )
    op = start(pair)
    assert responses(op) == [(0xFF00, 1, 0, 1, 0), (0xFF00, 0, 1, 1, 0), (0xB000, -1, 1, 1, 0)]
    assert failed_list(op) == ["1.2.3.4.1"] and stored == ["1.2.3.4.2"]


LONG_UID = "1.2." + "9" * 70  # 74 characters: no command can carry it (PS3.5 9.1: 64)


def over_long_uid_instance() -> Dataset:
    ds = instance(9)
    ds.add(DataElement(0x00080018, "UI", LONG_UID, validation_mode=config.IGNORE))
    return ds


def unsendable_instances(tmp_path: Path) -> dict[str, Any]:
    """Instances the SCP cannot turn into a C-STORE, each for its own reason."""
    unreadable = tmp_path / "unreadable.dcm"
    unreadable.mkdir()  # open() fails whoever runs the tests (mode 000 does not stop root)
    jpeg = make_instance(
        CT_IMAGE_STORAGE, transfer_syntax=JPEG_BASELINE, sop_instance_uid="1.2.3.4.7"
    )
    no_class = instance(8)
    del no_class.SOPClassUID
    return {
        "over-long UID": over_long_uid_instance(),
        "vanished file": tmp_path / "gone.dcm",
        "unreadable file": unreadable,
        "no accepted syntax": write_instance(tmp_path / "jpeg.dcm", jpeg),
        "no SOP Class UID": no_class,
    }


@pytest.mark.parametrize(
    "reason",
    ["over-long UID", "vanished file", "unreadable file", "no accepted syntax", "no SOP Class UID"],
)
@pytest.mark.parametrize("position", ["middle", "last"])
def test_unsendable_instance_is_a_failed_sub_operation_and_the_get_goes_on(
    tmp_path: Path, reason: str, position: str
) -> None:
    """Issue 11.8: an instance no C-STORE can carry fails alone; nothing waits for a response.

    Before, the operation waited for the response of a C-STORE that never left
    (60 s, then an abort) and the instances after it were lost.
    """
    bad = unsendable_instances(tmp_path)[reason]
    before = fired("c-get-scp", "unsendable")
    good = [instance(1), instance(2)]
    items = [good[0], bad, good[1]] if position == "middle" else [*good, bad]
    pair, stored = make_pair(yields(3, *((0xFF00, item) for item in items)))
    op = start(pair)
    assert [r[0] for r in responses(op)] == [0xFF00, 0xFF00, 0xFF00, 0xB000]
    assert responses(op)[-1] == (0xB000, -1, 2, 1, 0)
    assert stored == ["1.2.3.4.1", "1.2.3.4.2"] and op.state == "Warned"
    # A file whose meta cannot be read names no UID; the others are listed.
    listed = {
        "over-long UID": LONG_UID,
        "no accepted syntax": "1.2.3.4.7",
        "no SOP Class UID": "1.2.3.4.8",
    }
    assert failed_list(op) == ([listed[reason]] if reason in listed else [])
    assert pair.acceptor.scp_operations == {} and pair.acceptor.operations == {}
    assert fired("c-get-scp", "unsendable") == before + 1


def test_only_unsendable_instances_is_a702_with_their_uids(tmp_path: Path) -> None:
    """All sub-operations failed locally: Failure 0xA702, every UID listed (PS3.4 C.4.3.3.1)."""
    other = over_long_uid_instance()
    other.add(DataElement(0x00080018, "UI", LONG_UID[:-1], validation_mode=config.IGNORE))
    pair, stored = make_pair(yields(2, (0xFF00, over_long_uid_instance()), (0xFF00, other)))
    op = start(pair)
    assert responses(op) == [(0xFF00, 1, 0, 1, 0), (0xFF00, 0, 0, 2, 0), (0xA702, -1, 0, 2, 0)]
    assert failed_list(op) == [LONG_UID, LONG_UID[:-1]] and stored == []


def test_pending_yield_without_dataset_counts_as_failed() -> None:
    pair, _ = make_pair(yields(1, (0xFF00, 42)))
    op = start(pair)
    assert responses(op) == [(0xFF00, 0, 0, 1, 0), (0xA702, -1, 0, 1, 0)]


def test_more_yields_than_announced_are_ignored() -> None:
    before = fired("c-get-scp", "extra_ignored")
    pair, stored = make_pair(yields(1, (0xFF00, instance(1)), (0xFF00, instance(2))))
    op = start(pair)
    assert stored == ["1.2.3.4.1"] and responses(op)[-1] == (0x0000, -1, 1, 0, 0)
    assert fired("c-get-scp", "extra_ignored") == before + 1


def test_fewer_yields_than_announced_end_with_the_real_counts() -> None:
    """A handler announcing 5 and delivering 1 ends with the counts really sent."""
    pair, _ = make_pair(yields(5, (0xFF00, instance(1))))
    op = start(pair)
    assert responses(op) == [(0xFF00, 4, 1, 0, 0), (0x0000, -1, 1, 0, 0)]


@pytest.mark.parametrize("first", ["three", -1, None, True])
def test_bad_count_is_c413(first: Any) -> None:
    pair, _ = make_pair(yields(first))
    op = start(pair)
    assert [r[0] for r in responses(op)] == [0xC413]


def test_no_yield_at_all_is_c413() -> None:
    pair, _ = make_pair(yields())
    assert [r[0] for r in responses(start(pair))] == [0xC413]


def test_handler_raising_on_call_and_mid_iteration_is_c411() -> None:
    def on_call(event: Any) -> Iterator[Any]:
        raise RuntimeError("archive offline")

    closed: list[bool] = []

    def mid(event: Any) -> Iterator[Any]:
        try:
            yield 2
            yield 0xFF00, instance(1)
            raise RuntimeError("disk gone")
        finally:
            closed.append(True)

    pair, _ = make_pair(on_call)
    assert [r[0] for r in responses(start(pair))] == [0xC411]
    pair, _ = make_pair(mid)
    op = start(pair)
    assert responses(op) == [(0xFF00, 1, 1, 0, 0), (0xC411, -1, 1, 0, 0)] and closed == [True]


@pytest.mark.parametrize(
    ("status", "transition", "final", "scu_state"),
    [
        (0x0000, "handler_success", 0x0000, "Succeeded"),
        (0xFE00, "handler_cancel", 0xFE00, "Cancelled"),
        (0xA900, "handler_failure", 0xA900, "Failed"),
        (0xA701, "handler_failure", 0xA701, "Failed"),
        (0xB000, "handler_warning", 0xB000, "Warned"),
        (0xD000, "unknown_status", 0xD000, "Failed"),
        (Dataset(), "no_status_element", 0xC001, "Failed"),
        ("bad", "invalid_status", 0xC002, "Failed"),
    ],
)
def test_handler_final_statuses(status: Any, transition: str, final: int, scu_state: str) -> None:
    """Undelivered sub-operations are not counted as failed when the handler ends it."""
    before = fired("c-get-scp", transition)
    pair, _ = make_pair(yields(3, (0xFF00, instance(1)), (status, None)))
    op = start(pair)
    last = responses(op)[-1]
    assert last[0] == final and last[2:] == (1, 0, 0)
    assert op.state == scu_state and fired("c-get-scp", transition) == before + 1


def test_yield_that_is_not_a_pair_is_c002() -> None:
    pair, _ = make_pair(yields(1, "not a pair"))
    assert responses(start(pair))[-1][0] == 0xC002


def test_cancel_between_sub_operations() -> None:
    """C-CANCEL-GET: FE00 with the counts so far and Remaining = not started."""
    closed: list[bool] = []

    def many(event: Any) -> Iterator[Any]:
        try:
            yield 10
            for n in range(10):
                yield 0xFF00, instance(n)
        finally:
            closed.append(True)

    pair, _ = make_pair(many)
    op = start(pair, run=False)
    for _ in range(3):  # count, then two sub-operations with their responses
        pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
        pair.step()
        pair._deliver(pair.acceptor, pair.requestor, "ac->rq")
        pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    op.cancel_sent()
    pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
    pair.run()
    assert responses(op)[-1] == (0xFE00, 8, 2, 0, 0)
    assert op.state == "Cancelled" and closed == [True]


def test_peer_abort_while_a_sub_operation_is_out_closes_the_handler() -> None:
    closed: list[bool] = []

    def handler(event: Any) -> Iterator[Any]:
        try:
            yield 2
            yield 0xFF00, instance(1)
            yield 0xFF00, instance(2)
        finally:
            closed.append(True)

    pair, _ = make_pair(handler)
    op = start(pair, run=False)
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    pair.step()  # count
    pair.step()  # the C-STORE goes out; the SCP now waits for its response
    pair.requestor.abort()
    pair.run()
    assert closed == [True] and op.state == "Aborted"
    assert pair.acceptor.scp_operations == {}


def test_decoding_failures() -> None:
    pair, _ = make_pair(yields(0))
    assert [r[0] for r in responses(start(pair, b"\x10\x00\x10\x00PN\xff\x00"))] == [0xC410]
    pair, _ = make_pair(yields(0))
    assert [r[0] for r in responses(start(pair, Priority=None))] == [0x0212]
    pair, _ = make_pair(None)
    assert [r[0] for r in responses(start(pair))] == [0x0122]
    pair, _ = make_pair(yields(0))
    rejected = start(pair, identifier(study=None))
    assert rejected.results[0][0].Status == 0xA900
    assert "StudyInstanceUID" in rejected.results[0][0].ErrorComment or (
        "0020,000D" in rejected.results[0][0].ErrorComment
    )


def test_zero_sub_operations_is_success() -> None:
    pair, _ = make_pair(yields(0))
    assert responses(start(pair)) == [(0x0000, -1, 0, 0, 0)]


@pytest.mark.parametrize(
    ("status", "trigger", "state"),
    [
        (0xFF00, "pending", "Cancelling"),
        (0x0000, "success", "Succeeded"),
        (0xFE00, "cancelled", "Cancelled"),
        (0xA702, "failure", "Failed"),
        (0xB000, "warning", "Warned"),
        (0xD000, "unknown_status", "Failed"),
    ],
)
def test_scu_responses_while_cancelling(status: int, trigger: str, state: str) -> None:
    pair, _ = make_pair(None)
    assert pair.requestor.negotiated is not None
    op = GetScu(5, pair.requestor.negotiated.contexts[1])
    op.sent()
    op.cancel_sent()
    before = RECORDER.count("c-get-scu", trigger, "Cancelling")
    op.on_response(
        Message(
            1,
            {
                "CommandField": 0x8010,
                "MessageIDBeingRespondedTo": 5,
                "Status": status,
                "CommandDataSetType": 0x0101,
            },
        )
    )
    assert op.state == state
    assert RECORDER.count("c-get-scu", trigger, "Cancelling") == before + 1


@pytest.mark.parametrize("source", ["Retrieving", "Cancelling"])
def test_scu_abort_and_timeout(source: str) -> None:
    pair, _ = make_pair(None)
    assert pair.requestor.negotiated is not None
    for end, state in (("on_abort", "Aborted"), ("on_timeout", "TimedOut")):
        op = GetScu(1, pair.requestor.negotiated.contexts[1])
        op.sent()
        if source == "Cancelling":
            op.cancel_sent()
        getattr(op, end)()
        assert op.state == state


def test_scu_unknown_status_while_retrieving() -> None:
    pair, _ = make_pair(yields(1, (0xD123, None)))
    op = start(pair)
    assert op.state == "Failed"


def test_identifier_over_the_bound_is_a701_and_the_handler_never_runs() -> None:
    """Issue 11.12: 0xA701 (out of resources, unable to calculate matches) with a comment."""
    called: list[Any] = []
    pair, _ = make_pair(recording(called))
    ident = identifier()
    ident.add_new(0x0040A160, "UT", "*" * (2 << 20))
    op = start(pair, ident)
    status = op.results[-1][0]
    assert responses(op) == [(0xA701, -1, -1, -1, -1)] and called == []
    assert "exceeds" in status.ErrorComment and pair.acceptor.is_established


def test_uid_key_longer_than_64_is_a900() -> None:
    """A UID list may be long (one UID per instance), but no UID has more than 64 characters."""
    ident = identifier()
    uid = DataElement(0x0020000D, "UI", ["1.2.3", "1." + "2" * 63], validation_mode=config.IGNORE)
    ident.add(uid)
    op = start(make_pair(yields(0))[0], ident)
    assert op.results[-1][0].Status == 0xA900
    assert int(op.results[-1][0].OffendingElement) == 0x0020000D


def test_strip_bulk_data() -> None:
    """PS3.4 Z: the bulk data elements are removed before sending."""
    ds = instance(1)
    ds.BitsAllocated = 16
    ds.PixelData = b"\x00\x01" * 8
    ds.add_new(0x60003000, "OW", b"\x00\x00")  # OverlayData
    ds.add_new(0x00420011, "OB", b"%PDF")  # EncapsulatedDocument
    wave = Dataset()
    wave.add_new(0x54001010, "OW", b"\x00\x00")  # WaveformData
    ds.WaveformSequence = [wave]
    out = strip_bulk_data(ds)
    assert "PixelData" not in out and 0x60003000 not in out and 0x00420011 not in out
    assert "WaveformData" not in out.WaveformSequence[0] and out.PatientName == "Doe^Jane"


# -- inputs the chart names: the count, the association's end, a cancel while storing -------------
def test_count_over_65535_is_c416_not_an_abort() -> None:
    """The counts are US: a larger count is answered 0xC416, the association stays up."""
    pair, stored = make_pair(yields(70000, (0xFF00, instance(1))))
    assert [r[0] for r in responses(start(pair))] == [0xC416]
    assert pair.acceptor.is_established and pair.requestor.is_established and stored == []


def test_a701_instead_of_a_count_is_named_and_other_statuses_are_c413() -> None:
    pair, _ = make_pair(yields((0xA701, None)))
    before = fired("c-get-scp", "count_unavailable")
    assert [r[0] for r in responses(start(pair))] == [0xA701]
    assert fired("c-get-scp", "count_unavailable") == before + 1
    pair, _ = make_pair(yields((0xA700, None)))
    assert [r[0] for r in responses(start(pair))] == [0xC413]


def _running(state: str, store_status: int = 0) -> tuple[EnginePair, GetScu, Any]:
    pair, _ = make_pair(
        yields(2, (0xFF00, instance(1)), (0xFF00, instance(2))), lambda e: store_status
    )
    op = start(pair, run=False)
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    scp: Any = next(iter(pair.acceptor.scp_operations.values()))
    for _ in range(10):  # count, then the first C-STORE
        if scp.state == state:
            break
        pair.step()
    assert scp.state == state
    return pair, op, scp


@pytest.mark.parametrize("state", ["AwaitingCount", "SubOps", "Storing", "Cancelling"])
def test_association_ending_in_each_state(state: str) -> None:
    pair, op, scp = _running("Storing" if state == "Cancelling" else state)
    if state == "Cancelling":
        pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
        pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    assert scp.state == state
    pair.close_transport()
    assert scp.state == "Aborted" and pair.acceptor.scp_operations == {}


@pytest.mark.parametrize(
    ("store_status", "transition", "counts"),
    [
        (0x0000, "cancelled_after_completed", (1, 1, 0, 0)),
        (0xB007, "cancelled_after_warning", (1, 0, 0, 1)),
        (0xA700, "cancelled_after_failed", (1, 0, 1, 0)),
    ],
)
def test_cancel_while_a_c_store_is_out_waits_for_its_response(
    store_status: int, transition: str, counts: tuple[int, ...]
) -> None:
    """The C-CANCEL overtakes the C-STORE-RSP: Cancelling, then Cancel with its outcome counted."""
    pair, op, scp = _running("Storing", store_status)
    op.cancel_sent()
    pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")  # the cancel, before the C-STORE
    assert scp.state == "Cancelling"
    before = fired("c-get-scp", transition)
    pair.run()
    assert responses(op) == [(0xFE00, *counts)] and scp.state == "Cancelled"
    assert fired("c-get-scp", transition) == before + 1


def test_a_second_cancel_while_cancelling_is_ignored() -> None:
    """A peer may repeat its C-CANCEL: the operation is cancelling already, nothing breaks."""
    pair, op, scp = _running("Storing")
    op.cancel_sent()
    for _ in range(2):
        pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    assert scp.state == "Cancelling"
    pair.run()
    assert responses(op) == [(0xFE00, 1, 1, 0, 0)] and scp.state == "Cancelled"


def test_both_charts_fully_covered(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Order-free: every scenario of this module runs again inside one coverage window."""
    fixtures = {"tmp_path": lambda: tmp_path_factory.mktemp("scenario")}
    with RECORDER.during() as run:
        calls = run_module_scenarios(sys.modules[__name__], fixtures)
    assert calls > 30
    for chart in (SCP_CHART, SCU_CHART):
        missing = set(chart.declared_edges()) - run.fired(chart.name)
        assert missing == set(), f"{chart.name} missing {sorted(missing)}"
