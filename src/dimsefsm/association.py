"""The association object users hold: pynetdicom-shaped, synchronous, thread-free.

The calling thread does the reading: ``send_c_echo()`` sends the request and
then reads the socket until the operation's chart reaches a final state.  No
background thread means an idle association costs nothing and nothing leaks.

:class:`AssociationCore` is everything such an object decides without I/O
(which context, which Message ID, what the request is, what a failure means);
the blocking :class:`Association` and :mod:`dimsefsm.aio`'s asyncio client only
differ in how they write what the engine queued and wait for the peer.
"""

from __future__ import annotations

import functools
import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from dimsefsm.assoc.negotiation import Negotiated
from dimsefsm.assoc.reasons import abort_text, rejection_text
from dimsefsm.dimse.commands import (
    Priority,
    cancel_rq,
    echo_rq,
    encode_command,
    find_rq,
    get_rq,
    move_rq,
    store_rq,
)
from dimsefsm.dimse.fragment import iter_dataset_pdus
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.service_user import ServiceUser
from dimsefsm.services.single_response import SingleResponseScu
from dimsefsm.services.verification import EchoScu
from dimsefsm.sop_class import VERIFICATION
from dimsefsm.transport.driver import SocketDriver, TransportTimeout, close_socket, tune
from dimsefsm.transport.tls import HandshakeFailed, TlsArgs, describe_tls_error, handshake

if TYPE_CHECKING:  # the query, retrieve and storage services (and pydicom) load on first use
    import ssl
    from pathlib import Path

    from pydicom import Dataset

    from dimsefsm.part10 import Part10Info
    from dimsefsm.services.multi_response import MultiResponseScu
    from dimsefsm.services.normalized import NOperation, NormalizedScu
    from dimsefsm.services.storage import StoreScu
    from dimsefsm.transport.sub_association import AEFactory  # C-MOVE loads only when used

LOG = logging.getLogger("dimsefsm.association")

# Data sets up to this size are read whole and sent as one message; larger
# ones stream from disk in batches of about SEND_BATCH bytes of PDUs.
STREAM_THRESHOLD = 4 << 20
SEND_BATCH = 1 << 20


Responses = tuple["Dataset", "Dataset | None"]
StatusT = TypeVar("StatusT")  # a response status Dataset, or an awaitable of one
ResponsesT = TypeVar("ResponsesT")  # an iterator of Responses, or an async iterator
SentT = TypeVar("SentT")  # None, or an awaitable of None
ReplyT = TypeVar("ReplyT")  # a DIMSE-N (status, dataset) pair, or an awaitable of one
Reply = tuple["Dataset", "Dataset | None"]


def reject_meaning(result: int, source: int, reason: int) -> str:
    """PS3.8 Table 9-21 in words, for people reading a log or a terminal."""
    return rejection_text(result, source, reason)


def _move_rq(move_aet: str, message_id: int, sop_class: str, *, priority: int) -> dict[str, Any]:
    return move_rq(message_id, sop_class, move_aet, priority=priority)


def queue_streamed(
    engine: AssociationEngine, context_id: int, command: dict[str, Any], info: Part10Info
) -> Iterator[None]:
    """Queue a large data set from disk one batch at a time.

    It pauses after each batch of about ``SEND_BATCH`` bytes so that the
    transport writes it out before the next is read: memory stays bounded by
    one chunk and one batch, whichever way the bytes travel.
    """
    from dimsefsm.part10 import iter_file_chunks  # only storage reads files

    assert engine.negotiated is not None
    batch: list[bytes] = []
    size = 0
    pdus = iter_dataset_pdus(
        context_id,
        iter_file_chunks(info.path, info.dataset_offset),
        engine.negotiated.peer_max_pdu,
        command=encode_command(command),
    )
    for pdu in pdus:
        batch.append(pdu)
        size += len(pdu)
        if size >= SEND_BATCH:
            engine.send_encoded(b"".join(batch))
            yield
            batch, size = [], 0
            if not engine.is_established:
                return
    if batch:
        engine.send_encoded(b"".join(batch))


