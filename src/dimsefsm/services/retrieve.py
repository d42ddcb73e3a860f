"""C-GET and C-MOVE SCP: one retrieve chart, declared once, and the operation both share.

:func:`retrieve_chart` declares the table for either service: C-MOVE adds
*ResolvingDestination* (the handler's ``(addr, port)``) and *Connecting* (the
sub-association asked for as an effect), and its sub-operations can lose
their sub-association.  The inputs are what can happen to a retrieve: the
request decoded or refused, each value the handler yields (destination,
count, instance, status), the handler ending or raising, a C-STORE response,
a C-CANCEL, the sub-association accepted, rejected or aborted, the
association ending.  The guards choose what each means (failure or warning
status, all failed, count out of range, the last announced instance); the
actions count and send the responses.

Counting rules (PS3.4 C.4.2.3.1, C.4.3.1, C.4.3.3.1, PS3.7 Table 9.1-3; each is
also the ``when`` sentence of its transition):

* Pending responses carry Remaining, Completed, Failed and Warning counts.
* Final responses never carry Remaining, except Cancel, which carries the
  sub-operations not started (PS3.4 C.4.3.1.3.2: "may").
* When the handler ends the operation with its own final status, sub-operations
  it announced but never delivered are *not* counted as failed.
* At the end, every sub-operation succeeded: Success (0x0000); some failed or
  warned: Warning (0xB000); all failed: Failure (0xA702).
* Failure, Warning and Cancel final responses carry the Failed SOP Instance
  UID List (0008,0058) as their identifier when anything failed.
* Counts are US: a handler announcing more than 65,535 sub-operations is
  answered 0xC416 / 0xC516, never an encoding error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydicom import Dataset, config
from pydicom.dataelem import DataElement
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext, Negotiated
from dimsefsm.datasets import encode_dataset
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
from dimsefsm.services.storage import StoreSource

MAX_COUNT = 0xFFFF  # the sub-operation counts are US (PS3.7 Table 9.1-3)


@dataclass(frozen=True, slots=True)
class InstanceIdentity:
    """What an instance a handler yielded says about itself, None where it cannot tell."""

    sop_class_uid: str | None
    sop_instance_uid: str | None
    transfer_syntax: str | None


class InstanceSource(Protocol):
    """Reads the instances a retrieve handler yields (a Dataset or whatever the archive gives).

    The service layer never opens a file: the application injects this (the
    default, :class:`dimsefsm.instances.FileInstances`, reads DICOM files).
    """

    def identity(self, item: object) -> InstanceIdentity: ...

    def store_source(self, negotiated: Negotiated, item: object, without_bulk: bool) -> StoreSource:
        """What one C-STORE of ``item`` carries on ``negotiated``; raises when it cannot go."""
        ...


def is_instance(item: object) -> bool:
    """A Pending yield's payload the sources know: a Dataset or a file path."""
    return isinstance(item, (Dataset, str, Path))


@dataclass(frozen=True)
class RetrieveCodes:
    """The service's own codes for the shared table (C-GET's 0xC4xx, C-MOVE's 0xC5xx)."""

    service: str  # "C-GET" / "C-MOVE"
    decode_failed: int
    handler_failed: int
    bad_count: int
    too_many: int
    no_count: int


GET_CODES = RetrieveCodes(
    "C-GET",
    st.GET_DECODE_FAILED,
    st.GET_HANDLER_FAILED,
    st.GET_BAD_SUBOPERATION_COUNT,
    st.GET_TOO_MANY_MATCHES,
    st.GET_BAD_SUBOPERATION_COUNT,
)
MOVE_CODES = RetrieveCodes(
    "C-MOVE",
    st.MOVE_DECODE_FAILED,
    st.MOVE_HANDLER_FAILED,
    st.MOVE_BAD_SUBOPERATION_COUNT,
    st.MOVE_TOO_MANY_MATCHES,
    st.MOVE_NO_DESTINATION_OR_COUNT,
)

_RESOLVING = "ResolvingDestination"
_CONNECTING = "Connecting"


ELSE = "else"
"""The guard of a cell's last transition: it fires when every guard before it said no."""


