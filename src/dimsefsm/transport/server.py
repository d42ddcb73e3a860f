"""A threaded TCP server: one thread accepts, one thread per association.

Shutdown is prompt and leaks nothing: the accept loop and every association
thread wait in ``select`` on their socket *and* a wake-up socket, so
:meth:`AssociationServer.shutdown` can stop them without polling; each live
association is aborted (A-ABORT sent) before its socket is closed.

With an ``ssl_context`` every connection is wrapped and its TLS handshake done
in the association's own thread, bounded by ARTIM and interruptible by
shutdown: a client that never completes it holds only its own thread.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
from collections.abc import Callable

from dimsefsm.engine import AssociationEngine
from dimsefsm.transport.driver import (
    Interrupted,
    SocketDriver,
    TransportTimeout,
    close_socket,
    tune,
)
from dimsefsm.transport.tls import HandshakeFailed, handshake

LOG = logging.getLogger("dimsefsm.server")

EngineFactory = Callable[[Callable[[], int]], AssociationEngine]


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
        backlog: int = 64,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
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
        self._listener = socket.create_server(address, backlog=backlog, reuse_port=False)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._threads: dict[threading.Thread, socket.socket] = {}
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
                    except OSError as exc:
                        LOG.warning("accept failed: %s", exc)
                        continue
                    self._spawn(sock, peer)

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
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def active_associations(self) -> int:
        with self._lock:
            return len(self._threads)

    # -- one association -------------------------------------------------------------
    def _spawn(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        thread = threading.Thread(
            target=self._serve, args=(sock, peer), name=f"dimsefsm-assoc-{peer[1]}", daemon=True
        )
        with self._lock:
            if self._stopping:
                sock.close()
                return
            self._threads[thread] = sock
        thread.start()

    def _serve(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        try:
            tune(sock)
            if self.ssl_context is not None:
                secured = self._start_tls(self.ssl_context, sock, peer)
                if secured is None:
                    return
                sock = secured
            self._run_association(sock, peer)
        finally:
            with self._lock:
                self._threads.pop(threading.current_thread(), None)

    def _run_association(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        engine = self.make_engine(lambda: self.active_associations - 1)
        engine.peer_address = peer
        if isinstance(sock, ssl.SSLSocket):
            engine.peer_certificate = sock.getpeercert() or None
        driver = SocketDriver(engine, sock, self.artim_timeout, wake=self._wake_r)
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

    def _start_tls(
        self, context: ssl.SSLContext, sock: socket.socket, peer: tuple[str, int]
    ) -> ssl.SSLSocket | None:
        """The TLS socket once its handshake is done; None (logged, closed) if it failed."""
        try:
            secured = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
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
