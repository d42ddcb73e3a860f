"""The six DIMSE-N operations (PS3.7 10.1): one SCU and one SCP chart each.

N-EVENT-REPORT, N-GET, N-SET, N-ACTION, N-CREATE and N-DELETE are all
answered by exactly one response, so they take the single-response shape of
C-ECHO and C-STORE: the SCU's guards sort the received status into a
category, the SCP's guards sort what the handler returned.  What they add is
the general statuses of PS3.7 Annex C that each operation's table lists
(0x0112 No such SOP instance, 0x0123 No such action, ...): each is a named
transition on both sides, so the diagram, the conformance statement and the
coverage gate show which of them were seen.  The services built on these
(Storage Commitment, MPPS, UPS) keep their own state models; the operation
charts here only carry one request to its one response.

Handlers are pynetdicom's: an ``EVT_N_*`` handler gets an :class:`NEvent`
and returns ``(status, dataset | None)`` (N-DELETE: the status alone);
``status`` is an int or a Dataset with Status and, as the answer needs,
ErrorComment, ErrorID and AttributeIdentifierList.  A request on an
association we requested is answered the same way (the requestor answers the
N-EVENT-REPORTs its peer sends).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from transitions import EventData

from dimsefsm import evt
from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext
from dimsefsm.dimse.commands import N_REQUEST_CLASS_KEY, CommandField, n_rsp
from dimsefsm.dimse.message import Message
from dimsefsm.fsm import Chart, Refusal, Transition, transition
from dimsefsm.services.single_response import (
    SingleResponseScp,
    SingleResponseScu,
    category_of,
    is_dataset,
    make_scu_chart,
)
from dimsefsm.sop_class import META_SOP_CLASSES
from dimsefsm.uid import uid_problem

if TYPE_CHECKING:
    from pydicom import Dataset
    from pydicom.tag import BaseTag

    from dimsefsm.engine import AssociationEngine

LOG = logging.getLogger("dimsefsm.normalized")


@dataclass(frozen=True, slots=True)
class NOperation:
    """What tells one DIMSE-N operation from another."""

    name: str  # "N-ACTION"
    request: CommandField
    response: CommandField
    event: evt.EventType
    service: st.Service
    data_in: str | None
    """The NEvent attribute holding the request's data set; None: the request has none."""
    data_in_required: bool
    """The request's data set is mandatory (N-SET's Modification List)."""
    replies: bool
    """The handler returns ``(status, dataset)``; False: the status alone (N-DELETE)."""
    any_role: bool
    """Answered on a context of either role (N-EVENT-REPORT: the SOP class's SCP reports
    to its SCU); the others only where we may act as SCP."""
    type_id: str | None = None
    """EventTypeID / ActionTypeID: mandatory in the request, echoed in the response."""

    @property
    def slug(self) -> str:
        return self.name.lower()


N_EVENT_REPORT = NOperation(
    "N-EVENT-REPORT",
    CommandField.N_EVENT_REPORT_RQ,
    CommandField.N_EVENT_REPORT_RSP,
    evt.EVT_N_EVENT_REPORT,
    st.Service.N_EVENT_REPORT,
    "event_information",
    False,
    True,
    True,
    "EventTypeID",
)
N_GET = NOperation(
    "N-GET",
    CommandField.N_GET_RQ,
    CommandField.N_GET_RSP,
    evt.EVT_N_GET,
    st.Service.N_GET,
    None,
    False,
    True,
    False,
)
N_SET = NOperation(
    "N-SET",
    CommandField.N_SET_RQ,
    CommandField.N_SET_RSP,
    evt.EVT_N_SET,
    st.Service.N_SET,
    "modification_list",
    True,
    True,
    False,
)
N_ACTION = NOperation(
    "N-ACTION",
    CommandField.N_ACTION_RQ,
    CommandField.N_ACTION_RSP,
    evt.EVT_N_ACTION,
    st.Service.N_ACTION,
    "action_information",
    False,
    True,
    False,
    "ActionTypeID",
)
N_CREATE = NOperation(
    "N-CREATE",
    CommandField.N_CREATE_RQ,
    CommandField.N_CREATE_RSP,
    evt.EVT_N_CREATE,
    st.Service.N_CREATE,
    "attribute_list",
    False,
    True,
    False,
)
N_DELETE = NOperation(
    "N-DELETE",
    CommandField.N_DELETE_RQ,
    CommandField.N_DELETE_RSP,
    evt.EVT_N_DELETE,
    st.Service.N_DELETE,
    None,
    False,
    False,
    False,
)

