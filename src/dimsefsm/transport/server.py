"""A threaded TCP server: one thread accepts, one thread per association.

Shutdown is prompt and leaks nothing: the accept loop and every association
thread wait in ``select`` on their socket *and* a wake-up socket, so
:meth:`AssociationServer.shutdown` can stop them without polling; each live
association is aborted (A-ABORT sent) before its socket is closed.

With an ``ssl_context`` every connection is wrapped and its TLS handshake done
in the association's own thread, bounded by ARTIM and interruptible by
shutdown: a client that never completes it holds only its own thread.

One client must not lock the others out, so connections are counted in two
pools.  An association *slot* (the acceptor policy's ``max_associations``) is
held only from the moment its A-ASSOCIATE-RQ is being decided until the
association ends; a connection that is still to send its A-ASSOCIATE-RQ (or
its TLS handshake), or that is closing, is *pending*.  Pending connections are
bounded twice: ARTIM closes each one that has not completed its request in
time (PS3.8 Sta2), and at most ``max_pending`` exist at once: a new connection
beyond that closes the oldest pending one (logged), so silent sockets cannot
starve real peers, whose requests complete in milliseconds.  Threads and file
descriptors are therefore bounded by ``max_associations + max_pending`` (plus
evicted connections on their way out).  Once established, a PDU must complete
within ``pdu_timeout`` of its first byte (see :class:`SocketDriver`).
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dimsefsm.engine import AssociationEngine
from dimsefsm.transport.driver import (
    Interrupted,
    SocketDriver,
    TransportTimeout,
    close_socket,
    is_tls,
    tune,
)
from dimsefsm.transport.tls import HandshakeFailed, handshake

if TYPE_CHECKING:
    import ssl

    from dimsefsm.transport.sub_association import AEFactory  # C-MOVE loads only when used

LOG = logging.getLogger("dimsefsm.server")

EngineFactory = Callable[[Callable[[], int]], AssociationEngine]


def listening_socket(address: tuple[str, int], backlog: int) -> socket.socket:
    """A socket listening on ``address``, IPv4 or IPv6 by the form of the host.

    ``::`` listens on both families where the system allows it (IPv4 peers then
    arrive as ``::ffff:a.b.c.d``), as ``0.0.0.0`` does for IPv4 alone.
    """
    host = address[0]
    if ":" not in host:
        return socket.create_server(address, backlog=backlog, reuse_port=False)
    dualstack = host == "::" and socket.has_dualstack_ipv6()
    return socket.create_server(
        address, family=socket.AF_INET6, backlog=backlog, dualstack_ipv6=dualstack
    )


@dataclass(eq=False)
class _Connection:
    """One accepted connection, as the server's bookkeeping sees it."""

    sock: socket.socket
    peer: tuple[str, int]
    opened: float = field(default_factory=time.monotonic)
    engine: AssociationEngine | None = None
    deciding: bool = False
    """Its A-ASSOCIATE-RQ is being decided: it counts against the slots already."""
    evicted: bool = False

    @property
    def holds_slot(self) -> bool:
        engine = self.engine
        if engine is None:
            return False
        return engine.outcome == "established" or (self.deciding and engine.outcome == "pending")


