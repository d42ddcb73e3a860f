"""Reassembling PDVs into messages, and the peer errors it detects (PS3.8 Annex E)."""

from __future__ import annotations

from typing import Any

import pytest

from dimsefsm import status as st
from dimsefsm.dimse import commands as cmd
from dimsefsm.dimse.errors import (
    CommandError,
    ContextMismatch,
    DataBeforeCommand,
    DimseError,
    FragmentError,
    InterleavedMessage,
    UnexpectedDataset,
)
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import Reassembler
from dimsefsm.pdu.model import PDV, AbortReason, AbortSource

CT = "1.2.840.10008.5.1.4.1.1.2"
STORE = cmd.encode_command(cmd.store_rq(7, CT, "1.2.3"))
ECHO = cmd.encode_command(cmd.echo_rq(1))


def command_pdvs(data: bytes, context_id: int = 1, split: int = 0) -> list[PDV]:
    """The command as one PDV, or two when ``split`` (an even offset) is given."""
    if not split:
        return [PDV(context_id, True, True, data)]
    return [PDV(context_id, True, False, data[:split]), PDV(context_id, True, True, data[split:])]


def data_pdvs(data: bytes, size: int, context_id: int = 1) -> list[PDV]:
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    return [PDV(context_id, False, i == len(pieces) - 1, p) for i, p in enumerate(pieces)]


def test_command_without_data_set() -> None:
    (message,) = Reassembler().feed(command_pdvs(ECHO, context_id=5))
    assert message == Message(5, cmd.echo_rq(1), None)


def test_fragmented_command_and_data_set_across_feeds() -> None:
    reassembler = Reassembler()
    dataset = bytes(range(256)) * 40
    pdvs = command_pdvs(STORE, split=20) + data_pdvs(dataset, 1000)
    messages = []
    for pdv in pdvs:
        messages += reassembler.feed([pdv])
    (message,) = messages
    assert message.command == cmd.store_rq(7, CT, "1.2.3")
    assert message.dataset == dataset
    assert message.sink_result is None
    assert not reassembler.in_progress


def test_in_progress_tracks_a_partial_message() -> None:
    reassembler = Reassembler()
    assert not reassembler.in_progress
    reassembler.feed(command_pdvs(STORE, split=20)[:1])
    assert reassembler.in_progress
    reassembler.feed(command_pdvs(STORE, split=20)[1:])
    assert reassembler.in_progress
    reassembler.feed(data_pdvs(b"\x00\x00", 2))
    assert not reassembler.in_progress


def test_several_messages_in_one_feed() -> None:
    rsp = cmd.encode_command(cmd.find_rsp(3, st.PENDING))
    final = cmd.encode_command(cmd.find_rsp(3, st.SUCCESS))
    pdvs = (
        command_pdvs(rsp, 3)
        + data_pdvs(b"ab", 2, 3)
        + command_pdvs(final, 3)
        + command_pdvs(ECHO, 5)
    )
    messages = Reassembler().feed(pdvs)
    assert [(m.context_id, m.status, m.dataset) for m in messages] == [
        (3, st.PENDING, b"ab"),
        (3, st.SUCCESS, None),
        (5, None, None),
    ]


def test_empty_data_set() -> None:
    (message,) = Reassembler().feed([*command_pdvs(STORE), PDV(1, False, True, b"")])
    assert message.dataset == b""


def test_any_data_set_type_other_than_0x0101_announces_a_data_set() -> None:
    fields = {**cmd.store_rq(7, CT, "1.2.3"), "CommandDataSetType": 0x0102}
    pdvs = command_pdvs(cmd.encode_command(fields)) + data_pdvs(b"xy", 2)
    (message,) = Reassembler().feed(pdvs)
    assert message.dataset == b"xy"


