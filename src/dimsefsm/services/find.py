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
from dimsefsm.fsm import Chart, transition
from dimsefsm.services.identifier import IdentifierCheck, IdentifierScp, decoding_transitions
from dimsefsm.services.multi_response import MultiResponseScu, make_multi_scu_chart

LOG = logging.getLogger("dimsefsm.find")

_HANDLER_ENDS = "Matching"

SCP_CHART = Chart(
    name="c-find-scp",
    states=("Decoding", "Matching", "Cancelled", "Final"),
    initial="Decoding",
    final=("Cancelled", "Final"),
    doc="C-FIND SCP: decode and check the identifier, then one response per handler yield.",
    transitions=(
        *decoding_transitions(
            "find",
            st.FIND_DECODE_FAILED,
            st.OUT_OF_RESOURCES,
            "The Query/Retrieve Level is missing or not in the model, a key above the "
            "level is not a unique key, or a key value is longer than its VR allows "
            "(PS3.5 6.2); ErrorComment says which.",
            "Matching",
        ),
        transition(
            "pending",
            "pending",
            "Matching",
            "Matching",
            status=st.PENDING,
            action="respond",
            when="The handler yielded Pending (0xFF00) with an identifier.",
        ),
        transition(
            "pending_warning",
            "pending_warning",
            "Matching",
            "Matching",
            status=st.PENDING_WARNING,
            action="respond",
            when="The handler yielded Pending (0xFF01: optional keys not supported) "
            "with an identifier.",
        ),
        transition(
            "cancelled",
            "cancelled",
            "Matching",
            "Cancelled",
            status=st.CANCEL,
            action="respond",
            when="A C-CANCEL-FIND arrived between two responses; the handler is closed.",
        ),
        transition(
            "handler_cancel",
            "handler_cancel",
            "Matching",
            "Cancelled",
            status=st.CANCEL,
            action="respond",
            when="The handler yielded Cancel (0xFE00).",
        ),
        transition(
            "exhausted",
            "exhausted",
            "Matching",
            "Final",
            status=st.SUCCESS,
            action="respond",
            when="The handler has no more matches: the final Success.",
        ),
        transition(
            "handler_success",
            "handler_success",
            "Matching",
            "Final",
            status=st.SUCCESS,
            action="respond",
            when="The handler yielded Success itself; matching ends.",
        ),
        transition(
            "handler_failure",
            "handler_failure",
            "Matching",
            "Final",
            action="respond",
            when="The handler yielded a Failure (A700, A900, 0122, Cxxx); sent as is.",
        ),
        transition(
            "unknown_status",
            "unknown_status",
            "Matching",
            "Final",
            action="respond",
            when="The handler yielded a status no table defines; logged, sent as is, final.",
        ),
        transition(
            "no_status_element",
            "no_status_element",
            "Matching",
            "Final",
            status=st.STATUS_DATASET_WITHOUT_STATUS,
            action="respond",
            when="The handler yielded a status Dataset without a Status element.",
        ),
        transition(
            "invalid_status",
            "invalid_status",
            "Matching",
            "Final",
            status=st.INVALID_STATUS_OBJECT,
            action="respond",
            when="The handler yielded something that is not a (status, identifier) pair "
            "with an int or Dataset status.",
        ),
        transition(
            "unencodable",
            "unencodable",
            "Matching",
            "Final",
            status=st.FIND_ENCODE_FAILED,
            action="respond",
            when="A pending identifier is missing or cannot be encoded in the context's syntax.",
        ),
        transition(
            "handler_raised",
            "handler_raised",
            "Matching",
            "Final",
            status=st.FIND_HANDLER_FAILED,
            action="respond",
            when="The handler raised, on the call or between two yields.",
        ),
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
        SCP_CHART.attach(self)

    def make_event(self, ctx: AcceptedContext) -> FindEvent:
        assert self.identifier is not None
        return FindEvent(self.assoc, self.request, ctx, self.identifier, self)

    # -- Matching ------------------------------------------------------------------------
    def step(self) -> None:
        """Send exactly one response: the next match, or the final status."""
        if self.cancel_requested:
            self._fire("cancelled")
            self.close()
            return
        assert self.generator is not None
        try:
            item = next(self.generator)
        except StopIteration:
            self._fire("exhausted")
            return
        except Exception as exc:
            self._raised(exc)
            return
        self._fire(self._classify(item))
        if self.done:
            self.close()

    def cancel(self) -> None:
        LOG.info("C-CANCEL-FIND received after %d matches", self.matches)
        self.cancel_requested = True

    def _classify(self, item: object) -> str:
        if not isinstance(item, tuple) or len(item) != 2:
            self.comment = "the handler must yield (status, identifier) pairs"
            return "invalid_status"
        status, identifier = item
        if isinstance(status, Dataset):
            if "Status" not in status:
                return "no_status_element"
            self.comment = status.get("ErrorComment")
            status = status.Status
        if isinstance(status, bool) or not isinstance(status, int):
            return "invalid_status"
        self.reply_status = status
        if status in (st.PENDING, st.PENDING_WARNING):
            return self._pending(status, identifier)
        if status == st.SUCCESS:
            return "handler_success"
        if status == st.CANCEL:
            return "handler_cancel"
        if status in st.QR_FIND_STATUSES and st.category(status) is st.Category.FAILURE:
            return "handler_failure"
        LOG.warning("C-FIND handler yielded unknown status 0x%04X; sent as is", status)
        return "unknown_status"

    def _pending(self, status: int, identifier: object) -> str:
        assert self.context is not None and self.identifier is not None
        if not isinstance(identifier, Dataset):
            self.comment = "a pending response needs an identifier Dataset"
            return "unencodable"
        if "QueryRetrieveLevel" in self.identifier and "QueryRetrieveLevel" not in identifier:
            identifier = Dataset(identifier)  # echo the level without touching the caller's
            identifier.QueryRetrieveLevel = self.identifier.QueryRetrieveLevel
        try:
            self.reply_identifier = encode_dataset(identifier, self.context.transfer_syntax)
        except Exception as exc:
            LOG.warning("C-FIND identifier cannot be encoded: %s", exc)
            self.comment = f"identifier cannot be encoded: {exc}"
            return "unencodable"
        self.matches += 1
        return "pending" if status == st.PENDING else "pending_warning"

    def respond(self, event: EventData) -> None:
        code = SCP_CHART.status_of(event.event.name)
        status = self.reply_status if code is None else code
        assert status is not None
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
