"""Whole conversations through the upper-layer machine, as PS3.8 describes them."""

from __future__ import annotations

import pytest

from dimsefsm.fsm import RECORDER
from dimsefsm.fsm.render import to_dot
from dimsefsm.pdu.errors import (
    InvalidParameter,
    PduError,
    UnexpectedParameter,
    UnrecognizedParameter,
    UnrecognizedPdu,
)
from dimsefsm.pdu.model import (
    PDV,
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    PDataTF,
    Pdu,
    PresentationContextAC,
    PresentationContextRQ,
    ReleaseRP,
    ReleaseRQ,
    UserInformation,
)
from dimsefsm.ul import (
    UPPER_LAYER,
    AbortIndication,
    AbortRequested,
    ArtimExpired,
    AssociateAccepted,
    AssociateConfirmation,
    AssociateIndication,
    AssociateRejected,
    AssociateRequested,
    CloseTransport,
    Connect,
    Effect,
    Indicate,
    InvalidPduArrived,
    LocalProtocolError,
    PDataIndication,
    PDataRequested,
    PduArrived,
    PduWithoutConnectionError,
    ProviderAbortIndication,
    RejectConfirmation,
    ReleaseConfirmation,
    ReleaseIndication,
    ReleaseRequested,
    ReleaseResponded,
    SendBytes,
    SendPdu,
    StartArtim,
    StopArtim,
    TransportAccepted,
    TransportClosed,
    TransportConnected,
    UlEvent,
    UpperLayer,
    UpperLayerError,
)

