"""C-GET SCP and SCU: the retrieve chart (:mod:`dimsefsm.services.retrieve`) on one association.

The SCP follows the handler protocol pynetdicom users know: the generator
first yields the number of sub-operations, then ``(status, dataset)`` pairs.
Each Pending pair becomes one C-STORE sub-operation on the same association,
in the reverse role; its response is the chart's ``store_response`` input and
sends a Pending C-GET response carrying all four counts.  Between two steps
the transport reads, so a C-CANCEL-GET is the chart's ``cancel_received``.
The counting rules are the retrieve chart's.
"""

from __future__ import annotations

import logging
from typing import Any

from pydicom import Dataset
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext, Negotiated
from dimsefsm.dimse.commands import get_rsp, store_rq
from dimsefsm.dimse.message import Message
from dimsefsm.services.find import QueryEvent
from dimsefsm.services.multi_response import MultiResponseScu, make_multi_scu_chart
from dimsefsm.services.retrieve import GET_CODES, RetrieveScp, retrieve_chart
from dimsefsm.services.storage import StoreScu, StoreSource

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

MAX_UID = 64  # characters of a UI value (PS3.5 6.2): the C-STORE command carries two

SCP_CHART = retrieve_chart(
    "c-get-scp",
    GET_CODES,
    move=False,
    doc="C-GET SCP: count, then one C-STORE sub-operation and one Pending per instance.",
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
    """A C-STORE we send for a C-GET; its response is the operation's ``store_response``."""

    def __init__(self, message_id: int, owner: GetScp) -> None:
        self.owner = owner
        super().__init__(message_id)

    def on_response(self, message: Message) -> None:
        super().on_response(message)
        if not self.owner.done:
            self.owner.store_response(message.command.get("Status"))


class GetScp(RetrieveScp):
    """One C-GET-RQ being answered; the C-STOREs go to the requestor on this association."""

    chart = SCP_CHART
    codes = GET_CODES
    response_command = staticmethod(get_rsp)
    status_table = st.QR_GET_STATUSES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: StoreSource | None = None
        self.prepared_item: object = None  # the instance ``prepared`` was built from

    def make_event(self, ctx: AcceptedContext) -> Any:
        assert self.identifier is not None
        from dimsefsm import evt

        return QueryEvent(self.assoc, self.request, ctx, self.identifier, self, evt.EVT_C_GET)

    def storage_contexts(self) -> list[AcceptedContext]:
        """The contexts the C-STOREs may go on: this association's."""
        negotiated: Negotiated | None = self.engine.negotiated
        return list(negotiated.contexts.values()) if negotiated is not None else []

    # -- guards ------------------------------------------------------------------------------
    def lacks_storage_context(self, _: EventData) -> bool:
        """The peer accepted no context on which we may send this SOP class (as its SCU).

        The C-STORE is prepared first; the instance is read again only if that failed.
        """
        if self._prepare():
            return False
        sop_class = self.instances.identity(self.item).sop_class_uid
        return sop_class is not None and not self.context_for(sop_class)

    def can_send(self) -> bool:
        return self._prepare()

    def _prepare(self) -> bool:
        """Build the C-STORE of the current instance once; False (reason kept) if it cannot go."""
        if self.prepared_item is self.item:
            return self.prepared is not None
        self.prepared_item = self.item
        self.prepared = None
        without_bulk = self.context is not None and self.context.abstract_syntax == NO_BULK_GET
        try:
            self.prepared = self.instances.store_source(
                self.engine.negotiated, self.item, without_bulk
            )
            if not self.engine.negotiated.contexts[self.prepared.context_id].as_scu:
                raise ValueError("the peer did not accept the SCP role for its SOP class")
            for uid in (self.prepared.sop_class_uid, self.prepared.sop_instance_uid):
                if len(str(uid).encode("ascii")) > MAX_UID:
                    raise ValueError(f"UID longer than {MAX_UID} characters: {uid!r}")
        except Exception as exc:
            self.prepared = None
            self.why_not_sent = str(exc)
            return False
        return True

    # -- actions -----------------------------------------------------------------------------
    def send_sub_operation(self, event: EventData) -> None:
        """The prepared C-STORE goes out on this association; its response is awaited."""
        source = self.prepared
        assert source is not None
        self.prepared, self.prepared_item = None, None
        self.delivered += 1
        self.storing_uid = source.sop_instance_uid
        message_id = self.engine.next_message_id()
        self.engine.send_message(
            Message(
                source.context_id,
                store_rq(message_id, source.sop_class_uid, source.sop_instance_uid),
                source.data or b"",
            )
        )
        sub = SubOperation(message_id, self)
        self.engine.start_operation(message_id, sub)
        sub.sent()


class GetScu(MultiResponseScu):
    """One C-GET-RQ we sent; C-STOREs arrive meanwhile and are served by the dispatcher."""

    chart = SCU_CHART
