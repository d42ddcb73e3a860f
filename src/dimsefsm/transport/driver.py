"""Runs an :class:`AssociationEngine` on a blocking socket.

Timers are socket timeouts: ARTIM, the PDU deadline and the network/DIMSE/ACSE
timeouts become the timeout of the next ``recv``, so an idle association sleeps
in the kernel and costs no CPU.  Nothing here sleeps or polls.

The PDU deadline (``pdu_timeout``) bounds the time from a PDU's first byte to
its last: the caller's idle timeout restarts with every byte, so without it a
peer trickling one byte a second would hold its association forever.  ARTIM
already bounds the A-ASSOCIATE-RQ (Sta2), so the deadline runs only once the
connection has left Sta2.

The socket may be a TLS socket (PS3.15 Annex B), handshake done.  ``select``
only sees raw bytes, so decrypted bytes waiting in the TLS buffer count as
input too, and readable raw bytes may be half a record: a TLS read never
blocks where a plain one would not.  The plain path pays one attribute test,
and never imports ``ssl`` (see :func:`is_tls`).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import sys
import time
from typing import TYPE_CHECKING, cast

from dimsefsm.engine import AssociationEngine
from dimsefsm.pdu.codec import encode_pdu
from dimsefsm.pdu.model import AbortReason, AbortSource
from dimsefsm.ul import effects as fx
from dimsefsm.ul.chart import ARTIM_RUNNING

if TYPE_CHECKING:
    import ssl

    from dimsefsm.transport.sub_association import AEFactory, SubAssociations

LOG = logging.getLogger("dimsefsm.transport")
RECV_SIZE = 1 << 18
PARTIAL_PDU_WAIT = 0.05
# A zero-wait read found nothing complete: a non-blocking recv (or half a TLS record,
# see ``SocketDriver.nothing_yet``).
_NOTHING_YET: tuple[type[OSError], ...] = (BlockingIOError,)


class TransportTimeout(TimeoutError):
    """Nothing arrived within the timeout the caller asked for."""


class Interrupted(Exception):
    """The owner asked this connection to stop (server shutdown)."""


def tune(sock: socket.socket) -> None:
    """No Nagle: a DIMSE exchange is request/response and must not wait for ACKs."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def is_tls(sock: socket.socket) -> bool:
    """Whether ``sock`` is a TLS socket, without importing ``ssl`` to find out.

    A TLS socket is made from an ``SSLContext``, so while ``ssl`` is not loaded
    none exists: a plain-TCP process (``dimsefsm echoscu``) never loads OpenSSL.
    """
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(sock, ssl.SSLSocket)


