"""Event names and the object handlers receive, shaped like pynetdicom's ``evt``.

A handler is bound with ``evt_handlers=[(evt.EVT_C_ECHO, handler)]`` and is
called with one :class:`Event`; for C-ECHO it returns a status (int or a
Dataset with Status), exactly as pynetdicom users write it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dimsefsm.dimse.message import Message

if TYPE_CHECKING:
    from datetime import datetime


def now() -> datetime:
    """An event's timestamp: ``datetime`` loads with the first event, not with the module."""
    from datetime import datetime

    return datetime.now()


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    description: str


EVT_C_ECHO = EventType("EVT_C_ECHO", "C-ECHO request received")
EVT_C_STORE = EventType("EVT_C_STORE", "C-STORE request received")
EVT_C_FIND = EventType("EVT_C_FIND", "C-FIND request received")
EVT_C_GET = EventType("EVT_C_GET", "C-GET request received")
EVT_C_MOVE = EventType("EVT_C_MOVE", "C-MOVE request received")
# DIMSE-N requests (either role: a requestor answers the N-EVENT-REPORTs of its peer).
# The handler gets a dimsefsm.services.normalized.NEvent and returns, as in pynetdicom,
# ``(status, dataset | None)`` (N-DELETE: ``status`` alone).
EVT_N_ACTION = EventType("EVT_N_ACTION", "N-ACTION request received")
EVT_N_CREATE = EventType("EVT_N_CREATE", "N-CREATE request received")
EVT_N_DELETE = EventType("EVT_N_DELETE", "N-DELETE request received")
EVT_N_EVENT_REPORT = EventType("EVT_N_EVENT_REPORT", "N-EVENT-REPORT request received")
EVT_N_GET = EventType("EVT_N_GET", "N-GET request received")
EVT_N_SET = EventType("EVT_N_SET", "N-SET request received")
# Asked (acceptor) to verify a User Identity item: the handler gets
# ``user_id_type``, ``primary_field`` and ``secondary_field`` and returns
# ``(is_verified, response)``, as in pynetdicom (see dimsefsm.identity).
EVT_USER_ID = EventType("EVT_USER_ID", "User identity negotiation requested")

# Notifications (acceptor side; a handler's return value is ignored), named as
# pynetdicom names them.  The handler gets an AssociationEvent.
EVT_ESTABLISHED = EventType("EVT_ESTABLISHED", "Association established")
EVT_REJECTED = EventType("EVT_REJECTED", "Association rejected")
EVT_RELEASED = EventType("EVT_RELEASED", "Association released")
EVT_ABORTED = EventType("EVT_ABORTED", "Association aborted")
# dimsefsm's own: a request we answered has had its final response (an OperationEvent).
EVT_OPERATION_DONE = EventType("EVT_OPERATION_DONE", "Final response sent to a request")

# Notifications fired from inside the engine (dimsefsm.notifications), pynetdicom's names;
# the handler gets a dimsefsm.notifications.Notification.
EVT_CONN_OPEN = EventType("EVT_CONN_OPEN", "Connection with remote opened")
EVT_CONN_CLOSE = EventType("EVT_CONN_CLOSE", "Connection with remote closed")
EVT_REQUESTED = EventType("EVT_REQUESTED", "Association request sent or received")
EVT_ACCEPTED = EventType("EVT_ACCEPTED", "Association request accepted")
EVT_PDU_SENT = EventType("EVT_PDU_SENT", "PDU sent to the peer")
EVT_PDU_RECV = EventType("EVT_PDU_RECV", "PDU received from the peer")
EVT_DIMSE_SENT = EventType("EVT_DIMSE_SENT", "DIMSE message sent to the peer")
EVT_DIMSE_RECV = EventType("EVT_DIMSE_RECV", "DIMSE message received from the peer")
EVT_FSM_TRANSITION = EventType("EVT_FSM_TRANSITION", "Upper layer state machine transition")
EVT_C_CANCEL = EventType("EVT_C_CANCEL", "C-CANCEL request received")

ENGINE_NOTIFICATIONS = frozenset(
    {
        EVT_CONN_OPEN,
        EVT_CONN_CLOSE,
        EVT_REQUESTED,
        EVT_ACCEPTED,
        EVT_PDU_SENT,
        EVT_PDU_RECV,
        EVT_DIMSE_SENT,
        EVT_DIMSE_RECV,
        EVT_FSM_TRANSITION,
        EVT_C_CANCEL,
    }
)

NOTIFICATIONS = {
    "established": EVT_ESTABLISHED,
    "rejected": EVT_REJECTED,
    "released": EVT_RELEASED,
    "aborted": EVT_ABORTED,
}


@dataclass(slots=True)
class Event:
    """What a handler sees: the association, the request, and the context."""

    assoc: Any
    event: EventType
    request: Message
    context: Any
    extra: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=now)
    """When the request arrived (pynetdicom's ``event.timestamp``)."""

    @property
    def message_id(self) -> int:
        return int(self.request.command.get("MessageID", 0))


@dataclass(slots=True)
class AssociationEvent:
    """An association's outcome: ``assoc`` is the engine (peer_address, rq, negotiated...)."""

    assoc: Any
    event: EventType
    outcome: str
    duration: float  # seconds since the connection was accepted


@dataclass(slots=True)
class OperationEvent:
    """A request answered: the request, the final response's command, how long it took."""

    assoc: Any
    event: EventType
    request: Message
    response: dict[str, Any]
    duration: float
