"""A DIMSE message as the engine passes it around: decoded command + raw data set.

The data set stays encoded bytes (in the presentation context's transfer
syntax): services decode it with pydicom only when they need its content, and
pass-through traffic (C-STORE sub-operations, storage to disk) never pays for
a decode/encode round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dimsefsm.dimse.commands import BY_KEYWORD, NO_DATASET, RESPONSE_BIT, encode_command
from dimsefsm.dimse.errors import FragmentEncodeError
from dimsefsm.dimse.fragment import encode_message


@dataclass(slots=True)
class Message:
    """``sink_result`` holds what a dataset sink's ``close()`` returned, if one was used.

    ``discarded_length`` is the size of a data set the reassembler received but
    did not keep because it exceeded its bound (``dataset`` is then None): the
    service refuses the request, or drops the response's identifier.
    """

    context_id: int
    command: dict[str, Any]
    dataset: bytes | None = None
    sink_result: Any = None
    discarded_length: int | None = None

    def __getattr__(self, name: str) -> Any:
        """A command field by its keyword (None when absent), as pynetdicom's primitives
        read: ``event.request.AffectedSOPInstanceUID`` in a ported handler."""
        if name in BY_KEYWORD:
            return self.command.get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def command_field(self) -> int:
        return int(self.command["CommandField"])

    @property
    def message_id(self) -> int | None:
        return self.command.get("MessageID")

    @property
    def message_id_being_responded_to(self) -> int | None:
        return self.command.get("MessageIDBeingRespondedTo")

    @property
    def status(self) -> int | None:
        return self.command.get("Status")

    @property
    def is_request(self) -> bool:
        return not self.command_field & RESPONSE_BIT

    @property
    def has_dataset(self) -> bool:
        """Per the command: any CommandDataSetType other than 0x0101 announces a data set."""
        return self.command.get("CommandDataSetType", NO_DATASET) != NO_DATASET

    def to_pdus(self, peer_max_pdu: int) -> list[bytes]:
        """The P-DATA-TF PDUs that carry this message to a peer with ``peer_max_pdu``."""
        if self.has_dataset != (self.dataset is not None):
            raise FragmentEncodeError(
                "CommandDataSetType disagrees with the data set: "
                f"announced={self.has_dataset}, present={self.dataset is not None}"
            )
        return encode_message(
            self.context_id, encode_command(self.command), self.dataset, peer_max_pdu
        )


__all__ = ["Message"]
