"""A chart is declared once, as data, and turned into a ``transitions.Machine``.

The declaration is the single source of truth for a protocol behaviour: the
machine that runs it, the diagram in ``statecharts/`` and the coverage gate of
the test suite all read the same :class:`Chart`.  One ``Machine`` is built per
chart and shared by every model (association, operation): building a machine
costs about a millisecond, attaching a model costs a dict write.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from logging import DEBUG
from typing import Any, Protocol

from transitions import EventData, Machine, MachineError

from dimsefsm import trace
from dimsefsm.fsm.coverage import RECORDER, Edge
from dimsefsm.fsm.lean import LeanMachine

SAME = "="
"""A destination meaning "stay in the source state" (transitions' reflexive dest)."""


class ChartError(Exception):
    """A chart was declared or driven in a way its table does not allow (a bug)."""


class RefusedTrigger(ChartError):
    """A trigger arrived in a state where the chart declares it refused.

    Carries the refusal so callers can turn it into the wire answer the
    protocol prescribes (for example a typed local error for a misused API).
    """

    def __init__(self, chart: str, state: str, trigger: str, reason: str) -> None:
        super().__init__(f"{chart}: {trigger} refused in {state}: {reason}")
        self.chart = chart
        self.state = state
        self.trigger = trigger
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Transition:
    """One named edge set: ``trigger`` moves ``source`` states to ``dest``.

    ``when`` is the one sentence that says in which situation it fires; it is
    shown in the docs and conformance tables.  ``guard``/``unless`` and
    ``action`` name methods of the model.  ``status`` is the DIMSE status (or
    other wire code) that the transition emits; the diagram labels the edge
    with it.
    """

    name: str
    trigger: str
    source: tuple[str, ...]
    dest: str
    when: str
    guard: str | None = None
    unless: str | None = None
    action: str | None = None
    status: int | None = None
    label: str | None = None


def transition(
    name: str,
    trigger: str,
    source: str | Iterable[str],
    dest: str,
    when: str,
    *,
    guard: str | None = None,
    unless: str | None = None,
    action: str | None = None,
    status: int | None = None,
    label: str | None = None,
) -> Transition:
    sources = (source,) if isinstance(source, str) else tuple(source)
    return Transition(name, trigger, sources, dest, when, guard, unless, action, status, label)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A (state, trigger) pair the chart rejects on purpose, with the reason."""

    trigger: str
    source: tuple[str, ...]
    reason: str


class _HasState(Protocol):
    state: str


@dataclass
class Chart:
    """The declaration of one state machine."""

    name: str
    states: tuple[str, ...]
    initial: str
    transitions: tuple[Transition, ...]
    refusals: tuple[Refusal, ...] = ()
    doc: str = ""
    final: tuple[str, ...] = ()
    register: bool = True
    _machine: Machine | None = field(default=None, init=False, repr=False)
    _refused: dict[tuple[str, str], Refusal] = field(default_factory=dict, init=False, repr=False)
    _status: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._validate()
        for refusal in self.refusals:
            for state in refusal.source:
                self._refused[(state, refusal.trigger)] = refusal
        for t in self.transitions:
            if t.status is not None:
                self._status[t.trigger] = t.status
        if self.register:
            _REGISTRY[self.name] = self

    @staticmethod
    def declared(event: EventData) -> Transition:
        """The declaration of the transition that is firing (for actions and guards)."""
        declared: Transition = event.transition.declared  # type: ignore[union-attr]
        return declared

    def status_of(self, trigger: str) -> int | None:
        """The status a trigger emits, for charts whose triggers name one outcome each."""
        return self._status.get(trigger)

    # -- declaration checks -------------------------------------------------
    def _validate(self) -> None:
        states = set(self.states)
        if self.initial not in states:
            raise ChartError(f"{self.name}: initial state {self.initial!r} is not declared")
        names: set[str] = set()
        edges: set[tuple[str, str]] = set()
        for t in self.transitions:
            if t.name in names:
                raise ChartError(f"{self.name}: transition {t.name!r} declared twice")
            names.add(t.name)
            unknown = (set(t.source) | ({t.dest} - {SAME})) - states
            if unknown:
                raise ChartError(f"{self.name}: {t.name} uses undeclared states {sorted(unknown)}")
            if not t.when.strip():
                raise ChartError(f"{self.name}: {t.name} has no condition sentence")
            for s in t.source:
                if (s, t.trigger) in edges:
                    raise ChartError(
                        f"{self.name}: {t.name} shadows an earlier unguarded {t.trigger} in {s}"
                    )
                if t.guard is None and t.unless is None:
                    edges.add((s, t.trigger))
        for r in self.refusals:
            for s in r.source:
                if s not in states:
                    raise ChartError(f"{self.name}: refusal uses undeclared state {s!r}")
                if any(r.trigger == t.trigger and s in t.source for t in self.transitions):
                    raise ChartError(
                        f"{self.name}: ({s}, {r.trigger}) is both refused and declared"
                    )

    # -- the machine ---------------------------------------------------------
    @property
    def machine(self) -> Machine:
        if self._machine is None:
            with self._lock:
                if self._machine is None:
                    self._machine = self._build()
        return self._machine

    def _build(self) -> Machine:
        machine = LeanMachine(
            model=None,
            states=list(self.states),
            initial=self.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
            name=self.name,
        )
        for t in self.transitions:
            # The recorder runs after the action: an edge whose action raised did not happen.
            after: list[Any] = [t.action, self._recorder(t)] if t.action else [self._recorder(t)]
            machine.add_transition(
                t.trigger,
                list(t.source),
                t.dest,
                conditions=[t.guard] if t.guard else None,
                unless=[t.unless] if t.unless else None,
                after=after,
            )
            # Each machine transition knows its declaration, so an action can read the
            # status of the edge that fired (``Chart.declared``) without a lookup by name.
            candidates = machine.events[t.trigger].transitions
            for s in t.source:
                candidates[s][-1].declared = t  # type: ignore[attr-defined]
        machine._refuse_unsupported()
        return machine

    def _recorder(self, t: Transition) -> Any:
        chart, name, label = self.name, t.name, t.label
        hit = RECORDER.hit
        tracing = trace.TRACE.isEnabledFor

        def record(event: EventData) -> None:
            transition = event.transition
            assert transition is not None
            hit(chart, name, transition.source)
            if tracing(DEBUG):
                trace.transition(
                    event.model, chart, label, name, transition.source, transition.dest
                )

        return record

    def attach(self, model: Any) -> None:
        """Put ``model`` in the initial state; it can then be driven with :meth:`fire`."""
        self.machine.set_state(self.initial, model=model)

    def fire(self, model: Any, trigger: str, *args: Any, **kwargs: Any) -> bool:
        """Fire ``trigger`` on ``model``; refusals and undeclared pairs raise."""
        refusal = self._refused.get((model.state, trigger))
        if refusal is not None:
            raise RefusedTrigger(self.name, model.state, trigger, refusal.reason)
        event = self.machine.events.get(trigger)
        if event is None:
            raise ChartError(f"{self.name}: undeclared trigger {trigger!r}")
        try:
            return bool(event.trigger(model, *args, **kwargs))
        except MachineError as exc:
            raise ChartError(f"{self.name}: {trigger} is not declared in {model.state}") from exc

    # -- views for rendering, docs and coverage ------------------------------
    def edges(self) -> Iterator[tuple[Transition, str]]:
        for t in self.transitions:
            for s in t.source:
                yield t, s

    @staticmethod
    def destination(t: Transition, source: str) -> str:
        return source if t.dest == SAME else t.dest

    def declared_edges(self) -> tuple[Edge, ...]:
        return tuple((t.name, s) for t, s in self.edges())

    def triggers(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for t in self.transitions:
            seen.setdefault(t.trigger, None)
        for r in self.refusals:
            seen.setdefault(r.trigger, None)
        return tuple(seen)

    def guard_text(self, t: Transition) -> str | None:
        """The guard as the diagram shows it: ``failure status``, ``not x``, or ``else``.

        An unguarded transition that shares its (state, input) with guarded ones is
        the fallback taken when none of their guards holds: ``else``.
        """
        if t.guard is not None:
            return t.guard.replace("_", " ")
        if t.unless is not None:
            return "not " + t.unless.replace("_", " ")
        sources = set(t.source)
        if any(
            o is not t and o.trigger == t.trigger and sources.intersection(o.source)
            for o in self.transitions
        ):
            return "else"
        return None

    def edge_label(self, t: Transition) -> str:
        """``input [guard] / status``: what arrived, what decided, what went out."""
        if t.label is not None:
            return t.label
        text = t.trigger
        guard = self.guard_text(t)
        if guard is not None:
            text += f" [{guard}]"
        if t.status is not None:
            text += f" / 0x{t.status:04X}"
        return text

    def gaps(self) -> list[str]:
        """Where the table is not total: a (state, input) pair with no transition and no
        refusal, or whose guarded transitions can all fail (no ``else``, no guard paired
        with its own ``unless``), leaving the input silently unanswered."""
        found: list[str] = []
        for state in self.states:
            for trigger in self.triggers():
                cell = self.outcome(state, trigger)
                if cell is None:
                    found.append(f"({state}, {trigger}) is neither a transition nor a refusal")
                elif isinstance(cell, list) and not _exhaustive(cell):
                    found.append(f"({state}, {trigger}): every guard can fail, add an else")
        return found

    def outcome(self, state: str, trigger: str) -> list[Transition] | Refusal | None:
        """What the table says for (state, trigger): transitions, a refusal, or nothing."""
        refusal = self._refused.get((state, trigger))
        if refusal is not None:
            return refusal
        found = [t for t in self.transitions if t.trigger == trigger and state in t.source]
        return found or None


def _exhaustive(cell: list[Transition]) -> bool:
    """True when one of the cell's transitions fires whatever the guards say."""
    if cell[-1].guard is None and cell[-1].unless is None:
        return True
    guards = {t.guard for t in cell if t.guard is not None and t.unless is None}
    return any(t.unless in guards for t in cell if t.guard is None)


_REGISTRY: dict[str, Chart] = {}


def registered_charts() -> dict[str, Chart]:
    return dict(_REGISTRY)