class AssociationCore(Generic[StatusT, ResponsesT, SentT, ReplyT]):
    """One association we requested, apart from how its bytes travel.

    The services are declared here once, for the blocking and the asyncio
    client: which context, which Message ID, what the request is, what a
    failure means.  A subclass says how the queued bytes go out and how the
    peer is waited for, in four hooks: :meth:`_status` (one response, a
    Dataset or an awaitable of one), :meth:`_reply` (a DIMSE-N response: its
    status and data set), :meth:`_responses` (an iterator or an async
    iterator of them) and :meth:`_send_queued`.
    """

    def __init__(
        self,
        engine: AssociationEngine,
        *,
        acse_timeout: float | None,
        dimse_timeout: float | None,
        artim_timeout: float,
    ) -> None:
        self.engine = engine
        self.acse_timeout = acse_timeout
        self.dimse_timeout = dimse_timeout
        self.artim_timeout = artim_timeout
        self.error: str | None = None
        self.last_message_id: int | None = None
        self.timed_out = False

    # -- status -------------------------------------------------------------------
    @property
    def is_established(self) -> bool:
        return self.engine.outcome == "established"

    @property
    def is_rejected(self) -> bool:
        return self.engine.outcome == "rejected"

    @property
    def is_aborted(self) -> bool:
        return self.engine.outcome == "aborted"

    @property
    def is_released(self) -> bool:
        return self.engine.outcome == "released"

    @property
    def negotiated(self) -> Negotiated | None:
        return self.engine.negotiated

    @property
    def requestor(self) -> ServiceUser:
        """The requesting end (here: us): ``ae_title``, ``address``, ``port``."""
        return self.engine.requestor

    @property
    def acceptor(self) -> ServiceUser:
        """The accepting end (here: the peer): ``ae_title``, ``address``, ``port``."""
        return self.engine.acceptor

    @property
    def rejection(self) -> tuple[int, int, int] | None:
        """(result, source, reason) of the A-ASSOCIATE-RJ, if rejected."""
        rj = self.engine.rejection
        return (rj.result, rj.source, rj.reason) if rj else None

    def describe_failure(self) -> str:
        """A sentence for a user: why this association is not established."""
        if self.is_rejected and self.engine.rejection is not None:
            rj = self.engine.rejection
            rq = getattr(self.engine, "rq", None)
            return "association " + rejection_text(
                rj.result,
                rj.source,
                rj.reason,
                called_ae=rq.called_ae if rq is not None else "",
                calling_ae=rq.calling_ae if rq is not None else "",
            )
        if self.is_aborted:
            if self.error:
                return f"association aborted: {self.error}"
            return "association " + abort_text(self.engine.abort_source, self.engine.abort_reason)
        if self.is_released:
            return "association released"
        return self.error or "association not established"

    # -- how the subclass moves bytes -----------------------------------------------------
    def _status(self, op: SingleResponseScu, batches: Iterable[None]) -> StatusT:
        """Write ``batches`` (see :func:`queue_streamed`) and the rest; the response status."""
        raise NotImplementedError

    def _responses(self, op: MultiResponseScu) -> ResponsesT:
        """``(status, identifier)`` per response, the request written on the first step."""
        raise NotImplementedError

    def _send_queued(self, queued: bool) -> SentT:
        """Write what the engine queued (if ``queued``), without waiting for an answer."""
        raise NotImplementedError

    def _reply(self, op: NormalizedScu) -> ReplyT:
        """Write the DIMSE-N request and wait: ``(status, dataset | None)`` (``op.reply()``)."""
        raise NotImplementedError

    # -- services ---------------------------------------------------------------------
    def send_c_echo(self, msg_id: int | None = None) -> StatusT:
        """Send a C-ECHO; the response status Dataset (empty if none came)."""
        return self._status(self._start_echo(msg_id), ())

    def send_c_store(
        self,
        dataset: Dataset | str | Path,
        msg_id: int | None = None,
        priority: int = Priority.MEDIUM,
        originator_aet: str | None = None,
        originator_id: int | None = None,
    ) -> StatusT:
        """Send one instance; the response status Dataset (empty if none came).

        A path is sent without decoding when a context with the file's own
        transfer syntax was accepted; a large file is streamed from disk.
        Otherwise an uncompressed instance is converted to an accepted
        uncompressed syntax.
        """
        return self._status(
            *self._start_store(dataset, msg_id, priority, originator_aet, originator_id)
        )

    def send_c_find(
        self,
        dataset: Dataset,
        query_model: str,
        msg_id: int | None = None,
        priority: int = Priority.MEDIUM,
    ) -> ResponsesT:
        """Query; yields ``(status, identifier)`` per response, as pynetdicom does.

        ``query_model`` is the C-FIND SOP class UID.  Call
        :meth:`send_c_cancel` with the Message ID (``self.last_message_id``)
        while iterating to stop early; the remaining responses (the final
        0xFE00, or Success if the peer finished first) still arrive.
        """
        from dimsefsm.services.find import FindScu

        op = self._start_query(dataset, query_model, FindScu, find_rq, msg_id, priority)
        return self._responses(op)

    def send_c_get(
        self,
        dataset: Dataset,
        query_model: str,
        msg_id: int | None = None,
        priority: int = Priority.MEDIUM,
    ) -> ResponsesT:
        """Retrieve over this association; yields ``(status, identifier)`` per response.

        The C-STORE sub-operations arrive meanwhile and go to this AE's storage
        (``AE.storage`` and its EVT_C_STORE handler) on the contexts where the
        peer accepted our SCP role (``AE.propose_role``).
        """
        from dimsefsm.services.get import GetScu

        op = self._start_query(dataset, query_model, GetScu, get_rq, msg_id, priority)
        return self._responses(op)

    def send_c_move(
        self,
        dataset: Dataset,
        move_aet: str,
        query_model: str,
        msg_id: int | None = None,
        priority: int = Priority.MEDIUM,
    ) -> ResponsesT:
        """Ask the peer to send the matches to ``move_aet``; yields ``(status, identifier)``."""
        from dimsefsm.services.move import MoveScu

        build = functools.partial(_move_rq, move_aet)
        op = self._start_query(dataset, query_model, MoveScu, build, msg_id, priority)
        return self._responses(op)

    def send_c_cancel(self, msg_id: int, context_id: int | None = None) -> SentT:
        """C-CANCEL the operation with this Message ID (FIND, GET or MOVE)."""
        return self._send_queued(self._queue_cancel(msg_id, context_id))

    # -- DIMSE-N (pynetdicom's signatures) ------------------------------------------------
    def send_n_action(
        self,
        dataset: Dataset | None,
        action_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> ReplyT:
        """N-ACTION; ``(status, action_reply)``, the reply None unless Success or Warning.

        ``meta_uid``: the Meta SOP class whose context carries the request
        (Print Management), ``class_uid`` still being the Requested SOP Class UID.
        """
        from dimsefsm.services.normalized import N_ACTION

        op = self._start_normalized(
            N_ACTION, class_uid, instance_uid, msg_id, meta_uid, dataset, action_type=action_type
        )
        return self._reply(op)

    def send_n_create(
        self,
        dataset: Dataset | None,
        class_uid: str,
        instance_uid: str | None = None,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> ReplyT:
        """N-CREATE; ``(status, attribute_list)``.  Without ``instance_uid`` the SCP
        chooses it: the status Dataset's AffectedSOPInstanceUID says which."""
        from dimsefsm.services.normalized import N_CREATE

        op = self._start_normalized(N_CREATE, class_uid, instance_uid, msg_id, meta_uid, dataset)
        return self._reply(op)

    def send_n_delete(
        self,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> StatusT:
        """N-DELETE; the response status Dataset (empty if none came)."""
        from dimsefsm.services.normalized import N_DELETE

        op = self._start_normalized(N_DELETE, class_uid, instance_uid, msg_id, meta_uid, None)
        return self._status(op, ())

    def send_n_event_report(
        self,
        dataset: Dataset | None,
        event_type: int,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> ReplyT:
        """N-EVENT-REPORT; ``(status, event_reply)``.

        Sent on a context of the SOP class whichever role we have there: the
        SOP class's SCP reports to its SCU, on the association the SCU
        requested or on one the SCP requested with role selection.
        """
        from dimsefsm.services.normalized import N_EVENT_REPORT

        op = self._start_normalized(
            N_EVENT_REPORT,
            class_uid,
            instance_uid,
            msg_id,
            meta_uid,
            dataset,
            event_type=event_type,
        )
        return self._reply(op)

    def send_n_get(
        self,
        identifier_list: Iterable[Any],
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> ReplyT:
        """N-GET of the attributes ``identifier_list`` names (tags; empty: all of them);
        ``(status, attribute_list)``."""
        from pydicom.tag import Tag

        from dimsefsm.services.normalized import N_GET

        tags = tuple(int(Tag(tag)) for tag in identifier_list or ())
        op = self._start_normalized(
            N_GET, class_uid, instance_uid, msg_id, meta_uid, None, identifiers=tags
        )
        return self._reply(op)

    def send_n_set(
        self,
        dataset: Dataset,
        class_uid: str,
        instance_uid: str,
        msg_id: int | None = None,
        meta_uid: str | None = None,
    ) -> ReplyT:
        """N-SET with ``dataset`` as the Modification List; ``(status, attribute_list)``."""
        from dimsefsm.services.normalized import N_SET

        if dataset is None:
            raise ValueError("N-SET needs a Modification List data set")
        op = self._start_normalized(N_SET, class_uid, instance_uid, msg_id, meta_uid, dataset)
        return self._reply(op)

    def _require_established(self) -> Negotiated:
        if not self.is_established or self.engine.negotiated is None:
            raise RuntimeError(f"the association is not established: {self.describe_failure()}")
        return self.engine.negotiated

    # -- what goes wrong, in words --------------------------------------------------
    def _not_connected(self, error: str) -> None:
        """No usable connection (refused, TLS failed): the upper layer goes back to Sta1."""
        self.error = error
        LOG.error(error)
        self.engine.transport_closed()
        self.engine.take_effects()

    def _negotiation_timed_out(self) -> None:
        """Record it; the caller aborts."""
        self.timed_out = True
        self.error = f"no association response within {self.acse_timeout} s"
        LOG.error(self.error)

    def _negotiation_ended(self, failure: BaseException | None, tls: bool) -> None:
        """After reading until the negotiation was decided: did the connection die first?"""
        if self.engine.outcome == "pending" or (failure is not None and self.is_aborted):
            self.error = "connection closed during association negotiation"
            if failure is not None:
                # TLS 1.3: a server refusing our certificate says so only now, in an alert.
                self.error += f" ({describe_tls_error(failure)})"
                if tls:
                    self.error += "; the server may not accept our certificate"
            LOG.error(self.error)
            # The connection is gone: the upper layer sees it closed (AA-4), so the
            # outcome chart records the association as lost, as any other lost connection.
            self.engine.transport_closed()

    def _operation_timed_out(self, op: Any) -> None:
        """The operation ends TimedOut; the caller aborts the association."""
        self.timed_out = True
        self.error = f"no response within the DIMSE timeout ({self.dimse_timeout} s)"
        LOG.error("%s; aborting", self.error)
        self.engine.operations.pop(op.message_id, None)
        op.on_timeout()

    def _release_timed_out(self) -> None:
        LOG.error("no A-RELEASE-RP within %s s; aborting", self.acse_timeout)

    # -- requests: queued on the engine, written and awaited by the subclass ----------
    def _start_echo(self, msg_id: int | None) -> EchoScu:
        negotiated = self._require_established()
        ctx = negotiated.find_context(VERIFICATION)
        if ctx is None:
            raise ValueError("no accepted presentation context for the Verification SOP class")
        engine = self.engine
        message_id = msg_id if msg_id is not None else engine.next_message_id()
        op = EchoScu(message_id)
        engine.start_operation(message_id, op)
        op.sent()
        engine.send_message(Message(ctx.context_id, echo_rq(message_id)))
        return op

    def _start_store(
        self,
        dataset: Dataset | str | Path,
        msg_id: int | None,
        priority: int,
        originator_aet: str | None,
        originator_id: int | None,
    ) -> tuple[StoreScu, Iterator[None]]:
        """The operation, and the batches of a file too large to read whole still to queue.

        The caller writes each batch out before taking the next (:func:`queue_streamed`).
        """
        from dimsefsm.services.storage import StoreScu, store_source

        negotiated = self._require_established()
        source = store_source(negotiated, dataset, STREAM_THRESHOLD)
        engine = self.engine
        message_id = msg_id if msg_id is not None else engine.next_message_id()
        command = store_rq(
            message_id,
            source.sop_class_uid,
            source.sop_instance_uid,
            priority=priority,
            move_originator_ae=originator_aet,
            move_originator_message_id=originator_id,
        )
        op = StoreScu(message_id)
        engine.start_operation(message_id, op)
        op.sent()
        if source.data is not None:
            engine.send_message(Message(source.context_id, command, source.data))
            return op, iter(())
        assert source.info is not None
        return op, queue_streamed(engine, source.context_id, command, source.info)

    def _start_query(
        self,
        dataset: Dataset,
        sop_class: str,
        op_class: type[MultiResponseScu],
        build: Callable[..., dict[str, Any]],
        msg_id: int | None,
        priority: int,
    ) -> MultiResponseScu:
        from dimsefsm.datasets import encode_dataset

        negotiated = self._require_established()
        ctx = negotiated.find_context(sop_class)
        if ctx is None:
            raise ValueError(f"no accepted presentation context for {sop_class}")
        engine = self.engine
        message_id = msg_id if msg_id is not None else engine.next_message_id()
        self.last_message_id = message_id
        op = op_class(message_id, ctx, engine.max_identifier_size)
        engine.start_operation(message_id, op)
        op.sent()
        engine.send_message(
            Message(
                ctx.context_id,
                build(message_id, sop_class, priority=priority),
                encode_dataset(dataset, ctx.transfer_syntax),
            )
        )
        return op

    def _start_normalized(
        self,
        operation: NOperation,
        class_uid: str,
        instance_uid: str | None,
        msg_id: int | None,
        meta_uid: str | None,
        dataset: Dataset | None,
        *,
        event_type: int | None = None,
        action_type: int | None = None,
        identifiers: tuple[int, ...] | None = None,
    ) -> NormalizedScu:
        from dimsefsm.services.normalized import start_n_request

        self._require_established()
        op = start_n_request(
            self.engine,
            operation,
            class_uid,
            instance_uid,
            dataset,
            msg_id=msg_id,
            meta_uid=meta_uid,
            event_type=event_type,
            action_type=action_type,
            identifiers=identifiers,
        )
        self.last_message_id = op.message_id
        return op

    def _queue_cancel(self, msg_id: int, context_id: int | None) -> bool:
        """Queue a C-CANCEL; False when the operation has already finished."""
        op = self.engine.operations.get(msg_id)
        assert self.engine.negotiated is not None
        if op is None and context_id is None:
            LOG.info("C-CANCEL not sent: Message ID %d has already finished", msg_id)
            return False
        if context_id is None:
            context_id = getattr(getattr(op, "context", None), "context_id", None)
        if context_id is None:
            raise ValueError(f"no running operation with Message ID {msg_id}")
        if (
            op is not None
            and hasattr(op, "cancel_sent")
            and getattr(op, "state", None) == "Matching"
        ):
            op.cancel_sent()
        self.engine.send_message(Message(context_id, cancel_rq(msg_id)))
        return True


class Association(AssociationCore["Dataset", Iterator[Responses], None, Reply]):
    """One association we requested, on a blocking socket read by the calling thread."""

    driver: SocketDriver | None = None

    # -- connecting ---------------------------------------------------------------------
    def _open(
        self,
        address: tuple[str, int],
        connect_timeout: float | None,
        tls_args: TlsArgs | None = None,
        make_sub_ae: AEFactory | None = None,
    ) -> None:
        """``make_sub_ae``: the AE of sub-associations should the peer send a C-MOVE-RQ."""
        engine = self.engine
        engine.request_association()
        engine.take_effects()  # the Connect effect: performed right here
        try:
            sock = socket.create_connection(address, timeout=connect_timeout)
        except OSError as exc:
            self._not_connected(f"cannot connect to {address[0]}:{address[1]}: {exc}")
            return
        tune(sock)
        engine.local_address = sock.getsockname()[:2]
        engine.peer_address = sock.getpeername()[:2]
        if tls_args is not None:
            try:
                sock = self._start_tls(sock, address, tls_args, connect_timeout)
            except HandshakeFailed as exc:
                self._not_connected(str(exc))
                return
        self.driver = SocketDriver(engine, sock, self.artim_timeout, make_sub_ae=make_sub_ae)
        engine.transport_connected()
        if not self._read_until(lambda: engine.outcome != "pending", self.acse_timeout):
            self._negotiation_timed_out()
            self.abort()
            return
        self._negotiation_ended(self.driver.failure, self.driver.tls)

    @staticmethod
    def _start_tls(
        sock: socket.socket,
        address: tuple[str, int],
        tls_args: TlsArgs,
        timeout: float | None,
    ) -> ssl.SSLSocket:
        """The TLS socket once its handshake is done (bounded by ``timeout``).

        Raises :class:`HandshakeFailed` saying why, the socket closed.
        """
        context, server_hostname = tls_args
        try:
            secured = context.wrap_socket(
                sock, server_hostname=server_hostname, do_handshake_on_connect=False
            )
        except (OSError, ValueError) as exc:
            sock.close()
            raise HandshakeFailed(
                f"cannot start TLS with {address[0]}:{address[1]}: {exc}"
            ) from exc
        try:
            handshake(secured, timeout)
        except HandshakeFailed as exc:
            close_socket(secured)
            raise HandshakeFailed(
                f"TLS handshake with {address[0]}:{address[1]} failed: {exc}"
            ) from exc
        return secured

    # -- waiting ----------------------------------------------------------------------
    def _status(self, op: SingleResponseScu, batches: Iterable[None]) -> Dataset:
        self._finish(op, batches)
        return op.result()

    def _reply(self, op: NormalizedScu) -> Reply:
        self._finish(op, ())
        return op.reply()

    def wait_for(self, finished: Callable[[], bool], timeout: float | None = None) -> bool:
        """Read and answer the peer's requests until ``finished()`` is true.

        For what arrives unasked: the N-EVENT-REPORT a Storage Commitment or
        UPS SCP sends after answering our N-ACTION (its handler, bound with
        ``evt_handlers``, runs in this call).  False when ``timeout`` seconds
        passed first or the association ended; ``finished`` is checked after
        each message read.
        """
        driver = self.driver
        if driver is None:
            return finished()
        driver.flush()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not finished():
            if driver.sock is None or not self.is_established:
                return finished()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            try:
                driver.pump(remaining)
                driver.serve_operations(remaining)
            except TransportTimeout:
                return finished()
        return True

    def echo_and_wait(self, msg_id: int | None = None) -> EchoScu:
        """:meth:`send_c_echo` returning the finished operation, not a status Dataset.

        Its ``status`` is the response's Status as a number (None if no response
        came): a command-line check reads that number without importing pydicom.
        """
        op = self._start_echo(msg_id)
        self._finish(op, ())
        return op

    def store_and_wait(
        self,
        dataset: Dataset | str | Path,
        *,
        on_sent: Callable[[], None] | None = None,
        originator_aet: str | None = None,
        originator_id: int | None = None,
        msg_id: int | None = None,
        priority: int = Priority.MEDIUM,
    ) -> StoreScu:
        """:meth:`send_c_store` returning the finished operation, not a status Dataset.

        C-GET and C-MOVE SCPs only need the response's Status for their counts;
        building pynetdicom's status Dataset per sub-operation costs more than
        encoding the C-STORE request.  ``on_sent`` runs once the request is on
        the wire, before waiting for the response.
        """
        op, batches = self._start_store(dataset, msg_id, priority, originator_aet, originator_id)
        self._finish(op, batches, on_sent)
        return op

    def _finish(
        self,
        op: SingleResponseScu,
        batches: Iterable[None],
        on_sent: Callable[[], None] | None = None,
    ) -> None:
        driver = self.driver
        assert driver is not None
        for _ in batches:
            driver.flush()
        self._wait(op, on_sent=on_sent)

    def _responses(self, op: MultiResponseScu) -> Iterator[Responses]:
        while True:
            if not op.results and not op.done:
                self._wait(op, until_result=True)
            while op.results:
                yield op.results.popleft()
            if op.done:
                return

    def _send_queued(self, queued: bool) -> None:
        assert self.driver is not None
        if queued:
            self.driver.flush()

    def _wait(
        self, op: Any, until_result: bool = False, on_sent: Callable[[], None] | None = None
    ) -> None:
        driver = self.driver
        assert driver is not None
        driver.flush()
        if on_sent is not None:
            on_sent()
        while not op.done and not (until_result and op.results):
            try:
                driver.pump(self.dimse_timeout)
                driver.serve_operations(self.dimse_timeout)
            except TransportTimeout:
                self._operation_timed_out(op)
                self.abort()
                return

    def _read_until(self, finished: Callable[[], bool], timeout: float | None) -> bool:
        """Write what is queued, then read until ``finished()`` or the socket is gone.

        False when ``timeout`` passed with nothing read (ACSE waits: the
        association request and its release).
        """
        driver = self.driver
        assert driver is not None
        driver.flush()
        while not finished() and driver.sock is not None:
            try:
                driver.pump(timeout)
            except TransportTimeout:
                return False
        return True

    # -- ending -----------------------------------------------------------------------
    def release(self) -> None:
        """A-RELEASE; waits for the peer's answer (bounded by the ACSE timeout)."""
        if not self.is_established or self.driver is None:
            return
        self.engine.release()
        if not self._read_until(lambda: self.engine.ul.state == "Sta1", self.acse_timeout):
            self._release_timed_out()
            self.abort()
            return
        self.driver.close()

    def abort(self) -> None:
        """A-ABORT; closes the connection at once rather than waiting for ARTIM."""
        self.engine.abort()
        if self.driver is not None:
            self.driver.flush()
            self.driver.close()
        self.engine.transport_closed()
        self.engine.take_effects()

    def __enter__(self) -> Association:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.is_established:
            self.release()
        elif self.driver is not None:
            self.driver.close()
