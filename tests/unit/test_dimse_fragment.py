"""PDV fragmentation into P-DATA-TF PDUs (PS3.8 9.3.5, Annex E; PS3.7 D.1)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

from dimsefsm.dimse import commands as cmd
from dimsefsm.dimse.errors import FragmentEncodeError
from dimsefsm.dimse.fragment import (
    MIN_MAX_PDU,
    encode_message,
    encode_message_bytes,
    iter_dataset_pdus,
)
from dimsefsm.dimse.reassemble import Reassembler
from dimsefsm.pdu.model import PDV

CT = "1.2.840.10008.5.1.4.1.1.2"
COMMAND = cmd.encode_command(cmd.store_rq(1, CT, "1.2.3.4"))
ECHO = cmd.encode_command(cmd.echo_rq(1))


def parse_pdu(pdu: bytes) -> list[PDV]:
    """An independent P-DATA-TF parser, so these tests do not trust the codec under test."""
    pdu_type, _, length = struct.unpack_from(">BBI", pdu)
    assert pdu_type == 0x04
    assert length == len(pdu) - 6
    pdvs = []
    offset = 6
    while offset < len(pdu):
        item_length, context_id, control = struct.unpack_from(">IBB", pdu, offset)
        assert item_length >= 2
        data = pdu[offset + 6 : offset + 4 + item_length]
        assert len(data) == item_length - 2
        pdvs.append(PDV(context_id, bool(control & 1), bool(control & 2), data))
        offset += 4 + item_length
    assert offset == len(pdu)
    return pdvs


def check_pdus(
    pdus: list[bytes], max_pdu: int, command: bytes, dataset: bytes | None, context_id: int = 1
) -> list[list[PDV]]:
    """Every rule of Annex E on a message's PDUs, then reassembly equals the input.

    Also our own rule (what dcmtk, pynetdicom and Orthanc do, and gdcmscu needs):
    no PDU holds both command and data-set fragments.
    """
    parsed = [parse_pdu(pdu) for pdu in pdus]
    flat = [pdv for pdvs in parsed for pdv in pdvs]
    for pdu, pdvs in zip(pdus, parsed, strict=True):
        assert pdvs, "a P-DATA-TF carries at least one PDV"
        if max_pdu:
            assert len(pdu) - 6 <= max_pdu
        assert len({pdv.is_command for pdv in pdvs}) == 1, "command and data set share a PDU"
    kinds = [pdv.is_command for pdv in flat]
    n_command = kinds.count(True)
    assert kinds == [True] * n_command + [False] * (len(flat) - n_command), "command first"
    command_pdvs, data_pdvs = flat[:n_command], flat[n_command:]
    assert [p.is_last for p in command_pdvs] == [False] * (n_command - 1) + [True]
    if dataset is None:
        assert data_pdvs == []
    else:
        assert [p.is_last for p in data_pdvs] == [False] * (len(data_pdvs) - 1) + [True]
    assert all(len(p.data) % 2 == 0 for p in flat), "every fragment is even"
    assert all(p.context_id == context_id for p in flat)
    messages = Reassembler().feed(flat)
    assert len(messages) == 1
    assert messages[0].context_id == context_id
    assert messages[0].command == cmd.decode_command(command)
    assert messages[0].dataset == dataset
    return parsed


MAX_PDUS = [0, MIN_MAX_PDU, 9, 10, 100, 257, 1024, 16382, 16384, 65536]
DATASET_SIZES = [0, 2, 100, 16370, 16376, 16378, 16380, 100_000]


@pytest.mark.parametrize("max_pdu", MAX_PDUS)
@pytest.mark.parametrize("size", DATASET_SIZES)
def test_fragmentation_rules_hold(max_pdu: int, size: int) -> None:
    dataset = bytes(range(256)) * (size // 256) + bytes(size % 256)
    check_pdus(encode_message(1, COMMAND, dataset, max_pdu), max_pdu, COMMAND, dataset)


@pytest.mark.parametrize("max_pdu", MAX_PDUS)
def test_command_only(max_pdu: int) -> None:
    pdus = encode_message(3, ECHO, None, max_pdu)
    check_pdus(pdus, max_pdu, ECHO, None, context_id=3)


@given(
    max_pdu=hst.one_of(hst.just(0), hst.integers(MIN_MAX_PDU, 5000)),
    half_size=hst.integers(0, 6000),
    context_id=hst.integers(0, 127).map(lambda n: 2 * n + 1),
)
@settings(max_examples=200, deadline=None)
def test_fragmentation_property(max_pdu: int, half_size: int, context_id: int) -> None:
    dataset = bytes(i % 251 for i in range(2 * half_size))
    pdus = encode_message(context_id, COMMAND, dataset, max_pdu)
    check_pdus(pdus, max_pdu, COMMAND, dataset, context_id)


def test_echo_is_one_pdu_with_exact_bytes() -> None:
    (pdu,) = encode_message(1, ECHO, None, 16384)
    assert pdu[:12] == b"\x04\x00\x00\x00\x00\x4a" + b"\x00\x00\x00\x46" + b"\x01\x03"
    assert pdu[12:] == ECHO


def test_small_data_set_gets_its_own_pdu_after_the_command() -> None:
    dataset = b"\x08\x00\x18\x00" * 25
    pdus = encode_message(1, COMMAND, dataset, 16384)
    assert [[(p.is_command, p.is_last, len(p.data)) for p in parse_pdu(pdu)] for pdu in pdus] == [
        [(True, True, len(COMMAND))],
        [(False, True, 100)],
    ]


def test_large_data_set_starts_a_pdu_then_fills_whole_pdus() -> None:
    max_pdu = 16384
    dataset = bytes(3 * max_pdu)
    pdus = encode_message(1, COMMAND, dataset, max_pdu)
    parsed = check_pdus(pdus, max_pdu, COMMAND, dataset)
    assert [len(pdvs) for pdvs in parsed] == [1, 1, 1, 1, 1]
    assert all(len(pdu) - 6 == max_pdu for pdu in pdus[1:-1])


def test_long_command_fills_its_pdus_and_the_data_set_still_starts_a_new_one() -> None:
    max_pdu = 64  # the C-STORE-RQ command spans several PDUs
    dataset = bytes(40)
    parsed = check_pdus(encode_message(1, COMMAND, dataset, max_pdu), max_pdu, COMMAND, dataset)
    assert len(parsed) > 2
    assert [(p.is_command, p.is_last, len(p.data)) for p in parsed[-1]] == [(False, True, 40)]


def test_unlimited_sends_command_then_data_set_in_two_pdus() -> None:
    dataset = bytes(1_000_000)
    pdus = encode_message(1, COMMAND, dataset, 0)
    assert [[len(p.data) for p in parse_pdu(pdu)] for pdu in pdus] == [
        [len(COMMAND)],
        [len(dataset)],
    ]


def test_empty_data_set_is_one_empty_last_fragment_in_its_own_pdu() -> None:
    _, pdu = encode_message(1, COMMAND, b"", 16384)
    assert [(p.is_command, p.is_last, p.data) for p in parse_pdu(pdu)] == [(False, True, b"")]


@pytest.mark.parametrize("max_pdu", MAX_PDUS)
@pytest.mark.parametrize("size", [None, 0, 100, 100_000])
def test_message_bytes_are_the_pdus_back_to_back(max_pdu: int, size: int | None) -> None:
    dataset = None if size is None else bytes(i % 251 for i in range(size))
    joined = encode_message_bytes(1, COMMAND, dataset, max_pdu)
    assert joined == b"".join(encode_message(1, COMMAND, dataset, max_pdu))


def test_memoryview_data_set_is_accepted() -> None:
    dataset = bytearray(range(200)) * 10
    pdus = encode_message(1, COMMAND, memoryview(dataset), 512)
    check_pdus(pdus, 512, COMMAND, bytes(dataset))


@pytest.mark.parametrize(
    ("context_id", "command", "dataset", "max_pdu", "message"),
    [
        (2, ECHO, None, 0, "context id 2"),
        (0, ECHO, None, 0, "context id 0"),
        (257, ECHO, None, 0, "context id 257"),
        (1, ECHO, None, 7, "too small"),
        (1, ECHO, None, -1, "too small"),
        (1, ECHO + b"\x00", None, 0, "command set has odd length"),
        (1, COMMAND, b"\x00\x00\x00", 0, "data set has odd length"),
    ],
)
def test_encode_errors(
    context_id: int, command: bytes, dataset: bytes | None, max_pdu: int, message: str
) -> None:
    with pytest.raises(FragmentEncodeError, match=message) as info:
        encode_message(context_id, command, dataset, max_pdu)
    assert not info.value.from_peer


# -- streaming --------------------------------------------------------------------------------
def _chunked(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    offset = 0
    for size in sizes:
        yield data[offset : offset + size]
        offset += size
    if offset < len(data):
        yield data[offset:]


@given(
    max_pdu=hst.integers(MIN_MAX_PDU, 3000),
    half_size=hst.integers(0, 4000),
    sizes=hst.lists(hst.integers(0, 2500), max_size=12),
    with_command=hst.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_streaming_equals_whole_message_encoding(
    max_pdu: int, half_size: int, sizes: list[int], with_command: bool
) -> None:
    dataset = bytes(i % 253 for i in range(2 * half_size))
    chunks = _chunked(dataset, sizes)
    if with_command:
        streamed = list(iter_dataset_pdus(1, chunks, max_pdu, command=COMMAND))
        assert streamed == encode_message(1, COMMAND, dataset, max_pdu)
        check_pdus(streamed, max_pdu, COMMAND, dataset)
    else:
        streamed = list(iter_dataset_pdus(1, chunks, max_pdu))
        whole = encode_message(1, COMMAND, dataset, max_pdu)
        command_pdus = encode_message(1, COMMAND, None, max_pdu)
        check_pdus(command_pdus + streamed, max_pdu, COMMAND, dataset)
        assert b"".join(p.data for pdu in streamed for p in parse_pdu(pdu)) == dataset
        assert len(streamed) <= len(whole) + 1


@given(sizes=hst.lists(hst.integers(0, 5000), max_size=10))
@settings(max_examples=100, deadline=None)
def test_streaming_unlimited_sends_one_pdu_per_chunk(sizes: list[int]) -> None:
    dataset = bytes(i % 7 for i in range(sum(sizes) & ~1))
    pdus = list(iter_dataset_pdus(1, _chunked(dataset, sizes), 0, command=COMMAND))
    check_pdus(pdus, 0, COMMAND, dataset)
    assert len(pdus) <= max(1, sum(1 for s in sizes if s)) + 1


def test_streaming_reads_one_chunk_ahead_only() -> None:
    consumed = 0

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for _ in range(100):
            consumed += 1
            yield bytes(1000)

    pdus = iter_dataset_pdus(1, source(), 4096)
    first = next(pdus)
    assert len(first) - 6 == 4096
    assert consumed <= 4096 // 1000 + 2
    rest = list(pdus)
    assert consumed == 100
    total = sum(len(p.data) for pdu in [first, *rest] for p in parse_pdu(pdu))
    assert total == 100_000
    assert parse_pdu(rest[-1])[-1].is_last
    assert not any(p.is_last for pdu in [first, *rest[:-1]] for p in parse_pdu(pdu))


def test_streaming_odd_chunks_are_rejoined_into_even_fragments() -> None:
    dataset = bytes(range(200))
    pdus = list(iter_dataset_pdus(1, _chunked(dataset, [3, 5, 7, 1, 99]), 40))
    fragments = [p for pdu in pdus for p in parse_pdu(pdu)]
    assert all(len(p.data) % 2 == 0 for p in fragments)
    assert b"".join(p.data for p in fragments) == dataset
    assert all(len(pdu) - 6 <= 40 for pdu in pdus)


def test_streaming_no_chunks_sends_an_empty_last_fragment() -> None:
    (pdu,) = iter_dataset_pdus(1, [b"", b""], 16384)
    assert [(p.is_command, p.is_last, p.data) for p in parse_pdu(pdu)] == [(False, True, b"")]


def test_streaming_odd_total_raises_at_the_end() -> None:
    pdus = iter_dataset_pdus(1, [bytes(100), bytes(99)], 16384)
    with pytest.raises(FragmentEncodeError, match="odd length 199"):
        list(pdus)


def test_streaming_checks_arguments_before_iteration() -> None:
    with pytest.raises(FragmentEncodeError, match="context id 4"):
        iter_dataset_pdus(4, [b"\x00\x00"], 16384)
    with pytest.raises(FragmentEncodeError, match="command set has odd length"):
        iter_dataset_pdus(1, [b"\x00\x00"], 16384, command=b"\x00")
