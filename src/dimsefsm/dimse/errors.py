"""One typed error family for everything wrong at the DIMSE message level.

Errors split by blame (design principle 9): ``from_peer`` errors mean the
remote side broke PS3.7/PS3.8 and are answered on the wire with the A-ABORT
carried on the class; local errors mean our own caller misused the API and are
never sent anywhere.
"""

from __future__ import annotations

from typing import ClassVar

from dimsefsm.pdu.model import AbortReason, AbortSource


class DimseError(Exception):
    """Base of the family; the class attributes say who is to blame and the reply."""

    from_peer: ClassVar[bool] = True
    abort_source: ClassVar[AbortSource] = AbortSource.SERVICE_PROVIDER
    abort_reason: ClassVar[AbortReason] = AbortReason.INVALID_PDU_PARAMETER


# -- remote: the peer sent something that is not a valid DIMSE message ---------
class CommandError(DimseError):
    """The command set bytes cannot be decoded (PS3.7 6.3.1, Annex E)."""


class FragmentError(DimseError):
    """The PDV sequence breaks the fragmentation rules of PS3.8 Annex E."""

    abort_reason = AbortReason.UNEXPECTED_PDU_PARAMETER


class DataBeforeCommand(FragmentError):
    """A data set fragment arrived before the last fragment of its command."""


class ContextMismatch(FragmentError):
    """A fragment arrived on another presentation context than its message's command."""


class UnexpectedDataset(FragmentError):
    """A data set fragment arrived although the command said no data set follows."""


class InterleavedMessage(FragmentError):
    """A command fragment arrived while the previous message's data set was incomplete."""


# -- local: our caller asked for something that cannot be encoded --------------
class CommandEncodeError(DimseError, ValueError):
    """A command field is unknown, retired or has a value its VR cannot hold."""

    from_peer = False


class FragmentEncodeError(DimseError, ValueError):
    """A message cannot be split into valid PDVs (odd length, tiny max PDU, bad context)."""

    from_peer = False


__all__ = [
    "CommandEncodeError",
    "CommandError",
    "ContextMismatch",
    "DataBeforeCommand",
    "DimseError",
    "FragmentEncodeError",
    "FragmentError",
    "InterleavedMessage",
    "UnexpectedDataset",
]
