"""The per-association transcript (``dimsefsm.trace``): one switch shows every step."""

from __future__ import annotations

import logging

import pytest

from dimsefsm import trace
from dimsefsm.dimse.commands import move_rsp
from dimsefsm.pdu.model import (
    PDV,
    Abort,
    AssociateRJ,
    PDataTF,
    ReleaseRP,
    ReleaseRQ,
)
from tests.unit.test_verification import echo, make_pair


def transcript(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dimsefsm.trace"]


def test_an_echo_transcript_shows_transitions_pdus_and_messages_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="dimsefsm.trace"):
        pair = make_pair()
        echo(pair)
        pair.requestor.release()
        pair.run()
    lines = transcript(caplog)
    scu, scp = pair.requestor.label, pair.acceptor.label
    assert scu != scp
    expected = [
        f"{scu} upper-layer Evt1 / AE-1: Sta1 -> Sta4",
        f"{scu} PDU out A-ASSOCIATE-RQ 'SCU' -> 'SCP', 2 contexts",
        f"{scp} PDU in A-ASSOCIATE-RQ 'SCU' -> 'SCP', 2 contexts",
        f"{scp} upper-layer Evt6 / AE-6 [acceptable]: Sta2 -> Sta3",
        f"{scu} PDU in A-ASSOCIATE-AC 2 of 2 contexts accepted",
        f"{scu} c-echo-scu send: Idle -> Awaiting",
        f"{scu} DIMSE out C-ECHO-RQ MessageID=1, context 1",
        f"{scp} DIMSE in C-ECHO-RQ MessageID=1, context 1",
        f"{scp} c-echo-scp",
        f"{scu} DIMSE in C-ECHO-RSP MessageIDBeingRespondedTo=1 Status=0x0000, context 1",
        f"{scu} c-echo-scu success: Awaiting -> Succeeded",
        f"{scu} PDU out A-RELEASE-RQ",
        f"{scp} PDU out A-RELEASE-RP",
        f"{scu} upper-layer Evt13 / AR-3: Sta7 -> Sta1",
    ]
    position = 0
    for wanted in expected:
        found = next((i for i in range(position, len(lines)) if lines[i].startswith(wanted)), None)
        assert found is not None, f"{wanted!r} not found after line {position}:\n" + "\n".join(
            lines
        )
        position = found + 1


def test_nothing_is_traced_below_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dimsefsm"):
        echo(make_pair())
    assert transcript(caplog) == []


def test_pdu_summaries() -> None:
    pdvs = (PDV(1, True, False, b"x" * 10), PDV(1, False, True, b"y" * 4))
    assert trace.describe_pdu(PDataTF(pdvs)) == (
        "P-DATA-TF [context 1 command 10 bytes; context 1 data last 4 bytes]"
    )
    assert trace.describe_pdu(AssociateRJ(1, 1, 7)) == "A-ASSOCIATE-RJ result 1 source 1 reason 7"
    assert trace.describe_pdu(ReleaseRQ()) == "A-RELEASE-RQ"
    assert trace.describe_pdu(ReleaseRP()) == "A-RELEASE-RP"
    assert trace.describe_pdu(Abort(2, 6)) == "A-ABORT source 2 reason 6"


def test_message_summaries_name_the_command_and_the_counts() -> None:
    command = move_rsp(7, 0xFF00, remaining=3, completed=1, failed=0, warning=0)
    assert trace.describe_message(1, command, None) == (
        "C-MOVE-RSP MessageIDBeingRespondedTo=7 Status=0xFF00 "
        "remaining/completed/failed/warning=3/1/0/0, context 1"
    )
    assert trace.describe_message(3, {"CommandField": 0x0123}, 12) == (
        "command 0x0123, context 3, data set 12 bytes"
    )
    assert trace.describe_message(3, {}, None) == "command ?, context 3"


def test_debug_logger_installs_one_handler() -> None:
    logger = logging.getLogger("dimsefsm")
    before = list(logger.handlers)
    level = logger.level
    try:
        trace.debug_logger()
        trace.debug_logger()
        added = [h for h in logger.handlers if h not in before]
        assert len(added) == 1 and trace.enabled()
    finally:
        logger.handlers[:] = before
        logger.setLevel(level)