# -- peer errors ------------------------------------------------------------------------------
BAD_SEQUENCES: dict[str, tuple[list[PDV], type[DimseError], str]] = {
    "data before any command": (data_pdvs(b"ab", 2), DataBeforeCommand, "without a command"),
    "data before the last command fragment": (
        command_pdvs(STORE, split=20)[:1] + data_pdvs(b"ab", 2),
        DataBeforeCommand,
        "before the last command fragment",
    ),
    "data after a command without data set": (
        command_pdvs(ECHO) + data_pdvs(b"ab", 2),
        UnexpectedDataset,
        "0x0101",
    ),
    "command fragment on another context": (
        [PDV(1, True, False, STORE[:20]), PDV(3, True, True, STORE[20:])],
        ContextMismatch,
        "command fragment on context 3",
    ),
    "data on another context": (
        command_pdvs(STORE, 1) + data_pdvs(b"ab", 2, 3),
        ContextMismatch,
        "data set fragment on context 3",
    ),
    "new command while the data set is incomplete": (
        [*command_pdvs(STORE), PDV(1, False, False, b"ab"), *command_pdvs(ECHO)],
        InterleavedMessage,
        "previous message",
    ),
    "undecodable command": (
        command_pdvs(ECHO[:-2] + b"\x00\x00\x00\x00"),
        CommandError,
        "truncated element header",
    ),
    "command without CommandDataSetType": (
        command_pdvs(cmd.encode_command({"CommandField": 0x0030, "MessageID": 1})),
        CommandError,
        "without CommandDataSetType",
    ),
    "command without CommandField": (
        command_pdvs(cmd.encode_command({"MessageID": 1, "CommandDataSetType": 0x0101})),
        CommandError,
        "without CommandField",
    ),
}


@pytest.mark.parametrize("case", BAD_SEQUENCES)
def test_peer_errors(case: str) -> None:
    pdvs, error, message = BAD_SEQUENCES[case]
    reassembler = Reassembler()
    with pytest.raises(error, match=message) as info:
        reassembler.feed(pdvs)
    assert info.value.from_peer
    assert info.value.abort_source is AbortSource.SERVICE_PROVIDER
    expected_reason = (
        AbortReason.UNEXPECTED_PDU_PARAMETER
        if isinstance(info.value, FragmentError)
        else AbortReason.INVALID_PDU_PARAMETER
    )
    assert info.value.abort_reason is expected_reason
    # Nothing of the broken message survives: a fresh message goes through.
    assert not reassembler.in_progress
    assert reassembler.feed(command_pdvs(ECHO)) == [Message(1, cmd.echo_rq(1))]


def test_endless_command_is_refused() -> None:
    reassembler = Reassembler(max_command_length=1000)
    reassembler.feed([PDV(1, True, False, bytes(1000))])
    with pytest.raises(CommandError, match="longer than 1000"):
        reassembler.feed([PDV(1, True, False, b"\x00\x00")])


# -- dataset sink ---------------------------------------------------------------------------------
class RecordingSink:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.fail_on_write = False

    def write(self, data: bytes) -> None:
        if self.fail_on_write:
            raise OSError("disk full")
        self.writes.append(data)

    def close(self) -> str:
        self.closed = True
        return "/tmp/stored.dcm"

    def abort(self) -> None:
        self.aborted = True


class SinkFactory:
    def __init__(self, give_sink: bool = True) -> None:
        self.calls: list[tuple[int, dict[str, Any]]] = []
        self.sinks: list[RecordingSink] = []
        self.give_sink = give_sink

    def __call__(self, context_id: int, command: dict[str, Any]) -> RecordingSink | None:
        self.calls.append((context_id, command))
        if not self.give_sink:
            return None
        sink = RecordingSink()
        self.sinks.append(sink)
        return sink


def test_sink_receives_fragments_as_they_arrive() -> None:
    factory = SinkFactory()
    reassembler = Reassembler(on_command=factory)
    dataset = bytes(range(100)) * 30
    pdvs = data_pdvs(dataset, 1000)
    assert reassembler.feed(command_pdvs(STORE)) == []
    assert factory.calls == [(1, cmd.store_rq(7, CT, "1.2.3"))]
    sink = factory.sinks[0]
    assert reassembler.feed(pdvs[:2]) == []
    assert sink.writes == [dataset[:1000], dataset[1000:2000]]
    assert not sink.closed
    (message,) = reassembler.feed(pdvs[2:])
    assert b"".join(sink.writes) == dataset
    assert sink.closed and not sink.aborted
    assert message.dataset is None
    assert message.sink_result == "/tmp/stored.dcm"
    assert message.has_dataset


