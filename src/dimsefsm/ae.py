"""The application entity: contexts, timeouts, handlers; requests and serves associations.

Shaped like pynetdicom's ``AE`` so that its users feel at home: the same method
names, the same ``evt_handlers`` binding, the same status conventions.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from dimsefsm import evt
from dimsefsm.assoc.negotiation import (
    DEFAULT_MAX_PDU,
    AcceptorPolicy,
    AdmissionCheck,
    IdentityGate,
    RequestorProposal,
    propose_contexts,
)
from dimsefsm.association import Association, AssociationCore
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import MAX_IDENTIFIER_LENGTH
from dimsefsm.engine import AssociationEngine, OperationObserver, OutcomeObserver
from dimsefsm.notifications import notifier_for
from dimsefsm.pdu.model import RoleSelection, UserIdentityRQ
from dimsefsm.services.dispatch import RequestDispatcher
from dimsefsm.services.storage import SinkOpener, StorageConfig
from dimsefsm.sop_class import DEFAULT_TRANSFER_SYNTAXES, UNCOMPRESSED_TRANSFER_SYNTAXES
from dimsefsm.transport.tls import TlsArgs

if TYPE_CHECKING:  # what only a server or a C-GET/C-MOVE SCP (or TLS) needs loads when used
    import ssl

    from dimsefsm.services.retrieve import InstanceSource
    from dimsefsm.transport.server import AssociationServer

HandlerList = Iterable[tuple[evt.EventType, Callable[[Any], Any]]]
AssociationT = TypeVar("AssociationT", bound=AssociationCore[Any, Any, Any, Any])


class AE:
    """An application entity: what it proposes and accepts, its timeouts, its servers.

    Contexts: ``requested_contexts`` (proposed when requesting, in order) and
    ``supported_contexts`` (accepted when serving, SOP class -> transfer
    syntaxes); both can be assigned a list of pynetdicom-style contexts
    (``ae.supported_contexts = StoragePresentationContexts``).

    Timeouts, in seconds (``None``: wait for ever):

    - ``acse_timeout`` (30): for the peer's A-ASSOCIATE-AC/RJ and A-RELEASE-RP.
    - ``dimse_timeout`` (30): for each DIMSE response to a request we sent.
    - ``network_timeout`` (60): an SCP's idle association is then ended
      (``network_timeout_response``: "A-ABORT" or "A-RELEASE").
    - ``connection_timeout`` (30): for the TCP connect (and TLS handshake).
    - ``artim_timeout`` (30): a new connection must send its A-ASSOCIATE-RQ
      within it; a closing one waits this long for the peer's close.
    - ``pdu_timeout`` (60): a PDU must be complete this long after its first byte.

    Limits: ``maximum_pdu_size``, ``maximum_identifier_size``,
    ``maximum_associations``, ``maximum_pending_connections``.  Access:
    ``require_called_aet``, ``require_calling_aet``, ``admission``,
    ``identity_gate``.  ``storage`` (a StorageConfig) says where received
    instances go.
    """

    def __init__(self, ae_title: str = "DIMSEFSM") -> None:
        self.ae_title = ae_title
        self._requested_contexts: list[tuple[str, tuple[str, ...]]] = []
        self._supported_contexts: dict[str, tuple[str, ...]] = {}
        self.scu_role_proposals: dict[str, tuple[bool, bool]] = {}
        self.accept_scp_role: set[str] = set()
        self.acse_timeout: float | None = 30.0
        self.dimse_timeout: float | None = 30.0
        self.network_timeout: float | None = 60.0
        # What an SCP does with an association idle for network_timeout: "A-ABORT"
        # (dcmtk's and pynetdicom's default) or "A-RELEASE" (then abort if unanswered).
        self.network_timeout_response: str = "A-ABORT"
        self.connection_timeout: float | None = 30.0
        # ARTIM (PS3.8): how long a new connection may take to complete its
        # A-ASSOCIATE-RQ before it is closed, and how long a closing one waits for
        # the peer's close.
        self.artim_timeout: float = 30.0
        # Once established, a PDU must be complete this long after its first byte
        # (else A-ABORT): the network timeout alone restarts with every byte.
        self.pdu_timeout: float | None = 60.0
        self.maximum_pdu_size: int = DEFAULT_MAX_PDU
        self.maximum_identifier_size: int = MAX_IDENTIFIER_LENGTH
        """Bytes a C-FIND/C-GET/C-MOVE identifier may have, as received and once inflated.

        A larger one is refused (0xA700, 0xA701 for retrieves) and dropped as it
        arrives, so no peer can make us hold or inflate more; C-STORE data sets are
        not identifiers and are not bounded here.  1 MiB lets a C-MOVE list about
        16,000 SOP Instance UIDs; real queries are a few hundred bytes.
        """
        # Slots, held by established associations only (beyond: A-ASSOCIATE-RJ).
        self.maximum_associations: int = 10
        # Connections still without an association (awaiting their A-ASSOCIATE-RQ or
        # TLS handshake, or closing); beyond it a new one closes the oldest.
        # None: four per association slot.
        self.maximum_pending_connections: int | None = None
        self.require_called_aet: bool = False
        self.require_calling_aet: list[str] = []
        # Per association request: reject the requestor or limit its contexts (access control).
        self.admission: AdmissionCheck | None = None
        self.prefer_requestor_order = False
        # Decides on user identity (PS3.7 D.3.3.7) for every A-ASSOCIATE-RQ:
        # dimsefsm.identity.IdentityRules, or built from an EVT_USER_ID handler.
        self.identity_gate: IdentityGate | None = None
        self.storage = StorageConfig()
        # Reads the instances C-GET/C-MOVE handlers yield; None: Datasets, and DICOM
        # files by path (dimsefsm.instances.FileInstances).  An archive keeping its
        # instances elsewhere supplies its own.
        self.instance_source: InstanceSource | None = None
        self._servers: list[AssociationServer] = []

    # -- contexts ---------------------------------------------------------------------
    @property
    def requested_contexts(self) -> list[tuple[str, tuple[str, ...]]]:
        """(abstract syntax, transfer syntaxes) proposed when requesting, in order."""
        return self._requested_contexts

    @requested_contexts.setter
    def requested_contexts(self, contexts: Iterable[Any]) -> None:
        self._requested_contexts = [_context_pair(c) for c in contexts]

    @property
    def supported_contexts(self) -> dict[str, tuple[str, ...]]:
        """SOP class -> transfer syntaxes accepted when serving."""
        return self._supported_contexts

    @supported_contexts.setter
    def supported_contexts(self, contexts: Iterable[Any] | dict[str, tuple[str, ...]]) -> None:
        if isinstance(contexts, dict):
            self._supported_contexts = dict(contexts)
            return
        self._supported_contexts = {}
        for context in contexts:
            abstract, syntaxes = _context_pair(context, UNCOMPRESSED_TRANSFER_SYNTAXES)
            self._supported_contexts[abstract] = syntaxes
            if getattr(context, "scp_role", None):
                self.accept_scp_role.add(abstract)

    def add_requested_context(
        self, abstract_syntax: str, transfer_syntax: str | Sequence[str] | None = None
    ) -> None:
        syntaxes = _syntaxes(transfer_syntax, DEFAULT_TRANSFER_SYNTAXES)
        self.requested_contexts.append((abstract_syntax, syntaxes))

    def add_supported_context(
        self,
        abstract_syntax: str,
        transfer_syntax: str | Sequence[str] | None = None,
        scp_role: bool | None = None,
        scu_role: bool | None = None,
    ) -> None:
        """Accept this SOP class; ``scp_role=True`` lets a requestor act as its SCP.

        ``scu_role`` is taken for pynetdicom's signature: the requestor keeps its
        default SCU role whatever is passed.
        """
        self.supported_contexts[abstract_syntax] = _syntaxes(
            transfer_syntax, UNCOMPRESSED_TRANSFER_SYNTAXES
        )
        if scp_role:
            self.accept_scp_role.add(abstract_syntax)

    def propose_role(
        self, sop_class_uid: str, scu_role: bool = True, scp_role: bool = True
    ) -> None:
        """Ask for SCP/SCU role selection for a SOP class we request (e.g. storage in C-GET)."""
        self.scu_role_proposals[sop_class_uid] = (scu_role, scp_role)

    # -- requesting -----------------------------------------------------------------------
    def associate(
        self,
        addr: str,
        port: int,
        ae_title: str = "ANY-SCP",
        max_pdu: int | None = None,
        evt_handlers: HandlerList | None = None,
        tls_args: TlsArgs | None = None,
        user_identity: UserIdentityRQ | None = None,
        ext_neg: Iterable[Any] | None = None,
    ) -> Association:
        """Request an association; check ``is_established`` (no exception on failure).

        ``ext_neg``: as pynetdicom's, role selection items from ``build_role``
        (the same as :meth:`propose_role`).

        ``tls_args=(ssl_context, server_hostname)`` secures the connection with
        TLS (PS3.15 Annex B), as pynetdicom's argument of that name; the
        handshake is bounded by ``connection_timeout``.  ``user_identity``
        (see ``dimsefsm.identity.username_identity``) is sent in the RQ; the
        acceptor's server response is ``negotiated.user_identity_response``.
        """
        for item in ext_neg or ():
            if isinstance(item, RoleSelection):
                self.propose_role(item.sop_class_uid, bool(item.scu_role), bool(item.scp_role))
        assoc = self.prepare_association(
            Association, ae_title, max_pdu, evt_handlers, user_identity
        )
        assoc._open((addr, port), self.connection_timeout, tls_args, make_sub_ae=AE)
        return assoc

    def prepare_association(
        self,
        kind: type[AssociationT],
        ae_title: str,
        max_pdu: int | None,
        evt_handlers: HandlerList | None,
        user_identity: UserIdentityRQ | None = None,
    ) -> AssociationT:
        """An unconnected ``kind`` proposing this AE's contexts: blocking or asyncio alike."""
        if not self.requested_contexts:
            raise ValueError("no requested presentation contexts: call add_requested_context()")
        proposal = RequestorProposal(
            calling_ae=self.ae_title,
            called_ae=ae_title,
            contexts=propose_contexts(self.requested_contexts),
            max_pdu=self.maximum_pdu_size if max_pdu is None else max_pdu,
            roles=tuple(
                RoleSelection(uid, scu, scp) for uid, (scu, scp) in self.scu_role_proposals.items()
            ),
            user_identity=user_identity,
        )
        handlers = dict(evt_handlers or ())
        dispatcher = RequestDispatcher(
            handlers,
            storage=self.storage,
            instances=self.instance_source,
            open_sink=_sink_opener(self.storage),
        )
        engine = AssociationEngine(
            requestor=True,
            proposal=proposal,
            on_request=dispatcher,
            sink_for=dispatcher.sink_for,
            max_identifier_size=self.maximum_identifier_size,
        )
        engine.notify = notifier_for(handlers)
        engine.on_outcome, engine.on_operation_done = _observers(handlers)
        assoc = kind(
            engine,
            acse_timeout=self.acse_timeout,
            dimse_timeout=self.dimse_timeout,
            artim_timeout=self.artim_timeout,
        )
        dispatcher.assoc = assoc
        return assoc

    # -- serving --------------------------------------------------------------------------
    def policy(self) -> AcceptorPolicy:
        return AcceptorPolicy(
            ae_title=self.ae_title,
            supported=dict(self.supported_contexts),
            require_called_aet=self.require_called_aet,
            allowed_calling_aets=frozenset(self.require_calling_aet)
            if self.require_calling_aet
            else None,
            max_associations=self.maximum_associations,
            max_pdu=self.maximum_pdu_size,
            scp_role_for=frozenset(self.accept_scp_role),
            prefer_requestor_order=self.prefer_requestor_order,
            identity_gate=self.identity_gate,
            admission=self.admission,
        )

    @property
    def pending_connection_limit(self) -> int:
        """``maximum_pending_connections``, or four per association slot when unset."""
        if self.maximum_pending_connections is not None:
            return self.maximum_pending_connections
        return 4 * max(1, self.maximum_associations)

    def start_server(
        self,
        address: tuple[str, int],
        block: bool = True,
        evt_handlers: HandlerList | None = None,
        ssl_context: ssl.SSLContext | None = None,
        listener: socket.socket | None = None,
    ) -> AssociationServer:
        """Listen on ``address``; with ``block=False`` return the running server.

        ``listener``: accept on this listening socket instead (``address`` is then not
        bound): the socket worker processes share (``transport.workers``).

        With ``ssl_context`` (server side, certificate loaded) every connection
        is TLS; a failed handshake is logged and closed, the server carries on.
        """
        from dimsefsm.identity import gate_from_handler
        from dimsefsm.transport.server import AssociationServer

        if not self.supported_contexts:
            raise ValueError("no supported presentation contexts: call add_supported_context()")
        policy = self.policy()
        handlers = dict(evt_handlers or ())
        user_id_handler = handlers.get(evt.EVT_USER_ID)
        if policy.identity_gate is None and user_id_handler is not None:
            policy.identity_gate = gate_from_handler(user_id_handler)
        on_outcome, on_operation_done = _observers(handlers)
        notify = notifier_for(handlers)  # looked at once: None costs the engine nothing

        storage = self.storage
        instances = self.instance_source
        max_identifier_size = self.maximum_identifier_size

        def make_engine(active: Callable[[], int]) -> AssociationEngine:
            dispatcher = RequestDispatcher(
                handlers, storage=storage, instances=instances, open_sink=_sink_opener(storage)
            )
            engine = AssociationEngine(
                requestor=False,
                policy=policy,
                active_associations=active,
                on_request=dispatcher,
                sink_for=dispatcher.sink_for,
                max_identifier_size=max_identifier_size,
            )
            dispatcher.assoc = engine  # handlers see event.assoc.negotiated (peer AE, contexts)
            engine.on_outcome = on_outcome
            engine.notify = notify
            engine.on_operation_done = on_operation_done
            return engine

        server = AssociationServer(
            address,
            make_engine,
            artim_timeout=self.artim_timeout,
            network_timeout=self.network_timeout,
            network_timeout_response=self.network_timeout_response,
            acse_timeout=self.acse_timeout,
            pdu_timeout=self.pdu_timeout,
            max_pending=self.pending_connection_limit,
            ssl_context=ssl_context,
            listener=listener,
            make_sub_ae=AE,
        )
        self._servers.append(server)
        if block:
            try:
                server.serve_forever()
            finally:
                server.shutdown()
        else:
            server.start()
        return server

    def shutdown(self) -> None:
        for server in self._servers:
            server.shutdown()
        self._servers.clear()


