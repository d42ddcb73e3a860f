"""Routes an incoming DIMSE request to the service that answers it.

A request whose command the association did not agree on is answered with
0x0211 (unrecognized operation), never dropped silently and never an
exception out of the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from dimsefsm import evt
from dimsefsm import status as st
from dimsefsm.dimse.commands import NO_DATASET, CommandField
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.services.verification import EchoScp
from dimsefsm.sop_class import service_of

LOG = logging.getLogger("dimsefsm.dispatch")

Handlers = Mapping[evt.EventType, Callable[[evt.Event], Any]]


class RequestDispatcher:
    """Bound to one association: knows its handlers and the API object users see."""

    def __init__(self, handlers: Handlers, assoc: Any = None) -> None:
        self.handlers = handlers
        self.assoc = assoc

    def __call__(self, engine: AssociationEngine, message: Message) -> None:
        field = message.command.get("CommandField")
        assert engine.negotiated is not None
        context = engine.negotiated.contexts.get(message.context_id)
        if (
            field == CommandField.C_ECHO_RQ
            and context is not None
            and context.as_scp
            and service_of(context.abstract_syntax) == "verification"
        ):
            event = evt.Event(self.assoc, evt.EVT_C_ECHO, message, context)
            EchoScp(message, self.handlers.get(evt.EVT_C_ECHO), event, engine.send_message).run()
            return
        if field == CommandField.C_CANCEL_RQ:
            LOG.info(
                "C-CANCEL for Message ID %r names no running operation; ignored",
                message.command.get("MessageIDBeingRespondedTo"),
            )
            return
        LOG.warning("unsupported request 0x%04X on context %d", field or 0, message.context_id)
        if isinstance(field, int) and "MessageID" in message.command:
            engine.send_message(
                Message(
                    message.context_id,
                    {
                        "CommandField": field | 0x8000,
                        "MessageIDBeingRespondedTo": message.command["MessageID"],
                        "CommandDataSetType": NO_DATASET,
                        "Status": st.UNRECOGNIZED_OPERATION,
                    },
                )
            )