OPERATIONS: Final[dict[int, NOperation]] = {
    op.request: op for op in (N_EVENT_REPORT, N_GET, N_SET, N_ACTION, N_CREATE, N_DELETE)
}
"""Each DIMSE-N operation by its request's Command Field."""


def _named_codes(op: NOperation) -> list[tuple[int, str, str]]:
    """(code, transition name, description) of the general codes the operation's table lists."""
    table = st.N_STATUS_TABLES[op.service]
    return [
        (code, st.NAMES[code], table[code][1]) for code in sorted(st.N_OPERATION_CODES[op.service])
    ]


def _guard_name(code: int) -> str:
    return f"is_{st.NAMES[code]}"


# -- the SCP chart ------------------------------------------------------------------------
_DECODING_INPUTS = ("data_set_checked", "data_set_undecodable", "data_set_discarded")


def _scp_chart(op: NOperation) -> Chart:
    decoding = op.data_in is not None
    after_checks = "Decoding" if decoding else "Handling"
    received: list[Transition] = [
        transition(
            "mistyped",
            "request_received",
            "Received",
            "Final",
            guard="fields_missing",
            status=st.MISTYPED_ARGUMENT,
            action="respond",
            when=f"The {op.name}-RQ lacks a mandatory field ("
            + ("the SOP Class UID" if op is N_CREATE else "SOP Class or Instance UID")
            + (f", {op.type_id}" if op.type_id else "")
            + (", the Modification List" if op.data_in_required else "")
            + ").",
        ),
    ]
    if not op.any_role:
        received.append(
            transition(
                "role_not_agreed",
                "request_received",
                "Received",
                "Final",
                guard="not_our_role",
                status=st.UNRECOGNIZED_OPERATION,
                action="respond",
                when="The request came on a context where the negotiation did not give us "
                "the SCP role (role selection, or the requestor's default SCU role).",
            )
        )
    received += [
        transition(
            "no_handler",
            "request_received",
            "Received",
            "Final",
            guard="handler_missing",
            status=st.UNRECOGNIZED_OPERATION,
            action="respond",
            when=f"No {op.event.name} handler is bound: the operation is not served here.",
        ),
        transition(
            "wrong_sop_class",
            "request_received",
            "Received",
            "Final",
            guard="not_the_context_class",
            status=st.NO_SUCH_SOP_CLASS,
            action="respond",
            when="The SOP Class UID is not the context's abstract syntax (nor may be, the "
            "context being a Meta SOP class).",
        ),
        transition(
            "invalid_uid",
            "request_received",
            "Received",
            "Final",
            guard="uid_invalid",
            status=st.INVALID_OBJECT_INSTANCE,
            action="respond",
            when="The SOP Instance UID is not a UID (PS3.5 9.1).",
        ),
        transition(
            "accepted",
            "request_received",
            "Received",
            after_checks,
            when="The request is well formed"
            + ("; its data set is looked at next." if decoding else "; the handler is asked."),
        ),
    ]
    decoding_transitions: list[Transition] = []
    if decoding:
        decoding_transitions = [
            transition(
                "too_large",
                "data_set_discarded",
                "Decoding",
                "Final",
                status=st.RESOURCE_LIMITATION,
                action="respond",
                when="The data set was larger than AE.maximum_identifier_size and was dropped "
                "as it arrived.",
            ),
            transition(
                "undecodable",
                "data_set_undecodable",
                "Decoding",
                "Final",
                status=st.PROCESSING_FAILURE,
                action="respond",
                when="The data set is not well formed in the context's transfer syntax.",
            ),
            transition(
                "checked",
                "data_set_checked",
                "Decoding",
                "Handling",
                when="The data set is well formed (or the request has none); the handler "
                "decodes it when it reads it.",
            ),
        ]
    handled: list[Transition] = [
        transition(
            "no_status_element",
            "handler_returned",
            "Handling",
            "Final",
            guard="no_status_element",
            status=st.STATUS_DATASET_WITHOUT_STATUS,
            action="respond",
            when="The handler returned a status Dataset without a Status element.",
        ),
        transition(
            "invalid_status",
            "handler_returned",
            "Handling",
            "Final",
            guard="not_a_status",
            status=st.INVALID_STATUS_OBJECT,
            action="respond",
            when="The handler's status is neither an int nor a Dataset with an int Status"
            + (", or its data set is not a Dataset." if op.replies else "."),
        ),
    ]
    if op is N_CREATE:
        handled.append(
            transition(
                "no_instance_uid",
                "handler_returned",
                "Handling",
                "Final",
                guard="instance_uid_missing",
                status=st.PROCESSING_FAILURE,
                action="respond",
                when="The request had no Affected SOP Instance UID and the handler's data set "
                "names none (SOPInstanceUID), though the response must (PS3.7 10.1.5.1.4).",
            )
        )
    if op.replies:
        handled.append(
            transition(
                "reply_unencodable",
                "handler_returned",
                "Handling",
                "Final",
                guard="reply_not_encodable",
                status=st.PROCESSING_FAILURE,
                action="respond",
                when="The handler's data set cannot be encoded in the context's transfer syntax.",
            )
        )
    handled += [
        transition(
            "success",
            "handler_returned",
            "Handling",
            "Final",
            guard="success_status",
            status=st.SUCCESS,
            action="respond",
            when="The handler returned Success"
            + (", with the data set it returned." if op.replies else "."),
        ),
        *(
            transition(
                name,
                "handler_returned",
                "Handling",
                "Final",
                guard=_guard_name(code),
                status=code,
                action="respond",
                when=f"The handler returned 0x{code:04X} {text}.",
            )
            for code, name, text in _named_codes(op)
        ),
        transition(
            "warning",
            "handler_returned",
            "Handling",
            "Final",
            guard="warning_status",
            action="respond",
            when="The handler returned another Warning-class status (a service's own, "
            "e.g. 0xB300); sent as is.",
        ),
        transition(
            "failure",
            "handler_returned",
            "Handling",
            "Final",
            guard="failure_status",
            action="respond",
            when="The handler returned another Failure-class status (a service's own, "
            "e.g. 0xC310); sent as is, without a data set.",
        ),
        transition(
            "unknown_status",
            "handler_returned",
            "Handling",
            "Final",
            action="respond",
            when="The handler returned a status of no Annex C class (or Pending/Cancel, "
            "which no N operation has); logged and sent as is.",
        ),
        transition(
            "handler_raised",
            "handler_raised",
            "Handling",
            "Final",
            status=st.PROCESSING_FAILURE,
            action="respond",
            when="The handler raised: processing failure, its text in ErrorComment; "
            "the association goes on.",
        ),
    ]
    states = (
        ("Received", "Decoding", "Handling", "Final")
        if decoding
        else (
            "Received",
            "Handling",
            "Final",
        )
    )
    one = "one operation answers one request; the next request is a new operation"
    refusals: list[Refusal] = [
        Refusal("request_received", tuple(s for s in states if s != "Received"), one),
        Refusal(
            "handler_returned",
            tuple(s for s in states if s not in ("Handling", "Final")),
            "the handler runs only for a request whose checks passed",
        ),
        Refusal(
            "handler_raised",
            tuple(s for s in states if s not in ("Handling", "Final")),
            "the handler runs only for a request whose checks passed",
        ),
        Refusal("handler_returned", ("Final",), "the one response is sent: the operation is over"),
        Refusal("handler_raised", ("Final",), "the one response is sent: the operation is over"),
    ]
    if decoding:
        refusals += [
            Refusal(
                trigger,
                ("Received",),
                "the data set is looked at only once the command passed its checks",
            )
            for trigger in _DECODING_INPUTS
        ] + [
            Refusal(trigger, ("Handling", "Final"), "the data set was judged already")
            for trigger in _DECODING_INPUTS
        ]
    return Chart(
        name=f"{op.slug}-scp",
        states=states,
        initial="Received",
        final=("Final",),
        doc=f"{op.name} SCP: check the request"
        + (" and its data set" if decoding else "")
        + ", ask the handler, send one response.",
        transitions=(*received, *decoding_transitions, *handled),
        refusals=tuple(refusals),
    )


