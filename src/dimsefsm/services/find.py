"""C-FIND: the SCP and SCU charts.

The SCP drives the handler's generator one response per :meth:`FindScp.step`;
the transport calls ``step`` between reads, so a C-CANCEL arriving while
matches are being sent moves the chart to *Cancelled* before the next
pending response, whether or not the handler looks at ``event.is_cancelled``.
Handlers keep pynetdicom's protocol: a generator of ``(status, identifier)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydicom import Dataset
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext
from dimsefsm.datasets import encode_dataset
from dimsefsm.dimse.commands import find_rsp
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import MAX_IDENTIFIER_LENGTH
from dimsefsm.fsm import Chart, Transition, transition
from dimsefsm.services.identifier import (
    IdentifierCheck,
    IdentifierScp,
    complete_table,
    declared,
    decoding_transitions,
    read_status,
    status_comment,
)
from dimsefsm.services.multi_response import MultiResponseScu, make_multi_scu_chart

LOG = logging.getLogger("dimsefsm.find")

_HANDLER_ENDS = "Matching"
_QR_LEVEL = 0x00080052  # Query/Retrieve Level

_YIELD = "response_yielded"


def _yielded(name: str, guard: str, dest: str, when: str, status: int | None = None) -> Transition:
    return transition(
        name,
        _YIELD,
        "Matching",
        dest,
        guard=guard,
        status=status,
        action="respond",
        label=f"{_YIELD} [{guard.replace('_', ' ')}]",
        when=when,
    )


_SCP_TRANSITIONS = (
    *decoding_transitions(
        "find",
        st.FIND_DECODE_FAILED,
        st.OUT_OF_RESOURCES,
        "The Query/Retrieve Level is missing or not in the model, a key above the "
        "level is not a unique key, or a key value is longer than its VR allows "
        "(PS3.5 6.2); ErrorComment says which.",
        "Matching",
    ),
    _yielded(
        "pending",
        "match",
        "Matching",
        "The handler yielded Pending (0xFF00) with an identifier that encodes.",
        st.PENDING,
    ),
    _yielded(
        "pending_warning",
        "match_with_warning",
        "Matching",
        "The handler yielded Pending (0xFF01: optional keys not supported) "
        "with an identifier that encodes.",
        st.PENDING_WARNING,
    ),
    _yielded(
        "unencodable",
        "identifier_unencodable",
        "Final",
        "A pending identifier is missing or cannot be encoded in the context's syntax.",
        st.FIND_ENCODE_FAILED,
    ),
    _yielded(
        "handler_success",
        "success_status",
        "Final",
        "The handler yielded Success itself; matching ends.",
        st.SUCCESS,
    ),
    _yielded(
        "handler_cancel",
        "cancel_status",
        "Cancelled",
        "The handler yielded Cancel (0xFE00).",
        st.CANCEL,
    ),
    _yielded(
        "handler_failure",
        "failure_status",
        "Final",
        "The handler yielded a Failure (A700, A900, 0122, Cxxx); sent as is.",
    ),
    _yielded(
        "no_status_element",
        "status_without_status_element",
        "Final",
        "The handler yielded a status Dataset without a Status element.",
        st.STATUS_DATASET_WITHOUT_STATUS,
    ),
    _yielded(
        "invalid_status",
        "not_a_status_pair",
        "Final",
        "The handler yielded something that is not a (status, identifier) pair "
        "with an int or Dataset status.",
        st.INVALID_STATUS_OBJECT,
    ),
    transition(
        "unknown_status",
        _YIELD,
        "Matching",
        "Final",
        action="respond_unknown_status",
        label=f"{_YIELD} [else]",
        when="The handler yielded a status no table defines; logged, sent as is, final.",
    ),
    transition(
        "exhausted",
        "handler_ended",
        "Matching",
        "Final",
        status=st.SUCCESS,
        action="respond",
        label="handler_ended",
        when="The handler has no more matches: the final Success.",
    ),
    transition(
        "handler_raised",
        "handler_raised",
        "Matching",
        "Final",
        status=st.FIND_HANDLER_FAILED,
        action="respond",
        label="handler_raised",
        when="The handler raised, on the call or between two yields.",
    ),
    transition(
        "cancelled",
        "cancel_received",
        "Matching",
        "Cancelled",
        status=st.CANCEL,
        action="cancelled",
        label="cancel_received",
        when="A C-CANCEL-FIND arrived between two responses: the Cancel response at once, "
        "and the handler is closed.",
    ),
    transition(
        "association_ended",
        "association_ended",
        "Matching",
        "Aborted",
        action="ended_by_association",
        label="association_ended",
        when="The association ended (released, aborted, connection lost) while matching: "
        "no response can go out; the handler is closed.",
    ),
)
_STATES = ("Decoding", "Matching", "Cancelled", "Final", "Aborted")
_OVER = "the final response has been sent (or the association is gone): the operation is over"

SCP_CHART = Chart(
    name="c-find-scp",
    states=_STATES,
    initial="Decoding",
    final=("Cancelled", "Final", "Aborted"),
    doc="C-FIND SCP: decode and check the identifier, then one response per handler yield.",
    transitions=_SCP_TRANSITIONS,
    refusals=complete_table(
        _STATES,
        _SCP_TRANSITIONS,
        {
            "Decoding": "the handler is called only once the request is decoded, and the "
            "operation is registered (for a C-CANCEL or the association's end) only then",
            "Matching": "the request was decoded already",
            "Cancelled": _OVER,
            "Final": _OVER,
            "Aborted": _OVER,
        },
    ),
)

SCU_CHART = make_multi_scu_chart(
    "c-find-scu",
    "C-FIND",
    "Matching",
    pending_warning=True,
    failures="0xA700 out of resources, 0xA900 identifier does not match, 0x0122, 0xCxxx",
)


class QueryEvent:
    """What a find/get/move handler sees (pynetdicom's names)."""

    def __init__(
        self,
        assoc: Any,
        request: Message,
        context: AcceptedContext,
        identifier: Dataset,
        op: Any,
        event: Any = None,
    ) -> None:
        from dimsefsm import evt

        self.assoc = assoc
        self.event = event or evt.EVT_C_FIND
        self.request = request
        self.context = context
        self.identifier = identifier
        self._op = op

    @property
    def message_id(self) -> int:
        return int(self.request.command.get("MessageID", 0))

    @property
    def is_cancelled(self) -> bool:
        """True once a C-CANCEL for this operation has been received."""
        return bool(self._op.cancel_requested)


FindEvent = QueryEvent


def check_find_identifier(
    sop_class_uid: str, identifier: Dataset
) -> tuple[int, str, tuple[int, ...]] | None:
    """The information model's rules for a C-FIND identifier (PS3.4 C.4.1.2)."""
    return _check(sop_class_uid, identifier)


def check_retrieve_identifier(
    sop_class_uid: str, identifier: Dataset
) -> tuple[int, str, tuple[int, ...]] | None:
    """The unique keys a C-GET/C-MOVE identifier needs (PS3.4 C.4.2.2.1, C.4.3.2.1)."""
    return _check(sop_class_uid, identifier)


def _check(sop_class_uid: str, identifier: Dataset) -> tuple[int, str, tuple[int, ...]] | None:
    from dimsefsm.qr.models import check_identifier
    from dimsefsm.qr.registry import lookup

    sop = lookup(sop_class_uid)
    if sop is None:
        return None
    problem = check_identifier(sop.model, identifier, sop.service)
    if problem is None:
        return None
    return problem.status, problem.comment, tuple(problem.offending)


class FindScp(IdentifierScp):
    """One C-FIND-RQ being answered, one response per step."""

    chart = SCP_CHART

    def __init__(
        self,
        request: Message,
        context: AcceptedContext | None,
        handler: Callable[[FindEvent], Any] | None,
        assoc: Any,
        send: Callable[[Message], None],
        check: IdentifierCheck | None = None,
        max_identifier_size: int = MAX_IDENTIFIER_LENGTH,
    ) -> None:
        super().__init__(request, context, handler, assoc, check, max_identifier_size)
        self.send = send
        self.matches = 0
        self.reply_identifier: bytes | None = None
        self.problem: str | None = None
        SCP_CHART.attach(self)

    def make_event(self, ctx: AcceptedContext) -> FindEvent:
        assert self.identifier is not None
        return FindEvent(self.assoc, self.request, ctx, self.identifier, self)

    # -- Matching ------------------------------------------------------------------------
    def step(self) -> None:
        """Send exactly one response: the next match, or the final status."""
        assert self.generator is not None
        try:
            item = next(self.generator)
        except StopIteration:
            self._fire("handler_ended")
            self.close()
            return
        except Exception as exc:
            self._raised(exc)
            return
        self._read(item)
        self._fire(_YIELD)
        if self.done:
            self.close()

    def cancel(self) -> None:
        """A C-CANCEL-FIND: the chart's ``cancel_received`` (the Cancel response goes at once)."""
        LOG.info("C-CANCEL-FIND received after %d matches", self.matches)
        self.cancel_requested = True
        self._fire("cancel_received")

    def _read(self, item: object) -> None:
        """The yield as the guards read it: its status, problem, and encoded identifier."""
        status, identifier, self.problem = read_status(item)
        self.reply_status = status
        self.reply_identifier = None
        self.comment = status_comment(item)
        if self.problem == "not_a_pair":
            self.comment = "the handler must yield (status, identifier) pairs"
        if status in (st.PENDING, st.PENDING_WARNING):
            self.reply_identifier = self._encode(identifier)

    def _encode(self, identifier: object) -> bytes | None:
        assert self.context is not None and self.identifier is not None
        if not isinstance(identifier, Dataset):
            self.comment = "a pending response needs an identifier Dataset"
            return None
        # Tag ints against keys(): a keyword lookup costs more than the rest of the encoding.
        if _QR_LEVEL in self.identifier.keys() and _QR_LEVEL not in identifier.keys():  # noqa: SIM118
            identifier = Dataset(identifier)  # echo the level without touching the caller's
            identifier.QueryRetrieveLevel = self.identifier.QueryRetrieveLevel
        try:
            return encode_dataset(identifier, self.context.transfer_syntax)
        except Exception as exc:
            LOG.warning("C-FIND identifier cannot be encoded: %s", exc)
            self.comment = f"identifier cannot be encoded: {exc}"
            return None

    # -- the guards of response_yielded ---------------------------------------------------
    def match(self, _: EventData) -> bool:
        return self.reply_status == st.PENDING and self.reply_identifier is not None

    def match_with_warning(self, _: EventData) -> bool:
        return self.reply_status == st.PENDING_WARNING and self.reply_identifier is not None

    def identifier_unencodable(self, _: EventData) -> bool:
        return self.reply_status in (st.PENDING, st.PENDING_WARNING)

    def success_status(self, _: EventData) -> bool:
        return self.reply_status == st.SUCCESS

    def cancel_status(self, _: EventData) -> bool:
        return self.reply_status == st.CANCEL

    def failure_status(self, _: EventData) -> bool:
        status = self.reply_status
        return (
            status is not None
            and status in st.QR_FIND_STATUSES
            and st.category(status) is st.Category.FAILURE
        )

    def status_without_status_element(self, _: EventData) -> bool:
        return self.problem == "no_status_element"

    def not_a_status_pair(self, _: EventData) -> bool:
        return self.problem in ("not_a_pair", "invalid_status")

    def respond_unknown_status(self, event: EventData) -> None:
        LOG.warning("C-FIND handler yielded unknown status 0x%04X; sent as is", self.reply_status)
        self.respond(event)

    def respond(self, event: EventData) -> None:
        code = declared(SCP_CHART, event).status
        status = self.reply_status if code is None else code
        assert status is not None
        if st.is_pending(status):
            self.matches += 1
        identifier = self.reply_identifier if st.is_pending(status) else None
        self.reply_identifier = None
        comment = self.comment if not st.is_pending(status) and status else None
        cmd = self.request.command
        self.send(
            Message(
                self.request.context_id,
                find_rsp(
                    cmd.get("MessageID", 0),
                    status,
                    sop_class_uid=cmd.get("AffectedSOPClassUID") or None,
                    has_identifier=identifier is not None,
                    offending_element=self.offending if status != st.SUCCESS else None,
                    error_comment=comment[:64] if comment else None,
                ),
                identifier,
            )
        )
        if not st.is_pending(status):
            LOG.info(
                "C-FIND (Message ID %s) ended 0x%04X after %d matches",
                cmd.get("MessageID"),
                status,
                self.matches,
            )


class FindScu(MultiResponseScu):
    """One C-FIND-RQ we sent: collects (status, identifier) pairs for the caller."""

    chart = SCU_CHART
