"""C-ECHO end to end between two in-memory engines: every transition of both charts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydicom import Dataset

from dimsefsm import evt
from dimsefsm.assoc.negotiation import AcceptorPolicy, RequestorProposal, propose_contexts
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.fsm import RECORDER, RefusedTrigger
from dimsefsm.services.dispatch import RequestDispatcher
from dimsefsm.services.verification import SCP_CHART, SCU_CHART, EchoScu
from dimsefsm.sop_class import IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION
from tests.pair import EnginePair

CT = "1.2.840.10008.5.1.4.1.1.2"


def make_pair(handler: Callable[[evt.Event], Any] | None = None) -> EnginePair:
    proposal = RequestorProposal(
        "SCU",
        "SCP",
        propose_contexts(
            [(VERIFICATION, [IMPLICIT_VR_LITTLE_ENDIAN]), (CT, [IMPLICIT_VR_LITTLE_ENDIAN])]
        ),
    )
    policy = AcceptorPolicy(
        "SCP", {VERIFICATION: (IMPLICIT_VR_LITTLE_ENDIAN,), CT: (IMPLICIT_VR_LITTLE_ENDIAN,)}
    )
    handlers = {evt.EVT_C_ECHO: handler} if handler else {}
    pair = EnginePair(
        AssociationEngine(requestor=True, proposal=proposal),
        AssociationEngine(requestor=False, policy=policy, on_request=RequestDispatcher(handlers)),
    )
    pair.connect()
    assert pair.requestor.is_established and pair.acceptor.is_established
    return pair


def echo(pair: EnginePair, command: dict[str, Any] | None = None, context_id: int = 1) -> EchoScu:
    engine = pair.requestor
    message_id = engine.next_message_id()
    op = EchoScu(message_id)
    engine.start_operation(message_id, op)
    op.sent()
    cmd = {
        "CommandField": 0x0030,
        "MessageID": message_id,
        "AffectedSOPClassUID": VERIFICATION,
        "CommandDataSetType": 0x0101,
    }
    cmd.update(command or {})
    engine.send_message(Message(context_id, {k: v for k, v in cmd.items() if v is not None}))
    pair.run()
    return op


def fired(chart: str, name: str) -> int:
    return RECORDER.count(chart, name)


def test_echo_without_handler_succeeds() -> None:
    before = fired("c-echo-scp", "success"), fired("c-echo-scu", "success")
    op = echo(make_pair())
    assert op.state == "Succeeded" and op.result().Status == 0x0000
    assert (fired("c-echo-scp", "success"), fired("c-echo-scu", "success")) == (
        before[0] + 1,
        before[1] + 1,
    )


HANDLER_RESULTS = [
    (0x0000, "success", 0x0000, "Succeeded", "success"),
    (Dataset(), "no_status_element", 0xC001, "Failed", "failure"),
    ("yes", "invalid_status", 0xC002, "Failed", "failure"),
    (True, "invalid_status", 0xC002, "Failed", "failure"),
    (0x0122, "failure", 0x0122, "Failed", "failure"),
    (0xB000, "unknown_status", 0xB000, "Warned", "warning"),
    (0xD123, "unknown_status", 0xD123, "Failed", "unknown_status"),
]


@pytest.mark.parametrize(
    ("returned", "scp_transition", "status", "scu_state", "scu_transition"), HANDLER_RESULTS
)
def test_handler_results(
    returned: Any, scp_transition: str, status: int, scu_state: str, scu_transition: str
) -> None:
    seen: list[evt.Event] = []

    def handler(event: evt.Event) -> Any:
        seen.append(event)
        return returned

    before = fired("c-echo-scp", scp_transition), fired("c-echo-scu", scu_transition)
    op = echo(make_pair(handler))
    assert op.result().Status == status
    assert op.state == scu_state
    assert seen[0].event is evt.EVT_C_ECHO and seen[0].message_id == op.message_id
    assert fired("c-echo-scp", scp_transition) == before[0] + 1
    assert fired("c-echo-scu", scu_transition) == before[1] + 1


def test_handler_status_dataset_is_passed_through_with_comment() -> None:
    ds = Dataset()
    ds.Status = 0x0122
    ds.ErrorComment = "not today"
    op = echo(make_pair(lambda event: ds))
    assert op.result().Status == 0x0122 and op.result().ErrorComment == "not today"


def test_handler_exception_is_processing_failure_with_comment() -> None:
    def handler(event: evt.Event) -> int:
        raise RuntimeError("disk on fire")

    op = echo(make_pair(handler))
    result = op.result()
    assert result.Status == 0x0110 and "disk on fire" in result.ErrorComment
    assert op.state == "Failed"


def test_request_without_sop_class_is_mistyped_argument() -> None:
    before = fired("c-echo-scp", "mistyped")
    op = echo(make_pair(), {"AffectedSOPClassUID": None})
    assert op.result().Status == 0x0212
    assert fired("c-echo-scp", "mistyped") == before + 1


def test_request_for_another_sop_class_is_refused() -> None:
    before = fired("c-echo-scp", "not_verification")
    op = echo(make_pair(), {"AffectedSOPClassUID": CT})
    assert op.result().Status == 0x0122
    assert fired("c-echo-scp", "not_verification") == before + 1


def test_echo_on_a_non_verification_context_is_unrecognized_operation() -> None:
    op = echo(make_pair(), {"AffectedSOPClassUID": CT}, context_id=3)
    assert op.result().Status == 0x0211


def test_peer_abort_while_waiting_reports_aborted() -> None:
    pair = make_pair()
    engine = pair.requestor
    op = EchoScu(engine.next_message_id())
    engine.start_operation(op.message_id, op)
    op.sent()
    pair.acceptor.abort()
    pair.run()
    assert op.state == "Aborted" and op.result() == Dataset()
    assert engine.outcome == "aborted" and engine.abort_source == 0


def test_transport_lost_while_waiting_reports_aborted() -> None:
    pair = make_pair()
    op = EchoScu(pair.requestor.next_message_id())
    pair.requestor.start_operation(op.message_id, op)
    op.sent()
    pair.close_transport()
    assert op.state == "Aborted" and pair.requestor.outcome == "aborted"


def test_timeout_state() -> None:
    op = EchoScu(7)
    op.sent()
    op.on_timeout()
    assert op.state == "TimedOut" and op.done and op.result() == Dataset()


def test_release_from_requestor_and_from_acceptor() -> None:
    pair = make_pair()
    pair.requestor.release()
    pair.run()
    assert pair.requestor.outcome == "released" and pair.requestor.ul.state == "Sta1"
    assert pair.acceptor.outcome == "released"
    pair = make_pair()
    pair.acceptor.release()
    pair.run()
    assert pair.acceptor.outcome == "released" and pair.requestor.outcome == "released"


def test_scu_refuses_inputs_its_table_refuses() -> None:
    """A response for an operation that never sent its request is a bug, said as such."""
    op = EchoScu(9)
    with pytest.raises(RefusedTrigger, match="no request went out"):
        op.on_response(Message(1, {"CommandField": 0x8030, "Status": 0}))
    op.sent()
    op.on_response(Message(1, {"CommandField": 0x8030, "Status": 0}))
    with pytest.raises(RefusedTrigger, match="the operation is over"):
        op.on_abort()


def test_both_charts_fully_covered() -> None:
    """Order-free: the scenarios below fire every edge of both charts, counted on their own."""
    with RECORDER.during() as run:
        test_echo_without_handler_succeeds()
        for case in HANDLER_RESULTS:
            test_handler_results(*case)
        test_handler_exception_is_processing_failure_with_comment()
        test_request_without_sop_class_is_mistyped_argument()
        test_request_for_another_sop_class_is_refused()
        test_peer_abort_while_waiting_reports_aborted()
        test_timeout_state()
    for chart in (SCP_CHART, SCU_CHART):
        missing = set(chart.declared_edges()) - run.fired(chart.name)
        assert missing == set(), f"{chart.name} missing {sorted(missing)}"
