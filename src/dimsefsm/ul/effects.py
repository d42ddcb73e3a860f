"""The outputs of the upper-layer chart: what the transport and the user must do.

The chart never performs I/O; each action returns these values in order and
the transport executes them.  All are frozen, so the argument-less ones can be
shared constants and compared by value in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dimsefsm.pdu.model import AssociateAC, AssociateRJ, AssociateRQ, PDataTF, Pdu


# -- primitives delivered to the local service user ------------------------------
@dataclass(frozen=True, slots=True)
class AssociateIndication:
    """The peer asks for an association (acceptor side, Sta3 awaits the answer)."""

    rq: AssociateRQ


@dataclass(frozen=True, slots=True)
class AssociateConfirmation:
    """The peer accepted our A-ASSOCIATE-RQ."""

    ac: AssociateAC


@dataclass(frozen=True, slots=True)
class RejectConfirmation:
    """The peer rejected our A-ASSOCIATE-RQ."""

    rj: AssociateRJ


@dataclass(frozen=True, slots=True)
class PDataIndication:
    pdu: PDataTF


@dataclass(frozen=True, slots=True)
class ReleaseIndication:
    """The peer asks to release; the user answers with ReleaseResponded."""


@dataclass(frozen=True, slots=True)
class ReleaseConfirmation:
    """The peer answered our release request."""


@dataclass(frozen=True, slots=True)
class AbortIndication:
    """A-ABORT: the peer's service user aborted."""

    source: int
    reason: int


AbortOrigin = Literal["peer", "transport", "local"]


@dataclass(frozen=True, slots=True)
class ProviderAbortIndication:
    """A-P-ABORT: the association ended without either user asking for it.

    ``origin`` says who is to blame: the peer's provider sent an A-ABORT
    (``peer``), the connection went away (``transport``), or this side aborted
    because the peer broke the protocol (``local``; ``reason`` is what we sent).
    """

    source: int
    reason: int
    origin: AbortOrigin = "peer"


Primitive = (
    AssociateIndication
    | AssociateConfirmation
    | RejectConfirmation
    | PDataIndication
    | ReleaseIndication
    | ReleaseConfirmation
    | AbortIndication
    | ProviderAbortIndication
)


# -- effects ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Connect:
    """AE-1: open a TCP connection to the peer; report Evt2 or Evt17."""


@dataclass(frozen=True, slots=True)
class SendPdu:
    """Encode ``pdu`` and write it."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class SendBytes:
    """Write already-encoded P-DATA-TF PDUs as they are (DT-1, AR-7)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CloseTransport:
    """Close the TCP connection (without lingering); report no Evt17 for it."""


@dataclass(frozen=True, slots=True)
class StartArtim:
    """Start ARTIM, or restart it if it is running."""


@dataclass(frozen=True, slots=True)
class StopArtim:
    """Stop ARTIM; an expiry that is already on its way must be dropped."""


@dataclass(frozen=True, slots=True)
class Indicate:
    """Deliver ``primitive`` to the local service user."""

    primitive: Primitive


Effect = Connect | SendPdu | SendBytes | CloseTransport | StartArtim | StopArtim | Indicate
