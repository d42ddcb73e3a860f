"""One upper-layer machine per TCP connection: events in, effects out.

:class:`UpperLayer` is the model attached to the shared ``upper-layer`` chart.
:meth:`UpperLayer.handle` fires exactly one chart trigger per event; the
chart picks the transition and calls the PS3.8 action method named in it,
which appends effects to the list ``handle`` returns.  Nothing here touches a
connection, a thread or a clock, so every cell of Table 9-10 runs in memory.
"""

from __future__ import annotations

from transitions import EventData

from dimsefsm.fsm.chart import RefusedTrigger
from dimsefsm.pdu.model import (
    Abort,
    AbortReason,
    AbortSource,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    Pdu,
    RejectReason,
    RejectResult,
    RejectSource,
    ReleaseRP,
    ReleaseRQ,
)
from dimsefsm.ul.chart import ARTIM_RUNNING, EVENTS, STATES, UPPER_LAYER
from dimsefsm.ul.effects import (
    AbortIndication,
    AssociateConfirmation,
    AssociateIndication,
    CloseTransport,
    Connect,
    Effect,
    Indicate,
    PDataIndication,
    ProviderAbortIndication,
    RejectConfirmation,
    ReleaseConfirmation,
    ReleaseIndication,
    SendBytes,
    SendPdu,
    StartArtim,
    StopArtim,
)
from dimsefsm.ul.errors import LocalProtocolError, PduWithoutConnectionError, UpperLayerError
from dimsefsm.ul.events import (
    PEER_EVENTS,
    AbortRequested,
    ArtimExpired,
    AssociateAccepted,
    AssociateRejected,
    AssociateRequested,
    InvalidPduArrived,
    PDataRequested,
    PduArrived,
    UlEvent,
)

# Effects without per-event data are shared: they are frozen and compare by value.
_CONNECT = Connect()
_CLOSE = CloseTransport()
_START_ARTIM = StartArtim()
_STOP_ARTIM = StopArtim()
_SEND_RELEASE_RQ = SendPdu(ReleaseRQ())
_SEND_RELEASE_RP = SendPdu(ReleaseRP())
_INDICATE_RELEASE = Indicate(ReleaseIndication())
_CONFIRM_RELEASE = Indicate(ReleaseConfirmation())
_SEND_USER_ABORT = SendPdu(Abort(AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED))
_INDICATE_TRANSPORT_LOST = Indicate(
    ProviderAbortIndication(
        AbortSource.SERVICE_PROVIDER, AbortReason.NOT_SPECIFIED, origin="transport"
    )
)
_REJECT_PROTOCOL_VERSION = SendPdu(
    AssociateRJ(
        RejectResult.PERMANENT,
        RejectSource.PROVIDER_ACSE,
        RejectReason.PROTOCOL_VERSION_NOT_SUPPORTED,
    )
)


