"""Verification (C-ECHO): the smallest service, and the template for the others.

Each operation is a model attached to a chart.  The code around the chart only
classifies what happened (what the handler returned, which status arrived);
the chart decides where that leads and which status goes on the wire, so the
diagram and the behaviour cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from transitions import EventData

from dimsefsm import status as st
from dimsefsm.dimse.commands import echo_rsp
from dimsefsm.dimse.message import Message
from dimsefsm.fsm import Chart, Refusal, transition
from dimsefsm.services.single_response import (
    SingleResponseScp,
    SingleResponseScu,
    handler_outcomes,
    handler_refusals,
    make_scu_chart,
)
from dimsefsm.sop_class import VERIFICATION

LOG = logging.getLogger("dimsefsm.verification")

SCP_CHART = Chart(
    name="c-echo-scp",
    states=("Received", "Handling", "Final"),
    initial="Received",
    final=("Final",),
    doc="C-ECHO SCP: validate the request, ask the handler, send one response.",
    transitions=(
        transition(
            "mistyped",
            "request_received",
            "Received",
            "Final",
            guard="no_sop_class",
            status=st.MISTYPED_ARGUMENT,
            when="The request lacks its Affected SOP Class UID.",
            action="respond",
        ),
        transition(
            "not_verification",
            "request_received",
            "Received",
            "Final",
            guard="not_verification",
            status=st.SOP_CLASS_NOT_SUPPORTED,
            action="respond",
            when="The Affected SOP Class UID is not the context's Verification SOP class.",
        ),
        transition(
            "accepted",
            "request_received",
            "Received",
            "Handling",
            when="The request is a well-formed Verification request.",
        ),
        *handler_outcomes(
            {"failure": "The handler returned a Verification failure (0x0122, 0x0210-0x0212)."},
            st.PROCESSING_FAILURE,
            "The handler raised an exception: processing failure, its text in ErrorComment.",
        ),
    ),
    refusals=(
        Refusal(
            "request_received",
            ("Handling", "Final"),
            "one operation answers one request; the next request is a new operation",
        ),
        *handler_refusals("Received"),
    ),
)


SCU_CHART = make_scu_chart("c-echo-scu", "C-ECHO", "e.g. 0x0122, 0x0210-0x0212")

Handler = Callable[[Any], Any]
SendResponse = Callable[[Message], None]


class EchoScp(SingleResponseScp):
    """One C-ECHO-RQ being answered."""

    chart = SCP_CHART

    def __init__(self, request: Message, handler: Handler | None, event: Any, send: SendResponse):
        self.request = request
        self.handler = handler
        self.event = event
        self.send = send
        self.returned: object = None
        self.sent_status: int | None = None
        self.comment: str | None = None
        SCP_CHART.attach(self)

    def status_table(self) -> Mapping[int, object]:
        return st.VERIFICATION_STATUSES

    def run(self) -> int:
        """Answer the request; returns the status that was sent."""
        SCP_CHART.fire(self, "request_received")
        if self.state == "Handling":
            self.call_handler(self.handler, self.event)
        assert self.sent_status is not None
        return self.sent_status

    def no_sop_class(self, event: EventData) -> bool:
        return not self.request.command.get("AffectedSOPClassUID")

    def not_verification(self, event: EventData) -> bool:
        return bool(self.request.command.get("AffectedSOPClassUID") != VERIFICATION)

    def respond(self, event: EventData) -> None:
        status = self.status_for(event)
        command = echo_rsp(
            self.request.command.get("MessageID", 0),
            status,
            sop_class_uid=self.request.command.get("AffectedSOPClassUID") or None,
            error_comment=self.error_comment(status),
        )
        LOG.info(
            "C-ECHO (Message ID %s) answered 0x%04X", command["MessageIDBeingRespondedTo"], status
        )
        self.send(Message(self.request.context_id, command))


class EchoScu(SingleResponseScu):
    """One C-ECHO-RQ we sent, waiting for its response."""

    chart = SCU_CHART
