"""The association's outcome is a declared chart: every edge, in memory, and what it tells.

Before, ``AssociationEngine.outcome`` was a string the engine assigned in six places
(a second machine nobody could see); now it is the state of ``OUTCOME_CHART``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dimsefsm.assoc.negotiation import AcceptorPolicy, RequestorProposal, propose_contexts
from dimsefsm.engine import OUTCOME_CHART, AssociationEngine
from dimsefsm.fsm import RECORDER, RefusedTrigger
from dimsefsm.sop_class import IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION
from tests.pair import EnginePair

Told = list[tuple[str, str]]  # (side, outcome) as the observer heard it


def make_pair(told: Told, called: str = "SCP") -> EnginePair:
    proposal = RequestorProposal(
        "SCU", called, propose_contexts([(VERIFICATION, [IMPLICIT_VR_LITTLE_ENDIAN])])
    )
    policy = AcceptorPolicy(
        "SCP", {VERIFICATION: (IMPLICIT_VR_LITTLE_ENDIAN,)}, require_called_aet=True
    )
    pair = EnginePair(
        AssociationEngine(requestor=True, proposal=proposal),
        AssociationEngine(requestor=False, policy=policy),
    )
    pair.requestor.on_outcome = lambda engine, outcome: told.append(("rq", outcome))
    pair.acceptor.on_outcome = lambda engine, outcome: told.append(("ac", outcome))
    return pair


def negotiating(told: Told) -> EnginePair:
    """The requestor has sent its A-ASSOCIATE-RQ (Sta5); nothing came back yet."""
    pair = make_pair(told)
    pair.requestor.request_association()
    pair.requestor.take_effects()
    pair.requestor.transport_connected()
    pair.requestor.take_effects()
    assert pair.requestor.ul.state == "Sta5" and pair.requestor.outcome == "pending"
    return pair


def fired(name: str) -> int:
    return RECORDER.count("association", name)


def test_accepted_on_both_sides() -> None:
    told: Told = []
    before = fired("accepted"), fired("confirmed")
    pair = make_pair(told)
    pair.connect()
    assert pair.requestor.outcome == pair.acceptor.outcome == "established"
    assert sorted(told) == [("ac", "established"), ("rq", "established")]
    assert (fired("accepted"), fired("confirmed")) == (before[0] + 1, before[1] + 1)


def test_rejected_on_both_sides() -> None:
    told: Told = []
    before = fired("refused"), fired("rejected")
    pair = make_pair(told, called="SOMEONE-ELSE")
    pair.connect()
    assert pair.requestor.outcome == pair.acceptor.outcome == "rejected"
    assert pair.requestor.is_closed and pair.requestor.rejection is not None
    assert sorted(told) == [("ac", "rejected"), ("rq", "rejected")]
    assert (fired("refused"), fired("rejected")) == (before[0] + 1, before[1] + 1)


def test_released() -> None:
    told: Told = []
    before = fired("released")
    pair = make_pair(told)
    pair.connect()
    pair.requestor.release()
    pair.run()
    assert pair.requestor.outcome == pair.acceptor.outcome == "released"
    assert told[-2:] in (
        [("rq", "released"), ("ac", "released")],
        [("ac", "released"), ("rq", "released")],
    )
    assert fired("released") == before + 2


def test_aborted_by_us_and_by_the_peer() -> None:
    told: Told = []
    before = fired("aborted_by_us"), fired("aborted_by_peer")
    pair = make_pair(told)
    pair.connect()
    pair.acceptor.abort()
    pair.run()
    assert pair.acceptor.outcome == pair.requestor.outcome == "aborted"
    assert pair.requestor.abort_source == 0  # service user: the default of engine.abort
    assert ("ac", "aborted") in told and ("rq", "aborted") in told
    assert (fired("aborted_by_us"), fired("aborted_by_peer")) == (before[0] + 1, before[1] + 1)


@pytest.mark.parametrize(
    ("end", "transition"),
    [
        (lambda pair: pair.requestor.abort(), "abandoned"),
        (lambda pair: pair.requestor.transport_closed(), "lost"),
    ],
    ids=["we-abort", "connection-closed"],
)
def test_a_negotiation_that_never_ended_is_aborted_and_the_observer_not_told(
    end: Callable[[EnginePair], None], transition: str
) -> None:
    """Only an association that was established is reported as ended (the audit trail's rule)."""
    told: Told = []
    before = fired(transition)
    pair = negotiating(told)
    end(pair)
    assert pair.requestor.outcome == "aborted" and told == []
    assert fired(transition) == before + 1


def test_a_second_outcome_is_refused_by_the_chart() -> None:
    """The table says an outcome is decided once; an engine bug would say so, loudly."""
    told: Told = []
    pair = make_pair(told)
    pair.connect()
    pair.requestor.release()
    pair.run()
    with pytest.raises(RefusedTrigger, match="decided once"):
        OUTCOME_CHART.fire(pair.requestor._outcome, "abort_received")
    assert pair.requestor.outcome == "released"


def test_every_edge_fired() -> None:
    """Order-free: the scenarios of this module fire every edge, counted on their own."""
    with RECORDER.during() as run:
        test_accepted_on_both_sides()
        test_rejected_on_both_sides()
        test_released()
        test_aborted_by_us_and_by_the_peer()
        for end, transition in [
            (lambda pair: pair.requestor.abort(), "abandoned"),
            (lambda pair: pair.requestor.transport_closed(), "lost"),
        ]:
            test_a_negotiation_that_never_ended_is_aborted_and_the_observer_not_told(
                end, transition
            )
    missing = set(OUTCOME_CHART.declared_edges()) - run.fired("association")
    assert missing == set()