def _on(
    name: str,
    trigger: str,
    source: str | tuple[str, ...],
    dest: str,
    when: str,
    *,
    guard: str | None = None,
    status: int | None = None,
    action: str | None = "respond",
) -> Transition:
    if guard == ELSE:
        guard, label = None, f"{trigger} [else]"
    else:
        label = f"{trigger} [{guard.replace('_', ' ')}]" if guard else trigger
    return transition(
        name, trigger, source, dest, when, guard=guard, status=status, action=action, label=label
    )


def retrieve_transitions(codes: RetrieveCodes, move: bool) -> tuple[Transition, ...]:
    """The whole table of the C-GET (``move=False``) or C-MOVE SCP."""
    cancel = f"C-CANCEL-{codes.service[2:]}"
    peer = "destination" if move else "peer"
    handler_states = (
        (_RESOLVING, "AwaitingCount", "SubOps") if move else ("AwaitingCount", "SubOps")
    )
    running = (
        (_RESOLVING, "AwaitingCount", _CONNECTING, "SubOps", "Storing", "Cancelling")
        if move
        else ("AwaitingCount", "SubOps", "Storing", "Cancelling")
    )
    table: list[Transition] = [
        *decoding_transitions(
            codes.service[2:].lower(),
            codes.decode_failed,
            st.OUT_OF_RESOURCES_MATCHES,
            "The identifier lacks the unique keys the retrieve level needs, or a key "
            "value is longer than its VR allows (PS3.5 6.2).",
            _RESOLVING if move else "AwaitingCount",
        ),
        _on(
            "handler_raised",
            "handler_raised",
            handler_states,
            "Final",
            status=codes.handler_failed,
            when="The handler raised, on the call or between two yields; counts so far.",
        ),
    ]
    if move:
        table += [
            _on(
                "destination_unknown",
                "destination_yielded",
                _RESOLVING,
                "Final",
                guard="destination_is_unknown",
                status=st.MOVE_DESTINATION_UNKNOWN,
                when="The handler yielded no address: the Move Destination AE title is unknown.",
            ),
            _on(
                "bad_destination",
                "destination_yielded",
                _RESOLVING,
                "Final",
                guard="destination_is_invalid",
                status=st.MOVE_BAD_DESTINATION,
                when="The destination is not a valid (address, port[, options]).",
            ),
            _on(
                "destination_resolved",
                "destination_yielded",
                _RESOLVING,
                "AwaitingCount",
                guard=ELSE,
                action="destination_set",
                when="The handler yielded a valid (address, port) for the Move Destination.",
            ),
            _on(
                "no_destination",
                "handler_ended",
                (_RESOLVING, "AwaitingCount"),
                "Final",
                status=codes.no_count,
                when="The handler ended before yielding the destination and the count.",
            ),
        ]
    else:
        table.append(
            _on(
                "no_count",
                "handler_ended",
                "AwaitingCount",
                "Final",
                status=codes.no_count,
                when="The handler ended before yielding the number of sub-operations.",
            )
        )
    table += [
        _on(
            "bad_count",
            "count_yielded",
            "AwaitingCount",
            "Final",
            guard="count_is_not_a_number",
            status=codes.bad_count,
            when="The first yield is not a non-negative number of sub-operations.",
        ),
        _on(
            "too_many_matches",
            "count_yielded",
            "AwaitingCount",
            "Final",
            guard="count_over_65535",
            status=codes.too_many,
            when="The handler announced more than 65,535 sub-operations: the counts are US "
            "(PS3.7 Table 9.1-3), so the retrieve is refused instead of failing to encode.",
        ),
    ]
    if move:
        table += [
            _on(
                "no_sub_association",
                "count_yielded",
                "AwaitingCount",
                "SubOps",
                guard="nothing_to_propose",
                action="counted",
                when="No sub-operation, or none of the instances read ahead names a SOP class "
                "to propose: no sub-association is opened; each instance fails on its own.",
            ),
            _on(
                "count",
                "count_yielded",
                "AwaitingCount",
                _CONNECTING,
                guard=ELSE,
                action="open_sub_association",
                when="The handler announced the count; the sub-association to the destination is "
                "asked for with exactly the contexts the instances read ahead need.",
            ),
            _on(
                "sub_association_accepted",
                "sub_assoc_accepted",
                _CONNECTING,
                "SubOps",
                action="keep_accepted_contexts",
                when="The destination accepted the sub-association: the C-STOREs start.",
            ),
            _on(
                "destination_rejected",
                "sub_assoc_rejected",
                _CONNECTING,
                "Final",
                status=st.OUT_OF_RESOURCES_SUBOPERATIONS,
                action="fail_all",
                when="The destination rejected the sub-association: every announced "
                "sub-operation failed (0xA702), the reason is logged.",
            ),
            _on(
                "cancelled_while_connecting",
                "cancel_received",
                _CONNECTING,
                "Cancelled",
                status=st.CANCEL,
                action="cancelled",
                when=f"A {cancel} arrived before the sub-association was settled: Cancel with "
                "every announced sub-operation remaining; a sub-association accepted "
                "afterwards is released unused.",
            ),
            _on(
                "destination_unreachable",
                "sub_assoc_aborted",
                _CONNECTING,
                "Final",
                status=st.OUT_OF_RESOURCES_SUBOPERATIONS,
                action="fail_all",
                when="The destination could not be reached (or the connection failed before it "
                "answered): every announced sub-operation failed (0xA702), the reason is logged.",
            ),
        ]
    else:
        table.append(
            _on(
                "count",
                "count_yielded",
                "AwaitingCount",
                "SubOps",
                guard=ELSE,
                action="counted",
                when="The handler announced how many sub-operations follow.",
            )
        )
    table += [
        _on(
            "count_unavailable",
            "status_yielded",
            "AwaitingCount",
            "Final",
            guard="matches_uncountable",
            status=st.OUT_OF_RESOURCES_MATCHES,
            when="The handler yielded 0xA701 instead of a count: it cannot calculate the "
            "number of matches (PS3.4 C.4.2.1.5, C.4.3.1.5).",
        ),
        _on(
            "status_instead_of_count",
            "status_yielded",
            "AwaitingCount",
            "Final",
            guard=ELSE,
            status=codes.bad_count,
            action="respond_not_a_count",
            when="The handler yielded a status pair before any count.",
        ),
        # -- SubOps: one instance at a time ------------------------------------------------
        # The common case first: one guard on the hot path; the ones after it say why not.
        _on(
            "sub_op_sent",
            "item_yielded",
            "SubOps",
            "Storing",
            guard="sendable",
            action="send_sub_operation",
            when=f"A Pending yield's instance goes out as a C-STORE to the {peer}"
            + ("" if move else " on a context where it accepted the SCP role")
            + "; its response is awaited.",
        ),
        _on(
            "extra_ignored",
            "item_yielded",
            "SubOps",
            "=",
            guard="beyond_announced",
            action=None,
            when="The handler yielded more instances than it announced: ignored and logged.",
        ),
        _on(
            "not_a_dataset",
            "item_yielded",
            "SubOps",
            "=",
            guard="no_instance",
            status=st.PENDING,
            action="fail_item",
            when="A Pending yield carried no Dataset or file path: a failed sub-operation.",
        ),
    ]
    if move:
        table.append(
            _on(
                "destination_lost",
                "item_yielded",
                "SubOps",
                "=",
                guard="sub_association_lost",
                status=st.PENDING,
                action="fail_item",
                when="The sub-association went away earlier: every later instance fails.",
            )
        )
    if move:
        table.append(
            _on(
                "not_carried",
                "item_yielded",
                "SubOps",
                "=",
                guard=ELSE,
                status=st.PENDING,
                action="fail_item",
                when="No sub-association was opened (no instance read ahead named a SOP "
                "class): a failed sub-operation.",
            )
        )
    else:
        table.append(
            _on(
                "no_context",
                "item_yielded",
                "SubOps",
                "=",
                guard="lacks_storage_context",
                status=st.PENDING,
                action="fail_item",
                when="No accepted context lets us send this instance (the peer did not take "
                "the SCP role for its SOP class): a failed sub-operation, not a crash.",
            )
        )
        table.append(
            _on(
                "unsendable",
                "item_yielded",
                "SubOps",
                "=",
                guard=ELSE,
                status=st.PENDING,
                action="fail_item",
                when="The instance cannot become a C-STORE here (a UID over 64 characters, a file "
                "gone or unreadable, no accepted syntax it converts to): Failed + 1, its UID "
                "joins the failed list, logged; the next sub-operation follows.",
            )
        )
    table += [
        _on(
            "handler_success",
            "status_yielded",
            "SubOps",
            "Final",
            guard="success_status",
            status=st.SUCCESS,
            when="The handler yielded Success itself; undelivered ones are not counted.",
        ),
        _on(
            "handler_cancel",
            "status_yielded",
            "SubOps",
            "Cancelled",
            guard="cancel_status",
            status=st.CANCEL,
            when="The handler yielded Cancel (0xFE00).",
        ),
        _on(
            "handler_failure",
            "status_yielded",
            "SubOps",
            "Final",
            guard="failure_status",
            when="The handler yielded a Failure (A701, A702, A900, AAxx, Cxxx); sent as is with "
            "the counts so far; undelivered sub-operations are not counted as failed.",
        ),
        _on(
            "handler_warning",
            "status_yielded",
            "SubOps",
            "Final",
            guard="warning_status",
            when="The handler yielded a Warning (B000); sent as is with the counts so far.",
        ),
        _on(
            "no_status_element",
            "status_yielded",
            "SubOps",
            "Final",
            guard="status_without_status_element",
            status=st.STATUS_DATASET_WITHOUT_STATUS,
            when="The handler yielded a status Dataset without a Status element.",
        ),
        _on(
            "invalid_status",
            "status_yielded",
            "SubOps",
            "Final",
            guard="not_a_status_pair",
            status=st.INVALID_STATUS_OBJECT,
            when="The handler yielded something that is not a (status, dataset) pair.",
        ),
        _on(
            "unknown_status",
            "status_yielded",
            "SubOps",
            "Final",
            guard=ELSE,
            action="respond_unknown_status",
            when="The handler yielded a status no table defines; logged, sent as is, final.",
        ),
        _on(
            "complete_success",
            "handler_ended",
            "SubOps",
            "Final",
            guard="all_succeeded",
            status=st.SUCCESS,
            when="All sub-operations done and every one succeeded.",
        ),
        _on(
            "complete_failure",
            "handler_ended",
            "SubOps",
            "Final",
            guard="all_failed",
            status=st.OUT_OF_RESOURCES_SUBOPERATIONS,
            when="All done and every sub-operation failed: Failure 0xA702.",
        ),
        _on(
            "complete_warning",
            "handler_ended",
            "SubOps",
            "Final",
            guard=ELSE,
            status=st.SUBOPERATIONS_WITH_FAILURES,
            when="All done; at least one succeeded and at least one failed or warned, or "
            "all warned (PS3.4 C.4.3.3.1).",
        ),
        _on(
            "cancelled",
            "cancel_received",
            "SubOps",
            "Cancelled",
            status=st.CANCEL,
            action="cancelled",
            when=f"A {cancel} arrived between sub-operations: counts so far, Remaining "
            "= not started, the failed list.",
        ),
        # -- Storing: one C-STORE outstanding ----------------------------------------------
        _on(
            "sub_op_completed",
            "store_response",
            "Storing",
            "SubOps",
            guard="stored",
            status=st.PENDING,
            action="count_completed",
            when=f"The {peer} stored the instance (0x0000): Completed + 1.",
        ),
        _on(
            "sub_op_warning",
            "store_response",
            "Storing",
            "SubOps",
            guard="stored_with_warning",
            status=st.PENDING,
            action="count_warning",
            when=f"The {peer} stored it with a Warning (Bxxx, 0x0001, 0x0107, 0x0116): "
            "Warning + 1.",
        ),
        _on(
            "sub_op_failed",
            "store_response",
            "Storing",
            "SubOps",
            guard=ELSE,
            status=st.PENDING,
            action="count_failed",
            when=f"The {peer} refused the instance (e.g. 0xA700) or answered a status no "
            "table defines: Failed + 1, its UID joins the failed list.",
        ),
        _on(
            "cancel_while_storing",
            "cancel_received",
            "Storing",
            "Cancelling",
            action=None,
            when=f"A {cancel} arrived while a C-STORE is out: its response is awaited, "
            "then the Cancel response goes out.",
        ),
        _on(
            "cancel_repeated",
            "cancel_received",
            "Cancelling",
            "=",
            action=None,
            when=f"Another {cancel} for the same operation: it is already being cancelled; "
            "ignored.",
        ),
        _on(
            "cancelled_after_completed",
            "store_response",
            "Cancelling",
            "Cancelled",
            guard="stored",
            status=st.CANCEL,
            action="count_completed",
            when="The last C-STORE succeeded after the C-CANCEL: Completed + 1, then Cancel.",
        ),
        _on(
            "cancelled_after_warning",
            "store_response",
            "Cancelling",
            "Cancelled",
            guard="stored_with_warning",
            status=st.CANCEL,
            action="count_warning",
            when="The last C-STORE warned after the C-CANCEL: Warning + 1, then Cancel.",
        ),
        _on(
            "cancelled_after_failed",
            "store_response",
            "Cancelling",
            "Cancelled",
            guard=ELSE,
            status=st.CANCEL,
            action="count_failed",
            when="The last C-STORE failed after the C-CANCEL: Failed + 1, then Cancel.",
        ),
    ]
    if move:
        table += [
            _on(
                "no_context",
                "store_not_sent",
                "Storing",
                "SubOps",
                guard="lacks_storage_context",
                status=st.PENDING,
                action="count_failed",
                when="The destination accepted no context for this instance's SOP class: a "
                "failed sub-operation, not a crash.",
            ),
            _on(
                "unsendable",
                "store_not_sent",
                "Storing",
                "SubOps",
                guard=ELSE,
                status=st.PENDING,
                action="count_failed",
                when="The instance cannot become a C-STORE on the sub-association (a UID over "
                "64 characters, a file gone or unreadable, no accepted syntax it converts to): "
                "Failed + 1, its UID joins the failed list, logged; the next one follows.",
            ),
            _on(
                "sub_op_lost",
                "sub_assoc_aborted",
                "Storing",
                "SubOps",
                status=st.PENDING,
                action="count_lost",
                when="The sub-association went away under the C-STORE: Failed + 1, and every "
                "later instance fails (the reason is logged once).",
            ),
            _on(
                "cancelled_after_unsendable",
                "store_not_sent",
                "Cancelling",
                "Cancelled",
                status=st.CANCEL,
                action="count_failed",
                when="The last instance could not be sent after the C-CANCEL: Failed + 1, "
                "then Cancel.",
            ),
            _on(
                "cancelled_after_lost",
                "sub_assoc_aborted",
                "Cancelling",
                "Cancelled",
                status=st.CANCEL,
                action="count_lost",
                when="The sub-association went away after the C-CANCEL: Failed + 1, then Cancel.",
            ),
        ]
    table.append(
        _on(
            "association_ended",
            "association_ended",
            running,
            "Aborted",
            action="ended_by_association",
            when="The association with the requestor ended (released, aborted, connection "
            "lost) mid-operation: no response can go out; the handler is closed"
            + (", the sub-association aborted." if move else "."),
        )
    )
    return tuple(table)


