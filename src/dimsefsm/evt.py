"""Event names and the object handlers receive, shaped like pynetdicom's ``evt``.

A handler is bound with ``evt_handlers=[(evt.EVT_C_ECHO, handler)]`` and is
called with one :class:`Event`; for C-ECHO it returns a status (int or a
Dataset with Status), exactly as pynetdicom users write it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dimsefsm.dimse.message import Message


@dataclass(frozen=True, slots=True)
class EventType:
    name: str
    description: str


EVT_C_ECHO = EventType("EVT_C_ECHO", "C-ECHO request received")
EVT_C_STORE = EventType("EVT_C_STORE", "C-STORE request received")
EVT_C_FIND = EventType("EVT_C_FIND", "C-FIND request received")
EVT_C_GET = EventType("EVT_C_GET", "C-GET request received")
EVT_C_MOVE = EventType("EVT_C_MOVE", "C-MOVE request received")


@dataclass(slots=True)
class Event:
    """What a handler sees: the association, the request, and the context."""

    assoc: Any
    event: EventType
    request: Message
    context: Any
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def message_id(self) -> int:
        return int(self.request.command.get("MessageID", 0))
