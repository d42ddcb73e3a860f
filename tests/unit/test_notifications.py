"""pynetdicom's notification events, fired from the engine over real sockets (issue 15 item 7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dimsefsm import AE, evt
from dimsefsm.compat import Verification
from dimsefsm.notifications import Notification, notifier_for
from dimsefsm.pdu.model import AssociateAC, AssociateRQ
from tests.interop.peers import free_port

ALL = sorted(evt.ENGINE_NOTIFICATIONS, key=lambda e: e.name)


def _recorder(log: list[Notification]) -> list[tuple[evt.EventType, Callable[[Any], None]]]:
    return [(event, log.append) for event in ALL]


def _echo(scp_log: list[Notification], scu_log: list[Notification]) -> None:
    scp = AE("SCP")
    scp.add_supported_context(Verification)
    port = free_port()
    server = scp.start_server(("127.0.0.1", port), block=False, evt_handlers=_recorder(scp_log))
    try:
        ae = AE("SCU")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", port, ae_title="SCP", evt_handlers=_recorder(scu_log))
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        assoc.release()
    finally:
        server.shutdown()


def _names(log: list[Notification], *skip: evt.EventType) -> list[str]:
    return [n.event.name for n in log if n.event not in skip]


def test_one_echo_fires_every_notification_in_order_on_both_sides() -> None:
    scp_log: list[Notification] = []
    scu_log: list[Notification] = []
    _echo(scp_log, scu_log)
    noise = (evt.EVT_FSM_TRANSITION, evt.EVT_PDU_SENT, evt.EVT_PDU_RECV)
    assert _names(scu_log, *noise) == [
        "EVT_CONN_OPEN",
        "EVT_REQUESTED",
        "EVT_ACCEPTED",
        "EVT_DIMSE_SENT",
        "EVT_DIMSE_RECV",
        "EVT_CONN_CLOSE",
    ]
    assert _names(scp_log, *noise) == [
        "EVT_CONN_OPEN",
        "EVT_REQUESTED",
        "EVT_ACCEPTED",
        "EVT_DIMSE_RECV",
        "EVT_DIMSE_SENT",
        "EVT_CONN_CLOSE",
    ]
    sent = [type(n.pdu).__name__ for n in scu_log if n.event is evt.EVT_PDU_SENT]
    received = [type(n.pdu).__name__ for n in scp_log if n.event is evt.EVT_PDU_RECV]
    assert sent[0] == "AssociateRQ" and received[0] == "AssociateRQ"
    assert isinstance(next(n.pdu for n in scp_log if n.event is evt.EVT_PDU_SENT), AssociateAC)
    assert isinstance(next(n.pdu for n in scu_log if n.event is evt.EVT_PDU_SENT), AssociateRQ)
    moves = [(n.current_state, n.next_state) for n in scp_log if n.event is evt.EVT_FSM_TRANSITION]
    assert moves[0] == ("Sta1", "Sta2") and ("Sta3", "Sta6") in moves
    dimse = next(n for n in scp_log if n.event is evt.EVT_DIMSE_RECV)
    assert dimse.message.command["CommandField"] == 0x0030  # C-ECHO-RQ
    assert dimse.assoc.requestor.ae_title == "SCU"
    conn = next(n for n in scp_log if n.event is evt.EVT_CONN_OPEN)
    assert conn.address is not None and conn.address[0] == "127.0.0.1"


def test_no_notification_bound_costs_no_notifier() -> None:
    assert notifier_for({}) is None
    assert notifier_for({evt.EVT_C_ECHO: lambda event: 0}) is None
    assert notifier_for({evt.EVT_PDU_RECV: lambda event: None}) is not None


def test_a_failing_notification_handler_is_logged_and_the_echo_goes_on() -> None:
    def boom(event: Notification) -> None:
        raise RuntimeError("handler bug")

    scp = AE()
    scp.add_supported_context(Verification)
    port = free_port()
    server = scp.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_DIMSE_RECV, boom)]
    )
    try:
        ae = AE()
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", port)
        status = assoc.send_c_echo()
        assoc.release()
    finally:
        server.shutdown()
    assert status.Status == 0 and assoc.is_released


def test_c_cancel_is_notified_with_the_message_id_it_cancels() -> None:
    from dimsefsm.dimse.commands import cancel_rq
    from dimsefsm.dimse.message import Message
    from tests.unit.test_find import make_pair, match, start

    def endless(event: Any) -> Any:
        n = 0
        while True:
            n += 1
            yield 0xFF00, match(n)

    log: list[Notification] = []
    pair = make_pair(endless)
    pair.acceptor.notify = notifier_for({evt.EVT_C_CANCEL: log.append})
    op = start(pair, run=False)
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    pair.step()
    pair._deliver(pair.acceptor, pair.requestor, "ac->rq")
    op.cancel_sent()
    pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
    pair.run()
    assert [(n.event, n.message) for n in log] == [(evt.EVT_C_CANCEL, op.message_id)]
