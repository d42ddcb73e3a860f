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

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext
from dimsefsm.datasets import DatasetDecodeError, decode_dataset
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import MAX_IDENTIFIER_LENGTH
from dimsefsm.fsm import Chart, transition

LOG = logging.getLogger("dimsefsm.scu")


def make_multi_scu_chart(
    name: str, request: str, running: str, *, pending_warning: bool, failures: str
) -> Chart:
    """Declare ``<service>-scu`` for a request answered by Pending responses then a final one."""
    sources = (running, "Cancelling")
    pending = [
        transition(
            "pending",
            "pending",
            sources,
            "=",
            status=st.PENDING,
            when="A Pending response (0xFF00) arrived; it is handed to the caller, "
            "the operation continues.",
        )
    ]
    if pending_warning:
        pending.append(
            transition(
                "pending_warning",
                "pending_warning",
                sources,
                "=",
                status=st.PENDING_WARNING,
                when="A Pending response with unsupported optional keys (0xFF01); continues.",
            )
        )
    return Chart(
        name=name,
        states=(
            "Idle",
            running,
            "Cancelling",
            "Succeeded",
            "Warned",
            "Cancelled",
            "Failed",
            "Aborted",
            "TimedOut",
        ),
        initial="Idle",
        final=("Succeeded", "Warned", "Cancelled", "Failed", "Aborted", "TimedOut"),
        doc=f"{request} SCU: PS3.2 Annex N, one row per status class.",
        transitions=(
            transition("send", "send", "Idle", running, when=f"The {request}-RQ was sent."),
            transition(
                "cancel",
                "cancel",
                running,
                "Cancelling",
                when=f"The caller asked to stop; a C-CANCEL for the {request} was sent.",
            ),
            *pending,
            transition(
                "success",
                "success",
                sources,
                "Succeeded",
                status=st.SUCCESS,
                when="The operation is complete (0x0000).",
            ),
            transition(
                "warning",
                "warning",
                sources,
                "Warned",
                when="A final Warning (e.g. 0xB000 some sub-operations failed).",
            ),
            transition(
                "cancelled",
                "cancelled",
                sources,
                "Cancelled",
                status=st.CANCEL,
                when="The operation was terminated due to cancel (0xFE00).",
            ),
            transition(
                "failure",
                "failure",
                sources,
                "Failed",
                when=f"A Failure: {failures}.",
            ),
            transition(
                "unknown_status",
                "unknown_status",
                sources,
                "Failed",
                when="Any other status code: reported to the caller, treated as a failure.",
            ),
            transition(
                "aborted",
                "aborted",
                sources,
                "Aborted",
                when="The association was aborted or the connection lost mid-operation.",
            ),
            transition(
                "timed_out",
                "timed_out",
                sources,
                "TimedOut",
                when="No response within the DIMSE timeout; the association is aborted.",
            ),
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
        self.chart.attach(self)

    @property
    def done(self) -> bool:
        return self.state in self.chart.final

    def sent(self) -> None:
        self.chart.fire(self, "send")

    def cancel_sent(self) -> None:
        self.chart.fire(self, "cancel")

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
        self.chart.fire(self, self._trigger(code))

    def _trigger(self, code: object) -> str:
        if code == st.PENDING:
            return "pending"
        if code == st.PENDING_WARNING and "pending_warning" in self.chart.triggers():
            return "pending_warning"
        if code == st.SUCCESS:
            return "success"
        if code == st.CANCEL:
            return "cancelled"
        category = st.category(code) if isinstance(code, int) else st.Category.UNKNOWN
        if category is st.Category.FAILURE:
            return "failure"
        if category is st.Category.WARNING:
            return "warning"
        LOG.warning("%s response with unknown status %r", self.chart.name, code)
        return "unknown_status"

    def on_abort(self) -> None:
        self.chart.fire(self, "aborted")

    def on_timeout(self) -> None:
        self.chart.fire(self, "timed_out")
