"""The association object users hold: pynetdicom-shaped, synchronous, thread-free.

The calling thread does the reading: ``send_c_echo()`` sends the request and
then reads the socket until the operation's chart reaches a final state.  No
background thread means an idle association costs nothing and nothing leaks.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from pydicom import Dataset

from dimsefsm.assoc.negotiation import Negotiated
from dimsefsm.dimse.commands import echo_rq
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.services.verification import EchoScu
from dimsefsm.sop_class import VERIFICATION
from dimsefsm.transport.driver import SocketDriver, TransportTimeout, tune

LOG = logging.getLogger("dimsefsm.association")


class Association:
    """One association we requested."""

    def __init__(
        self,
        engine: AssociationEngine,
        *,
        acse_timeout: float | None,
        dimse_timeout: float | None,
        artim_timeout: float,
    ) -> None:
        self.engine = engine
        self.driver: SocketDriver | None = None
        self.acse_timeout = acse_timeout
        self.dimse_timeout = dimse_timeout
        self.artim_timeout = artim_timeout
        self.error: str | None = None

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
    def rejection(self) -> tuple[int, int, int] | None:
        """(result, source, reason) of the A-ASSOCIATE-RJ, if rejected."""
        rj = self.engine.rejection
        return (rj.result, rj.source, rj.reason) if rj else None

    def describe_failure(self) -> str:
        """A sentence for a user: why this association is not established."""
        if self.is_rejected and self.engine.rejection is not None:
            rj = self.engine.rejection
            return (
                f"association rejected (result {rj.result}, source {rj.source}, reason {rj.reason})"
            )
        if self.is_aborted:
            if self.error:
                return f"association aborted: {self.error}"
            return (
                f"association aborted (source {self.engine.abort_source}, "
                f"reason {self.engine.abort_reason})"
            )
        if self.is_released:
            return "association released"
        return self.error or "association not established"

    # -- connecting ---------------------------------------------------------------------
    def _open(self, address: tuple[str, int], connect_timeout: float | None) -> None:
        engine = self.engine
        engine.request_association()
        engine.take_effects()  # the Connect effect: performed right here
        try:
            sock = socket.create_connection(address, timeout=connect_timeout)
        except OSError as exc:
            self.error = f"cannot connect to {address[0]}:{address[1]}: {exc}"
            LOG.error(self.error)
            engine.transport_closed()
            engine.take_effects()
            return
        tune(sock)
        self.driver = SocketDriver(engine, sock, self.artim_timeout)
        engine.transport_connected()
        self.driver.flush()
        while engine.outcome == "pending" and self.driver.sock is not None:
            try:
                self.driver.pump(self.acse_timeout)
            except TransportTimeout:
                self.error = f"no association response within {self.acse_timeout} s"
                LOG.error(self.error)
                self.abort()
                return
        if engine.outcome == "pending":
            self.error = "connection closed during association negotiation"
            engine.outcome = "aborted"

    # -- services ---------------------------------------------------------------------
    def send_c_echo(self, msg_id: int | None = None) -> Dataset:
        """Send a C-ECHO and return the response status Dataset (empty if none came)."""
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
        self._wait(op)
        return op.result()

    def _wait(self, op: Any) -> None:
        driver = self.driver
        assert driver is not None
        driver.flush()
        while not op.done:
            try:
                driver.pump(self.dimse_timeout)
            except TransportTimeout:
                LOG.error(
                    "no response within the DIMSE timeout (%s s); aborting", self.dimse_timeout
                )
                self.engine.operations.pop(op.message_id, None)
                op.on_timeout()
                self.abort()
                return

    def _require_established(self) -> Negotiated:
        if not self.is_established or self.engine.negotiated is None:
            raise RuntimeError(f"the association is not established: {self.describe_failure()}")
        return self.engine.negotiated

    # -- ending -----------------------------------------------------------------------
    def release(self) -> None:
        """A-RELEASE; waits for the peer's answer (bounded by the ACSE timeout)."""
        if not self.is_established or self.driver is None:
            return
        self.engine.release()
        self.driver.flush()
        while self.engine.ul.state != "Sta1" and self.driver.sock is not None:
            try:
                self.driver.pump(self.acse_timeout)
            except TransportTimeout:
                LOG.error("no A-RELEASE-RP within %s s; aborting", self.acse_timeout)
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
