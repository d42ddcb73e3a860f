"""Operations answered by a stream of responses (C-FIND, C-GET, C-MOVE): the SCU side.

PS3.2 Tables N.7-48/49 describe the same behaviour for all three: Pending
continues, each final status class ends, a cancel can be requested while
responses still arrive, and anything unknown is reported, not crashed on.
One factory declares that chart per service.
"""

from __future__ import annotations

import logging
from collections import deque

from pydicom import Dataset
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext
from dimsefsm.datasets import DatasetDecodeError, decode_dataset
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import MAX_IDENTIFIER_LENGTH
from dimsefsm.fsm import Chart, Refusal, transition
from dimsefsm.services.single_response import category_of

LOG = logging.getLogger("dimsefsm.scu")


FINAL = ("Succeeded", "Warned", "Cancelled", "Failed", "Aborted", "TimedOut")
_UNSENT = (
    "the request goes out as soon as the operation is registered with the engine, in the same "
    "call: no association event can come in between"
)
_OVER = "the operation is over: the engine routed its final response and forgot its Message ID"


def make_multi_scu_chart(
    name: str, request: str, running: str, *, pending_warning: bool, failures: str
) -> Chart:
    """Declare ``<service>-scu`` for a request answered by Pending responses then a final one.

    ``running`` names the state between the request and the final response
    (Matching, Retrieving); ``pending_warning`` declares 0xFF01 (C-FIND only:
    elsewhere it is a status no table defines).
    """
    sources = (running, "Cancelling")
    pending = [
        transition(
            "pending",
            "response_received",
            sources,
            "=",
            guard="pending_status",
            status=st.PENDING,
            when="A Pending response (0xFF00) arrived; it is handed to the caller, "
            "the operation continues.",
        )
    ]
    if pending_warning:
        pending.append(
            transition(
                "pending_warning",
                "response_received",
                sources,
                "=",
                guard="pending_warning_status",
                status=st.PENDING_WARNING,
                when="A Pending response with unsupported optional keys (0xFF01); continues.",
            )
        )
    return Chart(
        name=name,
        states=("Idle", running, "Cancelling", *FINAL),
        initial="Idle",
        final=FINAL,
        doc=f"{request} SCU: PS3.2 Annex N, one row per status class.",
        transitions=(
            transition("send", "request_sent", "Idle", running, when=f"The {request}-RQ was sent."),
            transition(
                "cancel",
                "cancel_sent",
                running,
                "Cancelling",
                when=f"The caller asked to stop; a C-CANCEL for the {request} was sent.",
            ),
            *pending,
            transition(
                "success",
                "response_received",
                sources,
                "Succeeded",
                guard="success_status",
                status=st.SUCCESS,
                when="The operation is complete (0x0000).",
            ),
            transition(
                "warning",
                "response_received",
                sources,
                "Warned",
                guard="warning_status",
                when="A final Warning (e.g. 0xB000 some sub-operations failed).",
            ),
            transition(
                "cancelled",
                "response_received",
                sources,
                "Cancelled",
                guard="cancel_status",
                status=st.CANCEL,
                when="The operation was terminated due to cancel (0xFE00).",
            ),
            transition(
                "failure",
                "response_received",
                sources,
                "Failed",
                guard="failure_status",
                when=f"A Failure: {failures}.",
            ),
            transition(
                "unknown_status",
                "response_received",
                sources,
                "Failed",
                action="log_unknown_status",
                when="Any other status code: reported to the caller, treated as a failure.",
            ),
            transition(
                "aborted",
                "association_lost",
                sources,
                "Aborted",
                when="The association was aborted or the connection lost mid-operation.",
            ),
            transition(
                "timed_out",
                "timer_expired",
                sources,
                "TimedOut",
                when="No response within the DIMSE timeout; the association is aborted.",
            ),
        ),
        refusals=(
            Refusal(
                "request_sent",
                (*sources, *FINAL),
                "one operation carries one request; a new request is a new operation",
            ),
            Refusal("cancel_sent", ("Idle",), "there is no request to cancel yet"),
            Refusal(
                "cancel_sent",
                ("Cancelling",),
                "the C-CANCEL is already sent; the caller is not offered to cancel twice",
            ),
            Refusal("association_lost", ("Idle",), _UNSENT),
            Refusal("cancel_sent", FINAL, "the final response arrived: nothing is left to cancel"),
            Refusal(
                "response_received",
                ("Idle",),
                "no request went out, so no response can name this operation's Message ID",
            ),
            Refusal("response_received", FINAL, _OVER),
            Refusal("association_lost", FINAL, _OVER),
            Refusal(
                "timer_expired",
                ("Idle",),
                "the DIMSE timer starts when the request is sent: nothing is awaited yet",
            ),
            Refusal("timer_expired", FINAL, "the operation is over; no timer runs for it"),
        ),
    )


