"""Every chart's table is total: each (state, input) pair is a transition or a declared refusal.

The walk is generic over :func:`dimsefsm.fsm.chart.registered_charts`; ``TOTAL`` names the
charts that already declare their refusals (the upper layer and the query/retrieve SCPs),
and grows as the other charts declare theirs.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from dimsefsm.charts import all_charts
from dimsefsm.fsm.chart import Chart, Refusal, RefusedTrigger

TOTAL = {"upper-layer", "c-find-scp", "c-get-scp", "c-move-scp"}
CHARTS = [c for c in all_charts() if c.name in TOTAL]


def unspecified(chart: Chart) -> list[tuple[str, str]]:
    """The (state, input) pairs the table says nothing about."""
    return [
        (state, trigger)
        for state in chart.states
        for trigger in chart.triggers()
        if chart.outcome(state, trigger) is None
    ]


def test_every_chart_named_total_is_registered() -> None:
    assert {c.name for c in CHARTS} == TOTAL


@pytest.mark.parametrize("chart", CHARTS, ids=[c.name for c in CHARTS])
def test_every_pair_is_a_transition_or_a_refusal(chart: Chart) -> None:
    assert unspecified(chart) == []


@pytest.mark.parametrize("chart", CHARTS, ids=[c.name for c in CHARTS])
def test_every_refusal_is_refused_in_memory_with_its_reason(chart: Chart) -> None:
    """Walk the refused pairs on a bare model: each raises RefusedTrigger naming its reason."""
    walked = 0
    for state in chart.states:
        for trigger in chart.triggers():
            outcome = chart.outcome(state, trigger)
            if not isinstance(outcome, Refusal):
                continue
            assert outcome.reason.strip()
            model = SimpleNamespace(state=state)
            with pytest.raises(RefusedTrigger) as refused:
                chart.fire(model, trigger)
            assert refused.value.reason == outcome.reason and model.state == state
            walked += 1
    assert walked == sum(len(r.source) for r in chart.refusals)


@pytest.mark.parametrize(
    "name", ["c-find-scp", "c-get-scp", "c-move-scp"], ids=["find", "get", "move"]
)
def test_service_triggers_name_inputs_not_outcomes(name: str) -> None:
    """Design 1a: several outcomes share an input, told apart by guards."""
    chart = next(c for c in CHARTS if c.name == name)
    assert len(chart.triggers()) < len(chart.transitions) / 2
    guarded = [t for t in chart.transitions if t.guard]
    assert guarded and all(t.trigger != t.name for t in guarded)
