"""Sockets, threads and timers: the only package that performs I/O."""

from dimsefsm.transport.driver import SocketDriver, TransportTimeout
from dimsefsm.transport.server import AssociationServer

__all__ = ["AssociationServer", "SocketDriver", "TransportTimeout"]
