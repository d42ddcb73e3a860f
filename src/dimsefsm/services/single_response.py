"""SCU charts for operations answered by exactly one response (C-ECHO, C-STORE).

Both services decide the same thing for the caller: which status category
arrived, or that none did (abort, timeout).  One factory declares the shape;
each service gets its own named chart, diagram and coverage.
"""

from __future__ import annotations

import logging

from pydicom import Dataset

from dimsefsm import status as st
from dimsefsm.dimse.message import Message
from dimsefsm.fsm import Chart, transition

LOG = logging.getLogger("dimsefsm.scu")


def make_scu_chart(name: str, request: str, failures: str) -> Chart:
    """Declare ``<service>-scu``: one request out, one final status back."""
    return Chart(
        name=name,
        states=("Idle", "Awaiting", "Succeeded", "Warned", "Failed", "Aborted", "TimedOut"),
        initial="Idle",
        final=("Succeeded", "Warned", "Failed", "Aborted", "TimedOut"),
        doc=f"{request} SCU: what the caller sees for every status category.",
        transitions=(
            transition("send", "send", "Idle", "Awaiting", when=f"The {request}-RQ was sent."),
            transition(
                "success",
                "success",
                "Awaiting",
                "Succeeded",
                status=st.SUCCESS,
                when="The peer answered Success (0x0000).",
            ),
            transition(
                "warning",
                "warning",
                "Awaiting",
                "Warned",
                when="The peer answered a Warning-class status; the caller gets it as is.",
            ),
            transition(
                "failure",
                "failure",
                "Awaiting",
                "Failed",
                when=f"The peer answered a Failure-class status ({failures}).",
            ),
            transition(
                "unknown_status",
                "unknown_status",
                "Awaiting",
                "Failed",
                when="The peer answered a status no table defines; logged, treated as failure.",
            ),
            transition(
                "aborted",
                "aborted",
                "Awaiting",
                "Aborted",
                when="The association was aborted or the connection lost before the response.",
            ),
            transition(
                "timed_out",
                "timed_out",
                "Awaiting",
                "TimedOut",
                when="No response within the DIMSE timeout; the association is aborted.",
            ),
        ),
    )


class SingleResponseScu:
    """An operation we started that ends with the first response."""

    chart: Chart
    state: str

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self.response: Message | None = None
        self.chart.attach(self)

    @property
    def done(self) -> bool:
        return self.state in self.chart.final

    def sent(self) -> None:
        self.chart.fire(self, "send")

    def on_response(self, message: Message) -> None:
        self.response = message
        code = message.command.get("Status", -1)
        category = st.category(code) if isinstance(code, int) and code >= 0 else None
        if code == st.SUCCESS:
            trigger = "success"
        elif category is st.Category.WARNING:
            trigger = "warning"
        elif category is st.Category.FAILURE:
            trigger = "failure"
        else:
            LOG.warning("%s response with unknown status %r", self.chart.name, code)
            trigger = "unknown_status"
        self.chart.fire(self, trigger)

    def on_abort(self) -> None:
        self.chart.fire(self, "aborted")

    def on_timeout(self) -> None:
        self.chart.fire(self, "timed_out")

    def result(self) -> Dataset:
        """pynetdicom's convention: the status Dataset, empty if no response came."""
        ds = Dataset()
        if self.response is not None:
            cmd = self.response.command
            ds.Status = cmd.get("Status")
            for keyword in ("ErrorComment", "OffendingElement", "ErrorID"):
                if cmd.get(keyword) is not None:
                    setattr(ds, keyword, cmd[keyword])
        return ds
