"""The chart toolkit: declaration checks, machine behaviour, coverage, rendering."""

from __future__ import annotations

import pytest
from transitions import EventData, State

from dimsefsm.fsm import RECORDER, Chart, ChartError, Refusal, RefusedTrigger, transition
from dimsefsm.fsm.chart import SAME
from dimsefsm.fsm.lean import LeanMachine
from dimsefsm.fsm.render import to_dot

DOOR = Chart(
    name="test-door",
    states=("Closed", "Open", "Broken"),
    initial="Closed",
    final=("Broken",),
    transitions=(
        transition(
            "open",
            "push",
            "Closed",
            "Open",
            when="Someone pushes a closed door.",
            guard="unlocked",
            action="creak",
        ),
        transition(
            "jammed",
            "push",
            "Closed",
            "Broken",
            when="Someone pushes a locked door.",
            unless="unlocked",
            status=0xC001,
        ),
        transition("close", "pull", "Open", "Closed", when="Someone pulls an open door."),
    ),
    refusals=(Refusal("pull", ("Closed",), "a closed door cannot be pulled shut"),),
    register=False,
)


class Door:
    state: str

    def __init__(self, unlocked: bool) -> None:
        self._unlocked = unlocked
        self.sounds: list[object] = []
        DOOR.attach(self)

    def unlocked(self, event: EventData) -> bool:
        return self._unlocked

    def creak(self, event: EventData) -> None:
        self.sounds.append(event.kwargs.get("loud"))


def test_guards_choose_the_transition_and_actions_get_kwargs() -> None:
    door = Door(unlocked=True)
    assert DOOR.fire(door, "push", loud=True)
    assert door.state == "Open" and door.sounds == [True]
    locked = Door(unlocked=False)
    DOOR.fire(locked, "push")
    assert locked.state == "Broken" and locked.sounds == []


def test_refusal_raises_with_its_reason() -> None:
    with pytest.raises(RefusedTrigger, match="cannot be pulled shut") as info:
        DOOR.fire(Door(True), "pull")
    assert info.value.state == "Closed" and info.value.trigger == "pull"


def test_undeclared_trigger_and_undeclared_pair_raise() -> None:
    door = Door(True)
    with pytest.raises(ChartError, match="undeclared trigger"):
        DOOR.fire(door, "kick")
    door.state = "Broken"
    with pytest.raises(ChartError, match="not declared in Broken"):
        DOOR.fire(door, "push")


def test_coverage_counts_edges_from_the_machine_callbacks() -> None:
    before = RECORDER.count("test-door", "close", "Open")
    door = Door(True)
    DOOR.fire(door, "push")
    DOOR.fire(door, "pull")
    assert RECORDER.count("test-door", "close", "Open") == before + 1
    assert ("close", "Open") in RECORDER.fired("test-door")


def test_declaration_errors_are_caught() -> None:
    with pytest.raises(ChartError, match="undeclared states"):
        Chart("bad-1", ("A",), "A", (transition("t", "go", "A", "B", when="Never."),))
    with pytest.raises(ChartError, match="declared twice"):
        Chart(
            "bad-2",
            ("A",),
            "A",
            (
                transition("t", "go", "A", "A", when="x."),
                transition("t", "go2", "A", "A", when="y."),
            ),
        )
    with pytest.raises(ChartError, match="shadows"):
        Chart(
            "bad-3",
            ("A",),
            "A",
            (
                transition("t", "go", "A", "A", when="x."),
                transition("u", "go", "A", "A", when="y."),
            ),
        )
    with pytest.raises(ChartError, match="shadows"):
        Chart(
            "bad-3b",
            ("A",),
            "A",
            (
                transition("t", "go", "A", "A", when="x."),
                transition("u", "go", "A", "A", when="y.", guard="never_reached"),
            ),
        )
    with pytest.raises(ChartError, match="both refused and declared"):
        Chart(
            "bad-4",
            ("A",),
            "A",
            (transition("t", "go", "A", "A", when="x."),),
            refusals=(Refusal("go", ("A",), "no"),),
        )
    with pytest.raises(ChartError, match="condition sentence"):
        Chart("bad-5", ("A",), "A", (transition("t", "go", "A", "A", when=" "),))
    with pytest.raises(ChartError, match="initial state"):
        Chart("bad-6", ("A",), "Z", ())


def test_dot_labels_each_edge_input_guard_status_once() -> None:
    dot = to_dot(DOOR)
    assert (
        'Closed -> Broken [label="push [not unlocked] / 0xC001" color=red3 fontcolor=red3'
    ) in dot
    assert 'Closed -> Open [label="push [unlocked]"' in dot
    assert "Open -> Closed [label=pull " in dot
    assert "jammed" not in dot and ": " not in dot  # no "trigger: name" labels
    assert "Broken [label=Broken peripheries=2]" in dot
    assert DOOR.status_of("push") == 0xC001


def test_dot_carries_the_when_sentences_as_tooltips() -> None:
    dot = to_dot(DOOR)
    assert 'tooltip="Someone pushes a locked door."' in dot
    assert 'labeltooltip="Someone pulls an open door."' in dot


