"""Runs an :class:`AssociationEngine` on asyncio streams.

The asyncio twin of :class:`~dimsefsm.transport.driver.SocketDriver`: effects
become ``StreamWriter.write`` calls (which never block) and ARTIM a timer
handle of the event loop; reading is ``StreamReader.read`` under
``asyncio.timeout``, so an idle association is a pending future and costs no
CPU.  Nothing here sleeps, polls or starts a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from dimsefsm.ae import AE
from dimsefsm.engine import AssociationEngine
from dimsefsm.pdu.codec import encode_pdu
from dimsefsm.services.move import SUB_ASSOCIATION_EFFECTS
from dimsefsm.transport.driver import RECV_SIZE, TransportTimeout
from dimsefsm.transport.sub_association import SubAssociations
from dimsefsm.ul import effects as fx

LOG = logging.getLogger("dimsefsm.aio")


class StreamDriver:
    """Executes engine effects on one stream pair and feeds the engine what it reads."""

    def __init__(
        self,
        engine: AssociationEngine,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        artim_timeout: float,
    ) -> None:
        self.engine = engine
        self.reader = reader
        self.writer = writer
        self.tls = writer.get_extra_info("ssl_object") is not None
        self.closed = False
        # Why the connection was lost, when a read or write failed (for describe_failure).
        self.failure: OSError | None = None
        self.artim_timeout = artim_timeout
        self._artim: asyncio.TimerHandle | None = None
        self._perform: dict[type[Any], Callable[[Any], None]] = {
            fx.SendBytes: self._send_bytes,
            fx.SendPdu: self._send_pdu,
            fx.StartArtim: self._start_artim,
            fx.StopArtim: self._stop_artim,
            fx.CloseTransport: self._close_transport,
            fx.Connect: _connected_already,
        }
        # A C-MOVE-RQ from the acceptor (rare): its sub-association runs on the
        # blocking client, holding the event loop while it sends, as it always has.
        self.sub_associations = SubAssociations(AE)
        for kind in SUB_ASSOCIATION_EFFECTS:
            self._perform[kind] = self._sub_association

    # -- effects ----------------------------------------------------------------------
    def flush(self) -> None:
        """Execute every effect the engine has queued, in order; bytes go to the buffer."""
        engine = self.engine
        perform = self._perform
        while engine.outbox:
            for effect in engine.take_effects():
                perform[type(effect)](effect)

    def _send_bytes(self, effect: fx.SendBytes) -> None:
        if not self.closed:
            self.writer.write(effect.data)

    def _send_pdu(self, effect: fx.SendPdu) -> None:
        if not self.closed:
            self.writer.write(encode_pdu(effect.pdu))

    def _sub_association(self, effect: Any) -> None:
        self.sub_associations.perform(effect, self.flush)

    def _start_artim(self, effect: fx.StartArtim) -> None:
        self._stop_artim(None)
        loop = asyncio.get_running_loop()
        self._artim = loop.call_later(self.artim_timeout, self._artim_expired)

    def _stop_artim(self, effect: fx.StopArtim | None) -> None:
        if self._artim is not None:
            self._artim.cancel()
            self._artim = None

    def _artim_expired(self) -> None:
        self._artim = None
        self.engine.artim_expired()
        self.flush()

    def _close_transport(self, effect: fx.CloseTransport) -> None:
        self.close()
        self.engine.transport_closed()

    async def drain(self) -> None:
        """Wait while the peer is slower than us (flow control); a lost peer ends the link."""
        if self.closed:
            return
        try:
            await self.writer.drain()
        except OSError as exc:
            self._lost(exc)

    def _lost(self, exc: OSError) -> None:
        LOG.info("connection lost (%s)", exc)
        self.failure = exc
        self.engine.transport_closed()
        self.close()
        self.flush()

    # -- reading ----------------------------------------------------------------------
    async def pump(self, timeout: float | None) -> None:
        """Read once (waiting at most ``timeout`` seconds) and feed the engine.

        ARTIM runs on its own timer; this timeout raises
        :class:`TransportTimeout` for the caller to decide (DIMSE or ACSE).
        """
        if self.closed:
            self.engine.transport_closed()
            self.flush()
            return
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                data = await self.reader.read(RECV_SIZE)
        except OSError as exc:  # a TimeoutError is ours only if our deadline passed
            if deadline.expired():
                raise TransportTimeout(f"nothing received within {timeout} s") from None
            self._lost(exc)
            return
        if data:
            self.engine.data_received(data)
        else:
            self._peer_closed()
        self.flush()
        await self.drain()

    def _peer_closed(self) -> None:
        # The engine cleans up (drops partial files) before the socket goes.
        self.engine.transport_closed()
        self.close()

    async def serve_operations(self, wait: float | None) -> None:
        """Send the responses of SCP operations the peer started on our association.

        The rare case of a requestor that answers multi-response requests; a
        C-CANCEL is read only when the operation waits, not between responses.
        """
        engine = self.engine
        while engine.scp_operations and not self.closed and engine.ul.state != "Sta1":
            if engine.has_ready_scp_operation():
                engine.step_scp_operation()
            else:
                await self.pump(wait)
            self.flush()
            await self.drain()
        self.flush()

    # -- closing ----------------------------------------------------------------------
    def close(self) -> None:
        """Start closing: queued bytes (an A-ABORT) still go out first."""
        if not self.closed:
            self.closed = True
            self._stop_artim(None)
            self.writer.close()
            self.sub_associations.abort_all()

    async def wait_closed(self) -> None:
        """Until the socket is closed, at most ARTIM long: a silent TLS peer is cut off."""
        self.close()
        writer = self.writer
        try:
            async with asyncio.timeout(self.artim_timeout):
                await _closed(writer)
        except TimeoutError:
            writer.transport.abort()
            await _closed(writer)


async def _closed(writer: asyncio.StreamWriter) -> None:
    # The connection's own error (reset, TLS alert) was reported when it happened.
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _connected_already(effect: fx.Connect) -> None:
    """The client connects before handing the streams over."""
