"""Transition coverage, recorded by the machines themselves.

Every declared edge (transition name, source state) gets a ``before`` callback
on the ``transitions.Machine`` that bumps a counter here, so coverage can only
come from a transition that really fired: nothing marks edges by hand.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Edge = tuple[str, str]  # (transition name, source state)


@dataclass(frozen=True)
class ChartCoverage:
    chart: str
    declared: tuple[Edge, ...]
    fired: frozenset[Edge]

    @property
    def missing(self) -> tuple[Edge, ...]:
        return tuple(e for e in self.declared if e not in self.fired)

    @property
    def percent(self) -> float:
        if not self.declared:
            return 100.0
        return 100.0 * (len(self.declared) - len(self.missing)) / len(self.declared)


@dataclass
class FiredDuring:
    """The edges that fired inside a :meth:`CoverageRecorder.during` block, per chart."""

    _edges: dict[str, frozenset[Edge]] = field(default_factory=dict)

    def fired(self, chart: str) -> frozenset[Edge]:
        return self._edges.get(chart, frozenset())


class CoverageRecorder:
    """Counts fired edges per chart; cheap enough to stay on in production."""

    def __init__(self) -> None:
        self._hits: dict[str, Counter[Edge]] = {}
        self._lock = threading.Lock()

    def hit(self, chart: str, name: str, source: str) -> None:
        counter = self._hits.get(chart)
        if counter is None:
            with self._lock:
                counter = self._hits.setdefault(chart, Counter())
        counter[(name, source)] += 1

    def fired(self, chart: str) -> frozenset[Edge]:
        return frozenset(self._hits.get(chart, Counter()))

    def count(self, chart: str, name: str, source: str | None = None) -> int:
        counter = self._hits.get(chart, Counter())
        return sum(n for (t, s), n in counter.items() if t == name and source in (None, s))

    def report(self, chart: str, declared: tuple[Edge, ...]) -> ChartCoverage:
        return ChartCoverage(chart, declared, self.fired(chart))

    @contextmanager
    def during(self) -> Iterator[FiredDuring]:
        """Which edges fire inside the block, whatever ran before it.

        A "both charts fully covered" test runs its scenarios inside this block,
        so its verdict does not depend on which tests ran earlier (nor on their order).
        """
        with self._lock:
            before = {chart: Counter(hits) for chart, hits in self._hits.items()}
        result = FiredDuring()
        yield result
        with self._lock:
            for chart, hits in self._hits.items():
                old = before.get(chart, Counter())
                result._edges[chart] = frozenset(e for e, n in hits.items() if n > old[e])

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()


RECORDER = CoverageRecorder()