def _sink_opener(storage: StorageConfig) -> SinkOpener | None:
    """File mode writes through the transport's file sink; the other modes need none."""
    if storage.mode != "file":
        return None
    from dimsefsm.transport.file_sink import open_file_sink  # it loads pydicom's checks

    return open_file_sink


def _observers(
    handlers: dict[evt.EventType, Callable[[Any], Any]],
) -> tuple[OutcomeObserver | None, OperationObserver | None]:
    """Engine observers calling the bound notification handlers (None when none is bound)."""
    bound = {o: handlers[e] for o, e in evt.NOTIFICATIONS.items() if e in handlers}
    on_outcome: OutcomeObserver | None = None
    if bound:

        def on_outcome(engine: AssociationEngine, outcome: str) -> None:
            handler = bound.get(outcome)
            if handler is not None:
                duration = time.monotonic() - engine.started
                handler(evt.AssociationEvent(engine, evt.NOTIFICATIONS[outcome], outcome, duration))

    done = handlers.get(evt.EVT_OPERATION_DONE)
    on_operation_done: OperationObserver | None = None
    if done is not None:

        def on_operation_done(
            engine: AssociationEngine, request: Message, response: dict[str, Any], duration: float
        ) -> None:
            done(evt.OperationEvent(engine, evt.EVT_OPERATION_DONE, request, response, duration))

    return on_outcome, on_operation_done


def _context_pair(
    context: Any, default: tuple[str, ...] = DEFAULT_TRANSFER_SYNTAXES
) -> tuple[str, tuple[str, ...]]:
    """(abstract, syntaxes) from a pair or a pynetdicom-style context object."""
    if isinstance(context, tuple):
        return str(context[0]), _syntaxes(context[1], default)
    return str(context.abstract_syntax), _syntaxes(context.transfer_syntax or None, default)


def _syntaxes(value: str | Sequence[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str):
        return (value,)
    return tuple(value)