def _scu_chart(op: NOperation) -> Chart:
    named = tuple(
        transition(
            name,
            "response_received",
            "Awaiting",
            "Warned" if st.category(code) is st.Category.WARNING else "Failed",
            guard=_guard_name(code),
            status=code,
            when=f"The peer answered 0x{code:04X} {text}.",
        )
        for code, name, text in _named_codes(op)
    )
    return make_scu_chart(
        f"{op.slug}-scu", op.name, "a service's own code, e.g. 0xC310", named=named
    )


SCP_CHARTS: Final[dict[int, Chart]] = {field: _scp_chart(op) for field, op in OPERATIONS.items()}
SCU_CHARTS: Final[dict[int, Chart]] = {field: _scu_chart(op) for field, op in OPERATIONS.items()}


# -- what a handler sees -------------------------------------------------------------------
class NEvent:
    """The event an ``EVT_N_*`` handler gets, with pynetdicom's attribute names.

    The request's data set is decoded when the handler first reads it
    (``action_information``, ``attribute_list``, ``event_information``,
    ``modification_list``); each attribute exists for its own event only, as in
    pynetdicom.  ``request`` is the DIMSE message: its command fields read as
    attributes (``event.request.AffectedSOPInstanceUID``).
    """

    def __init__(
        self, assoc: Any, operation: NOperation, request: Message, context: AcceptedContext
    ) -> None:
        self.assoc = assoc
        self.event = operation.event
        self.request = request
        self.context = context
        self.timestamp = datetime.now()
        self._operation = operation
        self._dataset: Dataset | None = None

    @property
    def message_id(self) -> int:
        return int(self.request.command.get("MessageID", 0))

    def _only(self, event_type: evt.EventType, attribute: str) -> None:
        if self.event is not event_type:
            raise AttributeError(f"{attribute} is for {event_type.name} handlers only")

    def _data(self, event_type: evt.EventType, attribute: str) -> Dataset | None:
        self._only(event_type, attribute)
        raw = self.request.dataset
        if raw is None:
            return None
        if self._dataset is None:
            from dimsefsm.datasets import decode_dataset  # pydicom loads when a handler reads

            self._dataset = decode_dataset(raw, self.context.transfer_syntax)
        return self._dataset

    @property
    def action_type(self) -> int:
        self._only(evt.EVT_N_ACTION, "action_type")
        return int(self.request.command["ActionTypeID"])

    @property
    def action_information(self) -> Dataset | None:
        return self._data(evt.EVT_N_ACTION, "action_information")

    @property
    def event_type(self) -> int:
        self._only(evt.EVT_N_EVENT_REPORT, "event_type")
        return int(self.request.command["EventTypeID"])

    @property
    def event_information(self) -> Dataset | None:
        return self._data(evt.EVT_N_EVENT_REPORT, "event_information")

    @property
    def attribute_list(self) -> Dataset | None:
        return self._data(evt.EVT_N_CREATE, "attribute_list")

    @property
    def modification_list(self) -> Dataset | None:
        return self._data(evt.EVT_N_SET, "modification_list")

    @property
    def attribute_identifiers(self) -> list[BaseTag]:
        """N-GET's Attribute Identifier List; empty: every attribute is asked for."""
        from pydicom.tag import Tag

        self._only(evt.EVT_N_GET, "attribute_identifiers")
        return [Tag(tag) for tag in self.request.command.get("AttributeIdentifierList") or ()]