RQ = AssociateRQ(
    called_ae="STORESCP",
    calling_ae="STORESCU",
    presentation_contexts=(PresentationContextRQ(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",)),),
    user_info=UserInformation(max_length=16382, implementation_class_uid="1.2.3.4"),
)
AC = AssociateAC(
    called_ae="STORESCP",
    calling_ae="STORESCU",
    presentation_contexts=(PresentationContextAC(1, 0, "1.2.840.10008.1.2"),),
    user_info=UserInformation(max_length=16382, implementation_class_uid="1.2.3.4"),
)
PDATA = PDataTF((PDV(1, True, True, b"\x01\x02"),))
CHUNK = b"\x04\x00\x00\x00\x00\x08\x00\x00\x00\x04\x01\x03\x01\x02"


def _requestor_in_sta6() -> UpperLayer:
    ul = UpperLayer(requestor=True)
    for event in (AssociateRequested(RQ), TransportConnected(), PduArrived(AC)):
        ul.handle(event)
    assert ul.is_established
    return ul


def _acceptor_in_sta6() -> UpperLayer:
    ul = UpperLayer(requestor=False)
    for event in (TransportAccepted(), PduArrived(RQ), AssociateAccepted(AC)):
        ul.handle(event)
    assert ul.is_established
    return ul


def _walk(ul: UpperLayer, steps: list[tuple[UlEvent, str, list[Effect]]]) -> None:
    for event, state, effects in steps:
        assert ul.handle(event) == effects, (event, state)
        assert ul.state == state, event


def test_requestor_normal_path() -> None:
    ul = UpperLayer(requestor=True)
    assert ul.is_idle and ul.state == "Sta1"
    _walk(
        ul,
        [
            (AssociateRequested(RQ), "Sta4", [Connect()]),
            (TransportConnected(), "Sta5", [SendPdu(RQ)]),
            (PduArrived(AC), "Sta6", [Indicate(AssociateConfirmation(AC))]),
            (PDataRequested(CHUNK), "Sta6", [SendBytes(CHUNK)]),
            (PduArrived(PDATA), "Sta6", [Indicate(PDataIndication(PDATA))]),
            (ReleaseRequested(), "Sta7", [SendPdu(ReleaseRQ())]),
            (PduArrived(PDATA), "Sta7", [Indicate(PDataIndication(PDATA))]),
            (PduArrived(ReleaseRP()), "Sta1", [Indicate(ReleaseConfirmation()), CloseTransport()]),
        ],
    )
    assert ul.is_idle
    assert ul.association_rq is RQ


def test_acceptor_normal_path() -> None:
    ul = UpperLayer(requestor=False)
    _walk(
        ul,
        [
            (TransportAccepted(), "Sta2", [StartArtim()]),
            (PduArrived(RQ), "Sta3", [StopArtim(), Indicate(AssociateIndication(RQ))]),
            (AssociateAccepted(AC), "Sta6", [SendPdu(AC)]),
            (PduArrived(PDATA), "Sta6", [Indicate(PDataIndication(PDATA))]),
            (PduArrived(ReleaseRQ()), "Sta8", [Indicate(ReleaseIndication())]),
            (PDataRequested(CHUNK), "Sta8", [SendBytes(CHUNK)]),
            (ReleaseResponded(), "Sta13", [SendPdu(ReleaseRP()), StartArtim()]),
            (TransportClosed(), "Sta1", [StopArtim()]),
        ],
    )
    assert ul.association_rq is RQ


def test_user_rejects_and_peer_never_closes() -> None:
    rj = AssociateRJ(result=1, source=1, reason=7)
    ul = UpperLayer(requestor=False)
    _walk(
        ul,
        [
            (TransportAccepted(), "Sta2", [StartArtim()]),
            (PduArrived(RQ), "Sta3", [StopArtim(), Indicate(AssociateIndication(RQ))]),
            (AssociateRejected(rj), "Sta13", [SendPdu(rj), StartArtim()]),
            (ArtimExpired(), "Sta1", [CloseTransport()]),
        ],
    )


def test_provider_rejects_unsupported_protocol_version() -> None:
    ul = UpperLayer(requestor=False)
    ul.handle(TransportAccepted())
    rq_v2 = AssociateRQ(
        called_ae="STORESCP",
        calling_ae="STORESCU",
        presentation_contexts=RQ.presentation_contexts,
        user_info=RQ.user_info,
        protocol_version=0x0002,
    )
    effects = ul.handle(PduArrived(rq_v2))
    assert effects == [StopArtim(), SendPdu(AssociateRJ(1, 2, 2)), StartArtim()]
    assert ul.state == "Sta13"
    assert RECORDER.count("upper-layer", "Evt6:AE-6:not acceptable") >= 1


def test_version_bit_0_is_all_that_matters() -> None:
    ul = UpperLayer(requestor=False)
    ul.handle(TransportAccepted())
    rq_v3 = AssociateRQ("A", "B", RQ.presentation_contexts, RQ.user_info, protocol_version=3)
    assert ul.handle(PduArrived(rq_v3))[1] == Indicate(AssociateIndication(rq_v3))
    assert ul.state == "Sta3"


def test_peer_rejects_our_request() -> None:
    rj = AssociateRJ(result=2, source=3, reason=1)
    ul = UpperLayer(requestor=True)
    ul.handle(AssociateRequested(RQ))
    ul.handle(TransportConnected())
    assert ul.handle(PduArrived(rj)) == [Indicate(RejectConfirmation(rj)), CloseTransport()]
    assert ul.is_idle


def test_release_collision_on_the_requestor_side() -> None:
    ul = _requestor_in_sta6()
    _walk(
        ul,
        [
            (ReleaseRequested(), "Sta7", [SendPdu(ReleaseRQ())]),
            (PduArrived(ReleaseRQ()), "Sta9", [Indicate(ReleaseIndication())]),
            (ReleaseResponded(), "Sta11", [SendPdu(ReleaseRP())]),
            (PduArrived(ReleaseRP()), "Sta1", [Indicate(ReleaseConfirmation()), CloseTransport()]),
        ],
    )


def test_release_collision_on_the_acceptor_side() -> None:
    ul = _acceptor_in_sta6()
    _walk(
        ul,
        [
            (ReleaseRequested(), "Sta7", [SendPdu(ReleaseRQ())]),
            (PduArrived(ReleaseRQ()), "Sta10", [Indicate(ReleaseIndication())]),
            (PduArrived(ReleaseRP()), "Sta12", [Indicate(ReleaseConfirmation())]),
            (ReleaseResponded(), "Sta13", [SendPdu(ReleaseRP()), StartArtim()]),
            (TransportClosed(), "Sta1", [StopArtim()]),
        ],
    )


def test_both_collision_sides_talk_to_each_other() -> None:
    """Two machines joined back to back resolve a collision: requestor answers first.

    The user answers a release indication as soon as its machine awaits the
    answer (Sta8, Sta9, Sta12); the acceptor in Sta10 must first see the
    confirmation.
    """
    req, acc = _requestor_in_sta6(), _acceptor_in_sta6()
    wire: list[tuple[UpperLayer, Pdu]] = []

    def run(ul: UpperLayer, event: UlEvent) -> None:
        peer = acc if ul is req else req
        wire.extend((peer, e.pdu) for e in ul.handle(event) if isinstance(e, SendPdu))
        if ul.state in ("Sta8", "Sta9", "Sta12"):
            run(ul, ReleaseResponded())

    run(req, ReleaseRequested())
    run(acc, ReleaseRequested())
    states_seen: list[tuple[str, str]] = []
    while wire:
        target, pdu = wire.pop(0)
        run(target, PduArrived(pdu))
        states_seen.append((req.state, acc.state))
    assert states_seen == [
        ("Sta7", "Sta10"),
        ("Sta11", "Sta10"),
        ("Sta11", "Sta13"),
        ("Sta1", "Sta13"),
    ]
    assert acc.handle(TransportClosed()) == [StopArtim()]


def test_artim_guards_a_silent_incoming_connection() -> None:
    ul = UpperLayer(requestor=False)
    assert ul.handle(TransportAccepted()) == [StartArtim()]
    assert ul.artim_running
    assert ul.handle(ArtimExpired()) == [CloseTransport()]
    assert ul.is_idle and not ul.artim_running


def test_artim_is_stopped_when_the_connection_closes_early() -> None:
    ul = UpperLayer(requestor=False)
    ul.handle(TransportAccepted())
    assert ul.handle(TransportClosed()) == [StopArtim()]
    assert ul.is_idle


def test_artim_effects_balance_over_a_full_acceptor_life() -> None:
    ul = UpperLayer(requestor=False)
    artim: list[Effect] = []
    for event in (
        TransportAccepted(),
        PduArrived(RQ),
        AssociateAccepted(AC),
        PduArrived(ReleaseRQ()),
        ReleaseResponded(),
        TransportClosed(),
    ):
        artim += [e for e in ul.handle(event) if isinstance(e, StartArtim | StopArtim)]
    assert artim == [StartArtim(), StopArtim(), StartArtim(), StopArtim()]


def test_abort_from_the_peer_in_sta2_stops_artim() -> None:
    ul = UpperLayer(requestor=False)
    ul.handle(TransportAccepted())
    assert ul.handle(PduArrived(Abort(0, 0))) == [StopArtim(), CloseTransport()]


def test_user_abort_while_connecting_drops_the_connect() -> None:
    ul = UpperLayer(requestor=True)
    ul.handle(AssociateRequested(RQ))
    assert ul.handle(AbortRequested()) == [CloseTransport()]
    assert ul.is_idle


def test_connect_failure_is_a_provider_abort() -> None:
    ul = UpperLayer(requestor=True)
    ul.handle(AssociateRequested(RQ))
    assert ul.handle(TransportClosed()) == [
        Indicate(ProviderAbortIndication(2, 0, origin="transport"))
    ]
    assert ul.is_idle


ERRORS = [
    (UnrecognizedPdu("type 0x09"), 1),
    (UnrecognizedParameter("item 0x99"), 4),
    (UnexpectedParameter("second user info"), 5),
    (InvalidParameter("pc_id 0"), 6),
]


@pytest.mark.parametrize(("error", "reason"), ERRORS, ids=lambda v: type(v).__name__)
def test_invalid_pdu_in_sta2_is_a_user_style_abort(error: PduError, reason: int) -> None:
    ul = UpperLayer(requestor=False)
    ul.handle(TransportAccepted())
    assert ul.handle(InvalidPduArrived(error)) == [SendPdu(Abort(0, 0)), StartArtim()]
    assert ul.state == "Sta13"


@pytest.mark.parametrize(("error", "reason"), ERRORS, ids=lambda v: type(v).__name__)
def test_invalid_pdu_in_sta6_is_a_provider_abort_with_the_decoder_reason(
    error: PduError, reason: int
) -> None:
    ul = _requestor_in_sta6()
    assert ul.handle(InvalidPduArrived(error)) == [
        SendPdu(Abort(2, reason)),
        Indicate(ProviderAbortIndication(2, reason, origin="local")),
        StartArtim(),
    ]
    assert ul.is_closing
    assert ul.handle(TransportClosed()) == [StopArtim()]


@pytest.mark.parametrize(("error", "reason"), ERRORS, ids=lambda v: type(v).__name__)
def test_invalid_pdu_in_sta13_is_answered_and_the_wait_continues(
    error: PduError, reason: int
) -> None:
    ul = _acceptor_in_sta6()
    ul.handle(PduArrived(ReleaseRQ()))
    ul.handle(ReleaseResponded())
    assert ul.handle(InvalidPduArrived(error)) == [SendPdu(Abort(2, reason))]
    assert ul.state == "Sta13"
    assert ul.handle(ArtimExpired()) == [CloseTransport()]


def test_unexpected_valid_pdu_is_aborted_as_unexpected() -> None:
    ul = _requestor_in_sta6()
    assert ul.handle(PduArrived(RQ)) == [
        SendPdu(Abort(2, 2)),
        Indicate(ProviderAbortIndication(2, 2, origin="local")),
        StartArtim(),
    ]


def test_late_pdus_in_sta13_are_dropped() -> None:
    ul = _requestor_in_sta6()
    ul.handle(AbortRequested())
    for pdu in (AC, AssociateRJ(1, 1, 1), PDATA, ReleaseRQ(), ReleaseRP()):
        assert ul.handle(PduArrived(pdu)) == []
        assert ul.state == "Sta13"


def test_peer_user_abort_and_peer_provider_abort_are_told_apart() -> None:
    user = _requestor_in_sta6()
    assert user.handle(PduArrived(Abort(0, 0))) == [
        Indicate(AbortIndication(0, 0)),
        CloseTransport(),
    ]
    provider = _requestor_in_sta6()
    assert provider.handle(PduArrived(Abort(2, 6))) == [
        Indicate(ProviderAbortIndication(2, 6, origin="peer")),
        CloseTransport(),
    ]


def test_user_abort_sends_the_users_values() -> None:
    ul = _acceptor_in_sta6()
    assert ul.handle(AbortRequested(source=0, reason=0)) == [SendPdu(Abort(0, 0)), StartArtim()]
    assert ul.is_closing and ul.artim_running


def test_transport_loss_while_established() -> None:
    ul = _acceptor_in_sta6()
    assert ul.handle(TransportClosed()) == [
        Indicate(ProviderAbortIndication(2, 0, origin="transport"))
    ]
    assert ul.is_idle


def test_pdata_bytes_are_passed_through_without_copy() -> None:
    ul = _requestor_in_sta6()
    big = bytes(1 << 20)
    (effect,) = ul.handle(PDataRequested(big))
    assert isinstance(effect, SendBytes)
    assert effect.data is big


def test_local_misuse_raises_and_leaves_the_state_alone() -> None:
    ul = UpperLayer(requestor=True)
    with pytest.raises(LocalProtocolError, match=r"Evt9 \(P-DATA request\).*Sta1 \(idle\)"):
        ul.handle(PDataRequested(CHUNK))
    assert ul.is_idle
    ul = _requestor_in_sta6()
    with pytest.raises(LocalProtocolError, match=r"Evt1 .* Sta6"):
        ul.handle(AssociateRequested(RQ))
    with pytest.raises(UpperLayerError, match="Evt14"):
        ul.handle(ReleaseResponded())
    assert ul.is_established


def test_stale_artim_expiry_is_a_local_error() -> None:
    ul = _acceptor_in_sta6()
    with pytest.raises(LocalProtocolError, match="stale"):
        ul.handle(ArtimExpired())


def test_pdu_without_connection_is_its_own_error() -> None:
    ul = UpperLayer(requestor=True)
    with pytest.raises(PduWithoutConnectionError, match="Sta1"):
        ul.handle(PduArrived(ReleaseRQ()))
    ul.handle(AssociateRequested(RQ))
    with pytest.raises(PduWithoutConnectionError, match="Sta4"):
        ul.handle(InvalidPduArrived(UnrecognizedPdu("x")))
    assert ul.state == "Sta4"


def test_machines_are_independent() -> None:
    a, b = UpperLayer(requestor=True), UpperLayer(requestor=False)
    a.handle(AssociateRequested(RQ))
    b.handle(TransportAccepted())
    assert (a.state, b.state) == ("Sta4", "Sta2")
    assert "requestor Sta4" in repr(a) and "acceptor Sta2" in repr(b)


def test_views() -> None:
    ul = _acceptor_in_sta6()
    assert ul.can_send_data and not ul.is_releasing
    ul.handle(PduArrived(ReleaseRQ()))
    assert ul.can_send_data and ul.is_releasing and not ul.is_established
    ul.handle(ReleaseResponded())
    assert not ul.can_send_data and ul.is_closing


def test_event_names() -> None:
    assert [PduArrived(p).evt for p in (AC, AssociateRJ(1, 1, 1), RQ, PDATA)] == [
        "Evt3",
        "Evt4",
        "Evt6",
        "Evt10",
    ]
    assert [PduArrived(p).evt for p in (ReleaseRQ(), ReleaseRP(), Abort())] == [
        "Evt12",
        "Evt13",
        "Evt16",
    ]
    assert AbortRequested.evt == "Evt15"
    assert InvalidPduArrived.evt == "Evt19"


def test_diagram_labels_read_like_the_table() -> None:
    dot = to_dot(UPPER_LAYER)
    assert 'Sta6 -> Sta13 [label="Evt3 / AA-8"' in dot
    assert 'Sta2 -> Sta3 [label="Evt6 / AE-6 [acceptable]"' in dot
    assert 'Sta7 -> Sta10 [label="Evt12 / AR-8 [acceptor]"' in dot
    # Every edge, plus the start arrow; the 11 self-loops of Sta6, Sta7, Sta8 and Sta13
    # are drawn as one edge per state.
    assert dot.count(" -> ") == 125 - 11 + 4 + 1
    assert 'Sta13 -> Sta13 [label="Evt3 / AA-6\\nEvt4 / AA-6' in dot
