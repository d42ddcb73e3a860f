"""PDU values and their codec (PS3.8 Section 9.3, Annex D; PS3.7 Annex D.3.3)."""

from dimsefsm.pdu.codec import PduFramer, decode_pdu, encode_pdu
from dimsefsm.pdu.errors import (
    InvalidParameter,
    PduError,
    UnexpectedParameter,
    UnrecognizedParameter,
    UnrecognizedPdu,
)
from dimsefsm.pdu.model import *  # noqa: F403
from dimsefsm.pdu.model import __all__ as _model_all

__all__ = [
    "InvalidParameter",
    "PduError",
    "PduFramer",
    "UnexpectedParameter",
    "UnrecognizedParameter",
    "UnrecognizedPdu",
    "decode_pdu",
    "encode_pdu",
    *_model_all,
]