Handler = Callable[[NEvent], Any]
SendResponse = Callable[[Message], None]


# -- the SCP operation ----------------------------------------------------------------------
class NormalizedScp(SingleResponseScp):
    """One DIMSE-N request being answered."""

    def __init__(
        self,
        request: Message,
        context: AcceptedContext | None,
        operation: NOperation,
        handler: Handler | None,
        assoc: Any,
        send: SendResponse,
    ) -> None:
        self.chart = SCP_CHARTS[operation.request]
        self.request = request
        self.context = context
        self.operation = operation
        self.handler = handler
        self.assoc = assoc
        self.send = send
        self.returned: object = None
        self.reply: object = None
        self.reply_bytes: bytes | None = None
        self.comment: str | None = None
        self.sent_status: int | None = None
        self.instance_uid: str | None = None
        class_key, instance_key = N_REQUEST_CLASS_KEY[operation.request]
        self.sop_class = request.command.get(class_key)
        self.sop_instance = request.command.get(instance_key)
        self.chart.attach(self)

    def status_table(self) -> Mapping[int, object]:
        return st.N_STATUS_TABLES[self.operation.service]

    def run(self) -> int:
        """Answer the request; returns the status that was sent."""
        chart = self.chart
        chart.fire(self, "request_received")
        if self.state == "Decoding":
            chart.fire(self, self._judge_data_set())
        if self.state == "Handling":
            assert self.context is not None
            self._call(NEvent(self.assoc, self.operation, self.request, self.context))
        assert self.sent_status is not None
        return self.sent_status

    # -- inputs ---------------------------------------------------------------------------
    def _judge_data_set(self) -> str:
        request = self.request
        if request.discarded_length is not None:
            self.comment = f"data set of {request.discarded_length} bytes is over the limit"
            LOG.warning("%s: %s; refused", self.operation.name, self.comment)
            return "data_set_discarded"
        if request.dataset is None:
            return "data_set_checked"
        from dimsefsm.datasets import DatasetDecodeError, check_dataset_bytes

        assert self.context is not None
        try:
            check_dataset_bytes(request.dataset, self.context.transfer_syntax)
        except DatasetDecodeError as exc:
            LOG.warning("%s: data set cannot be decoded: %s", self.operation.name, exc)
            self.comment = f"data set cannot be decoded: {exc}"
            return "data_set_undecodable"
        return "data_set_checked"

    def _call(self, event: NEvent) -> None:
        """Run the handler; split what it returned into status and data set."""
        assert self.handler is not None
        try:
            returned = self.handler(event)
        except Exception as exc:
            LOG.exception("%s handler raised", self.operation.event.name)
            self.comment = f"handler raised {type(exc).__name__}: {exc}"
            self.chart.fire(self, "handler_raised")
            return
        if isinstance(returned, (tuple, list)) and len(returned) == 2:
            self.returned, self.reply = returned
        else:
            self.returned, self.reply = returned, None
        self.chart.fire(self, "handler_returned")

    # -- guards on the request ---------------------------------------------------------------
    def fields_missing(self, event: EventData) -> bool:
        op, cmd = self.operation, self.request.command
        class_key, instance_key = N_REQUEST_CLASS_KEY[op.request]
        missing = [] if self.sop_class else [class_key]
        if op is not N_CREATE and not self.sop_instance:
            missing.append(instance_key)
        if op.type_id is not None and cmd.get(op.type_id) is None:
            missing.append(op.type_id)
        if op.data_in_required and not self.request.has_dataset:
            missing.append("the data set")
        return self._refuses(bool(missing), f"missing {', '.join(missing)}")

    def not_our_role(self, event: EventData) -> bool:
        return self._refuses(
            self.context is None or not self.context.as_scp,
            "we are not the SCP of this context's SOP class here",
        )

    def handler_missing(self, event: EventData) -> bool:
        return self._refuses(self.handler is None, f"no {self.operation.event.name} handler")

    def not_the_context_class(self, event: EventData) -> bool:
        ctx = self.context
        return self._refuses(
            ctx is None
            or (
                ctx.abstract_syntax not in META_SOP_CLASSES
                and ctx.abstract_syntax != self.sop_class
            ),
            f"SOP class {self.sop_class} is not the context's",
        )

    def uid_invalid(self, event: EventData) -> bool:
        problem = None if self.sop_instance is None else uid_problem(self.sop_instance)
        return self._refuses(problem is not None, f"SOP Instance UID {problem}")

    def _refuses(self, refused: bool, reason: str) -> bool:
        """A request check's verdict; when it refuses, its reason is the ErrorComment."""
        if refused:
            self.comment = reason
        return refused

    # -- guards on what the handler returned -------------------------------------------------
    def not_a_status(self, event: EventData) -> bool:
        if self.reply is not None and not is_dataset(self.reply):
            return True
        return super().not_a_status(event)

    def _replying(self) -> bool:
        """Success or Warning with a data set to send (PS3.7: no data set on failure)."""
        code = self.returned_status()
        return (
            self.operation.replies
            and is_dataset(self.reply)
            and category_of(code) in (st.Category.SUCCESS, st.Category.WARNING)
        )

    def instance_uid_missing(self, event: EventData) -> bool:
        """N-CREATE without an instance UID: the handler's data set must name it."""
        if self.sop_instance or category_of(self.returned_status()) not in (
            st.Category.SUCCESS,
            st.Category.WARNING,
        ):
            return False
        reply = self.reply
        if is_dataset(reply):
            uid = reply.get("AffectedSOPInstanceUID") or reply.get("SOPInstanceUID")
            if uid and uid_problem(str(uid)) is None:
                self.instance_uid = str(uid)
                if "AffectedSOPInstanceUID" in reply:  # pynetdicom's way: a command field
                    del reply.AffectedSOPInstanceUID
                return False
        self.comment = "the handler gave no SOPInstanceUID for the instance it created"
        LOG.error("N-CREATE without an instance UID: %s", self.comment)
        return True

    def reply_not_encodable(self, event: EventData) -> bool:
        if not self._replying():
            return False
        from dimsefsm.datasets import encode_dataset

        assert self.context is not None and is_dataset(self.reply)
        try:
            self.reply_bytes = encode_dataset(self.reply, self.context.transfer_syntax)
        except Exception as exc:
            LOG.error("%s: the handler's data set cannot be encoded: %s", self.operation.name, exc)
            self.comment = f"the reply data set cannot be encoded: {exc}"
            return True
        return False

    def received_code(self) -> object:
        """What the named-status guards compare: the handler's status."""
        return self.returned_status()

    def warning_status(self, event: EventData) -> bool:
        return category_of(self.returned_status()) is st.Category.WARNING

    def failure_status(self, event: EventData) -> bool:
        return category_of(self.returned_status()) is st.Category.FAILURE

    # -- the response ----------------------------------------------------------------------
    def respond(self, event: EventData) -> None:
        declared = self.chart.declared(event)
        # The handler's status Dataset (ErrorComment, ErrorID, AttributeIdentifierList)
        # goes out when its status does; a verdict of ours carries our own comment.
        from_handler = declared.trigger == "handler_returned" and declared.name not in _OUR_VERDICTS
        if declared.status is not None:
            status = declared.status
        else:
            code = self.returned_status()
            assert isinstance(code, int)
            status = code
            if declared.name == "unknown_status":
                LOG.warning(
                    "%s handler returned status 0x%04X of no Annex C class; sent as is",
                    self.operation.event.name,
                    status,
                )
        status_ds = self.returned if from_handler and is_dataset(self.returned) else None
        self.sent_status = status
        comment: object = None
        error_id: int | None = None
        identifiers: tuple[int, ...] | None = None
        if status_ds is not None:
            comment, error_id, identifiers = _status_extras(status_ds, self.operation)
        elif status != st.SUCCESS and self.comment:
            comment = self.comment
        cmd = self.request.command
        op = self.operation
        has_reply = self.reply_bytes is not None
        instance = self.sop_instance or self.instance_uid
        command = n_rsp(
            op.response,
            cmd.get("MessageID", 0),
            status,
            sop_class_uid=self.sop_class if uid_problem(self.sop_class) is None else None,
            sop_instance_uid=instance if uid_problem(instance) is None else None,
            has_dataset=has_reply,
            event_type=cmd.get("EventTypeID") if op is N_EVENT_REPORT else None,
            action_type=cmd.get("ActionTypeID") if op is N_ACTION else None,
            error_comment=_one_line(comment),
            error_id=error_id,
            attribute_identifiers=identifiers,
        )
        if declared.trigger == "request_received" and status != st.SUCCESS:
            LOG.warning(
                "%s (Message ID %s) refused 0x%04X: %s",
                op.name,
                command["MessageIDBeingRespondedTo"],
                status,
                self.comment,
            )
        else:
            LOG.info(
                "%s %s (Message ID %s) answered 0x%04X",
                op.name,
                instance,
                command["MessageIDBeingRespondedTo"],
                status,
            )
        self.send(
            Message(self.request.context_id, command, self.reply_bytes if has_reply else None)
        )


