"""Errors of the upper layer: this side drove the machine in a way PS3.8 does not allow.

Protocol errors of the *peer* are not exceptions here: the chart answers them
on the wire (AA-1, AA-7, AA-8).  What remains are our own mistakes: a user
primitive, a transport indication or a timer expiry in a state whose cell of
Table 9-10 is empty.
"""

from __future__ import annotations


class UpperLayerError(Exception):
    """The upper-layer machine was given an event its current state refuses."""

    def __init__(self, state: str, evt: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.evt = evt


class LocalProtocolError(UpperLayerError):
    """A local primitive, transport indication or timer expiry in the wrong state.

    The caller misused the API (for example P-DATA before the association is
    established); nothing was sent and the state is unchanged.
    """


class PduWithoutConnectionError(UpperLayerError):
    """A PDU event while no transport connection is open (Sta1, Sta4).

    No peer can cause this: it means the transport fed the machine bytes of a
    connection the machine does not own.
    """
