"""pynetdicom's notification events, fired by the engine where they happen.

A notification handler is bound like any other (``evt_handlers=[(evt.EVT_PDU_RECV,
handler)]``), gets a :class:`Notification` and its return value is ignored.
:func:`notifier_for` looks at the handler list once (per server or per
requested association) and answers ``None`` when no notification is bound: the
engine then pays one ``is None`` test at each place it could notify, and builds
nothing.  A handler that raises is logged and the association carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dimsefsm import evt

if TYPE_CHECKING:
    from datetime import datetime

LOG = logging.getLogger("dimsefsm.events")

Notify = Callable[..., None]
"""``notify(engine, event_type, **attributes)``: what the engine calls."""


@dataclass(slots=True)
class Notification:
    """What a notification handler sees (the attributes pynetdicom gives each event).

    ``assoc`` is the association (the engine: ``requestor``, ``acceptor``,
    ``negotiated``...).  Per event: ``address`` (EVT_CONN_OPEN/CLOSE, the
    peer's ``(host, port)``), ``pdu`` (EVT_PDU_SENT/RECV; for pre-encoded
    P-DATA the bytes), ``message`` (EVT_DIMSE_SENT/RECV, EVT_C_CANCEL),
    ``current_state``/``next_state``/``fsm_event`` (EVT_FSM_TRANSITION, the
    upper-layer chart's states Sta1..Sta13 and its input).
    """

    assoc: Any
    event: evt.EventType
    timestamp: datetime = field(default_factory=evt.now)
    address: tuple[str, int] | None = None
    pdu: Any = None
    message: Any = None
    current_state: str | None = None
    next_state: str | None = None
    fsm_event: str | None = None


def notifier_for(handlers: Mapping[evt.EventType, Callable[[Any], Any]]) -> Notify | None:
    """A ``notify`` calling the bound notification handlers; None when none is bound."""
    bound = {e: h for e, h in handlers.items() if e in evt.ENGINE_NOTIFICATIONS}
    if not bound:
        return None

    def notify(engine: Any, event: evt.EventType, **attributes: Any) -> None:
        handler = bound.get(event)
        if handler is None:
            return
        try:
            handler(Notification(engine, event, **attributes))
        except Exception:
            LOG.exception("%s handler failed", event.name)

    return notify
