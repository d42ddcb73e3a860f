"""Plain-text tables: one matrix per metric (rows SCU, columns SCP), ratios, goals."""

from __future__ import annotations

from benchmarks.core import (
    BASELINES,
    IMPLEMENTATIONS,
    NOT_APPLICABLE,
    NOT_AVAILABLE,
    SUBJECT,
    Figure,
    Metric,
    WorkloadResult,
    goal_met,
)

_LABEL = 28
_CELL = 12


def render(result: WorkloadResult) -> str:
    lines = [f"== {result.name}: {result.title} ({result.seconds:.1f} s)"]
    lines += [f"   note: {note}" for note in result.notes]
    errors: list[str] = []
    for metric in result.metrics:
        lines.append("")
        lines += _matrix(result, metric, errors)
        if metric.show_ratios:
            lines += _ratios(result, metric)
    if result.goals:
        lines += ["", "goals:"]
        for goal in result.goals:
            value = result.goal_value(goal)
            met = goal_met(goal, value)
            verdict = {True: "met", False: "NOT MET", None: "n/a"}[met]
            shown = "-" if value is None else f"{value:.2f}"
            lines.append(f"  [{verdict:^7}] {goal.describe()}: {shown}")
    if errors:
        lines += ["", "failures:"] + [f"  {error}" for error in dict.fromkeys(errors)]
    return "\n".join(lines)


def _matrix(result: WorkloadResult, metric: Metric, errors: list[str]) -> list[str]:
    header = "SCU \\ SCP".ljust(_LABEL) + "".join(i.rjust(_CELL) for i in IMPLEMENTATIONS)
    lines = [metric.title, header]
    for scu in IMPLEMENTATIONS:
        cells = []
        for scp in IMPLEMENTATIONS:
            figure = result.figure(metric.key, scu, scp)
            cells.append(_cell(figure, errors))
        lines.append(f"{scu} SCU".ljust(_LABEL) + "".join(c.rjust(_CELL) for c in cells))
    if metric.footnote:
        lines.append(f"  ({metric.footnote})")
    return lines


def _ratios(result: WorkloadResult, metric: Metric) -> list[str]:
    """dimsefsm divided by each baseline, once as SCU (per SCP) and once as SCP (per SCU)."""
    lines = ["  ratios".ljust(_LABEL) + "".join(i.rjust(_CELL) for i in IMPLEMENTATIONS)]
    for role in ("SCU", "SCP"):
        for baseline in BASELINES:
            row = [
                _ratio(
                    _value(result, metric, role, SUBJECT, peer),
                    _value(result, metric, role, baseline, peer),
                )
                for peer in IMPLEMENTATIONS
            ]
            label = f"  {SUBJECT}/{baseline} {role}"
            lines.append(label.ljust(_LABEL) + "".join(c.rjust(_CELL) for c in row))
    lines.append("  (SCU rows: same SCP in each column; SCP rows: same SCU in each column)")
    return lines


def _value(result: WorkloadResult, metric: Metric, role: str, impl: str, peer: str) -> float | None:
    """The figure of ``impl`` in ``role`` with ``peer`` in the other role."""
    scu, scp = (impl, peer) if role == "SCU" else (peer, impl)
    return result.value(metric.key, scu, scp)


def _cell(figure: Figure | None, errors: list[str]) -> str:
    if figure is None:
        return "-"
    if figure.value is not None:
        return _number(figure.value)
    error = figure.error or "failed"
    if error.startswith(NOT_APPLICABLE):
        return "n/a"
    if error.startswith(NOT_AVAILABLE):
        return "unavail."
    errors.append(f"{figure.scu} SCU -> {figure.scp} SCP: {error}")
    return "failed"


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "-"
    return f"{value / reference:.2f}x"


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
