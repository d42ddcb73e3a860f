"""Operations answered by exactly one response (C-ECHO, C-STORE): shared chart parts.

Both services decide the same thing for the caller: which status category
arrived, or that none did (abort, timeout).  One factory declares the shape;
each service gets its own named chart, diagram and coverage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydicom import Dataset
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.dimse.message import Message
from dimsefsm.fsm import Chart, Transition, transition

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
    trace_label = ""  # the engine names the association when the operation starts

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

    @property
    def status(self) -> int | None:
        """The response's Status, None if no response came."""
        return None if self.response is None else self.response.command.get("Status")

    def result(self) -> Dataset:
        """pynetdicom's convention: the status Dataset, empty if no response came."""
        ds = Dataset()
        if self.response is not None:
            cmd = self.response.command
            ds.Status = cmd.get("Status")
            for keyword in ("ErrorComment", "OffendingElement", "ErrorID"):
                if cmd.get(keyword) is not None:
                    value = cmd[keyword]
                    setattr(ds, keyword, list(value) if isinstance(value, tuple) else value)
        return ds


# -- the SCP side: how a handler's answer becomes the one response -----------------
def handler_outcomes(
    known: dict[str, str], raised_status: int, raised_when: str
) -> tuple[Transition, ...]:
    """Handling -> Final transitions shared by single-response SCP charts.

    ``known`` maps the status categories the service's table defines
    ("warning", "failure") to the sentence saying which codes those are.
    """
    return (
        transition(
            "success",
            "success",
            "Handling",
            "Final",
            status=st.SUCCESS,
            action="respond",
            when="No handler is bound, or the handler returned Success.",
        ),
        *(
            transition(name, name, "Handling", "Final", action="respond", when=when)
            for name, when in known.items()
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
            status=raised_status,
            action="respond",
            when=raised_when,
        ),
    )


class SingleResponseScp:
    """Runs a handler and turns what it returned into the trigger of the chart."""

    chart: Chart
    state: str
    trace_label = ""  # set by the dispatcher: the association, for the transcript
    handler_status: int | None
    comment: str | None
    sent_status: int | None

    def status_table(self) -> Mapping[int, object]:
        raise NotImplementedError

    def call_handler(self, handler: Callable[[Any], Any], event: Any) -> str:
        """The trigger for whatever the handler did: returned something, or raised."""
        try:
            result = handler(event)
        except Exception as exc:
            LOG.exception("%s handler raised", self.chart.name)
            self.comment = f"handler raised {type(exc).__name__}: {exc}"
            return "handler_raised"
        return self.classify(result)

    def classify(self, result: object) -> str:
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
        category = st.category(result)
        if result in self.status_table():
            name = category.name.lower()
            if any(t.trigger == name for t in self.chart.transitions):
                return name
        LOG.warning(
            "%s handler returned unknown status 0x%04X; sent as is", self.chart.name, result
        )
        return "unknown_status"

    def fire(self, trigger: str) -> int:
        self.chart.fire(self, trigger)
        assert self.sent_status is not None
        return self.sent_status

    def status_for(self, event: EventData) -> int:
        """The status a transition sends: its declared code, else what the handler said."""
        code = self.chart.status_of(event.event.name)
        status = self.handler_status if code is None else code
        assert status is not None
        self.sent_status = status
        return status

    def error_comment(self, status: int) -> str | None:
        return self.comment[:64] if self.comment and status != st.SUCCESS else None