def _status_extras(
    status: Dataset, operation: NOperation
) -> tuple[object, int | None, tuple[int, ...] | None]:
    """ErrorComment, ErrorID and AttributeIdentifierList of a handler's status Dataset.

    A value that does not fit its field is left out with a log line: the
    status still goes out.
    """
    comment = status.get("ErrorComment")
    error_id: int | None = None
    identifiers: tuple[int, ...] | None = None
    try:
        raw_id = status.get("ErrorID")
        error_id = None if raw_id is None else int(raw_id)
        found = status.get("AttributeIdentifierList")
        if found is not None:
            many = not isinstance(found, (int, str, bytes))
            identifiers = tuple(int(tag) for tag in (found if many else [found]))
    except (TypeError, ValueError) as exc:
        LOG.warning("%s handler's status Dataset: %s; left out", operation.event.name, exc)
    return comment, error_id, identifiers


def _one_line(comment: object) -> str | None:
    """An ErrorComment is one LO value: the first line of the text, at most 64 characters."""
    text = str(comment).strip() if comment else ""
    return text.splitlines()[0][:64] if text else None


_OUR_VERDICTS: Final = frozenset(
    {"no_status_element", "invalid_status", "no_instance_uid", "reply_unencodable"}
)
"""handler_returned transitions whose status is ours, not the handler's."""