class UpperLayer:
    """The PS3.8 state of one connection, and the actions AE-1 ... AA-8.

    ``requestor`` says whether this side sent the A-ASSOCIATE-RQ; only the
    release collision (AR-8) depends on it.  ``association_rq`` is the
    A-ASSOCIATE-RQ of the association, sent (AE-2) or received (AE-6).
    """

    __slots__ = ("_effects", "_event", "association_rq", "requestor", "state", "trace_label")

    state: str

    def __init__(self, requestor: bool) -> None:
        self.requestor = requestor
        self.trace_label = ""
        self.association_rq: AssociateRQ | None = None
        self._event: UlEvent | None = None
        self._effects: list[Effect] = []
        UPPER_LAYER.attach(self)

    def __repr__(self) -> str:
        role = "requestor" if self.requestor else "acceptor"
        return f"<UpperLayer {role} {self.state} ({STATES[self.state]})>"

    # -- driving -------------------------------------------------------------------
    def handle(self, event: UlEvent) -> list[Effect]:
        """Run ``event`` through Table 9-10; the effects to execute, in order.

        Raises :class:`LocalProtocolError` for a local event in a state whose
        cell is empty, :class:`PduWithoutConnectionError` for a PDU event while
        no connection is open; the state is then unchanged.
        """
        effects: list[Effect] = []
        self._effects = effects
        self._event = event
        try:
            UPPER_LAYER.fire(self, event.evt)
        except RefusedTrigger as refused:
            raise _refusal_error(refused) from None
        finally:
            self._event = None
        return effects

    # -- views ---------------------------------------------------------------------
    @property
    def is_idle(self) -> bool:
        return self.state == "Sta1"

    @property
    def is_established(self) -> bool:
        return self.state == "Sta6"

    @property
    def is_releasing(self) -> bool:
        """A release (or a release collision) is under way: Sta7 ... Sta12."""
        return self.state in _RELEASING

    @property
    def is_closing(self) -> bool:
        """The association is over; only the transport close is awaited (Sta13)."""
        return self.state == "Sta13"

    @property
    def can_send_data(self) -> bool:
        """P-DATA may be requested: established, or answering the peer's release."""
        return self.state in _CAN_SEND_DATA

    @property
    def artim_running(self) -> bool:
        return self.state in ARTIM_RUNNING

    # -- guards ----------------------------------------------------------------------
    def rq_acceptable(self, _: EventData) -> bool:
        """AE-6: the provider accepts any RQ that announces protocol version 1 (bit 0)."""
        rq = self._pdu()
        assert isinstance(rq, AssociateRQ)
        return bool(rq.protocol_version & 1)

    def is_association_requestor(self, _: EventData) -> bool:
        return self.requestor

    # -- association establishment -----------------------------------------------------
    def ae_1(self, _: EventData) -> None:
        event = self._event
        assert isinstance(event, AssociateRequested)
        self.association_rq = event.rq
        self._effects.append(_CONNECT)

    def ae_2(self, _: EventData) -> None:
        assert self.association_rq is not None, "Sta4 is entered only by AE-1"
        self._effects.append(SendPdu(self.association_rq))

    def ae_3(self, _: EventData) -> None:
        ac = self._pdu()
        assert isinstance(ac, AssociateAC)
        self._effects.append(Indicate(AssociateConfirmation(ac)))

    def ae_4(self, _: EventData) -> None:
        rj = self._pdu()
        assert isinstance(rj, AssociateRJ)
        self._effects += (Indicate(RejectConfirmation(rj)), _CLOSE)

    def ae_5(self, _: EventData) -> None:
        self._effects.append(_START_ARTIM)

    def ae_6(self, _: EventData) -> None:
        """The guard already chose the outcome: Sta3 indicates, Sta13 rejects."""
        rq = self._pdu()
        assert isinstance(rq, AssociateRQ)
        self.association_rq = rq
        if self.state == "Sta3":
            self._effects += (_STOP_ARTIM, Indicate(AssociateIndication(rq)))
        else:
            self._effects += (_STOP_ARTIM, _REJECT_PROTOCOL_VERSION, _START_ARTIM)

    def ae_7(self, _: EventData) -> None:
        event = self._event
        assert isinstance(event, AssociateAccepted)
        self._effects.append(SendPdu(event.ac))

    def ae_8(self, _: EventData) -> None:
        event = self._event
        assert isinstance(event, AssociateRejected)
        self._effects += (SendPdu(event.rj), _START_ARTIM)

    # -- data transfer -------------------------------------------------------------------
    def dt_1(self, _: EventData) -> None:
        event = self._event
        assert isinstance(event, PDataRequested)
        self._effects.append(SendBytes(event.data))

    def dt_2(self, _: EventData) -> None:
        pdu = self._pdu()
        assert isinstance(pdu, PDataTF)
        self._effects.append(Indicate(PDataIndication(pdu)))

    # -- release -----------------------------------------------------------------------
    def ar_1(self, _: EventData) -> None:
        self._effects.append(_SEND_RELEASE_RQ)

    def ar_2(self, _: EventData) -> None:
        self._effects.append(_INDICATE_RELEASE)

    def ar_3(self, _: EventData) -> None:
        self._effects += (_CONFIRM_RELEASE, _CLOSE)

    def ar_4(self, _: EventData) -> None:
        self._effects += (_SEND_RELEASE_RP, _START_ARTIM)

    def ar_5(self, _: EventData) -> None:
        self._effects.append(_STOP_ARTIM)

    def ar_6(self, event: EventData) -> None:
        self.dt_2(event)

    def ar_7(self, event: EventData) -> None:
        self.dt_1(event)

    def ar_8(self, _: EventData) -> None:
        """Collision: the guard chose Sta9 (requestor) or Sta10 (acceptor)."""
        self._effects.append(_INDICATE_RELEASE)

    def ar_9(self, _: EventData) -> None:
        self._effects.append(_SEND_RELEASE_RP)

    def ar_10(self, _: EventData) -> None:
        self._effects.append(_CONFIRM_RELEASE)

    # -- abort ---------------------------------------------------------------------------
    def aa_1(self, _: EventData) -> None:
        """Source 0 reason 0, unless the local user chose values; (re)starts ARTIM."""
        event = self._event
        if isinstance(event, AbortRequested):
            send = SendPdu(Abort(event.source, event.reason))
        else:
            send = _SEND_USER_ABORT
        self._effects += (send, _START_ARTIM)

    def aa_2(self, event: EventData) -> None:
        """Stop ARTIM only if it runs: not in Sta4, not once it has expired."""
        came_from = event.transition.source if event.transition is not None else self.state
        if came_from in ARTIM_RUNNING and not isinstance(self._event, ArtimExpired):
            self._effects += (_STOP_ARTIM, _CLOSE)
        else:
            self._effects.append(_CLOSE)

    def aa_3(self, _: EventData) -> None:
        """A provider source means A-P-ABORT; any other source is the peer's user."""
        abort = self._pdu()
        assert isinstance(abort, Abort)
        primitive: AbortIndication | ProviderAbortIndication
        if abort.source == AbortSource.SERVICE_PROVIDER:
            primitive = ProviderAbortIndication(abort.source, abort.reason, origin="peer")
        else:
            primitive = AbortIndication(abort.source, abort.reason)
        self._effects += (Indicate(primitive), _CLOSE)

    def aa_4(self, _: EventData) -> None:
        self._effects.append(_INDICATE_TRANSPORT_LOST)

    def aa_5(self, _: EventData) -> None:
        self._effects.append(_STOP_ARTIM)

    def aa_6(self, _: EventData) -> None:
        """The late PDU is dropped: nothing to do."""

    def aa_7(self, _: EventData) -> None:
        self._effects.append(SendPdu(Abort(AbortSource.SERVICE_PROVIDER, self._abort_reason())))

    def aa_8(self, _: EventData) -> None:
        reason = self._abort_reason()
        self._effects += (
            SendPdu(Abort(AbortSource.SERVICE_PROVIDER, reason)),
            Indicate(ProviderAbortIndication(AbortSource.SERVICE_PROVIDER, reason, "local")),
            _START_ARTIM,
        )

    # -- helpers -------------------------------------------------------------------------
    def _pdu(self) -> Pdu:
        event = self._event
        assert isinstance(event, PduArrived)
        return event.pdu

    def _abort_reason(self) -> int:
        """Unexpected-PDU for a valid PDU out of place, else the decoder's own reason."""
        event = self._event
        if isinstance(event, InvalidPduArrived):
            return event.error.abort_reason
        return AbortReason.UNEXPECTED_PDU


_RELEASING = frozenset({"Sta7", "Sta8", "Sta9", "Sta10", "Sta11", "Sta12"})
_CAN_SEND_DATA = frozenset({"Sta6", "Sta8"})


def _refusal_error(refused: RefusedTrigger) -> UpperLayerError:
    state, evt = refused.state, refused.trigger
    error = PduWithoutConnectionError if evt in PEER_EVENTS else LocalProtocolError
    message = f"{evt} ({EVENTS[evt]}) is not allowed in {state} ({STATES[state]}): {refused.reason}"
    return error(state, evt, message)
