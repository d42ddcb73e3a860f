"""Who is at each end of an association: pynetdicom's ``assoc.requestor`` / ``assoc.acceptor``.

Built on demand from what the engine already keeps (the A-ASSOCIATE-RQ's AE
titles, the socket's two addresses), so no association pays for it unless a
handler asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServiceUser:
    """One end of an association: its AE title, IP address and TCP port.

    ``ae_title`` is as the A-ASSOCIATE-RQ named it (calling AE for the
    requestor, called AE for the acceptor); ``address``/``port`` are empty/0
    before the connection exists.
    """

    ae_title: str
    address: str
    port: int
    is_requestor: bool


def service_users(engine: Any) -> tuple[ServiceUser, ServiceUser]:
    """(requestor, acceptor) of ``engine``'s association, from our side's point of view."""
    rq = engine.rq
    ours, theirs = engine.local_address, engine.peer_address
    requestor_addr, acceptor_addr = (ours, theirs) if engine.is_requestor else (theirs, ours)
    return (
        ServiceUser(
            rq.calling_ae.strip() if rq is not None else "",
            requestor_addr[0] if requestor_addr else "",
            int(requestor_addr[1]) if requestor_addr else 0,
            True,
        ),
        ServiceUser(
            rq.called_ae.strip() if rq is not None else "",
            acceptor_addr[0] if acceptor_addr else "",
            int(acceptor_addr[1]) if acceptor_addr else 0,
            False,
        ),
    )
