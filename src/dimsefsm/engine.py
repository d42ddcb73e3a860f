"""The association engine: upper layer + negotiation + DIMSE, with no I/O.

It owns one :class:`~dimsefsm.ul.machine.UpperLayer` model, the PDU framer and
the DIMSE reassembler.  Inputs are method calls (bytes arrived, connection
closed, timer expired, the user wants to send/release/abort); outputs are the
upper layer's I/O effects (send, close, connect, start/stop ARTIM), collected in
:attr:`outbox` for the transport to execute.  Primitives the upper layer
indicates are consumed here: negotiation answers an A-ASSOCIATE indication,
P-DATA becomes DIMSE messages routed to operations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from logging import DEBUG
from typing import Any, Protocol

from transitions import EventData

from dimsefsm import evt, trace
from dimsefsm import status as st
from dimsefsm.assoc.negotiation import (
    AcceptorPolicy,
    Negotiated,
    Requestor,
    RequestorProposal,
    accept_or_reject,
    build_request,
    read_acceptance,
    ungranted_scp_roles,
)
from dimsefsm.dimse.commands import decode_command, encode_command
from dimsefsm.dimse.errors import DimseError
from dimsefsm.dimse.fragment import encode_message_bytes
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import MAX_IDENTIFIER_LENGTH, DatasetSink, Reassembler
from dimsefsm.fsm import Chart, Refusal, transition
from dimsefsm.notifications import Notify
from dimsefsm.pdu.codec import PduFramer
from dimsefsm.pdu.errors import PduError
from dimsefsm.pdu.model import AbortReason, AbortSource, AssociateAC, AssociateRJ, AssociateRQ
from dimsefsm.service_user import ServiceUser, service_users
from dimsefsm.ul import effects as fx
from dimsefsm.ul import events as ev
from dimsefsm.ul.machine import UpperLayer

LOG = logging.getLogger("dimsefsm.engine")

# Largest PDU body the framer accepts at all: bounded so that a hostile length
# field is refused from the header, generous for association PDUs.
_FRAMER_FLOOR = 1 << 20


class ScuOperation(Protocol):
    """An operation we started, waiting for responses by Message ID."""

    trace_label: str

    @property
    def done(self) -> bool: ...

    def on_response(self, message: Message) -> None: ...

    def on_abort(self) -> None: ...


class ScpOperation(Protocol):
    """A request we answer with several responses, one :meth:`step` at a time.

    The transport steps it between reads, so a C-CANCEL that arrives while
    matches are being sent is seen before the next response goes out.
    """

    @property
    def done(self) -> bool: ...

    def step(self) -> None: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


tracing = trace.TRACE.isEnabledFor


def _uid_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return name if name and name != uid else uid


# -- the association's outcome, as a chart --------------------------------------------------
_UNDECIDED = ("Pending", "Established")
_DECIDED = ("Rejected", "Released", "Aborted")
_ONCE = "the outcome is decided once: the upper layer has closed, or is closing, the association"

OUTCOME_CHART = Chart(
    name="association",
    states=("Pending", "Established", *_DECIDED),
    initial="Pending",
    final=_DECIDED,
    doc="What became of one association, either role: the outcome the API reports "
    "(is_established, is_rejected, is_released, is_aborted) and the audit trail records. "
    "Its inputs are the upper layer's primitives and what the local user did.",
    transitions=(
        transition(
            "accepted",
            "rq_accepted",
            "Pending",
            "Established",
            action="tell_observer",
            when="Acceptor: our policy accepted the A-ASSOCIATE-RQ; the A-ASSOCIATE-AC goes out.",
        ),
        transition(
            "refused",
            "rq_rejected",
            "Pending",
            "Rejected",
            action="tell_observer",
            when="Acceptor: our policy rejected the A-ASSOCIATE-RQ; the A-ASSOCIATE-RJ goes out.",
        ),
        transition(
            "confirmed",
            "ac_received",
            "Pending",
            "Established",
            action="tell_observer",
            when="Requestor: the peer's A-ASSOCIATE-AC arrived.",
        ),
        transition(
            "rejected",
            "rj_received",
            "Pending",
            "Rejected",
            action="tell_observer",
            when="Requestor: the peer's A-ASSOCIATE-RJ arrived.",
        ),
        transition(
            "released",
            "release_completed",
            "Established",
            "Released",
            action="ended",
            when="The release handshake completed, whichever side asked (also in a collision).",
        ),
        transition(
            "aborted_by_us",
            "abort_sent",
            "Established",
            "Aborted",
            action="ended",
            when="We aborted an established association (user request, timeout, protocol "
            "error); requests still unanswered are reported without a response.",
        ),
        transition(
            "aborted_by_peer",
            "abort_received",
            "Established",
            "Aborted",
            action="ended",
            when="The peer or the provider aborted, or the connection was lost.",
        ),
        transition(
            "abandoned",
            "abort_sent",
            "Pending",
            "Aborted",
            when="We aborted before the negotiation ended (ACSE timeout, shutdown).",
        ),
        transition(
            "lost",
            "abort_received",
            "Pending",
            "Aborted",
            when="The peer aborted, or the connection closed, before the negotiation ended.",
        ),
    ),
    refusals=(
        Refusal("rq_accepted", ("Established", *_DECIDED), "only a pending association is decided"),
        Refusal("rq_rejected", ("Established", *_DECIDED), "only a pending association is decided"),
        Refusal(
            "ac_received",
            ("Established", *_DECIDED),
            "the upper layer indicates an A-ASSOCIATE-AC only in Sta5, while pending",
        ),
        Refusal(
            "rj_received",
            ("Established", *_DECIDED),
            "the upper layer indicates an A-ASSOCIATE-RJ only in Sta5, while pending",
        ),
        Refusal(
            "release_completed",
            ("Pending",),
            "a release needs an established association (the upper layer aborts an early one)",
        ),
        Refusal("release_completed", _DECIDED, _ONCE),
        Refusal("abort_sent", _DECIDED, _ONCE + "; there is nothing left to abort"),
        Refusal("abort_received", _DECIDED, _ONCE),
    ),
)

_OUTCOME_NAMES = {
    "Pending": "pending",
    "Established": "established",
    "Rejected": "rejected",
    "Released": "released",
    "Aborted": "aborted",
}


class Outcome:
    """The model of :data:`OUTCOME_CHART` for one engine."""

    state: str

    def __init__(self, engine: AssociationEngine) -> None:
        self.engine = engine
        self.trace_label = engine.label
        OUTCOME_CHART.attach(self)

    def tell_observer(self, event: EventData) -> None:
        self.engine._notify(_OUTCOME_NAMES[self.state])

    def ended(self, event: EventData) -> None:
        """An established association ended: unanswered requests, then the observer."""
        self.engine._unanswered()
        self.engine._notify(_OUTCOME_NAMES[self.state])


RequestHandler = Callable[["AssociationEngine", Message], None]
OutcomeObserver = Callable[["AssociationEngine", str], None]
OperationObserver = Callable[["AssociationEngine", Message, dict[str, Any], float], None]
_PENDING = (st.PENDING, st.PENDING_WARNING)
SinkFactory = Callable[["AssociationEngine", int, dict[str, Any]], DatasetSink | None]


class AssociationEngine:
    """One association, either role, driven by calls and answering with effects."""

    def __init__(
        self,
        *,
        requestor: bool,
        proposal: RequestorProposal | None = None,
        policy: AcceptorPolicy | None = None,
        active_associations: Callable[[], int] = lambda: 0,
        on_request: RequestHandler | None = None,
        sink_for: SinkFactory | None = None,
        max_identifier_size: int = MAX_IDENTIFIER_LENGTH,
    ) -> None:
        if requestor and proposal is None:
            raise ValueError("a requestor needs a proposal")
        if not requestor and policy is None:
            raise ValueError("an acceptor needs a policy")
        self.is_requestor = requestor
        self.proposal = proposal
        self.policy = policy
        self.active_associations = active_associations
        self.on_request = on_request
        self.label = trace.new_label()
        self.ul = UpperLayer(requestor=requestor)
        self.ul.trace_label = self.label
        local_max = proposal.max_pdu if proposal else policy.max_pdu  # type: ignore[union-attr]
        self.framer = PduFramer(max_body=max(local_max, _FRAMER_FLOOR) + 1024)
        self.sink_for = sink_for
        # Identifiers (every data set but a C-STORE's) above this are refused, not kept.
        self.max_identifier_size = max_identifier_size
        self.reassembler = Reassembler(
            self._on_command if sink_for is not None else None,
            max_identifier_length=max_identifier_size,
        )
        self.outbox: list[fx.Effect] = []
        # Set by the transport for handlers (``event.assoc`` on an SCP): who is connected,
        # and over TLS the certificate the peer presented (a dict: subject, issuer, ...).
        self.peer_address: tuple[str, int] | None = None
        self.local_address: tuple[str, int] | None = None  # our end of the connection
        self.peer_certificate: dict[str, Any] | None = None
        self.rq: AssociateRQ | None = None
        self.negotiated: Negotiated | None = None
        self.rejection: AssociateRJ | None = None
        self.abort_source: int | None = None
        self.abort_reason: int | None = None
        self._outcome = Outcome(self)  # OUTCOME_CHART: pending, established, rejected, ...
        self.operations: dict[int, ScuOperation] = {}
        self.scp_operations: dict[int, ScpOperation] = {}
        self._message_id = 0
        # Observers (the audit trail): each outcome as it is reached, and each
        # request of the peer once its final response is sent.  Unset, they cost
        # nothing: requests are only remembered while an operation observer is set.
        self.on_outcome: OutcomeObserver | None = None
        # pynetdicom's notification events (dimsefsm.notifications): None unless a
        # handler for one is bound, so each place that could notify costs one test.
        self.notify: Notify | None = None
        self._connection_open = False
        self.on_operation_done: OperationObserver | None = None
        self.started = time.monotonic()
        self._answering: dict[int, tuple[float, Message]] = {}

    # -- state ------------------------------------------------------------------
    @property
    def outcome(self) -> str:
        """pending, established, rejected, released or aborted (``OUTCOME_CHART``)."""
        return _OUTCOME_NAMES[self._outcome.state]

    @property
    def is_established(self) -> bool:
        return self.outcome == "established"

    @property
    def requestor(self) -> ServiceUser:
        """The requesting end: ``ae_title``, ``address``, ``port`` (pynetdicom's name)."""
        return service_users(self)[0]

    @property
    def acceptor(self) -> ServiceUser:
        """The accepting end: ``ae_title``, ``address``, ``port`` (pynetdicom's name)."""
        return service_users(self)[1]

    @property
    def is_closed(self) -> bool:
        """The upper layer is back in Sta1: nothing more will happen on this connection."""
        return self.ul.state == "Sta1" and self.outcome != "pending"

    def take_effects(self) -> list[fx.Effect]:
        out, self.outbox = self.outbox, []
        return out

    # -- inputs from the transport ----------------------------------------------
    def request_association(self) -> None:
        assert self.proposal is not None
        self.rq = build_request(self.proposal)
        self._handle(ev.AssociateRequested(self.rq))

    def transport_connected(self) -> None:
        self._connection_opened()
        self._handle(ev.TransportConnected())

    def transport_accepted(self) -> None:
        self._connection_opened()
        self._handle(ev.TransportAccepted())

    def transport_closed(self) -> None:
        if self.ul.state != "Sta1":
            self._handle(ev.TransportClosed())
        self.connection_closed()

    def _connection_opened(self) -> None:
        self._connection_open = True
        if self.notify is not None:
            self.notify(self, evt.EVT_CONN_OPEN, address=self.peer_address)

    def connection_closed(self) -> None:
        """EVT_CONN_CLOSE once, whether the peer closed, we did (CloseTransport), or the
        driver dropped the connection (a server stopping while the peer had not yet closed)."""
        if self._connection_open:
            self._connection_open = False
            if self.notify is not None:
                self.notify(self, evt.EVT_CONN_CLOSE, address=self.peer_address)

    def artim_expired(self) -> None:
        self._handle(ev.ArtimExpired())

    def data_received(self, data: bytes) -> None:
        framer = self.framer
        framer.feed(data)
        while self.ul.state != "Sta1":
            try:
                pdu = framer.next_pdu()
            except PduError as exc:
                LOG.warning("invalid PDU from peer: %s", exc)
                self._handle(ev.InvalidPduArrived(exc))
                return
            if pdu is None:
                return
            if tracing(DEBUG):
                trace.pdu(self.label, "in", pdu)
            if self.notify is not None:
                self.notify(self, evt.EVT_PDU_RECV, pdu=pdu)
            self._handle(ev.PduArrived(pdu))

    # -- inputs from the user ---------------------------------------------------
    def next_message_id(self) -> int:
        """Message IDs unique among outstanding operations, wrapping at 16 bits."""
        for _ in range(0x10000):
            self._message_id = self._message_id % 0xFFFF + 1
            if self._message_id not in self.operations:
                return self._message_id
        raise RuntimeError("no free Message ID")

    def send_message(self, message: Message, dataset: bytes | memoryview | None = None) -> None:
        assert self.negotiated is not None
        if self._answering and message.command.get("Status") not in _PENDING:
            self._answered(message.command)
        payload = message.dataset if dataset is None else dataset
        pdus = encode_message_bytes(
            message.context_id,
            encode_command(message.command),
            payload,
            self.negotiated.peer_max_pdu,
        )
        if tracing(DEBUG):
            size = None if payload is None else len(payload)
            trace.message(self.label, "out", message.context_id, message.command, size)
        if self.notify is not None:
            self.notify(self, evt.EVT_DIMSE_SENT, message=message)
        self._handle(ev.PDataRequested(pdus))

    def send_encoded(self, data: bytes) -> None:
        """Send already-encoded P-DATA-TF PDUs (streamed data sets)."""
        self._handle(ev.PDataRequested(data))

    def start_operation(self, message_id: int, operation: ScuOperation) -> None:
        operation.trace_label = self.label
        self.operations[message_id] = operation

    def start_scp_operation(self, message_id: int, operation: ScpOperation) -> None:
        self.scp_operations[message_id] = operation

    def cancel_scp_operation(self, message_id: int) -> bool:
        """C-CANCEL: True when it named a running operation."""
        if self.notify is not None:
            self.notify(self, evt.EVT_C_CANCEL, message=message_id)
        op = self.scp_operations.get(message_id)
        if op is None:
            return False
        op.cancel()
        return True

    def has_ready_scp_operation(self) -> bool:
        return any(getattr(op, "ready", True) for op in self.scp_operations.values())

    def step_scp_operation(self) -> None:
        """Advance the oldest ready SCP operation by one response (or one sub-operation)."""
        for message_id, op in list(self.scp_operations.items()):
            if op.done:
                del self.scp_operations[message_id]
                continue
            if not getattr(op, "ready", True):
                continue
            op.step()
            if op.done:
                self.scp_operations.pop(message_id, None)
            return

    def release(self) -> None:
        self._handle(ev.ReleaseRequested())

    def abort(
        self, source: int = AbortSource.SERVICE_USER, reason: int = AbortReason.NOT_SPECIFIED
    ) -> None:
        if self.ul.state in ("Sta1", "Sta2", "Sta13"):
            return  # nothing to abort: the transport just closes
        self._handle(ev.AbortRequested(source, reason))
        self._finish("abort_sent", source, reason)

    # -- plumbing ---------------------------------------------------------------
    def _handle(self, event: Any) -> None:
        if self.notify is not None:
            before = self.ul.state
            effects = self.ul.handle(event)
            self._notify_effects(event, before, effects)
        else:
            effects = self.ul.handle(event)
        if tracing(DEBUG):
            self._trace_effects(effects)
        for effect in effects:
            if isinstance(effect, fx.Indicate):
                self._on_primitive(effect.primitive)
            else:
                self.outbox.append(effect)

    def _notify_effects(self, event: Any, before: str, effects: list[fx.Effect]) -> None:
        """EVT_FSM_TRANSITION for this input, then what it sent (PDUs, A-ASSOCIATE, close)."""
        assert self.notify is not None
        self.notify(
            self,
            evt.EVT_FSM_TRANSITION,
            current_state=before,
            next_state=self.ul.state,
            fsm_event=type(event).__name__,
        )
        for effect in effects:
            if isinstance(effect, fx.SendPdu):
                if isinstance(effect.pdu, AssociateRQ):
                    self.notify(self, evt.EVT_REQUESTED)
                elif isinstance(effect.pdu, AssociateAC):
                    self.notify(self, evt.EVT_ACCEPTED)
                self.notify(self, evt.EVT_PDU_SENT, pdu=effect.pdu)
            elif isinstance(effect, fx.SendBytes):
                self.notify(self, evt.EVT_PDU_SENT, pdu=effect.data)
            elif isinstance(effect, fx.CloseTransport):
                self.connection_closed()

    def _trace_effects(self, effects: list[fx.Effect]) -> None:
        for effect in effects:
            if isinstance(effect, fx.SendPdu):
                trace.pdu(self.label, "out", effect.pdu)
            elif isinstance(effect, fx.SendBytes):
                trace.pdata_bytes(self.label, effect.data)
            elif isinstance(effect, (fx.StartArtim, fx.StopArtim, fx.CloseTransport)):
                trace.event(self.label, type(effect).__name__)

    def _on_primitive(self, primitive: Any) -> None:
        if isinstance(primitive, fx.PDataIndication):
            self._on_pdata(primitive)
        elif isinstance(primitive, fx.AssociateIndication):
            self._on_assoc_indication(primitive.rq)
        elif isinstance(primitive, fx.AssociateConfirmation):
            self._on_accepted(primitive.ac)
        elif isinstance(primitive, fx.RejectConfirmation):
            self.rejection = primitive.rj
            OUTCOME_CHART.fire(self._outcome, "rj_received")
            self._fail_operations()
        elif isinstance(primitive, fx.ReleaseIndication):
            # We answer a release at once (Sta8, or Sta9 in a collision where
            # we requested the association).  In Sta10 the standard makes the
            # acceptor wait for the peer's A-RELEASE-RP first.
            if self.ul.state in ("Sta8", "Sta9"):
                self._handle(ev.ReleaseResponded())
            if self.ul.state in ("Sta1", "Sta13"):
                self._finish("release_completed")
        elif isinstance(primitive, fx.ReleaseConfirmation):
            if self.ul.state == "Sta12":
                self._handle(ev.ReleaseResponded())
            self._finish("release_completed")
        elif isinstance(primitive, (fx.AbortIndication, fx.ProviderAbortIndication)):
            LOG.info(
                "association aborted (source %s, reason %s)", primitive.source, primitive.reason
            )
            self._finish("abort_received", primitive.source, primitive.reason)

    def _finish(self, trigger: str, source: int | None = None, reason: int | None = None) -> None:
        """The association ends: the outcome chart takes ``trigger``, operations end."""
        self.abort_source, self.abort_reason = source, reason
        OUTCOME_CHART.fire(self._outcome, trigger)
        LOG.info("association %s", self.outcome)
        self._fail_operations()

    def _unanswered(self) -> None:
        """Requests the association ended under get an observer call with no response."""
        for message_id in list(self._answering):
            self._answered({"CommandField": 0x8000, "MessageIDBeingRespondedTo": message_id})

    def _notify(self, outcome: str) -> None:
        if self.on_outcome is not None:
            try:
                self.on_outcome(self, outcome)
            except Exception:
                LOG.exception("association observer failed")

    def _answered(self, response: dict[str, Any]) -> None:
        """A final response to a request of the peer is going out: tell the observer."""
        if not response.get("CommandField", 0) & 0x8000:
            return
        started = self._answering.pop(response.get("MessageIDBeingRespondedTo", -1), None)
        if started is None or self.on_operation_done is None:
            return
        try:
            self.on_operation_done(self, started[1], response, time.monotonic() - started[0])
        except Exception:
            LOG.exception("operation observer failed")

    def _on_command(self, context_id: int, command: dict[str, Any]) -> DatasetSink | None:
        assert self.sink_for is not None
        return self.sink_for(self, context_id, command)

    def _fail_operations(self) -> None:
        if self.outcome not in ("pending", "established"):
            self.reassembler.reset()  # an open sink drops its partial data
            scp_operations, self.scp_operations = self.scp_operations, {}
            for scp_op in scp_operations.values():
                scp_op.close()  # the handler's generator runs its finally
        operations, self.operations = self.operations, {}
        for op in operations.values():
            if not op.done:
                op.on_abort()

    def _on_assoc_indication(self, rq: AssociateRQ) -> None:
        assert self.policy is not None
        self.rq = rq
        if self.notify is not None:
            self.notify(self, evt.EVT_REQUESTED)
        requestor = Requestor(self.peer_address, self.peer_certificate, self)
        answer, negotiated = accept_or_reject(
            rq, self.policy, self.active_associations(), requestor
        )
        if isinstance(answer, AssociateRJ):
            LOG.info(
                "rejecting association from %r to %r: result %d source %d reason %d",
                rq.calling_ae,
                rq.called_ae,
                answer.result,
                answer.source,
                answer.reason,
            )
            self.rejection = answer
            self._handle(ev.AssociateRejected(answer))
            OUTCOME_CHART.fire(self._outcome, "rq_rejected")
            return
        self.negotiated = negotiated
        OUTCOME_CHART.fire(self._outcome, "rq_accepted")
        LOG.info(
            "association accepted: %r -> %r, %d of %d contexts, peer max PDU %d",
            rq.calling_ae,
            rq.called_ae,
            len(negotiated.contexts) if negotiated else 0,
            len(rq.presentation_contexts),
            negotiated.peer_max_pdu if negotiated else 0,
        )
        self._handle(ev.AssociateAccepted(answer))

    def _on_accepted(self, ac: AssociateAC) -> None:
        assert self.rq is not None
        self.negotiated = read_acceptance(self.rq, ac)
        OUTCOME_CHART.fire(self._outcome, "ac_received")
        if self.notify is not None:
            self.notify(self, evt.EVT_ACCEPTED)
        missing = ungranted_scp_roles(self.rq, self.negotiated)
        if missing:
            LOG.warning(
                "%r accepted %d SOP class(es) without the SCP role we asked for (%s): "
                "C-GET cannot deliver instances of these classes",
                self.rq.called_ae,
                len(missing),
                ", ".join(_uid_name(uid) for uid in missing[:5])
                + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
            )

    def _on_pdata(self, primitive: fx.PDataIndication) -> None:
        negotiated = self.negotiated
        try:
            for pdv in primitive.pdu.pdvs:
                if negotiated is None or pdv.context_id not in negotiated.contexts:
                    raise DimseError(f"PDV on presentation context {pdv.context_id} not accepted")
            messages = self.reassembler.feed(primitive.pdu.pdvs)
        except DimseError as exc:
            LOG.warning("DIMSE protocol error from peer: %s; aborting", exc)
            self.abort(exc.abort_source, exc.abort_reason)
            return
        for message in messages:
            self._dispatch(message)

    def _dispatch(self, message: Message) -> None:
        if tracing(DEBUG):
            data = message.dataset
            size = None if data is None else len(data)
            trace.message(self.label, "in", message.context_id, message.command, size)
        if self.notify is not None:
            self.notify(self, evt.EVT_DIMSE_RECV, message=message)
        field = message.command.get("CommandField", 0)
        if field & 0x8000:
            responded = message.command.get("MessageIDBeingRespondedTo")
            op = self.operations.get(responded) if isinstance(responded, int) else None
            if op is None:
                LOG.warning("response to unknown Message ID %r ignored", responded)
                return
            op.on_response(message)
            if op.done:
                self.operations.pop(responded, None)  # type: ignore[arg-type]
            return
        if self.on_request is None:
            LOG.warning("request 0x%04X with no service bound; ignored", field)
            return
        if self.on_operation_done is not None and isinstance(message.message_id, int):
            self._answering[message.message_id] = (time.monotonic(), message)
        self.on_request(self, message)


__all__ = ["AssociationEngine", "decode_command"]