class AssociationServer:
    def __init__(
        self,
        address: tuple[str, int],
        make_engine: EngineFactory,
        *,
        artim_timeout: float = 30.0,
        network_timeout: float | None = 60.0,
        network_timeout_response: str = "A-ABORT",
        acse_timeout: float | None = 30.0,
        pdu_timeout: float | None = 60.0,
        max_pending: int = 128,
        backlog: int = 64,
        ssl_context: ssl.SSLContext | None = None,
        listener: socket.socket | None = None,
        make_sub_ae: AEFactory | None = None,
    ) -> None:
        """``listener``: a listening socket to accept on instead of binding ``address`` (the
        socket several worker processes share, see ``transport.workers``); it stays the
        caller's: shutdown does not close it. ``make_sub_ae``: the AE that requests a C-MOVE
        SCP's sub-associations (the facade's ``AE``, injected)."""
        self.make_sub_ae = make_sub_ae
        if network_timeout_response not in ("A-ABORT", "A-RELEASE"):
            raise ValueError(
                f"network_timeout_response must be 'A-ABORT' or 'A-RELEASE', "
                f"not {network_timeout_response!r}"
            )
        self.make_engine = make_engine
        self.ssl_context = ssl_context
        self.artim_timeout = artim_timeout
        self.network_timeout = network_timeout
        self.network_timeout_response = network_timeout_response
        self.acse_timeout = acse_timeout
        self.pdu_timeout = pdu_timeout
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        self.max_pending = max_pending
        if listener is None:
            self._listener = listening_socket(address, backlog)
        else:
            # Shared with other processes: a connection they accept first must not leave
            # this accept() waiting.
            listener.setblocking(False)
            self._listener = listener
        self._owns_listener = listener is None
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._threads: dict[threading.Thread, _Connection] = {}
        self._stopping = False
        self._accept_thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> None:
        """Serve in a background thread; returns once the socket is listening."""
        self._accept_thread = threading.Thread(
            target=self.serve_forever, name=f"dimsefsm-accept-{self.address[1]}", daemon=True
        )
        self._accept_thread.start()

    def serve_forever(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        sock, peer = self._listener.accept()
                    except BlockingIOError:
                        continue  # another worker process accepted this connection
                    except OSError as exc:
                        LOG.warning("accept failed: %s", exc)
                        continue
                    # An IPv6 listener gives (host, port, flowinfo, scope id): keep host and
                    # port, what every log line and the handlers' peer address expect.
                    self._spawn(sock, (peer[0], peer[1]))

    def shutdown(self) -> None:
        """Stop accepting, abort live associations, join every thread."""
        with self._lock:
            self._stopping = True
        self._wake_w.send(b"x")
        if (
            self._accept_thread is not None
            and self._accept_thread is not threading.current_thread()
        ):
            self._accept_thread.join()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
        if self._owns_listener:
            self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def active_associations(self) -> int:
        """Associations holding a slot: established, or their request being decided."""
        with self._lock:
            return sum(conn.holds_slot for conn in self._threads.values())

    @property
    def pending_connections(self) -> int:
        """Connections without a slot: before their A-ASSOCIATE-RQ, or closing."""
        with self._lock:
            return sum(not c.holds_slot and not c.evicted for c in self._threads.values())

    @property
    def connections(self) -> int:
        """Every connection that still has a thread, evicted ones on their way out included."""
        with self._lock:
            return len(self._threads)

    # -- one association -------------------------------------------------------------
    def _spawn(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        conn = _Connection(sock, peer)
        thread = threading.Thread(
            target=self._serve, args=(conn,), name=f"dimsefsm-assoc-{peer[1]}", daemon=True
        )
        with self._lock:
            if self._stopping:
                sock.close()
                return
            self._evict_if_full()
            self._threads[thread] = conn
        thread.start()

    def _evict_if_full(self) -> None:
        """At ``max_pending`` pending connections, close the oldest (lock held)."""
        pending = [c for c in self._threads.values() if not c.holds_slot and not c.evicted]
        if len(pending) < self.max_pending:
            return
        oldest = min(pending, key=lambda c: c.opened)
        oldest.evicted = True
        LOG.warning(
            "%d connections without an association (the most allowed); closing the oldest, "
            "from %s:%d, open %.1f s",
            len(pending),
            *oldest.peer,
            time.monotonic() - oldest.opened,
        )
        # Its thread sees the end of the stream and finishes the chart (AA-5, or the
        # TLS handshake fails); the socket itself is closed by that thread.
        with contextlib.suppress(OSError):
            oldest.sock.shutdown(socket.SHUT_RDWR)

    def _claim_slot(self, conn: _Connection) -> int:
        """Slots held by the others, counted as this request starts to hold one.

        Counting and claiming under one lock keeps two requests decided at once
        from both taking the last slot.
        """
        with self._lock:
            others = sum(c.holds_slot for c in self._threads.values() if c is not conn)
            conn.deciding = True
            return others

    def _serve(self, conn: _Connection) -> None:
        sock = conn.sock
        try:
            tune(sock)
            if self.ssl_context is not None:
                secured = self._start_tls(self.ssl_context, conn)
                if secured is None:
                    return
                sock = secured
            self._run_association(conn, sock)
        finally:
            with self._lock:
                self._threads.pop(threading.current_thread(), None)

    def _run_association(self, conn: _Connection, sock: socket.socket) -> None:
        peer = conn.peer
        engine = self.make_engine(lambda: self._claim_slot(conn))
        engine.peer_address = peer
        try:
            engine.local_address = sock.getsockname()[:2]
        except OSError:  # already reset by the peer: the association fails on its own
            engine.local_address = None
        if is_tls(sock):
            engine.peer_certificate = sock.getpeercert() or None  # type: ignore[attr-defined]
        driver = SocketDriver(
            engine,
            sock,
            self.artim_timeout,
            wake=self._wake_r,
            pdu_timeout=self.pdu_timeout,
            make_sub_ae=self.make_sub_ae,
        )
        driver.peer_label = f"{peer[0]}:{peer[1]}"
        with self._lock:
            conn.engine = engine
        try:
            engine.transport_accepted()
            driver.flush()
            while engine.ul.state != "Sta1":
                try:
                    driver.pump(self.network_timeout)
                    driver.serve_operations(self.network_timeout)
                except TransportTimeout:
                    self._end_idle(engine, driver, peer)
                    break
                except Interrupted:
                    LOG.info("server stopping; aborting association with %s:%d", *peer)
                    engine.abort()
                    driver.flush()
                    break
            if conn.evicted and engine.outcome == "pending":
                LOG.info("closed %s:%d to make room: no A-ASSOCIATE-RQ came", *peer)
        except Exception:
            LOG.exception("association with %s:%d failed; aborting", *peer)
            try:
                engine.abort()
                driver.flush()
            except Exception:
                LOG.exception("abort after failure also failed")
        finally:
            driver.close()

    def _end_idle(
        self, engine: AssociationEngine, driver: SocketDriver, peer: tuple[str, int]
    ) -> None:
        """The network timeout ran out: abort, or release first if configured so.

        Some archives take an A-RELEASE as "the sender is done" (a study is
        complete) and an A-ABORT as a failed transfer (pynetdicom #619); a
        release the peer does not answer within the ACSE timeout still ends
        in an abort, so nothing hangs either way.
        """
        idle = engine.is_established and not engine.scp_operations
        if self.network_timeout_response == "A-RELEASE" and idle:
            LOG.warning("association with %s:%d idle too long; releasing", *peer)
            engine.release()
            driver.flush()
            try:
                while engine.ul.state != "Sta1" and driver.sock is not None:
                    driver.pump(self.acse_timeout)
                return
            except TransportTimeout:
                LOG.warning("%s:%d did not answer the A-RELEASE; aborting", *peer)
            except Interrupted:
                pass
        else:
            LOG.warning("association with %s:%d idle too long; aborting", *peer)
        engine.abort()
        driver.flush()

    def _start_tls(self, context: ssl.SSLContext, conn: _Connection) -> ssl.SSLSocket | None:
        """The TLS socket once its handshake is done; None (logged, closed) if it failed."""
        sock, peer = conn.sock, conn.peer
        try:
            with self._lock:  # wrapping moves the descriptor: eviction must see the new socket
                secured = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                conn.sock = secured
        except OSError as exc:
            LOG.warning("TLS with %s:%d failed: %s", *peer, exc)
            sock.close()
            return None
        try:
            handshake(secured, self.artim_timeout, wake=self._wake_r)
        except HandshakeFailed as exc:
            LOG.warning("TLS handshake with %s:%d failed: %s", *peer, exc)
        except Interrupted:
            LOG.info("server stopping; closing %s:%d before its TLS handshake ended", *peer)
        else:
            return secured
        close_socket(secured)
        return None
