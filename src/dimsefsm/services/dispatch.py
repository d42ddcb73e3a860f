"""Routes an incoming DIMSE request to the service that answers it.

A request whose command the association did not agree on is answered with
0x0211 (unrecognized operation), never dropped silently and never an
exception out of the engine.  A request without a Message ID cannot be
answered at all: that is a protocol error and ends in an A-ABORT.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dimsefsm import evt
from dimsefsm import status as st
from dimsefsm.dimse.commands import NO_DATASET, CommandField
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.pdu.model import AbortReason, AbortSource
from dimsefsm.services.storage import InstanceSink, SinkOpener, StorageConfig, StoreScp
from dimsefsm.services.verification import EchoScp
from dimsefsm.sop_class import service_of

if TYPE_CHECKING:  # the query/retrieve services (and pydicom) load when their first request comes
    from dimsefsm.services.retrieve import InstanceSource

LOG = logging.getLogger("dimsefsm.dispatch")

Handlers = Mapping[evt.EventType, Callable[[Any], Any]]

_N_REQUESTS = frozenset(
    {
        CommandField.N_EVENT_REPORT_RQ,
        CommandField.N_GET_RQ,
        CommandField.N_SET_RQ,
        CommandField.N_ACTION_RQ,
        CommandField.N_CREATE_RQ,
        CommandField.N_DELETE_RQ,
    }
)


class RequestDispatcher:
    """Bound to one association: knows its handlers and the API object users see."""

    def __init__(
        self,
        handlers: Handlers,
        assoc: Any = None,
        storage: StorageConfig | None = None,
        instances: InstanceSource | None = None,
        open_sink: SinkOpener | None = None,
    ) -> None:
        """``open_sink``: where file mode's data sets go (the application injects it;
        ``dimsefsm.transport.file_sink.open_file_sink`` writes Part-10 files)."""
        self.handlers = handlers
        self.assoc = assoc
        self.storage = storage or StorageConfig()
        # Reads what C-GET/C-MOVE handlers yield; None: Datasets and DICOM files by path.
        self.instances = instances
        if self.storage.mode == "file" and open_sink is None:
            raise ValueError("file mode needs an open_sink to write data sets through")
        self.open_sink = open_sink

    def sink_for(
        self, engine: AssociationEngine, context_id: int, command: dict[str, Any]
    ) -> InstanceSink | None:
        """In file mode a C-STORE data set goes to the injected sink as it arrives."""
        if (
            self.open_sink is None
            or self.storage.mode != "file"
            or command.get("CommandField") != CommandField.C_STORE_RQ
        ):
            return None
        assert engine.negotiated is not None
        context = engine.negotiated.contexts.get(context_id)
        if context is None or not context.as_scp:
            return None
        return self.open_sink(
            self.storage, command, context.transfer_syntax, engine.negotiated.peer_ae
        )

    def __call__(self, engine: AssociationEngine, message: Message) -> None:
        field = message.command.get("CommandField")
        assert engine.negotiated is not None
        if field == CommandField.C_CANCEL_RQ:
            target = message.command.get("MessageIDBeingRespondedTo")
            if not (isinstance(target, int) and engine.cancel_scp_operation(target)):
                LOG.info("C-CANCEL for Message ID %r names no running operation; ignored", target)
            return
        if not isinstance(message.command.get("MessageID"), int):
            LOG.warning("request 0x%04X without a Message ID; aborting", field or 0)
            if isinstance(message.sink_result, InstanceSink):
                message.sink_result.abort()
            engine.abort(AbortSource.SERVICE_PROVIDER, AbortReason.INVALID_PDU_PARAMETER)
            return
        context = engine.negotiated.contexts.get(message.context_id)
        service = service_of(context.abstract_syntax) if context is not None else None
        if field == CommandField.C_STORE_RQ:
            store = StoreScp(
                message,
                context,
                self.handlers.get(evt.EVT_C_STORE),
                self.storage,
                self.assoc,
                engine.send_message,
            )
            store.trace_label = engine.label
            store.run()
            return
        if field == CommandField.C_FIND_RQ:
            from dimsefsm.services.find import FindScp, check_find_identifier

            op = FindScp(
                message,
                context,
                self.handlers.get(evt.EVT_C_FIND),
                self.assoc,
                engine.send_message,
                check_find_identifier,
                engine.max_identifier_size,
            )
            op.trace_label = engine.label
            op.start()
            if not op.done:
                engine.start_scp_operation(message.command["MessageID"], op)
            return
        if field == CommandField.C_GET_RQ:
            from dimsefsm.services.find import check_retrieve_identifier
            from dimsefsm.services.get import GetScp

            get = GetScp(
                message,
                context,
                self.handlers.get(evt.EVT_C_GET),
                self.assoc,
                engine,
                check_retrieve_identifier,
                engine.max_identifier_size,
                instances=self.instances,
            )
            get.trace_label = engine.label
            get.start()
            if not get.done:
                engine.start_scp_operation(message.command["MessageID"], get)
            return
        if field == CommandField.C_MOVE_RQ:
            from dimsefsm.services.find import check_retrieve_identifier
            from dimsefsm.services.move import MoveScp

            move = MoveScp(
                message,
                context,
                self.handlers.get(evt.EVT_C_MOVE),
                self.assoc,
                engine,
                check_retrieve_identifier,
                engine.max_identifier_size,
                instances=self.instances,
            )
            move.trace_label = engine.label
            move.start()
            if not move.done:
                engine.start_scp_operation(message.command["MessageID"], move)
            return
        if field in _N_REQUESTS:
            from dimsefsm.services.normalized import OPERATIONS, NormalizedScp

            operation = OPERATIONS[field]
            normalized = NormalizedScp(
                message,
                context,
                operation,
                self.handlers.get(operation.event),
                self.assoc,
                engine.send_message,
            )
            normalized.trace_label = engine.label
            normalized.run()
            return
        if field == CommandField.C_ECHO_RQ and service == "verification" and context.as_scp:  # type: ignore[union-attr]
            event = evt.Event(self.assoc, evt.EVT_C_ECHO, message, context)
            echo = EchoScp(message, self.handlers.get(evt.EVT_C_ECHO), event, engine.send_message)
            echo.trace_label = engine.label
            echo.run()
            return
        LOG.warning("unsupported request 0x%04X on context %d", field or 0, message.context_id)
        if isinstance(message.sink_result, InstanceSink):
            message.sink_result.abort()
        if isinstance(field, int):
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
