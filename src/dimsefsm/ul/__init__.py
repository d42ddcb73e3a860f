"""The DICOM upper layer (PS3.8 Section 9.2) as a sans-I/O state machine.

Feed :class:`UpperLayer` events (:mod:`dimsefsm.ul.events`), execute the
effects it returns (:mod:`dimsefsm.ul.effects`).  The chart itself lives in
:mod:`dimsefsm.ul.chart`.
"""

from dimsefsm.ul.chart import UPPER_LAYER
from dimsefsm.ul.effects import (
    AbortIndication,
    AssociateConfirmation,
    AssociateIndication,
    CloseTransport,
    Connect,
    Effect,
    Indicate,
    PDataIndication,
    Primitive,
    ProviderAbortIndication,
    RejectConfirmation,
    ReleaseConfirmation,
    ReleaseIndication,
    SendBytes,
    SendPdu,
    StartArtim,
    StopArtim,
)
from dimsefsm.ul.errors import LocalProtocolError, PduWithoutConnectionError, UpperLayerError
from dimsefsm.ul.events import (
    AbortRequested,
    ArtimExpired,
    AssociateAccepted,
    AssociateRejected,
    AssociateRequested,
    InvalidPduArrived,
    PDataRequested,
    PduArrived,
    ReleaseRequested,
    ReleaseResponded,
    TransportAccepted,
    TransportClosed,
    TransportConnected,
    UlEvent,
)
from dimsefsm.ul.machine import UpperLayer

__all__ = [
    "UPPER_LAYER",
    "AbortIndication",
    "AbortRequested",
    "ArtimExpired",
    "AssociateAccepted",
    "AssociateConfirmation",
    "AssociateIndication",
    "AssociateRejected",
    "AssociateRequested",
    "CloseTransport",
    "Connect",
    "Effect",
    "Indicate",
    "InvalidPduArrived",
    "LocalProtocolError",
    "PDataIndication",
    "PDataRequested",
    "PduArrived",
    "PduWithoutConnectionError",
    "Primitive",
    "ProviderAbortIndication",
    "RejectConfirmation",
    "ReleaseConfirmation",
    "ReleaseIndication",
    "ReleaseRequested",
    "ReleaseResponded",
    "SendBytes",
    "SendPdu",
    "StartArtim",
    "StopArtim",
    "TransportAccepted",
    "TransportClosed",
    "TransportConnected",
    "UlEvent",
    "UpperLayer",
    "UpperLayerError",
]