def _code_guard(code: int) -> Callable[[Any, EventData], bool]:
    def guard(self: Any, event: EventData) -> bool:
        return bool(self.received_code() == code)

    guard.__name__ = _guard_name(code)
    return guard


# -- the SCU operation ----------------------------------------------------------------------
_STATUS_KEYWORDS: Final[dict[int, tuple[str, ...]]] = {
    # pynetdicom's status Datasets carry these (its STATUS_OPTIONAL_KEYWORDS), plus the
    # created instance's UID for N-CREATE: how a caller learns the UID the SCP chose.
    CommandField.N_EVENT_REPORT_RQ: (
        "AffectedSOPClassUID",
        "AffectedSOPInstanceUID",
        "EventTypeID",
        "ErrorComment",
        "ErrorID",
    ),
    CommandField.N_GET_RQ: ("AttributeIdentifierList", "ErrorComment", "ErrorID"),
    CommandField.N_SET_RQ: ("ErrorComment", "ErrorID", "AttributeIdentifierList"),
    CommandField.N_ACTION_RQ: ("ErrorComment", "ErrorID", "AttributeIdentifierList"),
    CommandField.N_CREATE_RQ: (
        "AffectedSOPInstanceUID",
        "ErrorComment",
        "ErrorID",
        "AttributeIdentifierList",
    ),
    CommandField.N_DELETE_RQ: ("ErrorComment", "ErrorID"),
}


