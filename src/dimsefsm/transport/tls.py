"""TLS for DICOM connections (PS3.15 Annex B): a bounded, interruptible handshake.

The handshake runs on a non-blocking socket that waits in ``select``, so it
ends at a deadline and, on a server, as soon as the server shuts down: a peer
that connects and never sends a ClientHello costs one idle association thread,
never the accept loop, other clients or a prompt shutdown.  The socket is
blocking again when the handshake returns: the driver expects that.

``ssl`` is imported by the functions that need it, not by this module: a
plain-TCP client (``dimsefsm echoscu`` checking a peer) never pays for
loading OpenSSL.  Any TLS socket implies a context, hence ``ssl`` already
loaded by whoever made it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from typing import TYPE_CHECKING

from dimsefsm.transport.driver import Interrupted

if TYPE_CHECKING:
    import ssl

# Client: (context, server_hostname) as pynetdicom's ``tls_args``.
TlsArgs = tuple["ssl.SSLContext", "str | None"]


class HandshakeFailed(Exception):
    """The TLS handshake did not complete; the message says why, for a log line."""


def handshake(
    sock: ssl.SSLSocket, timeout: float | None, wake: socket.socket | None = None
) -> None:
    """Complete the handshake within ``timeout`` seconds.

    Raises :class:`HandshakeFailed` (timeout, refused certificate, peer gone)
    or ``Interrupted`` when ``wake`` becomes readable.
    """
    import ssl

    deadline = None if timeout is None else time.monotonic() + timeout
    readers: list[socket.socket]
    writers: list[socket.socket]
    sock.setblocking(False)
    try:
        while True:
            try:
                sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                readers, writers = [sock], []
            except ssl.SSLWantWriteError:
                readers, writers = [], [sock]
            except OSError as exc:
                raise HandshakeFailed(handshake_failure(exc, timeout)) from exc
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise HandshakeFailed(f"no TLS handshake within {timeout:g} s")
            if wake is not None:
                readers.append(wake)
            readable, writable, _ = select.select(readers, writers, [], remaining)
            if wake is not None and wake in readable:
                raise Interrupted
            if not readable and not writable:
                raise HandshakeFailed(f"no TLS handshake within {timeout:g} s")
    finally:
        with contextlib.suppress(OSError):
            sock.setblocking(True)


def handshake_failure(exc: OSError, timeout: float | None) -> str:
    """Why a handshake failed, in the same words for the blocking and the asyncio client."""
    import ssl

    if isinstance(exc, TimeoutError):
        return str(exc) or f"no TLS handshake within {timeout:g} s"
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError)):
        return "the peer closed the connection during the TLS handshake"
    return describe_tls_error(exc)


def describe_tls_error(exc: BaseException) -> str:
    """One line a person can act on, rather than OpenSSL's bracketed codes."""
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLEOFError):
        return "the peer closed the TLS connection abruptly"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        reason = str(exc.reason)
        for prefix in ("TLSV13_ALERT_", "TLSV1_ALERT_", "SSLV3_ALERT_"):
            if reason.startswith(prefix):
                alert = reason[len(prefix) :].lower().replace("_", " ")
                return f"the peer sent TLS alert '{alert}'"
        return f"TLS error: {reason.lower().replace('_', ' ')}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__