_OVER = "the final response has been sent (or the association is gone): the operation is over"
_HANDLER_ONLY = "only the handler's next value, its end, a C-CANCEL or the association's end"


def retrieve_chart(name: str, codes: RetrieveCodes, move: bool, doc: str) -> Chart:
    """The C-GET or C-MOVE SCP chart, total: every other (state, input) is a refusal."""
    states = (
        ("Decoding", _RESOLVING, "AwaitingCount", _CONNECTING, "SubOps", "Storing")
        if move
        else ("Decoding", "AwaitingCount", "SubOps", "Storing")
    ) + ("Cancelling", "Cancelled", "Final", "Aborted")
    transitions = retrieve_transitions(codes, move)
    reasons = {
        "Decoding": "the handler is called only once the request is decoded, and the operation "
        "is registered (for a C-CANCEL or the association's end) only then",
        _RESOLVING: "the handler's first value is the destination; "
        + _HANDLER_ONLY
        + " can come now",
        "AwaitingCount": "the handler's next value is the count; "
        + _HANDLER_ONLY
        + " can come now",
        _CONNECTING: "the sub-association was asked for: only its acceptance, rejection or "
        "abort, a C-CANCEL or the association's end can come now",
        "SubOps": "no C-STORE is outstanding and the sub-association is settled: only the "
        "handler's next value, its end, a C-CANCEL or the association's end can come now",
        "Storing": "a C-STORE is outstanding and the handler is not asked for more: only its "
        "outcome, a C-CANCEL or the association's end can come now",
        "Cancelling": "the C-CANCEL was received and the handler is not asked for more: only the "
        "outstanding C-STORE's outcome, another C-CANCEL or the association's end can come now",
        "Cancelled": _OVER,
        "Final": _OVER,
        "Aborted": _OVER,
    }
    return Chart(
        name=name,
        states=states,
        initial="Decoding",
        final=("Cancelled", "Final", "Aborted"),
        doc=doc,
        transitions=transitions,
        refusals=complete_table(states, transitions, reasons),
    )


