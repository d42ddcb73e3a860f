"""C-FIND between two in-memory engines: every transition of c-find-scp and c-find-scu."""

from __future__ import annotations

import struct
import sys
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydicom import Dataset, config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement

from dimsefsm import evt
from dimsefsm.assoc.negotiation import AcceptorPolicy, RequestorProposal, propose_contexts
from dimsefsm.datasets import encode_dataset
from dimsefsm.dimse.commands import cancel_rq, find_rq
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.fsm import RECORDER
from dimsefsm.services.dispatch import RequestDispatcher
from dimsefsm.services.find import SCP_CHART, SCU_CHART, FindScu
from dimsefsm.sop_class import DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN as DEFLATED
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN as EVRLE
from tests.pair import EnginePair
from tests.scenarios import run_module_scenarios

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"


def query(level: str = "STUDY", **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.PatientName = ""
    ds.StudyInstanceUID = ""
    for k, v in keys.items():
        setattr(ds, k, v)
    return ds


def match(n: int) -> Dataset:
    ds = Dataset()
    ds.PatientName = f"Doe^{n}"
    ds.StudyInstanceUID = f"1.2.3.{n}"
    return ds


Handler = Callable[[Any], Iterator[Any]]


def make_pair(handler: Handler | None, syntax: str = EVRLE) -> EnginePair:
    proposal = RequestorProposal(
        "SCU",
        "SCP",
        propose_contexts([(STUDY_ROOT_FIND, [syntax]), (PATIENT_ROOT_FIND, [EVRLE])]),
    )
    policy = AcceptorPolicy("SCP", {STUDY_ROOT_FIND: (syntax,)})
    dispatcher = RequestDispatcher({evt.EVT_C_FIND: handler} if handler else {})
    pair = EnginePair(
        AssociationEngine(requestor=True, proposal=proposal),
        AssociationEngine(requestor=False, policy=policy, on_request=dispatcher),
    )
    pair.connect()
    return pair


def start(
    pair: EnginePair,
    identifier: bytes | Dataset | None = None,
    *,
    run: bool = True,
    **overrides: Any,
) -> FindScu:
    engine = pair.requestor
    assert engine.negotiated is not None
    ctx = engine.negotiated.contexts[1]
    message_id = engine.next_message_id()
    op = FindScu(message_id, ctx)
    engine.start_operation(message_id, op)
    op.sent()
    command = find_rq(message_id, STUDY_ROOT_FIND)
    for key, value in overrides.items():
        if value is None:
            command.pop(key, None)
        else:
            command[key] = value
    if identifier is None:
        identifier = query()
    syntax = ctx.transfer_syntax
    data = identifier if isinstance(identifier, bytes) else encode_dataset(identifier, syntax)
    engine.send_message(Message(1, command, data))
    if run:
        pair.run()
    return op


def statuses(op: FindScu) -> list[int]:
    return [s.Status for s, _ in op.results]


def fired(chart: str, name: str) -> int:
    return RECORDER.count(chart, name)


def yields(*items: Any) -> Handler:
    def handler(event: Any) -> Iterator[Any]:
        yield from items

    return handler


def recording(calls: list[Any]) -> Callable[[Any], Iterator[Any]]:
    """A handler that notes each call and yields nothing (the tests expect no call)."""

    def handler(event: Any) -> Iterator[Any]:
        calls.append(event)
        yield from ()

    return handler


def test_matches_then_success() -> None:
    seen: list[Dataset] = []

    def handler(event: Any) -> Iterator[Any]:
        seen.append(event.identifier)
        for n in range(3):
            yield 0xFF00, match(n)
        yield 0xFF01, match(3)

    op = start(make_pair(handler))
    assert statuses(op) == [0xFF00, 0xFF00, 0xFF00, 0xFF01, 0x0000]
    identifiers = [i for _, i in op.results]
    assert identifiers[0] is not None and identifiers[0].PatientName == "Doe^0"
    assert identifiers[0].QueryRetrieveLevel == "STUDY"  # echoed by the SCP
    assert identifiers[-1] is None
    assert op.state == "Succeeded" and seen[0].QueryRetrieveLevel == "STUDY"


@pytest.mark.parametrize(
    ("items", "transition", "final", "scu_state"),
    [
        ([(0x0000, None)], "handler_success", 0x0000, "Succeeded"),
        ([(0xFE00, None)], "handler_cancel", 0xFE00, "Cancelled"),
        ([(0xA700, None)], "handler_failure", 0xA700, "Failed"),
        ([(0xA900, None)], "handler_failure", 0xA900, "Failed"),
        ([(0x0122, None)], "handler_failure", 0x0122, "Failed"),
        ([(0xC123, None)], "handler_failure", 0xC123, "Failed"),
        ([(0xD000, None)], "unknown_status", 0xD000, "Failed"),
        ([(0xB001, None)], "unknown_status", 0xB001, "Warned"),
        ([(Dataset(), None)], "no_status_element", 0xC001, "Failed"),
        ([("ok", None)], "invalid_status", 0xC002, "Failed"),
        (["not a pair"], "invalid_status", 0xC002, "Failed"),
        ([(0xFF00, None)], "unencodable", 0xC312, "Failed"),
        ([(0xFF00, "not a dataset")], "unencodable", 0xC312, "Failed"),
    ],
)
def test_handler_yields(items: list[Any], transition: str, final: int, scu_state: str) -> None:
    before = fired("c-find-scp", transition)
    op = start(make_pair(yields(*items)))
    assert statuses(op) == [final]
    assert op.state == scu_state
    assert fired("c-find-scp", transition) == before + 1


def test_unencodable_identifier_value() -> None:
    bad = Dataset()
    bad.PatientName = "Doe"
    bad.add_new(0x00100030, "DA", 12345)  # an int where a date string belongs
    op = start(make_pair(yields((0xFF00, bad))))
    assert statuses(op) == [0xC312]


def test_handler_raising_on_call_and_mid_iteration_is_c311() -> None:
    closed: list[bool] = []

    def on_call(event: Any) -> Iterator[Any]:
        raise RuntimeError("index offline")

    def mid(event: Any) -> Iterator[Any]:
        try:
            yield 0xFF00, match(1)
            raise RuntimeError("lost the index")
        finally:
            closed.append(True)

    first = start(make_pair(on_call))
    assert statuses(first) == [0xC311]
    assert "index offline" in first.results[0][0].ErrorComment
    second = start(make_pair(mid))
    assert statuses(second) == [0xFF00, 0xC311] and closed == [True]


def test_cancel_between_pending_responses_is_fe00_and_closes_the_handler() -> None:
    """The handler never looks at is_cancelled: the SCP must stop it anyway."""
    closed: list[int] = []

    def endless(event: Any) -> Iterator[Any]:
        n = 0
        try:
            while True:
                n += 1
                yield 0xFF00, match(n)
        finally:
            closed.append(n)

    pair = make_pair(endless)
    op = start(pair, run=False)
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    for _ in range(3):
        pair.step()
    pair._deliver(pair.acceptor, pair.requestor, "ac->rq")
    assert statuses(op) == [0xFF00] * 3
    op.cancel_sent()
    pair.requestor.send_message(Message(1, cancel_rq(op.message_id)))
    pair.run()
    assert statuses(op)[-1] == 0xFE00 and op.state == "Cancelled"
    assert closed == [3]
    assert pair.acceptor.scp_operations == {}


@pytest.mark.parametrize(
    ("final", "scu_transition", "scu_state"),
    [
        (0xFF00, "pending", "Cancelling"),
        (0xFF01, "pending_warning", "Cancelling"),
        (0x0000, "success", "Succeeded"),
        (0xFE00, "cancelled", "Cancelled"),
        (0xA700, "failure", "Failed"),
        (0xB001, "warning", "Warned"),
        (0xD000, "unknown_status", "Failed"),
    ],
)
def test_scu_responses_while_cancelling(final: int, scu_transition: str, scu_state: str) -> None:
    """After the SCU sent C-CANCEL, whatever the SCP still sends is handled (N.7-48)."""
    pair = make_pair(None)
    assert pair.requestor.negotiated is not None
    op = FindScu(9, pair.requestor.negotiated.contexts[1])
    op.sent()
    op.cancel_sent()
    before = RECORDER.count("c-find-scu", scu_transition, "Cancelling")
    identifier = encode_dataset(match(1), EVRLE) if final in (0xFF00, 0xFF01) else None
    command = {
        "CommandField": 0x8020,
        "MessageIDBeingRespondedTo": 9,
        "Status": final,
        "CommandDataSetType": 0x0101 if identifier is None else 1,
    }
    op.on_response(Message(1, command, identifier))
    assert op.state == scu_state
    assert RECORDER.count("c-find-scu", scu_transition, "Cancelling") == before + 1


@pytest.mark.parametrize("source", ["Matching", "Cancelling"])
def test_scu_abort_and_timeout(source: str) -> None:
    pair = make_pair(None)
    assert pair.requestor.negotiated is not None
    for end, state in (("on_abort", "Aborted"), ("on_timeout", "TimedOut")):
        op = FindScu(1, pair.requestor.negotiated.contexts[1])
        op.sent()
        if source == "Cancelling":
            op.cancel_sent()
        getattr(op, end)()
        assert op.state == state


def test_peer_abort_mid_query_closes_the_handler() -> None:
    closed: list[bool] = []

    def handler(event: Any) -> Iterator[Any]:
        try:
            while True:
                yield 0xFF00, match(1)
        finally:
            closed.append(True)

    pair = make_pair(handler)
    op = start(pair, run=False)
    pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
    pair.step()
    pair.requestor.abort()
    pair.run()
    assert closed == [True] and op.state == "Aborted"
    assert pair.acceptor.scp_operations == {}


def test_decoding_failures() -> None:
    assert statuses(start(make_pair(yields()), b"\x10\x00\x10\x00PN\xff\x00")) == [0xC310]
    assert statuses(start(make_pair(yields()), Priority=None)) == [0x0212]
    assert statuses(start(make_pair(None))) == [0x0122]
    wrong = start(make_pair(yields()), AffectedSOPClassUID=PATIENT_ROOT_FIND)
    assert statuses(wrong) == [0x0122]


def test_identifier_with_unknown_level_is_a900() -> None:
    op = start(make_pair(yields()), query(level="FRAME"))
    status = op.results[0][0]
    assert status.Status == 0xA900 and "FRAME" in status.ErrorComment


def test_identifier_without_level_is_a900() -> None:
    ds = Dataset()
    ds.PatientName = "Doe*"
    op = start(make_pair(yields()), ds)
    assert statuses(op) == [0xA900]


# -- bounded identifiers (issue 11.12) -----------------------------------------------------
def long_text(size: int) -> Dataset:
    """A STUDY query whose Text Value (UT, a 32-bit length) holds ``size`` bytes of wildcards."""
    ds = query()
    ds.add_new(0x0040A160, "UT", "*" * size)
    return ds


def watch_buffered(engine: AssociationEngine) -> list[int]:
    """The bytes the engine's reassembler holds after every chunk it receives."""
    seen: list[int] = []
    receive = engine.data_received

    def data_received(data: bytes) -> None:
        receive(data)
        seen.append(engine.reassembler.buffered)

    engine.data_received = data_received  # type: ignore[method-assign]
    return seen


def test_identifier_over_the_bound_is_a700_and_never_kept_whole() -> None:
    """Bytes past the maximum identifier size are dropped as they arrive; 0xA700 answers,
    the handler never runs, and the association serves the next query."""
    called: list[Dataset] = []

    def handler(event: Any) -> Iterator[Any]:
        called.append(event.identifier)
        yield 0xFF00, match(1)

    pair = make_pair(handler)
    limit = pair.acceptor.max_identifier_size
    assert limit == 1 << 20
    buffered = watch_buffered(pair.acceptor)
    before = fired("c-find-scp", "identifier_too_large")
    op = start(pair, long_text(3 * limit))
    status = op.results[-1][0]
    assert statuses(op) == [0xA700] and called == []
    assert status.ErrorComment.startswith("identifier of ") and str(limit) in status.ErrorComment
    assert max(buffered) <= limit
    assert fired("c-find-scp", "identifier_too_large") == before + 1
    assert statuses(start(pair)) == [0xFF00, 0x0000] and len(called) == 1


def test_identifier_at_the_bound_is_served() -> None:
    """Just under the bound is an identifier like any other (the UT value is 2 bytes short)."""
    pair = make_pair(yields())
    base = len(encode_dataset(long_text(0), EVRLE))
    op = start(pair, long_text(pair.acceptor.max_identifier_size - base))
    assert statuses(op) == [0x0000]


def deflate_bomb(inflated: int) -> bytes:
    """A deflated STUDY query whose Text Value inflates to ``inflated`` bytes of spaces.

    Built piece by piece: the test never holds the inflated data set itself.
    """
    head = encode_dataset(query(), EVRLE) + struct.pack(
        "<HH2sHL", 0x0040, 0xA160, b"UT", 0, inflated
    )
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [deflater.compress(head)]
    piece = b" " * (1 << 20)
    for _ in range(inflated // len(piece)):
        out.append(deflater.compress(piece))
    out.append(deflater.flush())
    data = b"".join(out)
    return data + b"\x00" if len(data) % 2 else data


def test_response_identifier_over_the_bound_is_dropped_with_its_status_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The SCU bounds what it receives too: the Pending still counts, its identifier is None."""
    big = match(1)
    big.add_new(0x0040A160, "UT", "x" * (2 << 20))
    pair = make_pair(yields((0xFF00, big), (0xFF00, match(2))))
    buffered = watch_buffered(pair.requestor)
    with caplog.at_level("WARNING", logger="dimsefsm.scu"):
        op = start(pair)
    assert statuses(op) == [0xFF00, 0xFF00, 0x0000]
    first, second = op.results[0][1], op.results[1][1]
    assert first is None and second is not None and second.PatientName == "Doe^2"
    assert max(buffered) <= pair.requestor.max_identifier_size
    assert any("dropped" in r.getMessage() for r in caplog.records)


def test_deflate_bomb_is_refused_after_the_bound_not_inflated() -> None:
    """64 MiB inflated from ~64 KB on the wire: inflation stops at the bound (0xA700);
    the allocations of the whole exchange stay far below what inflating would take."""
    called: list[Dataset] = []
    pair = make_pair(recording(called), DEFLATED)
    bomb = deflate_bomb(64 << 20)
    assert len(bomb) < pair.acceptor.max_identifier_size
    tracemalloc.start()
    try:
        op = start(pair, bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert statuses(op) == [0xA700] and called == []
    assert "inflated" in op.results[-1][0].ErrorComment
    assert peak < 16 << 20, peak


def test_deflated_identifier_within_the_bound_is_served() -> None:
    seen: list[Dataset] = []

    def handler(event: Any) -> Iterator[Any]:
        seen.append(event.identifier)
        yield from ()

    op = start(make_pair(handler, DEFLATED), query(PatientName="Doe*"))
    assert statuses(op) == [0x0000] and seen[0].PatientName == "Doe*"


@pytest.mark.parametrize(
    ("keyword", "value", "offending"),
    [
        ("PatientName", "D" * 64 + "*", 0x00100010),
        ("PatientName", "Doe^Jane=" + "x" * 65, 0x00100010),
        ("PatientID", "1" * 65, 0x00100020),
        ("StudyInstanceUID", "1.2." + "3" * 61, 0x0020000D),
        ("ModalitiesInStudy", ["CT", "M" * 17], 0x00080061),
        ("StudyDate", "20240101-202412310", 0x00080020),
    ],
)
def test_key_longer_than_its_vr_allows_is_a900(keyword: str, value: Any, offending: int) -> None:
    """PS3.5 6.2: no value of that VR can be that long, so it matches nothing: refused before
    the handler (and its matcher) sees it, naming the element."""
    called: list[Any] = []
    ds = query()
    tag = tag_for_keyword(keyword)
    assert tag is not None
    ds.add(DataElement(tag, dictionary_VR(tag), value, validation_mode=config.IGNORE))
    op = start(make_pair(recording(called)), ds)
    status = op.results[-1][0]
    assert statuses(op) == [0xA900] and called == []
    assert status.ErrorComment.startswith(f"{keyword}: ")
    assert int(status.OffendingElement) == offending


def test_keys_at_their_vr_maximum_are_served() -> None:
    """The longest valid values (and a long UID list, one UID at a time) pass the check."""
    ds = query(
        PatientName="=".join(["D" * 63 + "*"] * 3),
        PatientID="1" * 64,
        StudyDate="20240101-20241231",
        ModalitiesInStudy=["C" * 16],
    )
    ds.StudyInstanceUID = ["1.2." + "3" * 60] * 2000
    op = start(make_pair(yields()), ds)
    assert statuses(op) == [0x0000]


def test_cancel_naming_no_operation_is_ignored() -> None:
    pair = make_pair(yields((0xFF00, match(1))))
    pair.requestor.send_message(Message(1, cancel_rq(4242)))
    pair.run()
    assert pair.acceptor.is_established and pair.requestor.is_established


def test_both_charts_fully_covered(caplog: pytest.LogCaptureFixture) -> None:
    """Order-free: every scenario of this module runs again inside one coverage window."""
    with RECORDER.during() as run:
        calls = run_module_scenarios(sys.modules[__name__], {"caplog": lambda: caplog})
    assert calls > 20
    for chart in (SCP_CHART, SCU_CHART):
        missing = set(chart.declared_edges()) - run.fired(chart.name)
        assert missing == set(), f"{chart.name} missing {sorted(missing)}"