class NormalizedScu(SingleResponseScu):
    """One DIMSE-N request we sent, waiting for its response."""

    def __init__(
        self,
        message_id: int,
        operation: NOperation,
        context: AcceptedContext,
        on_done: Callable[[NormalizedScu], object] | None = None,
    ) -> None:
        self.chart = SCU_CHARTS[operation.request]
        self.operation = operation
        self.context = context
        self.status_keywords = _STATUS_KEYWORDS[operation.request]
        self.on_done = on_done
        super().__init__(message_id)

    # A request sent without a caller blocking on it (an acceptor's N-EVENT-REPORT) tells
    # ``on_done`` how it ended: answered, association lost, or timed out.
    def on_response(self, message: Message) -> None:
        super().on_response(message)
        self._tell()

    def on_abort(self) -> None:
        super().on_abort()
        self._tell()

    def on_timeout(self) -> None:
        super().on_timeout()
        self._tell()

    def _tell(self) -> None:
        if self.on_done is not None and self.done:
            try:
                self.on_done(self)
            except Exception:
                LOG.exception("%s on_done callback failed", self.operation.name)

    def received_code(self) -> object:
        return None if self.response is None else self.response.command.get("Status")

    def reply(self) -> tuple[Dataset, Dataset | None]:
        """pynetdicom's ``(status, dataset)``.

        The data set (Attribute List, Action/Event Reply) comes with Success and
        Warning only: an empty Dataset when the peer sent none; None with any
        other status, or no response.  One that cannot be decoded is logged and
        reported as 0x0110 Processing failure, as pynetdicom does.
        """
        status = self.result()
        if self.response is None or category_of(self.status) not in (
            st.Category.SUCCESS,
            st.Category.WARNING,
        ):
            return status, None
        from pydicom import Dataset

        raw = self.response.dataset
        if raw is None:
            return status, Dataset()
        from dimsefsm.datasets import DatasetDecodeError, decode_dataset

        try:
            return status, decode_dataset(raw, self.context.transfer_syntax)
        except DatasetDecodeError as exc:
            LOG.error("%s response: data set cannot be decoded: %s", self.operation.name, exc)
            status.Status = st.PROCESSING_FAILURE
            return status, None