LOOPS = Chart(
    name="test-loops",
    states=("Idle", "Busy"),
    initial="Idle",
    transitions=(
        transition("start", "go", "Idle", "Busy", when="Work arrives."),
        transition("tick", "tick", "Busy", SAME, when="A clock tick.", status=0xFF00),
        transition("tock", "tock", "Busy", "Busy", when="The other tick.", status=0xFF01),
        transition("idle_tick", "tick", "Idle", SAME, when="A tick while idle."),
    ),
    register=False,
)


def test_parallel_self_loops_are_drawn_as_one_edge() -> None:
    dot = to_dot(LOOPS)
    assert dot.count("Busy -> Busy") == 1 and dot.count("Idle -> Idle") == 1
    assert 'Busy -> Busy [label="tick / 0xFF00\\ntock / 0xFF01" color=royalblue' in dot
    assert 'tooltip="A clock tick.\\nThe other tick."' in dot


def test_an_unguarded_transition_after_guarded_ones_reads_else() -> None:
    chart = Chart(
        name="test-else",
        states=("A", "B", "C"),
        initial="A",
        transitions=(
            transition("b", "go", "A", "B", when="x.", guard="ready"),
            transition("c", "go", "A", "C", when="y."),
        ),
        register=False,
    )
    assert [chart.edge_label(t) for t in chart.transitions] == ["go [ready]", "go [else]"]


def test_gaps_name_every_unspecified_pair_and_every_guard_that_can_fail() -> None:
    assert DOOR.gaps() == [
        "(Open, push) is neither a transition nor a refusal",
        "(Broken, push) is neither a transition nor a refusal",
        "(Broken, pull) is neither a transition nor a refusal",
    ]
    gate_gaps = GATE.gaps()
    assert "(Shut, push): every guard can fail, add an else" in gate_gaps


def test_outcome_reports_table_cells() -> None:
    assert isinstance(DOOR.outcome("Closed", "pull"), Refusal)
    cell = DOOR.outcome("Closed", "push")
    assert isinstance(cell, list) and [t.name for t in cell] == ["open", "jammed"]
    assert DOOR.outcome("Broken", "pull") is None


GATE = Chart(
    name="test-gate",
    states=("Shut", "Ajar"),
    initial="Shut",
    transitions=(
        transition(
            "swing",
            "push",
            "Shut",
            "Ajar",
            when="The latch is up.",
            guard="latch_up",
            action="fail",
        ),
        transition("stay", "wait", "Shut", SAME, when="Nobody comes.", action="note"),
    ),
    register=False,
)


class Gate:
    state: str

    def __init__(self, latch_up: bool) -> None:
        self._latch_up = latch_up
        self.seen: list[tuple[str, str]] = []
        GATE.attach(self)

    def latch_up(self, event: EventData) -> bool:
        return self._latch_up

    def fail(self, event: EventData) -> None:
        raise RuntimeError("hinge broke")

    def note(self, event: EventData) -> None:
        assert event.transition is not None
        self.seen.append((event.transition.source, event.state.name))


def test_a_trigger_whose_guards_all_fail_returns_false_and_stays() -> None:
    gate = Gate(latch_up=False)
    assert GATE.fire(gate, "push") is False
    assert gate.state == "Shut"


def test_an_action_exception_propagates_after_the_state_change() -> None:
    """As in stock transitions: ``after`` callbacks run once the state has changed."""
    gate = Gate(latch_up=True)
    with pytest.raises(RuntimeError, match="hinge broke"):
        GATE.fire(gate, "push")
    assert gate.state == "Ajar"


def test_coverage_counts_a_transition_only_once_its_action_succeeded() -> None:
    before = RECORDER.count("test-gate", "swing"), RECORDER.count("test-gate", "stay")
    with pytest.raises(RuntimeError, match="hinge broke"):
        GATE.fire(Gate(latch_up=True), "push")
    GATE.fire(Gate(latch_up=True), "wait")
    assert RECORDER.count("test-gate", "swing") == before[0]
    assert RECORDER.count("test-gate", "stay") == before[1] + 1


def test_a_reflexive_transition_reports_its_source_and_new_state() -> None:
    gate = Gate(latch_up=True)
    assert GATE.fire(gate, "wait")
    assert gate.seen == [("Shut", "Shut")]


def test_lean_machine_refuses_hooks_it_does_not_run() -> None:
    with pytest.raises(ValueError, match="passes EventData"):
        LeanMachine(states=["A"], initial="A")._refuse_unsupported()
    with pytest.raises(ValueError, match="no state callbacks"):
        LeanMachine(
            states=[State("A", on_enter="x")], initial="A", send_event=True
        )._refuse_unsupported()
    with pytest.raises(ValueError, match="machine-wide hooks"):
        LeanMachine(
            states=["A"], initial="A", finalize_event="x", send_event=True
        )._refuse_unsupported()
    machine = LeanMachine(states=["A"], initial="A", auto_transitions=False, send_event=True)
    machine.add_transition("go", "A", "A", prepare="x")
    with pytest.raises(ValueError, match="no prepare callbacks"):
        machine._refuse_unsupported()