class MultiResponseScu:
    """An operation we started: collects (status, identifier) pairs for the caller."""

    chart: Chart
    state: str
    trace_label = ""  # the engine names the association when the operation starts

    def __init__(
        self,
        message_id: int,
        context: AcceptedContext,
        max_identifier_size: int = MAX_IDENTIFIER_LENGTH,
    ) -> None:
        self.message_id = message_id
        self.context = context
        self.max_identifier_size = max_identifier_size  # inflated identifiers stop here
        self.results: deque[tuple[Dataset, Dataset | None]] = deque()
        self.last_status: object = None
        self.chart.attach(self)

    @property
    def done(self) -> bool:
        return self.state in self.chart.final

    def sent(self) -> None:
        self.chart.fire(self, "request_sent")

    def cancel_sent(self) -> None:
        self.chart.fire(self, "cancel_sent")

    def on_response(self, message: Message) -> None:
        cmd = message.command
        code = cmd.get("Status")
        status = Dataset()
        status.Status = code
        for keyword in (
            "ErrorComment",
            "OffendingElement",
            "NumberOfRemainingSuboperations",
            "NumberOfCompletedSuboperations",
            "NumberOfFailedSuboperations",
            "NumberOfWarningSuboperations",
        ):
            if cmd.get(keyword) is not None:
                value = cmd[keyword]
                setattr(status, keyword, list(value) if isinstance(value, tuple) else value)
        identifier = None
        if message.discarded_length is not None:
            LOG.warning(
                "%s response identifier of %d bytes dropped: over the maximum identifier size",
                self.chart.name,
                message.discarded_length,
            )
        elif message.dataset is not None:
            try:
                identifier = decode_dataset(
                    message.dataset,
                    self.context.transfer_syntax,
                    convert_values=False,
                    max_length=self.max_identifier_size,
                )
            except DatasetDecodeError as exc:
                LOG.warning("%s response identifier cannot be decoded: %s", self.chart.name, exc)
        self.results.append((status, identifier))
        self.last_status = code
        self.chart.fire(self, "response_received")

    # -- guards: the class of the status that arrived ------------------------------------
    def pending_status(self, event: EventData) -> bool:
        return self.last_status == st.PENDING

    def pending_warning_status(self, event: EventData) -> bool:
        return self.last_status == st.PENDING_WARNING

    def success_status(self, event: EventData) -> bool:
        return self.last_status == st.SUCCESS

    def cancel_status(self, event: EventData) -> bool:
        return self.last_status == st.CANCEL

    def warning_status(self, event: EventData) -> bool:
        return category_of(self.last_status) is st.Category.WARNING

    def failure_status(self, event: EventData) -> bool:
        return category_of(self.last_status) is st.Category.FAILURE

    def log_unknown_status(self, event: EventData) -> None:
        LOG.warning("%s response with unknown status %r", self.chart.name, self.last_status)

    def on_abort(self) -> None:
        self.chart.fire(self, "association_lost")

    def on_timeout(self) -> None:
        self.chart.fire(self, "timer_expired")