class RetrieveScp(IdentifierScp):
    """One C-GET-RQ or C-MOVE-RQ being answered; the transport steps it while ``ready``.

    Each :meth:`step` takes one value from the handler and turns it into one
    input; the outcomes of sub-operations arrive as inputs too (:meth:`store_response`).
    """

    response_command: Callable[..., dict[str, Any]]
    status_table: Any
    codes: RetrieveCodes

    def __init__(
        self,
        request: Message,
        context: AcceptedContext | None,
        handler: Callable[[Any], Any] | None,
        assoc: Any,
        engine: Any,
        check: IdentifierCheck | None = None,
        max_identifier_size: int = MAX_IDENTIFIER_LENGTH,
        instances: InstanceSource | None = None,
    ) -> None:
        super().__init__(request, context, handler, assoc, check, max_identifier_size)
        self.engine = engine
        if instances is None:
            from dimsefsm.instances import FileInstances  # the default reads DICOM files

            instances = FileInstances()
        self.instances = instances
        self.announced = 0
        self.delivered = 0
        self.completed = 0
        self.failed = 0
        self.warning = 0
        self.failed_uids: list[str] = []
        self.counting = False  # counts go on every response once sub-operations are announced
        self.yielded: Any = None  # the handler's last value, for the guards
        self.yielded_status: int | None = None
        self.problem: str | None = None
        self.item: object = None  # the instance of the current sub-operation
        self.storing_uid: str | None = None  # the SOP Instance UID of the C-STORE out
        self.store_status: int | None = None
        self.chart.attach(self)

    @property
    def log(self) -> logging.Logger:
        """The service's logger (``dimsefsm.get``, ``dimsefsm.move``), as the CLIs show it."""
        return logging.getLogger(type(self).__module__.replace("services.", ""))

    @property
    def ready(self) -> bool:
        """False while a sub-operation's outcome is awaited."""
        return self.state not in ("Storing", "Cancelling", _CONNECTING)

    @property
    def remaining(self) -> int:
        return max(self.announced - self.delivered, 0)

    # -- the handler's values become inputs ------------------------------------------------
    def step(self) -> None:
        assert self.generator is not None
        try:
            value = next(self.generator)
        except StopIteration:
            if self.state == "AwaitingCount":
                self.comment = "the handler yielded no number of sub-operations"
            elif self.state == _RESOLVING:
                self.comment = "the handler yielded no destination"
            self._end("handler_ended")
            return
        except Exception as exc:
            self._raised(exc)
            return
        self.yielded = value
        self._fire(self.input_for(value))
        if self.done:
            self.close()

    def input_for(self, value: object) -> str:
        """Which input a handler value is, by the state's question (count? instance?)."""
        if self.state == "AwaitingCount":
            if isinstance(value, tuple):
                self.yielded_status, _, self.problem = read_status(value)
                return "status_yielded"
            return "count_yielded"
        status, payload, self.problem = read_status(value)
        self.yielded_status = status
        self.comment = status_comment(value)
        if status in (st.PENDING, st.PENDING_WARNING):
            self.item = payload
            return "item_yielded"
        if self.problem == "not_a_pair":
            self.comment = "the handler must yield (status, dataset) pairs"
        self.reply_status = status
        return "status_yielded"

    def _end(self, trigger: str) -> None:
        self._fire(trigger)
        self.close()

    # -- guards: the count -----------------------------------------------------------------
    def count_is_not_a_number(self, _: EventData) -> bool:
        count = self.yielded
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.comment = f"the count must be a non-negative number, not {count!r}"
            return True
        return False

    def count_over_65535(self, _: EventData) -> bool:
        if self.yielded > MAX_COUNT:
            self.comment = f"{self.yielded} sub-operations; the counts allow {MAX_COUNT}"
            self.log.warning(
                "%s handler announced %d sub-operations", self.chart.name, self.yielded
            )
            return True
        return False

    def counted(self, _: EventData | None = None) -> None:
        """The count is valid: sub-operations may start, and every response carries counts."""
        self.announced = self.yielded
        self.counting = True

    def matches_uncountable(self, _: EventData) -> bool:
        if self.yielded_status == st.OUT_OF_RESOURCES_MATCHES:
            self.comment = self.comment or "the handler cannot calculate the number of matches"
            return True
        return False

    def respond_not_a_count(self, event: EventData) -> None:
        self.comment = f"the count must be a non-negative number, not {self.yielded!r}"
        self.respond(event)

    # -- guards: an instance ---------------------------------------------------------------
    def beyond_announced(self, _: EventData) -> bool:
        if self.delivered >= self.announced:
            self.log.warning(
                "%s handler yielded more instances than the %d it announced; ignored",
                self.chart.name,
                self.announced,
            )
            return True
        return False

    def no_instance(self, _: EventData) -> bool:
        return not is_instance(self.item)

    def lacks_storage_context(self, _: EventData) -> bool:
        """No accepted context lets us send this SOP class (as its SCU)."""
        raise NotImplementedError

    def sendable(self, _: EventData) -> bool:
        """Announced, an instance, and it can go (each reason it cannot is a guard below)."""
        return self.delivered < self.announced and is_instance(self.item) and self.can_send()

    def can_send(self) -> bool:
        raise NotImplementedError

    # -- guards: a final status from the handler -------------------------------------------
    def success_status(self, _: EventData) -> bool:
        return self.yielded_status == st.SUCCESS

    def cancel_status(self, _: EventData) -> bool:
        return self.yielded_status == st.CANCEL

    def _in_table(self, category: st.Category) -> bool:
        status = self.yielded_status
        return (
            status is not None and status in self.status_table and st.category(status) is category
        )

    def failure_status(self, _: EventData) -> bool:
        return self._in_table(st.Category.FAILURE)

    def warning_status(self, _: EventData) -> bool:
        return self._in_table(st.Category.WARNING)

    def status_without_status_element(self, _: EventData) -> bool:
        return self.problem == "no_status_element"

    def not_a_status_pair(self, _: EventData) -> bool:
        return self.problem in ("not_a_pair", "invalid_status")

    def respond_unknown_status(self, event: EventData) -> None:
        self.log.warning(
            "%s handler yielded unknown status 0x%04X; sent as is",
            self.chart.name,
            self.yielded_status,
        )
        self.respond(event)

    # -- guards: the end -------------------------------------------------------------------
    def all_succeeded(self, _: EventData) -> bool:
        return self.failed == 0 and self.warning == 0

    def all_failed(self, _: EventData) -> bool:
        return self.failed > 0 and self.failed == self.completed + self.failed + self.warning

    # -- guards: a C-STORE response --------------------------------------------------------
    def stored(self, _: EventData) -> bool:
        return self.store_status == st.SUCCESS

    def stored_with_warning(self, _: EventData) -> bool:
        status = self.store_status
        return status is not None and status >= 0 and st.category(status) is st.Category.WARNING

    # -- inputs from the sub-operations ------------------------------------------------------
    def store_response(self, status: int | None) -> None:
        """The C-STORE's response arrived (``status`` None: no usable Status in it)."""
        self.store_status = status if isinstance(status, int) else -1
        self._fire("store_response")
        if self.done:
            self.close()

    # -- actions ---------------------------------------------------------------------------
    def fail_item(self, event: EventData) -> None:
        """The instance could not go out at all: Failed + 1, its UID (if any) listed."""
        self.delivered += 1
        uid = self.item_uid()
        self.log.warning(
            "%s sub-operation %d of %d failed before sending %s: %s",
            self.chart.name,
            self.delivered,
            self.announced,
            uid or _describe(self.item),
            self.why_not_sent or declared(self.chart, event).name.replace("_", " "),
        )
        self.why_not_sent = None
        self.failed += 1
        if uid:
            self.failed_uids.append(uid)
        self.respond(event)

    why_not_sent: str | None = None

    def item_uid(self) -> str | None:
        """The SOP Instance UID of the current instance, for the failed list."""
        if not is_instance(self.item):
            return None
        return self.instances.identity(self.item).sop_instance_uid

    def send_sub_operation(self, event: EventData) -> None:
        raise NotImplementedError

    def count_completed(self, event: EventData) -> None:
        self.completed += 1
        self.respond(event)

    def count_warning(self, event: EventData) -> None:
        self.warning += 1
        self.respond(event)

    def count_failed(self, event: EventData) -> None:
        self.failed += 1
        uid = self.storing_uid or self.item_uid()
        if uid:
            self.failed_uids.append(uid)
        self.respond(event)

    # -- responses -------------------------------------------------------------------------
    def respond(self, event: EventData) -> None:
        code = declared(self.chart, event).status
        status = self.reply_status if code is None else code
        assert status is not None
        pending = status == st.PENDING
        cancel = status == st.CANCEL
        identifier = None
        if not pending and self.failed_uids and status != st.SUCCESS:
            failed = Dataset()
            # Listed as they are, even a UID too long for UI: it names what failed.
            failed.add(
                DataElement(0x00080058, "UI", self.failed_uids, validation_mode=config.IGNORE)
            )
            assert self.context is not None
            identifier = encode_dataset(failed, self.context.transfer_syntax)
        comment = self.comment if not pending and status != st.SUCCESS else None
        self.send_response(
            status,
            remaining=self.remaining if (pending or cancel) else None,
            counts=self.counting,
            identifier=identifier,
            comment=comment[:64] if comment else None,
        )

    def send_response(
        self,
        status: int,
        *,
        remaining: int | None,
        counts: bool,
        identifier: bytes | None,
        comment: str | None,
    ) -> None:
        self.engine.send_message(self.response(status, remaining, counts, identifier, comment))

    def response(
        self,
        status: int,
        remaining: int | None,
        counts: bool,
        identifier: bytes | None,
        comment: str | None,
    ) -> Message:
        cmd = self.request.command
        return Message(
            self.request.context_id,
            self.response_command(
                cmd.get("MessageID", 0),
                status,
                sop_class_uid=cmd.get("AffectedSOPClassUID") or None,
                remaining=remaining,
                completed=self.completed if counts else None,
                failed=self.failed if counts else None,
                warning=self.warning if counts else None,
                has_identifier=identifier is not None,
                offending_element=self.offending,
                error_comment=comment,
            ),
            identifier,
        )

    def ended_by_association(self, event: EventData) -> None:
        self.log.info(
            "%s ended by the association after %d completed, %d failed, %d warning",
            self.chart.name,
            self.completed,
            self.failed,
            self.warning,
        )

    def storage_contexts(self) -> list[AcceptedContext]:
        raise NotImplementedError

    def context_for(self, sop_class: str | None) -> bool:
        """A context where we may send ``sop_class`` as its SCU."""
        if sop_class is None:
            return False
        return any(
            ctx.abstract_syntax == sop_class and ctx.as_scu for ctx in self.storage_contexts()
        )


def _describe(item: object) -> str:
    return str(item) if isinstance(item, (str, Path)) else type(item).__name__