# -- sending without blocking (either role) ------------------------------------------------
def start_n_request(
    engine: AssociationEngine,
    operation: NOperation,
    class_uid: str,
    instance_uid: str | None,
    dataset: Dataset | None = None,
    *,
    msg_id: int | None = None,
    meta_uid: str | None = None,
    event_type: int | None = None,
    action_type: int | None = None,
    identifiers: tuple[int, ...] | None = None,
    on_done: Callable[[NormalizedScu], object] | None = None,
) -> NormalizedScu:
    """Queue a DIMSE-N request on ``engine`` and return its operation, without waiting.

    The blocking and asyncio clients' ``send_n_*`` call this and then wait;
    an acceptor calls it to send its peer an N-EVENT-REPORT on the same
    association (see :func:`after_response`), the response reaching the
    operation (and ``on_done``) as the transport reads it.  Raises
    ``ValueError`` when no accepted context lets us send it.
    """
    from dimsefsm.datasets import encode_dataset
    from dimsefsm.dimse.commands import n_rq

    negotiated = engine.negotiated
    if negotiated is None or not engine.is_established:
        raise RuntimeError("the association is not established")
    abstract = str(meta_uid or class_uid)
    ctx = negotiated.find_context(abstract)
    if ctx is None and operation.any_role:
        ctx = negotiated.find_context(abstract, as_scp=True)
    if ctx is None:
        raise ValueError(
            f"no accepted presentation context for {abstract} where we may send "
            f"{operation.name} requests"
        )
    encoded = None if dataset is None else encode_dataset(dataset, ctx.transfer_syntax)
    message_id = msg_id if msg_id is not None else engine.next_message_id()
    command = n_rq(
        operation.request,
        message_id,
        str(class_uid),
        None if instance_uid is None else str(instance_uid),
        has_dataset=encoded is not None,
        event_type=event_type,
        action_type=action_type,
        attribute_identifiers=identifiers,
    )
    op = NormalizedScu(message_id, operation, ctx, on_done)
    engine.start_operation(message_id, op)
    op.sent()
    engine.send_message(Message(ctx.context_id, command, encoded))
    return op


class FollowUp:
    """An SCP operation of one step: ``action`` runs once the current response is out.

    The transport steps SCP operations between reads, after the response the
    handler's return value produced has been queued, so what ``action``
    sends follows that response on the wire.
    """

    def __init__(self, action: Callable[[], object]) -> None:
        self.action = action
        self.done = False

    def step(self) -> None:
        self.done = True
        try:
            self.action()
        except Exception:
            LOG.exception("follow-up of a handled request failed")

    def cancel(self) -> None:
        """A C-CANCEL names only C-FIND/C-GET/C-MOVE operations: nothing to stop."""

    def close(self) -> None:
        self.done = True  # the association ended first: the action never runs


def after_response(assoc: Any, message_id: int, action: Callable[[], object]) -> None:
    """From a handler: run ``action`` right after this request's response is sent.

    ``assoc`` is the handler's ``event.assoc`` (an association engine on an
    SCP, the Association on a requestor); ``message_id`` the request's
    (``event.message_id``).  How an SCP reports on the association the
    request came on, e.g. Storage Commitment's N-EVENT-REPORT after the
    N-ACTION response::

        after_response(event.assoc, event.message_id, lambda: start_n_request(
            event.assoc, N_EVENT_REPORT, STORAGE_COMMITMENT_PUSH_MODEL,
            STORAGE_COMMITMENT_INSTANCE, report, event_type=1))
    """
    engine = getattr(assoc, "engine", assoc)
    engine.start_scp_operation(message_id, FollowUp(action))


for _code in st.NAMES:
    setattr(NormalizedScp, _guard_name(_code), _code_guard(_code))
    setattr(NormalizedScu, _guard_name(_code), _code_guard(_code))


__all__ = [
    "N_ACTION",
    "N_CREATE",
    "N_DELETE",
    "N_EVENT_REPORT",
    "N_GET",
    "N_SET",
    "OPERATIONS",
    "SCP_CHARTS",
    "SCU_CHARTS",
    "FollowUp",
    "NEvent",
    "NOperation",
    "NormalizedScp",
    "NormalizedScu",
    "after_response",
    "start_n_request",
]
