"""Every (state, input) pair of every chart listed below, walked in memory.

The upper layer's table was total from the start (PS3.8 Table 9-10); the service
charts and the association outcome now are too.  For each pair the chart either
declares transitions, whose guards together always choose one (the last is an
``else``, or a guard is paired with its ``unless``), or a refusal with its reason.
The walk fires each pair on a probe model whose guards say what the test wants:
each transition of a cell is reached with the guards before it false and its own
true, lands in its declared state and runs its declared action; each refusal
raises ``RefusedTrigger`` with its reason.  The probe runs on a copy of the chart
under another name, so the walk adds nothing to the coverage gate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from dimsefsm.charts import all_charts
from dimsefsm.fsm import Chart, Refusal, RefusedTrigger, Transition
from dimsefsm.fsm.chart import registered_charts

WALKED = (
    "association",
    "c-echo-scp",
    "c-echo-scu",
    "c-find-scp",
    "c-find-scu",
    "c-get-scp",
    "c-get-scu",
    "c-move-scp",
    "c-move-scu",
    "c-store-scp",
    "c-store-scu",
    "mpps",
    *(
        f"n-{op}-{side}"
        for op in ("event-report", "get", "set", "action", "create", "delete")
        for side in ("scp", "scu")
    ),
    "storage-commitment-scp",
    "upper-layer",
)
"""Every chart: the walk checks them all."""

all_charts()  # registers every chart
CHARTS = [chart for name, chart in sorted(registered_charts().items()) if name in WALKED]


class Probe:
    """A model whose guards answer from ``truth`` and whose actions are recorded."""

    state: str

    def __init__(self, truth: dict[str, bool]) -> None:
        self._truth = truth
        self.actions: list[str] = []

    def __getattr__(self, name: str) -> Callable[[Any], Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        truth, actions = self.__dict__["_truth"], self.__dict__["actions"]
        if name in truth:
            return lambda event: truth[name]
        return lambda event: actions.append(name)


def guards_to_reach(cell: list[Transition], index: int) -> dict[str, bool]:
    """Guard values under which ``cell[index]`` is the transition that fires."""
    truth: dict[str, bool] = {}

    def need(name: str, value: bool) -> None:
        assert truth.get(name, value) == value, f"{cell[index].name} is unreachable"
        truth[name] = value

    for earlier in cell[:index]:
        if earlier.guard is not None:
            need(earlier.guard, False)
        if earlier.unless is not None:
            need(earlier.unless, True)
    target = cell[index]
    if target.guard is not None:
        need(target.guard, True)
    if target.unless is not None:
        need(target.unless, False)
    return truth


@pytest.mark.parametrize("chart", CHARTS, ids=[c.name for c in CHARTS])
def test_table_is_total(chart: Chart) -> None:
    assert chart.gaps() == []
    for refusal in chart.refusals:
        assert refusal.reason.strip(), f"{chart.name}: a refusal of {refusal.trigger} says nothing"


@pytest.mark.parametrize("chart", CHARTS, ids=[c.name for c in CHARTS])
def test_every_pair_does_what_the_table_says(chart: Chart) -> None:
    walk = dataclasses.replace(chart, name=f"{chart.name} (walk)", register=False)
    pairs = 0
    for state in chart.states:
        for trigger in chart.triggers():
            cell = chart.outcome(state, trigger)
            pairs += 1
            if isinstance(cell, Refusal):
                probe = Probe({})
                walk.machine.set_state(state, model=probe)
                with pytest.raises(RefusedTrigger) as refused:
                    walk.fire(probe, trigger)
                assert refused.value.reason == cell.reason and probe.state == state
                continue
            assert cell is not None, f"{chart.name}: ({state}, {trigger}) unspecified"
            for index, t in enumerate(cell):
                probe = Probe(guards_to_reach(cell, index))
                walk.machine.set_state(state, model=probe)
                assert walk.fire(probe, trigger), f"{t.name} did not fire from {state}"
                assert probe.state == chart.destination(t, state), t.name
                assert probe.actions == ([t.action] if t.action else []), t.name
    assert pairs == len(chart.states) * len(chart.triggers())


def test_every_listed_chart_exists() -> None:
    assert sorted(c.name for c in CHARTS) == sorted(WALKED)


def test_the_walk_itself_counts_no_coverage() -> None:
    from dimsefsm.fsm import RECORDER

    chart = next(c for c in CHARTS if c.name == "c-echo-scu")
    with RECORDER.during() as run:
        test_every_pair_does_what_the_table_says(chart)
    assert run.fired("c-echo-scu") == frozenset()
    assert run.fired("c-echo-scu (walk)") != frozenset()


def test_every_registered_chart_is_walked() -> None:
    assert sorted(registered_charts()) == sorted(WALKED)


@pytest.mark.parametrize(
    "name", ["c-find-scp", "c-get-scp", "c-move-scp"], ids=["find", "get", "move"]
)
def test_service_triggers_name_inputs_not_outcomes(name: str) -> None:
    """Design 1a: several outcomes share an input, told apart by guards."""
    chart = next(c for c in CHARTS if c.name == name)
    assert len(chart.triggers()) < len(chart.transitions) / 2
    guarded = [t for t in chart.transitions if t.guard]
    assert guarded and all(t.trigger != t.name for t in guarded)
