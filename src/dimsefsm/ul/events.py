"""The inputs of the upper-layer chart: one class per PS3.8 event (Table 9-10 rows).

Each event names its PS3.8 event in ``evt``, which is also the chart trigger,
so dispatching an event costs one attribute lookup.  Only :class:`PduArrived`
computes it, from the PDU type, because one class stands for seven rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from dimsefsm.pdu.errors import PduError
from dimsefsm.pdu.model import AssociateAC, AssociateRJ, AssociateRQ, Pdu, PduType

PDU_EVENTS: dict[int, str] = {
    PduType.ASSOCIATE_AC: "Evt3",
    PduType.ASSOCIATE_RJ: "Evt4",
    PduType.ASSOCIATE_RQ: "Evt6",
    PduType.P_DATA_TF: "Evt10",
    PduType.RELEASE_RQ: "Evt12",
    PduType.RELEASE_RP: "Evt13",
    PduType.ABORT: "Evt16",
}
"""PS3.8 event raised by each received PDU type."""


@dataclass(frozen=True, slots=True)
class AssociateRequested:
    """Local A-ASSOCIATE request: open an association with ``rq``."""

    evt: ClassVar[str] = "Evt1"
    rq: AssociateRQ


@dataclass(frozen=True, slots=True)
class TransportConnected:
    """The TCP connect issued by AE-1 completed."""

    evt: ClassVar[str] = "Evt2"


@dataclass(frozen=True, slots=True)
class PduArrived:
    """A complete, valid PDU came from the peer."""

    pdu: Pdu

    @property
    def evt(self) -> str:
        return PDU_EVENTS[self.pdu.pdu_type]


@dataclass(frozen=True, slots=True)
class TransportAccepted:
    """An incoming TCP connection was accepted; this machine will serve it."""

    evt: ClassVar[str] = "Evt5"


@dataclass(frozen=True, slots=True)
class AssociateAccepted:
    """Local A-ASSOCIATE response: accept with ``ac``."""

    evt: ClassVar[str] = "Evt7"
    ac: AssociateAC


@dataclass(frozen=True, slots=True)
class AssociateRejected:
    """Local A-ASSOCIATE response: reject with ``rj``."""

    evt: ClassVar[str] = "Evt8"
    rj: AssociateRJ


@dataclass(frozen=True, slots=True)
class PDataRequested:
    """Local P-DATA request.

    ``data`` is one or more P-DATA-TF PDUs already encoded by the DIMSE layer:
    the chart fires once per message chunk and bulk bytes are never decoded
    again just to be sent.
    """

    evt: ClassVar[str] = "Evt9"
    data: bytes


@dataclass(frozen=True, slots=True)
class ReleaseRequested:
    """Local A-RELEASE request."""

    evt: ClassVar[str] = "Evt11"


@dataclass(frozen=True, slots=True)
class ReleaseResponded:
    """Local A-RELEASE response (always affirmative in DICOM)."""

    evt: ClassVar[str] = "Evt14"


@dataclass(frozen=True, slots=True)
class AbortRequested:
    """Local A-ABORT request; ``source``/``reason`` go into the A-ABORT PDU."""

    evt: ClassVar[str] = "Evt15"
    source: int = 0
    reason: int = 0


@dataclass(frozen=True, slots=True)
class TransportClosed:
    """The TCP connection closed (by the peer, or it failed)."""

    evt: ClassVar[str] = "Evt17"


@dataclass(frozen=True, slots=True)
class ArtimExpired:
    """The ARTIM timer started by StartArtim ran out."""

    evt: ClassVar[str] = "Evt18"


@dataclass(frozen=True, slots=True)
class InvalidPduArrived:
    """The decoder refused the peer's bytes; ``error.abort_reason`` answers them."""

    evt: ClassVar[str] = "Evt19"
    error: PduError


UlEvent = (
    AssociateRequested
    | TransportConnected
    | PduArrived
    | TransportAccepted
    | AssociateAccepted
    | AssociateRejected
    | PDataRequested
    | ReleaseRequested
    | ReleaseResponded
    | AbortRequested
    | TransportClosed
    | ArtimExpired
    | InvalidPduArrived
)

PEER_EVENTS = frozenset({*PDU_EVENTS.values(), InvalidPduArrived.evt})
"""Events caused by bytes from the peer; all others come from this side."""
