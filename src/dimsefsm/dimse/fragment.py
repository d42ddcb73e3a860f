"""Split a DIMSE message into P-DATA-TF PDUs (PS3.8 9.3.5, Annex E; PS3.7 D.1).

Rules kept here: every PDU's length field stays within the peer's maximum
(0 = unlimited), every fragment is even, the command is complete before the
first data-set fragment, and the last fragment of each carries the last bit.

The command's last fragment and the data set's first fragment never share a
PDU.  PS3.8 9.3.5 would allow it, but dcmtk, pynetdicom and Orthanc never do
it, and GDCM's ``gdcmscu`` relies on that: given both in one PDU it loses the
data set (C-FIND responses vanish, C-MOVE sub-operations store nothing).
Within the data set, PDUs are filled greedily.

Headers are packed with ``struct`` and fragments are ``memoryview`` slices
until a PDU's bytes are joined.  :func:`encode_message_bytes` joins every PDU
of a message into one buffer, so the data set is copied once and the separate
command PDU costs no extra send call; :func:`iter_dataset_pdus` joins one PDU
at a time, for data sets streamed from disk.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Final

from dimsefsm.dimse.errors import FragmentEncodeError

Buffer = bytes | bytearray | memoryview

COMMAND_BIT: Final = 0x01
LAST_BIT: Final = 0x02
PDV_OVERHEAD: Final = 6
"""Bytes a PDV adds to the PDU length: item length (4), context id (1), control header (1)."""
MIN_MAX_PDU: Final = PDV_OVERHEAD + 2
"""Smallest maximum PDU length through which a message can be sent at all."""

_UNLIMITED: Final = 0xFFFF_FFFF  # the PDU length field is a u32
# A fragment that does not finish its payload is only started in a PDU that
# already holds a PDV if at least this much fits; tiny fragments buy nothing.
_MIN_SPLIT: Final = 256
_PDU_HEADER = struct.Struct(">BBI")
_PDV_HEADER = struct.Struct(">IBB")
_P_DATA_TF: Final = 0x04


class _PduPacker:
    """Collects PDVs into P-DATA-TF PDUs, as parts to be joined once.

    PDUs are closed with :meth:`end_pdu` (which writes the header's length)
    and taken out as one buffer with :meth:`take`: one PDU at a time when
    streaming, the whole message at once otherwise.
    """

    __slots__ = ("_context_id", "_header_at", "_limit", "_parts", "size", "unlimited")

    def __init__(self, context_id: int, peer_max_pdu: int) -> None:
        if not 1 <= context_id <= 255 or not context_id & 1:
            raise FragmentEncodeError(f"presentation context id {context_id} is not odd 1..255")
        if peer_max_pdu < 0 or 0 < peer_max_pdu < MIN_MAX_PDU:
            raise FragmentEncodeError(f"peer maximum PDU length {peer_max_pdu} is too small")
        self._context_id = context_id
        self.unlimited = peer_max_pdu == 0 or peer_max_pdu > _UNLIMITED
        self._limit = _UNLIMITED if self.unlimited else peer_max_pdu
        self._parts: list[Buffer] = [b""]  # [0]: the open PDU's header, set by end_pdu
        self._header_at = 0
        self.size = 0

    def room(self) -> int:
        """Largest even fragment that still fits in the current PDU (negative: none)."""
        return (self._limit - self.size - PDV_OVERHEAD) & ~1

    def add(self, pieces: list[memoryview], length: int, control: int) -> None:
        self._parts.append(_PDV_HEADER.pack(length + 2, self._context_id, control))
        self._parts += pieces
        self.size += length + PDV_OVERHEAD

    def end_pdu(self) -> None:
        """Close the open PDU; the next PDV starts a new one."""
        self._parts[self._header_at] = _PDU_HEADER.pack(_P_DATA_TF, 0, self.size)
        self._header_at = len(self._parts)
        self._parts.append(b"")
        self.size = 0

    def take(self) -> bytes:
        """Every closed PDU as one buffer; the open PDU stays."""
        closed, self._parts = self._parts[: self._header_at], self._parts[self._header_at :]
        self._header_at = 0
        return b"".join(closed)


class _Pending:
    """Bytes not yet placed in a PDV, kept as views of the caller's buffers."""

    __slots__ = ("_views", "size")

    def __init__(self) -> None:
        self._views: deque[memoryview] = deque()
        self.size = 0

    def push(self, data: Buffer) -> None:
        view = memoryview(data)
        if view.itemsize != 1 or view.ndim != 1:
            view = view.cast("B")
        if view.nbytes:
            self._views.append(view)
            self.size += view.nbytes

    def take(self, count: int) -> list[memoryview]:
        views = self._views
        pieces: list[memoryview] = []
        self.size -= count
        while count:
            head = views[0]
            if len(head) <= count:
                pieces.append(views.popleft())
                count -= len(head)
            else:
                pieces.append(head[:count])
                views[0] = head[count:]
                count = 0
        return pieces


def _drain_all(packer: _PduPacker, pending: _Pending, kind: int) -> Iterator[None]:
    """Place every pending byte, the final fragment with the last bit.

    Yields after each PDU it closes; the PDU holding the last fragment stays
    open, for the caller to close.
    """
    while True:
        size = pending.size
        room = packer.room()
        if size <= room:
            packer.add(pending.take(size), size, kind | LAST_BIT)
            return
        if packer.size and room < _MIN_SPLIT:
            packer.end_pdu()
            yield
            continue
        packer.add(pending.take(room), room, kind)
        packer.end_pdu()
        yield


def _drain_full(packer: _PduPacker, pending: _Pending, kind: int) -> Iterator[None]:
    """Place only what is surely not the last fragment, in whole PDUs; keep the rest."""
    if packer.unlimited:
        count = pending.size & ~1
        if count:
            packer.add(pending.take(count), count, kind)
            packer.end_pdu()
            yield
        return
    while True:
        room = packer.room()
        if pending.size <= room:
            return
        if packer.size and room < _MIN_SPLIT:
            packer.end_pdu()
            yield
            continue
        packer.add(pending.take(room), room, kind)
        packer.end_pdu()
        yield


def _place_command(packer: _PduPacker, command: bytes) -> Iterator[None]:
    """The command's PDVs, closed in PDUs of their own (see the module docstring)."""
    pending = _Pending()
    pending.push(command)
    yield from _drain_all(packer, pending, COMMAND_BIT)
    packer.end_pdu()
    yield


def _place_message(packer: _PduPacker, command: bytes, dataset: Buffer | None) -> Iterator[None]:
    """Every PDU of a message; yields after each one is closed."""
    yield from _place_command(packer, command)
    if dataset is not None:
        pending = _Pending()
        pending.push(dataset)
        yield from _drain_all(packer, pending, 0)
        packer.end_pdu()
        yield


def _check_even(what: str, length: int) -> None:
    if length & 1:
        raise FragmentEncodeError(f"{what} has odd length {length}; fragments must be even")


def _message_packer(
    context_id: int, command: bytes, dataset: Buffer | None, peer_max_pdu: int
) -> _PduPacker:
    packer = _PduPacker(context_id, peer_max_pdu)
    _check_even("command set", len(command))
    if dataset is not None:
        _check_even("data set", len(dataset))
    return packer


def encode_message(
    context_id: int,
    command: bytes,
    dataset: Buffer | None,
    peer_max_pdu: int,
) -> list[bytes]:
    """The P-DATA-TF PDUs (header included) carrying one encoded command and data set."""
    packer = _message_packer(context_id, command, dataset, peer_max_pdu)
    return [packer.take() for _ in _place_message(packer, command, dataset)]


def encode_message_bytes(
    context_id: int,
    command: bytes,
    dataset: Buffer | None,
    peer_max_pdu: int,
) -> bytes:
    """The same PDUs as :func:`encode_message`, back to back in one buffer (one send).

    The data set is copied once, straight into that buffer.
    """
    packer = _message_packer(context_id, command, dataset, peer_max_pdu)
    for _ in _place_message(packer, command, dataset):
        pass
    return packer.take()


def _with_final_flag(chunks: Iterable[Buffer]) -> Iterator[tuple[Buffer, bool]]:
    """Pair each non-empty chunk with "is this the last one", reading one chunk ahead."""
    previous: Buffer | None = None
    for chunk in chunks:
        if not len(chunk):
            continue
        if previous is not None:
            yield previous, False
        previous = chunk
    yield (b"" if previous is None else previous), True


def iter_dataset_pdus(
    context_id: int,
    chunks: Iterable[Buffer],
    peer_max_pdu: int,
    *,
    command: bytes | None = None,
) -> Iterator[bytes]:
    """PDUs of a data set read in pieces (e.g. from a file), optionally after its command.

    Memory stays bounded by one chunk plus one PDU.  Chunks may have any
    length, but must not be mutated once handed over (they are sliced, not
    copied, until the PDU is built).  The total must be even: an odd total is
    only discovered at the end and raises :class:`FragmentEncodeError` after
    earlier PDUs were produced, so the caller must then abort the association.
    """
    packer = _PduPacker(context_id, peer_max_pdu)
    if command is not None:
        _check_even("command set", len(command))
    return _iter_dataset_pdus(packer, chunks, command)


def _iter_dataset_pdus(
    packer: _PduPacker, chunks: Iterable[Buffer], command: bytes | None
) -> Iterator[bytes]:
    if command is not None:
        for _ in _place_command(packer, command):
            yield packer.take()
    pending = _Pending()
    for chunk, final in _with_final_flag(chunks):
        pending.push(chunk)
        if final:
            _check_even("data set", pending.size)
            for _ in _drain_all(packer, pending, 0):
                yield packer.take()
        else:
            for _ in _drain_full(packer, pending, 0):
                yield packer.take()
    packer.end_pdu()
    yield packer.take()


__all__ = [
    "COMMAND_BIT",
    "LAST_BIT",
    "MIN_MAX_PDU",
    "PDV_OVERHEAD",
    "encode_message",
    "encode_message_bytes",
    "iter_dataset_pdus",
]