def test_on_command_returning_none_joins_the_data_set() -> None:
    factory = SinkFactory(give_sink=False)
    pdvs = command_pdvs(STORE) + data_pdvs(bytes(3000), 1000)
    (message,) = Reassembler(on_command=factory).feed(pdvs)
    assert len(factory.calls) == 1
    assert message.dataset == bytes(3000)
    assert message.sink_result is None


def test_on_command_is_not_called_without_a_data_set() -> None:
    factory = SinkFactory()
    Reassembler(on_command=factory).feed(command_pdvs(ECHO))
    assert factory.calls == []


def test_sink_is_aborted_on_a_peer_error() -> None:
    factory = SinkFactory()
    reassembler = Reassembler(on_command=factory)
    with pytest.raises(ContextMismatch):
        reassembler.feed(
            [*command_pdvs(STORE), PDV(1, False, False, b"ab"), PDV(3, False, True, b"cd")]
        )
    sink = factory.sinks[0]
    assert sink.aborted and not sink.closed
    assert sink.writes == [b"ab"]


def test_sink_is_aborted_on_reset() -> None:
    factory = SinkFactory()
    reassembler = Reassembler(on_command=factory)
    reassembler.feed([*command_pdvs(STORE), PDV(1, False, False, b"ab")])
    reassembler.reset()
    assert factory.sinks[0].aborted
    assert not reassembler.in_progress


def test_failing_sink_write_propagates_and_aborts() -> None:
    factory = SinkFactory()
    reassembler = Reassembler(on_command=factory)
    reassembler.feed(command_pdvs(STORE))
    factory.sinks[0].fail_on_write = True
    with pytest.raises(OSError, match="disk full"):
        reassembler.feed([PDV(1, False, True, b"ab")])
    assert factory.sinks[0].aborted
    assert not reassembler.in_progress


# -- the identifier bound (issue 11.12) ------------------------------------------------------
FIND = cmd.encode_command(cmd.find_rq(3, "1.2.840.10008.5.1.4.1.2.2.1"))


def feed_watching(reassembler: Reassembler, pdvs: list[PDV]) -> tuple[list[Message], int]:
    """Feed one PDV at a time; the messages and the most bytes the reassembler ever held."""
    messages: list[Message] = []
    most = 0
    for pdv in pdvs:
        messages += reassembler.feed([pdv])
        most = max(most, reassembler.buffered)
    return messages, most


def test_identifier_over_the_bound_is_counted_not_kept() -> None:
    reassembler = Reassembler(max_identifier_length=4096)
    pdvs = command_pdvs(FIND) + data_pdvs(b"\x00" * 100_000, 1000)
    (message,), most = feed_watching(reassembler, pdvs)
    assert message.dataset is None and message.discarded_length == 100_000
    assert message.command["CommandField"] == cmd.CommandField.C_FIND_RQ
    assert most <= 4096 and reassembler.buffered == 0 and not reassembler.in_progress
    # The next message is reassembled as usual.
    (after,) = reassembler.feed(command_pdvs(FIND) + data_pdvs(b"\x01" * 10, 10))
    assert after.dataset == b"\x01" * 10 and after.discarded_length is None


def test_identifier_of_exactly_the_bound_is_kept() -> None:
    reassembler = Reassembler(max_identifier_length=4096)
    (message,) = reassembler.feed(command_pdvs(FIND) + data_pdvs(b"\x02" * 4096, 1000))
    assert message.dataset == b"\x02" * 4096 and message.discarded_length is None


def test_c_store_data_sets_are_not_identifiers() -> None:
    """A C-STORE's data set is the user's (or the disk's) business: never bounded here."""
    reassembler = Reassembler(max_identifier_length=4096)
    (message,) = reassembler.feed(command_pdvs(STORE) + data_pdvs(b"\x03" * 10_000, 1000))
    assert message.dataset == b"\x03" * 10_000
