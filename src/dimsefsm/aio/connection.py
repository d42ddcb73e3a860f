"""Opening the connection: TCP, then TLS when asked, both within the connection timeout.

TLS starts on the open stream rather than inside ``open_connection`` so that
a refused connection and a failed handshake are told apart, in the blocking
client's words.
"""

from __future__ import annotations

import asyncio

from dimsefsm.transport.driver import RECV_SIZE
from dimsefsm.transport.tls import TlsArgs, handshake_failure

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(
    address: tuple[str, int], timeout: float | None, tls_args: TlsArgs | None
) -> Streams | str:
    """The connected (and secured) streams, or why there are none."""
    host, port = address
    where = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=RECV_SIZE)
    except OSError as exc:  # TimeoutError included: asyncio's has no text, the kernel's has
        return f"cannot connect to {where}: {str(exc) or f'no connection within {timeout} s'}"
    if tls_args is None:
        return reader, writer
    problem = await _start_tls(writer, where, tls_args, timeout)
    if problem is None:
        return reader, writer
    # The socket closes on the loop's next turn.  Not awaited: after a failed
    # handshake the stream protocol is never told that the connection is lost.
    writer.transport.abort()
    return problem


async def _start_tls(
    writer: asyncio.StreamWriter, where: str, tls_args: TlsArgs, timeout: float | None
) -> str | None:
    """None once the handshake is done, else what went wrong."""
    context, server_hostname = tls_args
    if context.check_hostname and not server_hostname:
        # wrap_socket refuses this at once; asyncio would only log it from a callback and hang.
        return f"cannot start TLS with {where}: check_hostname requires server_hostname"
    try:
        async with asyncio.timeout(timeout):
            await writer.start_tls(context, server_hostname=server_hostname)
    except OSError as exc:  # TimeoutError and SSLCertVerificationError included
        return f"TLS handshake with {where} failed: {handshake_failure(exc, timeout)}"
    return None
