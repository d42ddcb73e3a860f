"""Verification (C-ECHO): the smallest service, and the template for the others.

Each operation is a model attached to a chart.  The code around the chart only
classifies what happened (what the handler returned, which status arrived);
the chart decides where that leads and which status goes on the wire, so the
diagram and the behaviour cannot drift apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydicom import Dataset
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.dimse.commands import echo_rsp
from dimsefsm.dimse.message import Message
from dimsefsm.fsm import Chart, transition
from dimsefsm.services.single_response import SingleResponseScu, make_scu_chart
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
            "mistyped",
            "Received",
            "Final",
            status=st.MISTYPED_ARGUMENT,
            when="The request lacks its Affected SOP Class UID.",
            action="respond",
        ),
        transition(
            "not_verification",
            "not_verification",
            "Received",
            "Final",
            status=st.SOP_CLASS_NOT_SUPPORTED,
            action="respond",
            when="The Affected SOP Class UID is not the context's Verification SOP class.",
        ),
        transition(
            "accepted",
            "accepted",
            "Received",
            "Handling",
            when="The request is a well-formed Verification request.",
        ),
        transition(
            "success",
            "success",
            "Handling",
            "Final",
            status=st.SUCCESS,
            action="respond",
            when="No handler is bound, or the handler returned Success.",
        ),
        transition(
            "handler_status",
            "handler_status",
            "Handling",
            "Final",
            action="respond",
            when="The handler returned a status the Verification service defines; sent as is.",
        ),
        transition(
            "unknown_status",
            "unknown_status",
            "Handling",
            "Final",
            action="respond",
            when="The handler returned a status no table defines; logged and sent as is.",
        ),
        transition(
            "no_status_element",
            "no_status_element",
            "Handling",
            "Final",
            status=st.STATUS_DATASET_WITHOUT_STATUS,
            action="respond",
            when="The handler returned a Dataset without a Status element.",
        ),
        transition(
            "invalid_status",
            "invalid_status",
            "Handling",
            "Final",
            status=st.INVALID_STATUS_OBJECT,
            action="respond",
            when="The handler returned something that is neither an int nor a Dataset.",
        ),
        transition(
            "handler_raised",
            "handler_raised",
            "Handling",
            "Final",
            status=st.PROCESSING_FAILURE,
            action="respond",
            when="The handler raised an exception; its text goes in ErrorComment.",
        ),
    ),
)


SCU_CHART = make_scu_chart("c-echo-scu", "C-ECHO", "e.g. 0x0122, 0x0210-0x0212")

Handler = Callable[[Any], Any]
SendResponse = Callable[[Message], None]


def status_dataset(code: int, comment: str | None = None) -> Dataset:
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment[:64]
    return ds


class EchoScp:
    """One C-ECHO-RQ being answered."""

    state: str

    def __init__(self, request: Message, handler: Handler | None, event: Any, send: SendResponse):
        self.request = request
        self.handler = handler
        self.event = event
        self.send = send
        self.handler_status: int | None = None
        self.sent_status: int | None = None
        self.comment: str | None = None
        SCP_CHART.attach(self)

    def run(self) -> int:
        """Answer the request; returns the status that was sent."""
        cmd = self.request.command
        sop_class = cmd.get("AffectedSOPClassUID")
        if not sop_class:
            return self._fire("mistyped")
        if sop_class != VERIFICATION:
            return self._fire("not_verification")
        SCP_CHART.fire(self, "accepted")
        if self.handler is None:
            return self._fire("success")
        try:
            result = self.handler(self.event)
        except Exception as exc:
            LOG.exception("C-ECHO handler raised")
            self.comment = f"handler raised {type(exc).__name__}: {exc}"
            return self._fire("handler_raised")
        return self._fire(self._classify(result))

    def _classify(self, result: object) -> str:
        if isinstance(result, Dataset):
            if "Status" not in result:
                return "no_status_element"
            self.comment = result.get("ErrorComment")
            result = result.Status
        if isinstance(result, bool) or not isinstance(result, int):
            return "invalid_status"
        self.handler_status = result
        if result == st.SUCCESS:
            return "success"
        if result in st.VERIFICATION_STATUSES:
            return "handler_status"
        LOG.warning("C-ECHO handler returned unknown status 0x%04X; sent as is", result)
        return "unknown_status"

    def _fire(self, trigger: str) -> int:
        SCP_CHART.fire(self, trigger)
        assert self.sent_status is not None
        return self.sent_status

    def respond(self, event: EventData) -> None:
        code = SCP_CHART.status_of(event.event.name)
        status = self.handler_status if code is None else code
        assert status is not None
        self.sent_status = status
        comment = self.comment if status != st.SUCCESS else None
        command = echo_rsp(
            self.request.command.get("MessageID", 0),
            status,
            sop_class_uid=self.request.command.get("AffectedSOPClassUID") or None,
            error_comment=comment[:64] if comment else None,
        )
        LOG.info(
            "C-ECHO (Message ID %s) answered 0x%04X", command["MessageIDBeingRespondedTo"], status
        )
        self.send(Message(self.request.context_id, command))


class EchoScu(SingleResponseScu):
    """One C-ECHO-RQ we sent, waiting for its response."""

    chart = SCU_CHART
