"""Turn received PDVs back into DIMSE messages (PS3.8 Annex E, PS3.7 6.3.1).

The reassembler is the one place that checks the fragment rules a peer must
keep; every violation raises a :class:`~dimsefsm.dimse.errors.FragmentError`
naming what the peer did wrong, which the engine answers with an A-ABORT.

Data sets are joined once from a list of fragments by default.  For bounded
memory (large C-STOREs written straight to disk) the owner may return a
:class:`DatasetSink` from ``on_command``: fragments are then handed on as they
arrive and never accumulate here.

Every other data set but a C-STORE's (C-FIND, C-GET and C-MOVE identifiers,
requests and responses) is bounded by ``max_identifier_length``: past it the
fragments kept so far are dropped and the rest are counted, not kept, so a
10 MB identifier costs at most the bound in memory.  The message is still
delivered, with ``dataset=None`` and ``discarded_length`` set, and the service
answers it with its refusal status; the association goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from dimsefsm.dimse.commands import NO_DATASET, CommandField, decode_command
from dimsefsm.dimse.errors import (
    CommandError,
    ContextMismatch,
    DataBeforeCommand,
    InterleavedMessage,
    UnexpectedDataset,
)
from dimsefsm.dimse.message import Message

MAX_COMMAND_LENGTH = 1 << 20
"""Command sets are a few hundred bytes; a peer sending more than this is not sending one."""

MAX_IDENTIFIER_LENGTH = 1 << 20
"""Default bound of a non-C-STORE data set (an identifier), in bytes.

