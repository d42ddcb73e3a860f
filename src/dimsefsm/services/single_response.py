"""Operations answered by exactly one response (C-ECHO, C-STORE): shared chart parts.

Both services decide the same things, and the charts show where: the SCU
receives one response (or loses the association, or times out) and its
guards sort the status into a category; the SCP runs a handler and its
guards sort what the handler returned (or that it raised) into the status to
send.  The Python around the charts only turns messages and handler results
into inputs; one factory declares each shape, and each service gets its own
named chart, diagram and coverage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from transitions import EventData

from dimsefsm import status as st
from dimsefsm.dimse.message import Message
from dimsefsm.fsm import Chart, Refusal, Transition, transition

if TYPE_CHECKING:
    from pydicom import Dataset

LOG = logging.getLogger("dimsefsm.scu")

SCU_FINAL = ("Succeeded", "Warned", "Failed", "Aborted", "TimedOut")
_UNSENT = (
    "the request goes out as soon as the operation is registered with the engine, in the same "
    "call: no association event can come in between"
)
_OVER = "the operation is over: the engine routed its one response and forgot its Message ID"


def make_scu_chart(
    name: str, request: str, failures: str, named: Sequence[Transition] = ()
) -> Chart:
    """Declare ``<service>-scu``: one request out, one final status back.

    ``named``: ``response_received`` transitions for statuses the service names
    (the DIMSE-N charts' general codes), tried after Success and before the
    category fallbacks.
    """
    return Chart(
        name=name,
        states=("Idle", "Awaiting", *SCU_FINAL),
        initial="Idle",
        final=SCU_FINAL,
        doc=f"{request} SCU: what the caller sees for every status category.",
        transitions=(
            transition(
                "send", "request_sent", "Idle", "Awaiting", when=f"The {request}-RQ was sent."
            ),
            transition(
                "success",
                "response_received",
                "Awaiting",
                "Succeeded",
                guard="success_status",
                status=st.SUCCESS,
                when="The peer answered Success (0x0000).",
            ),
            *named,
            transition(
                "warning",
                "response_received",
                "Awaiting",
                "Warned",
                guard="warning_status",
                when="The peer answered a Warning-class status; the caller gets it as is.",
            ),
            transition(
                "failure",
                "response_received",
                "Awaiting",
                "Failed",
                guard="failure_status",
                when=f"The peer answered a Failure-class status ({failures}).",
            ),
            transition(
                "unknown_status",
                "response_received",
                "Awaiting",
                "Failed",
                action="log_unknown_status",
                when="The peer answered a status no table defines (or none); logged, treated "
                "as failure.",
            ),
            transition(
                "aborted",
                "association_lost",
                "Awaiting",
                "Aborted",
                when="The association was aborted or the connection lost before the response.",
            ),
            transition(
                "timed_out",
                "timer_expired",
                "Awaiting",
                "TimedOut",
                when="No response within the DIMSE timeout; the association is aborted.",
            ),
        ),
        refusals=(
            Refusal(
                "request_sent",
                ("Awaiting", *SCU_FINAL),
                "one operation carries one request; a new request is a new operation",
            ),
            Refusal(
                "response_received",
                ("Idle",),
                "no request went out, so no response can name this operation's Message ID",
            ),
            Refusal("response_received", SCU_FINAL, _OVER),
            Refusal("association_lost", ("Idle",), _UNSENT),
            Refusal("association_lost", SCU_FINAL, _OVER),
            Refusal(
                "timer_expired",
                ("Idle",),
                "the DIMSE timer starts when the request is sent: nothing is awaited yet",
            ),
            Refusal("timer_expired", SCU_FINAL, "the operation is over; no timer runs for it"),
        ),
    )


def status_code(message: Message | None) -> object:
    """The Status of a response command, whatever its type (None when absent)."""
    return None if message is None else message.command.get("Status")


def category_of(code: object) -> st.Category:
    """The status class of a received code; anything but a 16-bit int is UNKNOWN."""
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 0xFFFF:
        return st.category(code)
    return st.Category.UNKNOWN


class SingleResponseScu:
    """An operation we started that ends with the first response."""

    chart: Chart
    state: str
    trace_label = ""  # the engine names the association when the operation starts
    status_keywords: tuple[str, ...] = ("ErrorComment", "OffendingElement", "ErrorID")
    """The response's fields copied into :meth:`result`'s status Dataset besides Status."""

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self.response: Message | None = None
        self.chart.attach(self)

    @property
    def done(self) -> bool:
        return self.state in self.chart.final

    # -- inputs ---------------------------------------------------------------------
    def sent(self) -> None:
        self.chart.fire(self, "request_sent")

    def on_response(self, message: Message) -> None:
        self.response = message
        self.chart.fire(self, "response_received")

    def on_abort(self) -> None:
        self.chart.fire(self, "association_lost")

    def on_timeout(self) -> None:
        self.chart.fire(self, "timer_expired")

    # -- guards and actions -----------------------------------------------------------
    def success_status(self, event: EventData) -> bool:
        return status_code(self.response) == st.SUCCESS

    def warning_status(self, event: EventData) -> bool:
        return category_of(status_code(self.response)) is st.Category.WARNING

    def failure_status(self, event: EventData) -> bool:
        return category_of(status_code(self.response)) is st.Category.FAILURE

    def log_unknown_status(self, event: EventData) -> None:
        LOG.warning("%s response with unknown status %r", self.chart.name, self.status)

    @property
    def status(self) -> int | None:
        """The response's Status, None if no response came."""
        return None if self.response is None else self.response.command.get("Status")

    def result(self) -> Dataset:
        """pynetdicom's convention: the status Dataset, empty if no response came."""
        from pydicom import Dataset  # only callers of the pynetdicom API pay for pydicom

        ds = Dataset()
        if self.response is not None:
            cmd = self.response.command
            ds.Status = cmd.get("Status")
            for keyword in self.status_keywords:
                if cmd.get(keyword) is not None:
                    value = cmd[keyword]
                    setattr(ds, keyword, list(value) if isinstance(value, tuple) else value)
        return ds


# -- the SCP side: how a handler's answer becomes the one response -----------------
def is_dataset(value: object) -> TypeGuard[Dataset]:
    """Whether a handler returned a pydicom Dataset (pydicom loads here, not at import)."""
    from pydicom import Dataset

    return isinstance(value, Dataset)


def handler_outcomes(
    known: dict[str, str], raised_status: int, raised_when: str
) -> tuple[Transition, ...]:
    """Handling -> Final transitions shared by single-response SCP charts.

    ``known`` maps the status categories the service's table defines
    ("warning", "failure") to the sentence saying which codes those are; each
    becomes a transition guarded by ``<category>_status``.  The order is the
    order the guards are tried in: Success first (the common case costs one
    guard), the fallback ``unknown_status`` last.
    """
    return (
        transition(
            "success",
            "handler_returned",
            "Handling",
            "Final",
            guard="success_status",
            status=st.SUCCESS,
            action="respond",
            when="No handler is bound, or the handler returned Success.",
        ),
        transition(
            "no_status_element",
            "handler_returned",
            "Handling",
            "Final",
            guard="no_status_element",
            status=st.STATUS_DATASET_WITHOUT_STATUS,
            action="respond",
            when="The handler returned a Dataset without a Status element.",
        ),
        transition(
            "invalid_status",
            "handler_returned",
            "Handling",
            "Final",
            guard="not_a_status",
            status=st.INVALID_STATUS_OBJECT,
            action="respond",
            when="The handler returned something that is neither an int nor a Dataset "
            "with an int Status.",
        ),
        *(
            transition(
                name,
                "handler_returned",
                "Handling",
                "Final",
                guard=f"{name}_status",
                action="respond",
                when=when,
            )
            for name, when in known.items()
        ),
        transition(
            "unknown_status",
            "handler_returned",
            "Handling",
            "Final",
            action="respond",
            when="The handler returned a status no table of the service defines; logged and "
            "sent as is.",
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


def handler_refusals(received: str) -> tuple[Refusal, ...]:
    """The pairs no single-response SCP accepts, ``received`` being its first state."""
    handling = "the handler runs only for a request that passed the checks"
    answered = "the one response is sent: the operation is over"
    return (
        Refusal("handler_returned", (received,), handling),
        Refusal("handler_raised", (received,), handling),
        Refusal("handler_returned", ("Final",), answered),
        Refusal("handler_raised", ("Final",), answered),
    )


class SingleResponseScp:
    """Runs a handler and gives what it returned (or raised) to the chart as an input."""

    chart: Chart
    state: str
    trace_label = ""  # set by the dispatcher: the association, for the transcript
    comment: str | None
    sent_status: int | None
    returned: object  # what the handler returned; SUCCESS when no handler is bound

    def status_table(self) -> Mapping[int, object]:
        raise NotImplementedError

    def call_handler(self, handler: Callable[[Any], Any] | None, event: Any) -> None:
        """Run the handler and fire what it did: ``handler_returned`` or ``handler_raised``."""
        if handler is None:
            self.returned = st.SUCCESS
            self.chart.fire(self, "handler_returned")
            return
        try:
            self.returned = handler(event)
        except Exception as exc:
            LOG.exception("%s handler raised", self.chart.name)
            self.comment = f"handler raised {type(exc).__name__}: {exc}"
            self.chart.fire(self, "handler_raised")
            return
        self.chart.fire(self, "handler_returned")

    # -- guards on what the handler returned ------------------------------------------
    def returned_status(self) -> object:
        """The handler's status: the int it returned, or its Dataset's Status."""
        result = self.returned
        if is_dataset(result):
            return result.get("Status")
        return result

    def no_status_element(self, event: EventData) -> bool:
        return is_dataset(self.returned) and "Status" not in self.returned

    def not_a_status(self, event: EventData) -> bool:
        code = self.returned_status()
        return isinstance(code, bool) or not isinstance(code, int)

    def success_status(self, event: EventData) -> bool:
        code = self.returned_status()
        return code == st.SUCCESS and isinstance(code, int) and not isinstance(code, bool)

    def warning_status(self, event: EventData) -> bool:
        return self._known(st.Category.WARNING)

    def failure_status(self, event: EventData) -> bool:
        return self._known(st.Category.FAILURE)

    def _known(self, category: st.Category) -> bool:
        code = self.returned_status()
        return (
            isinstance(code, int) and code in self.status_table() and st.category(code) is category
        )

    # -- what goes out -----------------------------------------------------------------
    def status_for(self, event: EventData) -> int:
        """The status a transition sends: its declared code, else what the handler said."""
        declared = self.chart.declared(event)
        if declared.status is not None:
            status = declared.status
        else:
            code = self.returned_status()
            assert isinstance(code, int)
            status = code
            if is_dataset(self.returned):
                self.comment = self.returned.get("ErrorComment")
            if declared.name == "unknown_status" or (
                status != st.SUCCESS and status not in self.status_table()
            ):
                LOG.warning(
                    "%s handler returned unknown status 0x%04X; sent as is",
                    self.chart.name,
                    status,
                )
        self.sent_status = status
        return status

    def error_comment(self, status: int) -> str | None:
        return self.comment[:64] if self.comment and status != st.SUCCESS else None
