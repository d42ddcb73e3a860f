"""Two engines joined by in-memory byte buffers: end-to-end tests without sockets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dimsefsm.engine import AssociationEngine
from dimsefsm.pdu.codec import encode_pdu
from dimsefsm.ul import effects as fx


@dataclass
class EnginePair:
    requestor: AssociationEngine
    acceptor: AssociationEngine
    wire: list[tuple[str, bytes]] = field(default_factory=list)
    closed: bool = False
    # Carries out the effects that are not the upper layer's (a C-MOVE's sub-association).
    perform: Callable[[Any], None] | None = None

    def connect(self) -> None:
        self.requestor.request_association()
        assert any(isinstance(e, fx.Connect) for e in self.requestor.take_effects())
        self.acceptor.transport_accepted()
        self.requestor.transport_connected()
        self.run()

    def _deliver(self, sender: AssociationEngine, receiver: AssociationEngine, tag: str) -> bool:
        moved = False
        for effect in sender.take_effects():
            moved = True
            if isinstance(effect, fx.SendPdu):
                data = encode_pdu(effect.pdu)
            elif isinstance(effect, fx.SendBytes):
                data = effect.data
            elif isinstance(effect, fx.CloseTransport):
                if not self.closed:
                    self.closed = True
                    receiver.transport_closed()
                continue
            else:
                if self.perform is not None and not isinstance(effect, fx.Effect):
                    self.perform(effect)
                continue
            if not self.closed:
                self.wire.append((tag, data))
                receiver.data_received(data)
        return moved

    def run(self) -> None:
        """Move bytes both ways until both sides are quiet."""
        for _ in range(100_000):
            a = self._deliver(self.requestor, self.acceptor, "rq->ac")
            b = self._deliver(self.acceptor, self.requestor, "ac->rq")
            if a or b:
                continue
            if self.step():
                continue
            return
        raise AssertionError("the pair never went quiet")

    def step(self) -> bool:
        """One response of a running SCP operation, as the transport would send it."""
        for engine in (self.acceptor, self.requestor):
            if engine.scp_operations and engine.has_ready_scp_operation():
                engine.step_scp_operation()
                return True
        return False

    def close_transport(self) -> None:
        """The TCP connection drops under both sides."""
        self.closed = True
        self.requestor.transport_closed()
        self.acceptor.transport_closed()
        for effect in self.requestor.take_effects() + self.acceptor.take_effects():
            if self.perform is not None and not isinstance(effect, fx.Effect):
                self.perform(effect)
