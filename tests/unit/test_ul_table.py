"""Every cell of PS3.8 Table 9-10, run in memory against the upper-layer chart.

The expected table below is transcribed from the standard's grid independently
of the chart declaration, and the expected effects of each action are spelled
out here from the action definitions (Tables 9-6 to 9-9), so a slip in the
chart cannot be confirmed by the test that checks it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dimsefsm.fsm import RECORDER
from dimsefsm.pdu.errors import InvalidParameter
from dimsefsm.pdu.model import (
    PDV,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    ReleaseRP,
    ReleaseRQ,
    UserInformation,
)
from dimsefsm.ul.chart import UPPER_LAYER
from dimsefsm.ul.effects import (
    AbortIndication,
    AssociateConfirmation,
    AssociateIndication,
    CloseTransport,
    Connect,
    Effect,
    Indicate,
    PDataIndication,
    ProviderAbortIndication,
    RejectConfirmation,
    ReleaseConfirmation,
    ReleaseIndication,
    SendBytes,
    SendPdu,
    StartArtim,
    StopArtim,
)
from dimsefsm.ul.errors import LocalProtocolError, PduWithoutConnectionError, UpperLayerError
from dimsefsm.ul.events import (
    AbortRequested,
    ArtimExpired,
    AssociateAccepted,
    AssociateRejected,
    AssociateRequested,
    InvalidPduArrived,
    PDataRequested,
    PduArrived,
    ReleaseRequested,
    ReleaseResponded,
    TransportAccepted,
    TransportClosed,
    TransportConnected,
    UlEvent,
)
from dimsefsm.ul.machine import UpperLayer

# PS3.8 Table 9-10, actions only; "." is an empty cell.  Columns Sta1 ... Sta13.
TABLE_9_10 = """
Evt1  AE-1 .    .    .    .    .    .    .    .    .     .    .    .
Evt2  .    .    .    AE-2 .    .    .    .    .    .     .    .    .
Evt3  .    AA-1 AA-8 .    AE-3 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8 AA-6
Evt4  .    AA-1 AA-8 .    AE-4 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8 AA-6
Evt5  AE-5 .    .    .    .    .    .    .    .    .     .    .    .
Evt6  .    AE-6 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8 AA-7
Evt7  .    .    AE-7 .    .    .    .    .    .    .     .    .    .
Evt8  .    .    AE-8 .    .    .    .    .    .    .     .    .    .
Evt9  .    .    .    .    .    DT-1 .    AR-7 .    .     .    .    .
Evt10 .    AA-1 AA-8 .    AA-8 DT-2 AR-6 AA-8 AA-8 AA-8  AA-8 AA-8 AA-6
Evt11 .    .    .    .    .    AR-1 .    .    .    .     .    .    .
Evt12 .    AA-1 AA-8 .    AA-8 AR-2 AR-8 AA-8 AA-8 AA-8  AA-8 AA-8 AA-6
Evt13 .    AA-1 AA-8 .    AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3 AA-8 AA-6
Evt14 .    .    .    .    .    .    .    AR-4 AR-9 .     .    AR-4 .
Evt15 .    .    AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1  AA-1 AA-1 .
Evt16 .    AA-2 AA-3 .    AA-3 AA-3 AA-3 AA-3 AA-3 AA-3  AA-3 AA-3 AA-2
Evt17 .    AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4  AA-4 AA-4 AR-5
Evt18 .    AA-2 .    .    .    .    .    .    .    .     .    .    AA-2
Evt19 .    AA-1 AA-8 .    AA-8 AA-8 AA-8 AA-8 AA-8 AA-8  AA-8 AA-8 AA-7
"""

# Next state of each action (PS3.8 Tables 9-6 to 9-9); AE-6 and AR-8 have two.
NEXT_STATE: dict[str, tuple[str, ...]] = {
    "AE-1": ("Sta4",), "AE-2": ("Sta5",), "AE-3": ("Sta6",), "AE-4": ("Sta1",),
    "AE-5": ("Sta2",), "AE-6": ("Sta3", "Sta13"), "AE-7": ("Sta6",), "AE-8": ("Sta13",),
    "DT-1": ("Sta6",), "DT-2": ("Sta6",),
    "AR-1": ("Sta7",), "AR-2": ("Sta8",), "AR-3": ("Sta1",), "AR-4": ("Sta13",),
    "AR-5": ("Sta1",), "AR-6": ("Sta7",), "AR-7": ("Sta8",), "AR-8": ("Sta9", "Sta10"),
    "AR-9": ("Sta11",), "AR-10": ("Sta12",),
    "AA-1": ("Sta13",), "AA-2": ("Sta1",), "AA-3": ("Sta1",), "AA-4": ("Sta1",),
    "AA-5": ("Sta1",), "AA-6": ("Sta13",), "AA-7": ("Sta13",), "AA-8": ("Sta13",),
}  # fmt: skip

STATES = tuple(f"Sta{n}" for n in range(1, 14))
PDU_EVENTS = frozenset({"Evt3", "Evt4", "Evt6", "Evt10", "Evt12", "Evt13", "Evt16", "Evt19"})


def _parse(table: str) -> dict[tuple[str, str], str | None]:
    cells: dict[tuple[str, str], str | None] = {}
    for line in table.strip().splitlines():
        evt, *row = line.split()
        assert len(row) == 13, line
        for state, cell in zip(STATES, row, strict=True):
            cells[(state, evt)] = None if cell == "." else cell
    return cells


CELLS = _parse(TABLE_9_10)

# -- one concrete event per row ------------------------------------------------------
RQ = AssociateRQ(
    called_ae="ANY-SCP",
    calling_ae="ECHOSCU",
    presentation_contexts=(PresentationContextRQ(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",)),),
    user_info=UserInformation(max_length=16382, implementation_class_uid="1.2.3.4"),
)
RQ_VERSION_2 = AssociateRQ(
    called_ae="ANY-SCP",
    calling_ae="ECHOSCU",
    presentation_contexts=RQ.presentation_contexts,
    user_info=RQ.user_info,
    protocol_version=2,
)
AC = AssociateAC(
    called_ae="ANY-SCP",
    calling_ae="ECHOSCU",
    presentation_contexts=(PresentationContextAC(1, 0, "1.2.840.10008.1.2"),),
    user_info=UserInformation(max_length=16382, implementation_class_uid="1.2.3.4"),
)
USER_RJ = AssociateRJ(result=1, source=1, reason=7)
PDATA = PDataTF((PDV(1, True, True, b"\x00\x00"),))
PDATA_BYTES = b"\x04\x00\x00\x00\x00\x08\x00\x00\x00\x04\x01\x03\x00\x00"
INVALID = InvalidParameter("pc_id 0")

EVENTS: dict[str, Callable[[], UlEvent]] = {
    "Evt1": lambda: AssociateRequested(RQ),
    "Evt2": TransportConnected,
    "Evt3": lambda: PduArrived(AC),
    "Evt4": lambda: PduArrived(USER_RJ),
    "Evt5": TransportAccepted,
    "Evt6": lambda: PduArrived(RQ),
    "Evt7": lambda: AssociateAccepted(AC),
    "Evt8": lambda: AssociateRejected(USER_RJ),
    "Evt9": lambda: PDataRequested(PDATA_BYTES),
    "Evt10": lambda: PduArrived(PDATA),
    "Evt11": ReleaseRequested,
    "Evt12": lambda: PduArrived(ReleaseRQ()),
    "Evt13": lambda: PduArrived(ReleaseRP()),
    "Evt14": ReleaseResponded,
    "Evt15": lambda: AbortRequested(0, 0),
    "Evt16": lambda: PduArrived(Abort(0, 0)),
    "Evt17": TransportClosed,
    "Evt18": ArtimExpired,
    "Evt19": lambda: InvalidPduArrived(INVALID),
}


def expected_effects(action: str, state: str, evt: str, dest: str) -> list[Effect]:
    """The effects of each PS3.8 action, as this library defines them."""
    artim_was_running = state in ("Sta2", "Sta13")
    unexpected_reason = INVALID.abort_reason if evt == "Evt19" else 2
    match action:
        case "AE-1":
            return [Connect()]
        case "AE-2":
            return [SendPdu(RQ)]
        case "AE-3":
            return [Indicate(AssociateConfirmation(AC))]
        case "AE-4":
            return [Indicate(RejectConfirmation(USER_RJ)), CloseTransport()]
        case "AE-5":
            return [StartArtim()]
        case "AE-6" if dest == "Sta3":
            return [StopArtim(), Indicate(AssociateIndication(RQ))]
        case "AE-6":
            return [StopArtim(), SendPdu(AssociateRJ(1, 2, 2)), StartArtim()]
        case "AE-7":
            return [SendPdu(AC)]
        case "AE-8":
            return [SendPdu(USER_RJ), StartArtim()]
        case "DT-1" | "AR-7":
            return [SendBytes(PDATA_BYTES)]
        case "DT-2" | "AR-6":
            return [Indicate(PDataIndication(PDATA))]
        case "AR-1":
            return [SendPdu(ReleaseRQ())]
        case "AR-2" | "AR-8":
            return [Indicate(ReleaseIndication())]
        case "AR-3":
            return [Indicate(ReleaseConfirmation()), CloseTransport()]
        case "AR-4":
            return [SendPdu(ReleaseRP()), StartArtim()]
        case "AR-5" | "AA-5":
            return [StopArtim()]
        case "AR-9":
            return [SendPdu(ReleaseRP())]
        case "AR-10":
            return [Indicate(ReleaseConfirmation())]
        case "AA-1":
            return [SendPdu(Abort(0, 0)), StartArtim()]
        case "AA-2" if artim_was_running and evt != "Evt18":
            return [StopArtim(), CloseTransport()]
        case "AA-2":
            return [CloseTransport()]
        case "AA-3":
            return [Indicate(AbortIndication(0, 0)), CloseTransport()]
        case "AA-4":
            return [Indicate(ProviderAbortIndication(2, 0, origin="transport"))]
        case "AA-6":
            return []
        case "AA-7":
            return [SendPdu(Abort(2, unexpected_reason))]
        case "AA-8":
            return [
                SendPdu(Abort(2, unexpected_reason)),
                Indicate(ProviderAbortIndication(2, unexpected_reason, origin="local")),
                StartArtim(),
            ]
    raise AssertionError(f"no expectation for {action}")


# -- the cases: every (state, event) pair, both outcomes of AE-6 and AR-8 -----------
Case = tuple[str, str, str]  # state, event, variant


def _cases() -> list[Case]:
    cases: list[Case] = []
    for evt in EVENTS:
        for state in STATES:
            if (state, evt) == ("Sta2", "Evt6"):
                cases += [(state, evt, "acceptable"), (state, evt, "not acceptable")]
            elif (state, evt) == ("Sta7", "Evt12"):
                cases += [(state, evt, "requestor"), (state, evt, "acceptor")]
            else:
                cases.append((state, evt, ""))
    return cases


CASES = _cases()


def _machine_in(state: str, variant: str) -> UpperLayer:
    ul = UpperLayer(requestor=variant != "acceptor")
    ul.state = state
    ul.association_rq = RQ
    return ul


def _event(evt: str, variant: str) -> UlEvent:
    if variant == "not acceptable":
        return PduArrived(RQ_VERSION_2)
    return EVENTS[evt]()


def _run(state: str, evt: str, variant: str) -> tuple[UpperLayer, list[Effect]]:
    ul = _machine_in(state, variant)
    return ul, ul.handle(_event(evt, variant))


def _expected_dest(action: str, variant: str) -> str:
    dests = NEXT_STATE[action]
    if len(dests) == 2:  # AE-6 and AR-8: the first outcome is the "yes" branch
        return dests[0] if variant in ("acceptable", "requestor") else dests[1]
    return dests[0]


def test_transcription_has_123_filled_cells() -> None:
    assert len(CELLS) == 247
    assert sum(cell is not None for cell in CELLS.values()) == 123


def test_cases_cover_every_pair_once_plus_two_guard_outcomes() -> None:
    assert len(CASES) == 247 + 2
    assert {(s, e) for s, e, _ in CASES} == set(CELLS)


@pytest.mark.parametrize(("state", "evt", "variant"), CASES, ids=lambda v: v or "-")
def test_cell(state: str, evt: str, variant: str) -> None:
    cell = CELLS[(state, evt)]
    if cell is None:
        ul = _machine_in(state, variant)
        error = PduWithoutConnectionError if evt in PDU_EVENTS else LocalProtocolError
        with pytest.raises(error) as raised:
            ul.handle(_event(evt, variant))
        assert (raised.value.state, raised.value.evt) == (state, evt)
        assert f"{evt} (" in str(raised.value)
        assert f"in {state} (" in str(raised.value)
        assert ul.state == state
        return
    dest = _expected_dest(cell, variant)
    ul, effects = _run(state, evt, variant)
    assert ul.state == dest
    assert effects == expected_effects(cell, state, evt, dest)


def test_refusal_errors_share_one_base() -> None:
    assert issubclass(LocalProtocolError, UpperLayerError)
    assert issubclass(PduWithoutConnectionError, UpperLayerError)
    assert not issubclass(LocalProtocolError, PduWithoutConnectionError)


def test_chart_declares_exactly_the_table() -> None:
    """Each filled cell maps to transitions named after its action; each empty cell is refused."""
    for (state, evt), cell in CELLS.items():
        outcome = UPPER_LAYER.outcome(state, evt)
        if cell is None:
            assert outcome is not None and not isinstance(outcome, list), (state, evt)
            continue
        assert isinstance(outcome, list), (state, evt)
        assert {t.name.split(":")[1] for t in outcome} == {cell}, (state, evt)
        assert {t.action for t in outcome} == {cell.lower().replace("-", "_")}
        assert {t.dest for t in outcome} == set(NEXT_STATE[cell]), (state, evt)


def test_every_transition_has_a_sentence_and_a_diagram_label() -> None:
    for t in UPPER_LAYER.transitions:
        assert t.when.strip().endswith(".")
        assert t.label is not None and t.label.startswith(f"{t.trigger} / ")


def test_walking_the_table_fires_every_edge_of_the_chart() -> None:
    for state, evt, variant in CASES:
        if CELLS[(state, evt)] is not None:
            _run(state, evt, variant)
    fired = RECORDER.fired(UPPER_LAYER.name)
    declared = set(UPPER_LAYER.declared_edges())
    assert len(declared) == 123 + 2
    assert declared <= fired, sorted(declared - fired)
