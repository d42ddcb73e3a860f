"""Sockets, threads and timers: the only package that performs I/O.

The names load on first use: a client reaches ``transport.driver`` through this
package, and should not pay for the server's threads and selectors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dimsefsm.transport.driver import SocketDriver, TransportTimeout
    from dimsefsm.transport.server import AssociationServer

__all__ = ["AssociationServer", "SocketDriver", "TransportTimeout"]

_HOMES = {
    "AssociationServer": "dimsefsm.transport.server",
    "SocketDriver": "dimsefsm.transport.driver",
    "TransportTimeout": "dimsefsm.transport.driver",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(home), name)
