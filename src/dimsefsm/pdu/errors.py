"""One typed error family for everything the PDU decoder refuses.

Each error carries the A-ABORT reason (PS3.8 Table 9-26) that answers it, so
the upper layer never has to guess how to react to bad bytes.
"""

from __future__ import annotations

from dimsefsm.pdu.model import AbortReason


class PduError(Exception):
    """Bytes from the peer that are not a valid PDU (raises Evt19)."""

    abort_reason: AbortReason = AbortReason.INVALID_PDU_PARAMETER


class UnrecognizedPdu(PduError):
    abort_reason = AbortReason.UNRECOGNIZED_PDU


class UnrecognizedParameter(PduError):
    abort_reason = AbortReason.UNRECOGNIZED_PDU_PARAMETER


class UnexpectedParameter(PduError):
    abort_reason = AbortReason.UNEXPECTED_PDU_PARAMETER


class InvalidParameter(PduError):
    abort_reason = AbortReason.INVALID_PDU_PARAMETER


class PduTooLarge(InvalidParameter):
    """A PDU header claims more bytes than this side agreed to buffer.

    Raised from the 6-byte header alone, so a hostile length field never makes
    us wait for (or allocate) the body it announces.
    """


class PduEncodeError(ValueError):
    """Our own caller asked for a PDU the wire format cannot carry.

    Deliberately *not* a :class:`PduError`: the peer is not to blame, so nothing
    is sent on its behalf (design principle 9).
    """