def close_socket(sock: socket.socket) -> None:
    """Close without ever blocking, saying TLS close_notify when it can go out at once.

    ``unwrap`` on a blocking TLS socket would wait for the peer's close_notify,
    which a peer that has gone silent never sends.  Non-blocking, our alert is
    sent (or dropped if the send buffer is full) and theirs is not awaited.
    """
    if is_tls(sock):
        with contextlib.suppress(OSError, ValueError):
            sock.setblocking(False)
            cast("ssl.SSLSocket", sock).unwrap()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class SocketDriver:
    """Executes engine effects on one socket and feeds it what the socket reads."""

    def __init__(
        self,
        engine: AssociationEngine,
        sock: socket.socket,
        artim_timeout: float,
        wake: socket.socket | None = None,
        pdu_timeout: float | None = None,
        make_sub_ae: AEFactory | None = None,
    ) -> None:
        """``make_sub_ae`` builds the AE of a C-MOVE SCP's sub-associations (injected)."""
        self.engine = engine
        self.make_sub_ae = make_sub_ae
        self.sock: socket.socket | None = sock
        self.tls = is_tls(sock)
        self.nothing_yet = _NOTHING_YET
        if self.tls:
            import ssl

            self.nothing_yet = (*_NOTHING_YET, ssl.SSLWantReadError, ssl.SSLWantWriteError)
        self.wake = wake
        # Why the connection was lost, when a read or write failed (for describe_failure).
        self.failure: OSError | None = None
        self.artim_timeout = artim_timeout
        self.artim_deadline: float | None = None
        self.pdu_timeout = pdu_timeout
        self.pdu_deadline: float | None = None
        self.peer_label = "peer"
        # C-MOVE sub-associations, opened when an operation asks for one.
        self.sub_associations: SubAssociations | None = None

    def flush(self) -> None:
        """Execute every effect the engine has queued, in order.

        PDUs queued together (a command and its data set, a message in
        fragments) leave in one ``sendall``; each stays its own PDU (PS3.8
        9.3.5 as every peer writes them), only the syscall is shared.
        """
        engine = self.engine
        while engine.outbox:
            pending: list[bytes] = []
            for effect in engine.take_effects():
                if isinstance(effect, fx.SendBytes):
                    pending.append(effect.data)
                elif isinstance(effect, fx.SendPdu):
                    pending.append(encode_pdu(effect.pdu))
                else:
                    if pending:
                        self._send(b"".join(pending))
                        pending = []
                    self._execute(effect)
            if pending:
                self._send(b"".join(pending))

    def _execute(self, effect: fx.Effect) -> None:
        if isinstance(effect, fx.SendBytes):
            self._send(effect.data)
        elif isinstance(effect, fx.SendPdu):
            self._send(encode_pdu(effect.pdu))
        elif isinstance(effect, fx.StartArtim):
            self.artim_deadline = time.monotonic() + self.artim_timeout
        elif isinstance(effect, fx.StopArtim):
            self.artim_deadline = None
        elif isinstance(effect, fx.CloseTransport):
            self.close()
            self.engine.transport_closed()
        elif isinstance(effect, fx.Connect):
            pass  # the client connects before handing the socket over
        else:
            self._sub_association(effect)

    def _sub_association(self, effect: object) -> None:
        """A C-MOVE SCP's sub-association effect (C-MOVE loads only once one is queued)."""
        from dimsefsm.services.move import SUB_ASSOCIATION_EFFECTS
        from dimsefsm.transport.sub_association import SubAssociations

        if isinstance(effect, SUB_ASSOCIATION_EFFECTS):
            if self.sub_associations is None:
                self.sub_associations = SubAssociations(self.make_sub_ae)
            self.sub_associations.perform(effect, self.flush)

    def _send(self, data: bytes) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendall(data)
        except OSError as exc:
            LOG.info("send failed (%s): connection lost", exc)
            self.failure = exc
            self.close()
            self.engine.transport_closed()

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            close_socket(sock)
            self.engine.connection_closed()
        if self.sub_associations is not None:
            self.sub_associations.abort_all()

    def pump(self, timeout: float | None) -> None:
        """Read once (waiting at most ``timeout`` seconds) and feed the engine.

        ARTIM and the PDU deadline are handled here (the call then returns
        having read nothing when one of them cut the wait short); any other
        timeout raises :class:`TransportTimeout` for the caller to decide
        (DIMSE, ACSE or network timeout).
        """
        sock = self.sock
        if sock is None:
            self.engine.transport_closed()
            self.flush()
            return
        wait = timeout
        timer = self._next_timer()
        if timer is not None:
            remaining = max(0.0, timer - time.monotonic())
            if wait is None or remaining < wait:
                wait, timeout = remaining, None  # the timer ends this wait, not the caller's
        try:
            if self.wake is None:
                sock.settimeout(wait)
                data = sock.recv(RECV_SIZE)
            elif self.tls:
                data = self._recv_tls(cast("ssl.SSLSocket", sock), self.wake, wait)
            else:
                readable, _, _ = select.select([sock, self.wake], [], [], wait)
                if not readable:
                    raise TimeoutError
                if self.wake in readable:
                    raise Interrupted
                sock.settimeout(None)
                data = sock.recv(RECV_SIZE)
        except TimeoutError:
            if self._timers_expired() or timeout is None:
                return
            raise TransportTimeout(f"nothing received within {timeout} s") from None
        except self.nothing_yet:
            # Only a zero wait gets here; serve_operations asks again after its next step.
            self._timers_expired()
            return
        except OSError as exc:
            LOG.info("receive failed (%s): connection lost", exc)
            self.failure = exc
            data = b""
        if not data:
            # Let the engine clean up (drop partial files) before the socket goes:
            # once the peer sees the close, our state is already consistent.
            self.engine.transport_closed()
            self.close()
        else:
            self._feed(data)
        self.flush()

    def _feed(self, data: bytes) -> None:
        """Give the engine ``data``; (re)arm the PDU deadline when a new PDU has begun."""
        if self.pdu_timeout is None:
            self.engine.data_received(data)
            return
        framer = self.engine.framer
        before = framer.buffered
        self.engine.data_received(data)
        after = framer.buffered
        if after == 0 or self.engine.ul.state in ARTIM_RUNNING:
            self.pdu_deadline = None
        elif self.pdu_deadline is None or after < before + len(data):
            # Bytes were consumed, so the partial PDU now buffered is a new one.
            self.pdu_deadline = time.monotonic() + self.pdu_timeout

    def _next_timer(self) -> float | None:
        timers = [t for t in (self.artim_deadline, self.pdu_deadline) if t is not None]
        return min(timers) if timers else None

    def _timers_expired(self) -> bool:
        """Fire ARTIM or the PDU deadline if due; True when one fired."""
        return self._artim_expired() or self._pdu_overdue()

    def _artim_expired(self) -> bool:
        if self.artim_deadline is None or time.monotonic() < self.artim_deadline:
            return False
        self.artim_deadline = None
        self.engine.artim_expired()
        self.flush()
        return True

    def _pdu_overdue(self) -> bool:
        """A PDU began more than ``pdu_timeout`` ago and is still incomplete: A-ABORT."""
        if self.pdu_deadline is None or time.monotonic() < self.pdu_deadline:
            return False
        self.pdu_deadline = None
        if self.engine.ul.state in ARTIM_RUNNING or self.engine.ul.state == "Sta1":
            return False  # closing already: ARTIM bounds the rest
        LOG.warning(
            "%s sent %d bytes of a PDU and not the rest within %g s; aborting",
            self.peer_label,
            self.engine.framer.buffered,
            self.pdu_timeout,
        )
        self.engine.abort(AbortSource.SERVICE_PROVIDER, AbortReason.NOT_SPECIFIED)
        self.flush()
        return True

    @staticmethod
    def _recv_tls(sock: ssl.SSLSocket, wake: socket.socket, wait: float | None) -> bytes:
        """A server's TLS read: a whole record, waiting in ``select`` so shutdown stays prompt.

        Blocking in ``recv`` after ``select`` saw half a record would wait for
        the rest with the wake-up socket unwatched; a non-blocking read that
        finds the record incomplete goes back to ``select`` instead.
        """
        import ssl

        deadline = None if wait is None else time.monotonic() + wait
        writers: list[socket.socket] = []
        while True:
            if not sock.pending():
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                readable, writable, _ = select.select([sock, wake], writers, [], remaining)
                if wake in readable:
                    raise Interrupted
                if not readable and not writable:
                    raise TimeoutError
            sock.settimeout(0.0)
            try:
                return sock.recv(RECV_SIZE)
            except ssl.SSLWantReadError:
                if wait == 0:
                    raise
                writers = []
            except ssl.SSLWantWriteError:
                if wait == 0:
                    raise
                writers = [sock]
            finally:
                sock.settimeout(None)

    def serve_operations(self, wait: float | None = None) -> None:
        """Send the responses of running SCP operations, reading between them.

        Anything the peer sent meanwhile (a C-CANCEL, an abort) is processed
        before the next response, without blocking.
        """
        engine = self.engine
        waited = False
        while engine.scp_operations and self.sock is not None and engine.ul.state != "Sta1":
            if self.has_pending_input():
                self.pump(0)
                continue
            if engine.framer.buffered and not waited:
                # Half a PDU arrived (peers may send header and body apart): it may
                # be a C-CANCEL, so give the rest a moment (once) before the next response.
                waited = True
                with contextlib.suppress(TransportTimeout):
                    self.pump(PARTIAL_PDU_WAIT)
                continue
            waited = False
            if not engine.has_ready_scp_operation():
                # Every operation waits for a sub-operation's response: block for it.
                self.flush()
                self.pump(wait)
                continue
            engine.step_scp_operation()
            # Out before the handler runs again: it may block until the peer reacts to it.
            self.flush()
        self.flush()

    def has_pending_input(self) -> bool:
        """True when bytes (or a close) are waiting, without blocking."""
        sock = self.sock
        if sock is None:
            return False
        if self.tls and cast("ssl.SSLSocket", sock).pending():
            return True
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)
