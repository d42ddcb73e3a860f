"""C-GET: the operation is a machine whose transitions produce the responses.

The SCP chart follows the handler protocol pynetdicom users know: the
generator first yields the number of sub-operations, then ``(status,
dataset)`` pairs.  Each Pending pair becomes one C-STORE sub-operation on the
same association, in the reverse role; its response moves the chart and sends
a Pending C-GET response carrying all four counts.  Between two steps the
transport reads, so a C-CANCEL-GET stops the operation with the counts so far.

Counting rules (PS3.4 C.4.3.1, C.4.3.3.1, PS3.7 Table 9.1-3; each is also the
``when`` sentence of its transition):

* Pending responses carry Remaining, Completed, Failed and Warning counts.
* Final responses never carry Remaining, except Cancel, which carries the
  sub-operations not started (PS3.4 C.4.3.1.3.2: "may").
* When the handler ends the operation with its own final status, sub-operations
  it announced but never delivered are *not* counted as failed: the counts say
  what really happened.
* At the end, every sub-operation succeeded: Success (0x0000); some failed or
  warned: Warning (0xB000); all failed: Failure (0xA702).  The seed answered
  Warning when all failed; the standard says Failure.
* Failure, Warning and Cancel final responses carry the Failed SOP Instance
  UID List (0008,0058) as their identifier when anything failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydicom import Dataset, config
from pydicom.dataelem import DataElement
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext, Negotiated
from dimsefsm.datasets import encode_dataset
from dimsefsm.dimse.commands import get_rsp, store_rq
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import MAX_IDENTIFIER_LENGTH
from dimsefsm.fsm import Chart, transition
from dimsefsm.part10 import Part10Error, read_part10_info
from dimsefsm.services.find import QueryEvent
from dimsefsm.services.identifier import IdentifierCheck, IdentifierScp, decoding_transitions
from dimsefsm.services.multi_response import MultiResponseScu, make_multi_scu_chart
from dimsefsm.services.storage import StoreScu, store_source

LOG = logging.getLogger("dimsefsm.get")

NO_BULK_GET = "1.2.840.10008.5.1.4.1.2.5.3"
# Composite Instance Retrieve Without Bulk Data removes these before sending (PS3.4 Z.1.2).
BULK_DATA_TAGS = (
    0x7FE00010,  # PixelData
    0x7FE00008,  # FloatPixelData
    0x7FE00009,  # DoubleFloatPixelData
    0x00287FE0,  # PixelDataProviderURL
    0x56000020,  # SpectroscopyData
    0x00420011,  # EncapsulatedDocument
)

_SUBOPS = "SubOps"
SCP_CHART = Chart(
    name="c-get-scp",
    states=("Decoding", "AwaitingCount", _SUBOPS, "Cancelled", "Final"),
    initial="Decoding",
    final=("Cancelled", "Final"),
    doc="C-GET SCP: count, then one C-STORE sub-operation and one Pending per instance.",
    transitions=(
        *decoding_transitions(
            "get",
            st.GET_DECODE_FAILED,
            st.OUT_OF_RESOURCES_MATCHES,
            "The identifier lacks the unique keys the retrieve level needs, or a key "
            "value is longer than its VR allows (PS3.5 6.2).",
            "AwaitingCount",
        ),
        transition(
            "handler_raised",
            "handler_raised",
            ("AwaitingCount", _SUBOPS),
            "Final",
            status=st.GET_HANDLER_FAILED,
            action="respond",
            when="The handler raised, on the call or between two yields; counts so far.",
        ),
        transition(
            "bad_count",
            "bad_count",
            "AwaitingCount",
            "Final",
            status=st.GET_BAD_SUBOPERATION_COUNT,
            action="respond",
            when="The first yield is not a non-negative number of sub-operations.",
        ),
        transition(
            "count",
            "count",
            "AwaitingCount",
            _SUBOPS,
            when="The handler announced how many sub-operations follow.",
        ),
        transition(
            "sub_op_sent",
            "sub_op_sent",
            _SUBOPS,
            "=",
            when="A Pending yield's instance went out as a C-STORE on a context where the "
            "peer accepted the SCP role; its response is awaited.",
        ),
        transition(
            "sub_op_completed",
            "sub_op_completed",
            _SUBOPS,
            "=",
            status=st.PENDING,
            action="respond",
            when="The peer stored the instance (0x0000): Completed + 1.",
        ),
        transition(
            "sub_op_warning",
            "sub_op_warning",
            _SUBOPS,
            "=",
            status=st.PENDING,
            action="respond",
            when="The peer stored it with a Warning (Bxxx): Warning + 1.",
        ),
        transition(
            "sub_op_failed",
            "sub_op_failed",
            _SUBOPS,
            "=",
            status=st.PENDING,
            action="respond",
            when="The peer refused it (e.g. 0xA700), or never answered: Failed + 1, its UID "
            "joins the failed list.",
        ),
        transition(
            "no_context",
            "sub_op_unsendable",
            _SUBOPS,
            "=",
            guard="lacks_storage_context",
            status=st.PENDING,
            action="respond",
            when="No accepted context lets us send this instance (the peer did not take the "
            "SCP role for its SOP class): a failed sub-operation, not a crash.",
        ),
        transition(
            "not_a_dataset",
            "sub_op_unsendable",
            _SUBOPS,
            "=",
            guard="yielded_no_instance",
            status=st.PENDING,
            action="respond",
            when="A Pending yield carried no Dataset or file path: a failed sub-operation.",
        ),
        transition(
            "unsendable",
            "sub_op_unsendable",
            _SUBOPS,
            "=",
            guard="instance_unsendable",
            status=st.PENDING,
            action="respond",
            when="The instance cannot become a C-STORE here (a UID over 64 characters, a file "
            "gone or unreadable, no accepted syntax it converts to): Failed + 1, its UID "
            "joins the failed list, logged; the next sub-operation follows.",
        ),
        transition(
            "extra_ignored",
            "extra_ignored",
            _SUBOPS,
            "=",
            when="The handler yielded more instances than it announced: ignored and logged.",
        ),
        transition(
            "cancelled",
            "cancelled",
            _SUBOPS,
            "Cancelled",
            status=st.CANCEL,
            action="respond",
            when="A C-CANCEL-GET arrived between sub-operations: counts so far, Remaining "
            "= not started, the failed list.",
        ),
        transition(
            "handler_cancel",
            "handler_cancel",
            _SUBOPS,
            "Cancelled",
            status=st.CANCEL,
            action="respond",
            when="The handler yielded Cancel (0xFE00).",
        ),
        transition(
            "handler_success",
            "handler_success",
            _SUBOPS,
            "Final",
            status=st.SUCCESS,
            action="respond",
            when="The handler yielded Success itself; undelivered ones are not counted.",
        ),
        transition(
            "handler_failure",
            "handler_failure",
            _SUBOPS,
            "Final",
            action="respond",
            when="The handler yielded a Failure (A701, A702, A900, AAxx, Cxxx); sent as is with "
            "the counts so far; undelivered sub-operations are not counted as failed.",
        ),
        transition(
            "handler_warning",
            "handler_warning",
            _SUBOPS,
            "Final",
            action="respond",
            when="The handler yielded a Warning (B000); sent as is with the counts so far.",
        ),
        transition(
            "unknown_status",
            "unknown_status",
            _SUBOPS,
            "Final",
            action="respond",
            when="The handler yielded a status no table defines; logged, sent as is, final.",
        ),
        transition(
            "no_status_element",
            "no_status_element",
            _SUBOPS,
            "Final",
            status=st.STATUS_DATASET_WITHOUT_STATUS,
            action="respond",
            when="The handler yielded a status Dataset without a Status element.",
        ),
        transition(
            "invalid_status",
            "invalid_status",
            _SUBOPS,
            "Final",
            status=st.INVALID_STATUS_OBJECT,
            action="respond",
            when="The handler yielded something that is not a (status, dataset) pair.",
        ),
        transition(
            "complete_success",
            "complete_success",
            _SUBOPS,
            "Final",
            status=st.SUCCESS,
            action="respond",
            when="All sub-operations done and every one succeeded.",
        ),
        transition(
            "complete_warning",
            "complete_warning",
            _SUBOPS,
            "Final",
            status=st.SUBOPERATIONS_WITH_FAILURES,
            action="respond",
            when="All done; at least one succeeded and at least one failed or warned, or "
            "all warned (PS3.4 C.4.3.3.1).",
        ),
        transition(
            "complete_failure",
            "complete_failure",
            _SUBOPS,
            "Final",
            status=st.OUT_OF_RESOURCES_SUBOPERATIONS,
            action="respond",
            when="All done and every sub-operation failed: Failure 0xA702, not the seed's Warning.",
        ),
    ),
)

SCU_CHART = make_multi_scu_chart(
    "c-get-scu",
    "C-GET",
    "Retrieving",
    pending_warning=False,
    failures="0xA701/0xA702 out of resources, 0xA900, 0xAAxx, 0xCxxx, 0x0122",
)


def strip_bulk_data(ds: Dataset) -> Dataset:
    """Composite Instance Retrieve Without Bulk Data: drop the bulk elements."""
    for tag in BULK_DATA_TAGS:
        if tag in ds:
            del ds[tag]
    for elem in list(ds):
        group, element = elem.tag.group, elem.tag.element
        if (group & 0xFF00) == 0x6000 and element == 0x3000:
            del ds[elem.tag]  # OverlayData
        elif (group & 0xFF00) == 0x5000 and element in (0x3000, 0x200C):
            del ds[elem.tag]  # CurveData, AudioSampleData
    for item in ds.get("WaveformSequence", []):
        if "WaveformData" in item:
            del item.WaveformData
    return ds


class SubOperation(StoreScu):
    """A C-STORE we send for a C-GET; its outcome is reported back to the operation."""

    def __init__(self, message_id: int, sop_instance_uid: str, owner: GetScp) -> None:
        self.sop_instance_uid = sop_instance_uid
        self.owner = owner
        super().__init__(message_id)

    def on_response(self, message: Message) -> None:
        super().on_response(message)
        self.owner.sub_op_done(self)

    def on_abort(self) -> None:
        super().on_abort()
        self.owner.sub_op_done(self)

    def on_timeout(self) -> None:
        super().on_timeout()
        self.owner.sub_op_done(self)


class GetScp(IdentifierScp):
    """One C-GET-RQ being answered; the transport steps it while ``ready``."""

    chart = SCP_CHART
    response_command = staticmethod(get_rsp)

    def __init__(
        self,
        request: Message,
        context: AcceptedContext | None,
        handler: Callable[[QueryEvent], Any] | None,
        assoc: Any,
        engine: Any,
        check: IdentifierCheck | None = None,
        max_identifier_size: int = MAX_IDENTIFIER_LENGTH,
    ) -> None:
        super().__init__(request, context, handler, assoc, check, max_identifier_size)
        self.engine = engine
        self.announced = 0
        self.delivered = 0
        self.completed = 0
        self.failed = 0
        self.warning = 0
        self.failed_uids: list[str] = []
        self.waiting: SubOperation | None = None
        self.unsent: object = None  # the instance sub_op_unsendable is about, for its guards
        self.counting = False  # counts go on every response once sub-operations are announced
        self.chart.attach(self)

    @property
    def ready(self) -> bool:
        """False while a sub-operation's C-STORE response is awaited."""
        return self.waiting is None

    @property
    def remaining(self) -> int:
        return max(self.announced - self.delivered, 0)

    def make_event(self, ctx: AcceptedContext) -> Any:
        assert self.identifier is not None
        from dimsefsm import evt

        return QueryEvent(self.assoc, self.request, ctx, self.identifier, self, evt.EVT_C_GET)

    # -- stepping ------------------------------------------------------------------------
    def step(self) -> None:
        if self.state == "AwaitingCount":
            self._count()
        elif self.cancel_requested:
            self._fire("cancelled")
            self.close()
        else:
            self._next_item()

    # The trigger when the handler ends before yielding its count: C-GET knows one
    # failure for it (0xC513); C-MOVE tells it apart as 0xC514.
    missing_count = "bad_count"

    def _count(self) -> None:
        assert self.generator is not None
        try:
            count = next(self.generator)
        except StopIteration:
            self.comment = "the handler yielded no number of sub-operations"
            self._end(self.missing_count)
            return
        except Exception as exc:
            self._raised(exc)
            return
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.comment = f"the count must be a non-negative number, not {count!r}"
            self._end("bad_count")
            return
        self.announced = count
        self.counting = True
        self.counted(count)

    def counted(self, count: int) -> None:
        """The count is valid: sub-operations may start."""
        self._fire("count")

    def _next_item(self) -> None:
        assert self.generator is not None
        try:
            item = next(self.generator)
        except StopIteration:
            self._complete()
            return
        except Exception as exc:
            self._raised(exc)
            return
        if not isinstance(item, tuple) or len(item) != 2:
            self.comment = "the handler must yield (status, dataset) pairs"
            self._end("invalid_status")
            return
        status, dataset = item
        if isinstance(status, Dataset):
            if "Status" not in status:
                self._end("no_status_element")
                return
            self.comment = status.get("ErrorComment")
            status = status.Status
        if isinstance(status, bool) or not isinstance(status, int):
            self._end("invalid_status")
            return
        if status in (st.PENDING, st.PENDING_WARNING):
            self._sub_operation(dataset)
            return
        self.reply_status = status
        self._end(self._final_trigger(status))

    def _final_trigger(self, status: int) -> str:
        if status == st.SUCCESS:
            return "handler_success"
        if status == st.CANCEL:
            return "handler_cancel"
        category = st.category(status)
        table = self.status_table()
        if status in table and category is st.Category.FAILURE:
            return "handler_failure"
        if status in table and category is st.Category.WARNING:
            return "handler_warning"
        LOG.warning("%s handler yielded unknown status 0x%04X; sent as is", self.chart.name, status)
        return "unknown_status"

    def status_table(self) -> Any:
        return st.QR_GET_STATUSES

    def _sub_operation(self, dataset: object) -> None:
        if self.delivered >= self.announced:
            LOG.warning(
                "%s handler yielded more instances than the %d it announced; ignored",
                self.chart.name,
                self.announced,
            )
            self._fire("extra_ignored")
            return
        self.delivered += 1
        try:
            self._send_store(dataset)
        except Exception as exc:
            self.sub_op_unsendable(dataset, exc)
            return
        self._fire("sub_op_sent")

    # -- an instance that cannot become a C-STORE ------------------------------------------
    def sub_op_unsendable(self, dataset: object, exc: Exception) -> None:
        """Nothing went out for this instance: a failed sub-operation, then the next one.

        Whatever the reason (its UID, its file, its syntax, the handler's yield),
        no C-STORE response will come for it, so the operation must not wait for
        one; the guards of ``sub_op_unsendable`` name the reason on the chart.
        """
        self.unsent = dataset
        uid = instance_uid(dataset)
        LOG.warning(
            "%s sub-operation %d of %d failed before sending %s: %s",
            self.chart.name,
            self.delivered,
            self.announced,
            uid or _describe(dataset),
            exc,
        )
        self.failed += 1
        if uid:
            self.failed_uids.append(uid)
        self._fire("sub_op_unsendable")
        self.unsent = None

    def yielded_no_instance(self, _: EventData) -> bool:
        return not isinstance(self.unsent, (Dataset, str, Path))

    def lacks_storage_context(self, _: EventData) -> bool:
        """The peer accepted no context on which we may send this SOP class (as its SCU)."""
        if self.yielded_no_instance(_):
            return False
        sop_class = instance_identity(self.unsent)[0]
        if sop_class is None:
            return False
        return not any(
            ctx.abstract_syntax == sop_class and ctx.as_scu for ctx in self.storage_contexts()
        )

    def instance_unsendable(self, event: EventData) -> bool:
        return not self.yielded_no_instance(event) and not self.lacks_storage_context(event)

    def storage_contexts(self) -> list[AcceptedContext]:
        """The contexts the C-STOREs may go on: this association's, for C-GET."""
        negotiated: Negotiated | None = self.engine.negotiated
        return list(negotiated.contexts.values()) if negotiated is not None else []

    def _send_store(self, dataset: object) -> None:
        """One C-STORE sub-operation on this association (the peer is the storage SCP).

        The request is encoded and queued before the sub-operation is registered:
        an instance that cannot be encoded raises here and leaves nothing waiting.
        """
        if not isinstance(dataset, (Dataset, str, Path)):
            raise TypeError(f"the handler yielded {type(dataset).__name__}, not a Dataset or path")
        negotiated: Negotiated = self.engine.negotiated
        if self.context is not None and self.context.abstract_syntax == NO_BULK_GET:
            ds = dataset if isinstance(dataset, Dataset) else _read(Path(dataset))
            dataset = strip_bulk_data(ds)
        source = store_source(negotiated, dataset)
        ctx = negotiated.contexts[source.context_id]
        if not ctx.as_scu:
            raise ValueError(f"the peer did not accept the SCP role for {ctx.abstract_syntax}")
        message_id = self.engine.next_message_id()
        self.send_store(
            source.context_id,
            message_id,
            source.sop_class_uid,
            source.sop_instance_uid,
            source.data or b"",
        )
        sub = SubOperation(message_id, source.sop_instance_uid, self)
        self.engine.start_operation(message_id, sub)
        sub.sent()
        self.waiting = sub

    def send_store(
        self, context_id: int, message_id: int, sop_class: str, sop_instance: str, data: bytes
    ) -> None:
        self.engine.send_message(
            Message(context_id, store_rq(message_id, sop_class, sop_instance), data)
        )

    def sub_op_done(self, sub: SubOperation) -> None:
        """The C-STORE answered (or the association ended under it)."""
        self.waiting = None
        if self.done:
            return
        if sub.state == "Succeeded":
            self.completed += 1
            trigger = "sub_op_completed"
        elif sub.state == "Warned":
            self.warning += 1
            trigger = "sub_op_warning"
        else:
            self.failed += 1
            self.failed_uids.append(sub.sop_instance_uid)
            trigger = "sub_op_failed"
        if self.engine.is_established:
            self._fire(trigger)

    def _complete(self) -> None:
        total = self.completed + self.failed + self.warning
        if self.failed == 0 and self.warning == 0:
            trigger = "complete_success"
        elif total and self.failed == total:
            trigger = "complete_failure"
        else:
            trigger = "complete_warning"
        self._end(trigger)

    def _end(self, trigger: str) -> None:
        self._fire(trigger)
        self.close()

    def cancel(self) -> None:
        LOG.info("%s: C-CANCEL received", self.chart.name)
        self.cancel_requested = True

    def close(self) -> None:
        super().close()
        if self.state not in self.chart.final:
            LOG.info(
                "%s ended by the association after %d completed, %d failed, %d warning",
                self.chart.name,
                self.completed,
                self.failed,
                self.warning,
            )

    # -- responses ------------------------------------------------------------------------
    def respond(self, event: EventData) -> None:
        code = self.chart.status_of(event.event.name)
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
        counts: Any,
        identifier: bytes | None,
        comment: str | None,
    ) -> None:
        cmd = self.request.command
        self.engine.send_message(
            Message(
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
        )


def instance_identity(dataset: object) -> tuple[str | None, str | None]:
    """(SOP Class UID, SOP Instance UID) of a yielded instance, None where it cannot be told.

    A path is read for its file meta only; an unreadable file tells nothing.
    """
    if isinstance(dataset, Dataset):
        sop_class, sop_instance = dataset.get("SOPClassUID"), dataset.get("SOPInstanceUID")
        return (str(sop_class) if sop_class else None, str(sop_instance) if sop_instance else None)
    if isinstance(dataset, (str, Path)):
        try:
            info = read_part10_info(Path(dataset))
        except (Part10Error, OSError):
            return None, None
        return info.sop_class_uid or None, info.sop_instance_uid or None
    return None, None


def instance_uid(dataset: object) -> str | None:
    """The SOP Instance UID of a yielded instance, for the Failed SOP Instance UID List."""
    return instance_identity(dataset)[1]


def _describe(dataset: object) -> str:
    return str(dataset) if isinstance(dataset, (str, Path)) else type(dataset).__name__


def _read(path: Path) -> Dataset:
    from pydicom import dcmread

    return dcmread(path)


class GetScu(MultiResponseScu):
    """One C-GET-RQ we sent; C-STOREs arrive meanwhile and are served by the dispatcher."""

    chart = SCU_CHART
