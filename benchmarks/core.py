"""Shared vocabulary of the benchmark: figures, metrics, goals, settings.

A figure is one number for one (SCU, SCP) pair, so every workload renders as the
same matrix and the ratios between implementations come out of one routine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

REPO_ROOT = Path(__file__).resolve().parent.parent

# The order of rows and columns in every table; "dimsefsm" first as it is the subject.
IMPLEMENTATIONS: tuple[str, ...] = ("dimsefsm", "pynetdicom", "dcmtk")
SUBJECT = "dimsefsm"
BASELINES: tuple[str, ...] = ("pynetdicom", "dcmtk")
# Every client proposes this calling AE title.
CALLING_AE = "BENCH"
# A figure's error starting with one of these is not a failure: the table says "n/a" or
# "unavail." there and the failures list leaves it out.
NOT_APPLICABLE = "n/a"
NOT_AVAILABLE = "not available"


@dataclass(frozen=True)
class Settings:
    quick: bool = False
    scale: int | None = None
    """Instances of the scale workload's archive (None: its default, or its quick size)."""


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str
    higher_is_better: bool = True
    # Ratios of idle CPU are noise over noise (dcmtk idles at 0): print them only for rates.
    show_ratios: bool = True
    # Printed under the table, e.g. how a baseline was measured differently.
    footnote: str = ""

    def formatted(self, **values: object) -> Metric:
        """The same metric with a run's counts and sizes filled into its title."""
        return replace(self, title=self.title.format(**values))


@dataclass
class Figure:
    metric: str
    scu: str
    scp: str
    value: float | None = None
    error: str | None = None
    detail: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Goal:
    """A target from the issue: an absolute bound, or a ratio to another cell."""

    metric: str
    cell: tuple[str, str]
    minimum: float | None = None
    maximum: float | None = None
    versus: tuple[str, str] | None = None

    def describe(self) -> str:
        scu, scp = self.cell
        what = f"{self.metric} {scu} SCU -> {scp} SCP"
        if self.versus is not None:
            what += f" / ({self.versus[0]} SCU -> {self.versus[1]} SCP)"
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        return f"{what} {' and '.join(bounds)}"


@dataclass
class WorkloadResult:
    name: str
    title: str
    metrics: tuple[Metric, ...]
    figures: list[Figure] = field(default_factory=list)
    goals: tuple[Goal, ...] = ()
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def figure(self, metric: str, scu: str, scp: str) -> Figure | None:
        for figure in self.figures:
            if (figure.metric, figure.scu, figure.scp) == (metric, scu, scp):
                return figure
        return None

    def value(self, metric: str, scu: str, scp: str) -> float | None:
        figure = self.figure(metric, scu, scp)
        return None if figure is None else figure.value

    def goal_value(self, goal: Goal) -> float | None:
        value = self.value(goal.metric, *goal.cell)
        if value is None or goal.versus is None:
            return value
        reference = self.value(goal.metric, *goal.versus)
        if not reference:
            return None
        return value / reference

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "metrics": [asdict(metric) for metric in self.metrics],
            "figures": [figure.as_json() for figure in self.figures],
            "goals": [
                {
                    "goal": goal.describe(),
                    "value": self.goal_value(goal),
                    "met": goal_met(goal, self.goal_value(goal)),
                }
                for goal in self.goals
            ],
        }


def goal_met(goal: Goal, value: float | None) -> bool | None:
    if value is None:
        return None
    if goal.minimum is not None and value < goal.minimum:
        return False
    return not (goal.maximum is not None and value > goal.maximum)


class Workload(Protocol):
    name: str
    description: str

    def run(self, settings: Settings) -> WorkloadResult: ...