Real identifiers are a few hundred bytes; the largest legitimate ones are
C-GET/C-MOVE requests listing SOP Instance UIDs at IMAGE level, 65 bytes per
UID: 1 MiB holds about 16,000 of them.
"""

# Their data sets are the user's business (streamed to disk or handed to the handler).
_UNBOUNDED = frozenset({CommandField.C_STORE_RQ})


class PdvLike(Protocol):
    """What the reassembler reads of a PDV (``dimsefsm.pdu.model.PDV`` fits)."""

    @property
    def context_id(self) -> int: ...
    @property
    def is_command(self) -> bool: ...
    @property
    def is_last(self) -> bool: ...
    @property
    def data(self) -> bytes: ...


class DatasetSink(Protocol):
    """Receives one message's data-set fragments in order.

    ``close()`` is called after the last fragment and its result is stored in
    :attr:`Message.sink_result`; ``abort()`` is called instead when the
    message cannot be completed (protocol error, association aborted).
    """

    def write(self, data: bytes) -> Any: ...
    def close(self) -> Any: ...
    def abort(self) -> Any: ...


OnCommand = Callable[[int, dict[str, Any]], DatasetSink | None]
"""Called with (context id, command) once a command announcing a data set is complete."""


class Reassembler:
    """One per association: messages are never interleaved (PS3.8 Annex E.1)."""

    __slots__ = (
        "_command",
        "_command_parts",
        "_command_size",
        "_context_id",
        "_data_limit",
        "_data_parts",
        "_data_size",
        "_last_had_no_dataset",
        "_on_command",
        "_sink",
        "max_command_length",
        "max_identifier_length",
    )

    def __init__(
        self,
        on_command: OnCommand | None = None,
        *,
        max_command_length: int = MAX_COMMAND_LENGTH,
        max_identifier_length: int = MAX_IDENTIFIER_LENGTH,
    ) -> None:
        self._on_command = on_command
        self.max_command_length = max_command_length
        self.max_identifier_length = max_identifier_length
        self._data_size = 0  # bytes of the current data set received so far
        self._data_limit: int | None = None  # its bound, None when unbounded
        self._context_id: int | None = None
        self._command_parts: list[bytes] = []
        self._command_size = 0
        self._command: dict[str, Any] | None = None
        self._data_parts: list[bytes] = []
        self._sink: DatasetSink | None = None
        self._last_had_no_dataset = False

    @property
    def buffered(self) -> int:
        """Bytes of the current message's data set held here (never above the bound)."""
        return sum(len(part) for part in self._data_parts)

    @property
    def in_progress(self) -> bool:
        """A message has started but is not complete (e.g. to refuse a release mid-message)."""
        return self._context_id is not None

    def feed(self, pdvs: Iterable[PdvLike]) -> list[Message]:
        """Consume the PDVs of one P-DATA-TF PDU; return the messages they complete."""
        messages: list[Message] = []
        try:
            for pdv in pdvs:
                if pdv.is_command:
                    message = self._command_fragment(pdv)
                else:
                    message = self._data_fragment(pdv)
                if message is not None:
                    messages.append(message)
        except BaseException:
            # A protocol error, or a failing sink / on_command: no half message stays behind.
            self.reset()
            raise
        return messages

    def reset(self) -> None:
        """Drop any partial message (association ended); an open sink is aborted."""
        sink = self._sink
        self._sink = None
        self._context_id = None
        self._command_parts = []
        self._command_size = 0
        self._command = None
        self._data_parts = []
        self._data_size = 0
        self._data_limit = None
        self._last_had_no_dataset = False
        if sink is not None:
            sink.abort()

    # -- fragments ---------------------------------------------------------------------------
    def _command_fragment(self, pdv: PdvLike) -> Message | None:
        if self._command is not None:
            raise InterleavedMessage(
                "command fragment received while the previous message's data set is incomplete"
            )
        context_id = self._context_id
        if context_id is None:
            self._context_id = context_id = pdv.context_id
            self._last_had_no_dataset = False
        elif pdv.context_id != context_id:
            raise ContextMismatch(
                f"command fragment on context {pdv.context_id}, "
                f"the command started on context {context_id}"
            )
        self._command_parts.append(pdv.data)
        self._command_size += len(pdv.data)
        if self._command_size > self.max_command_length:
            raise CommandError(f"command set longer than {self.max_command_length} bytes")
        if not pdv.is_last:
            return None

        parts = self._command_parts
        raw = parts[0] if len(parts) == 1 else b"".join(parts)
        self._command_parts = []
        self._command_size = 0
        command = decode_command(raw)
        if command.get("CommandField") is None:
            raise CommandError("command set without CommandField")
        data_set_type = command.get("CommandDataSetType")
        if data_set_type is None:
            raise CommandError("command set without CommandDataSetType")
        if data_set_type == NO_DATASET:
            self._context_id = None
            self._last_had_no_dataset = True
            return Message(context_id, command)
        self._command = command
        if self._on_command is not None:
            self._sink = self._on_command(context_id, command)
        unbounded = self._sink is not None or command["CommandField"] in _UNBOUNDED
        self._data_limit = None if unbounded else self.max_identifier_length
        return None

    def _data_fragment(self, pdv: PdvLike) -> Message | None:
        command = self._command
        if command is None:
            if self._context_id is not None:
                raise DataBeforeCommand("data set fragment before the last command fragment")
            if self._last_had_no_dataset:
                raise UnexpectedDataset(
                    "data set fragment after a command with CommandDataSetType 0x0101"
                )
            raise DataBeforeCommand("data set fragment without a command")
        context_id = self._context_id
        if pdv.context_id != context_id:
            raise ContextMismatch(
                f"data set fragment on context {pdv.context_id}, "
                f"its command arrived on context {context_id}"
            )
        sink = self._sink
        self._data_size += len(pdv.data)
        if sink is not None:
            sink.write(pdv.data)
        elif self._data_limit is None or self._data_size <= self._data_limit:
            self._data_parts.append(pdv.data)
        elif self._data_parts:
            self._data_parts = []  # over the bound: from now on only counted
        if not pdv.is_last:
            return None

        assert context_id is not None
        size, limit = self._data_size, self._data_limit
        self._command = None
        self._context_id = None
        self._data_size = 0
        self._data_limit = None
        if sink is not None:
            self._sink = None
            return Message(context_id, command, None, sink.close())
        parts = self._data_parts
        self._data_parts = []
        if limit is not None and size > limit:
            return Message(context_id, command, None, discarded_length=size)
        dataset = parts[0] if len(parts) == 1 else b"".join(parts)
        return Message(context_id, command, dataset)


__all__ = [
    "MAX_COMMAND_LENGTH",
    "MAX_IDENTIFIER_LENGTH",
    "DatasetSink",
    "OnCommand",
    "PdvLike",
    "Reassembler",
]
