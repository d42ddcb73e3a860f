"""A ``transitions.Machine`` trimmed to what a :class:`~dimsefsm.fsm.chart.Chart` uses.

A chart's machine only ever needs conditions, ``before`` callbacks (coverage)
and ``after`` callbacks (actions); it has no state enter/exit callbacks, no
machine-wide hooks and no queue.  ``transitions``' stock ``Event.trigger``
pays for all of those on every step (a ``partial``, a queue check, eight
debug/info log calls, ``get_state`` lookups), about two thirds of a trigger's
cost, and a DIMSE round trip fires four to six triggers.  These subclasses
use ``transitions``' own extension points (``event_cls``, ``transition_cls``)
to skip that bookkeeping while keeping its semantics: the same ``EventData``
reaches every callback, conditions are ``transitions.Condition`` objects,
string callbacks resolve on the model, an undeclared source raises
``MachineError``.  :meth:`LeanMachine._refuse_unsupported` keeps the
trimmed features from being configured by accident.
"""

from __future__ import annotations

from typing import Any

from transitions import EventData, Machine, MachineError
from transitions.core import Event, Transition


class LeanTransition(Transition):
    """Conditions, then ``before``, the state change, then ``after``.

    A condition or callback named by a string is the model's method of that name
    (charts name nothing else); a callable is called as is.  Resolving the name
    here, instead of through ``Machine.resolve_callable`` with its fallbacks, keeps
    a guard at the cost of a method call.
    """

    def execute(self, event_data: EventData) -> bool:
        if not self.passes(event_data):
            return False
        self.run(event_data)
        return True

    def passes(self, event_data: EventData) -> bool:
        """All conditions hold (``unless`` conditions are stored with target False)."""
        model = event_data.model
        for condition in self.conditions:
            func: Any = condition.func
            check = getattr(model, func) if func.__class__ is str else func
            if check(event_data) != condition.target:
                return False
        return True

    def run(self, event_data: EventData) -> None:
        model = event_data.model
        machine = event_data.machine
        func: Any
        for func in self.before:
            (getattr(model, func) if func.__class__ is str else func)(event_data)
        if self.dest:
            setattr(model, machine.model_attribute, self.dest)
            event_data.state = machine.states[self.dest]
        for func in self.after:
            (getattr(model, func) if func.__class__ is str else func)(event_data)


class LeanEvent(Event):
    """Runs the candidate transitions of the model's state, first success wins.

    A guarded input usually tries several candidates before one passes (a status
    is tested for Success, then Warning ...), so an unguarded candidate skips the
    condition loop altogether.
    """

    def trigger(self, model: Any, *args: Any, **kwargs: Any) -> bool:
        machine = self.machine
        state = getattr(model, machine.model_attribute)
        candidates = self.transitions.get(state)
        if not candidates:
            raise MachineError(f"{machine.name}Can't trigger event {self.name} from state {state}!")
        event_data = EventData(machine.states[state], self, machine, model, args, kwargs)
        for candidate in candidates:
            event_data.transition = candidate
            if not candidate.conditions or candidate.passes(event_data):  # type: ignore[attr-defined]
                candidate.run(event_data)  # type: ignore[attr-defined]
                event_data.result = True
                return True
        return False


class LeanMachine(Machine):
    """Needs ``send_event=True``: every callback gets the one ``EventData``."""

    transition_cls = LeanTransition
    event_cls = LeanEvent

    def _refuse_unsupported(self) -> None:
        """Fail loudly if a hook the lean classes skip was configured."""
        hooks = (
            self.prepare_event,
            self.finalize_event,
            self.before_state_change,
            self.after_state_change,
            self.on_exception,
            self.on_final,
        )
        if not self.send_event:
            raise ValueError(f"{self.name}: LeanMachine passes EventData (send_event=True)")
        if any(hooks) or self.has_queue:
            raise ValueError(f"{self.name}: LeanMachine supports no machine-wide hooks or queue")
        for state in self.states.values():
            if state.on_enter or state.on_exit or state.final:
                raise ValueError(f"{self.name}: LeanMachine supports no state callbacks")
        for event in self.events.values():
            for transition in (t for ts in event.transitions.values() for t in ts):
                if transition.prepare:
                    raise ValueError(f"{self.name}: LeanMachine supports no prepare callbacks")
