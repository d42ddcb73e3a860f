"""pytest plugin: a transition-coverage table per chart, and a gate.

Enabled with ``--chart-gate=PERCENT``; the run fails when any chart's fired
edges fall below the gate.  The table names the missing edges so the next test
to write is obvious.
"""

from __future__ import annotations

from typing import Any

import pytest

from dimsefsm.fsm.coverage import RECORDER, ChartCoverage


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dimsefsm")
    group.addoption(
        "--chart-gate",
        type=float,
        default=None,
        help="fail unless every chart's transition coverage is at least this percent",
    )


def _reports() -> list[ChartCoverage]:
    from dimsefsm.charts import all_charts

    return [RECORDER.report(c.name, c.declared_edges()) for c in all_charts()]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    gate = config.getoption("--chart-gate")
    if gate is None:
        return
    tr = terminalreporter
    tr.section("transition coverage per chart")
    failing = []
    for rep in _reports():
        fired = len(rep.declared) - len(rep.missing)
        tr.write_line(f"{rep.chart:<24} {fired:>4}/{len(rep.declared):<4} {rep.percent:6.1f}%")
        for name, source in rep.missing:
            tr.write_line(f"    missing: {name} from {source}")
        if rep.percent < gate:
            failing.append(rep.chart)
    if failing:
        tr.write_line(f"FAIL: below the {gate:.0f}% gate: {', '.join(failing)}", red=True)
        config._dimsefsm_gate_failed = True  # type: ignore[attr-defined]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if config.getoption("--chart-gate") is None:
        return
    gate = config.getoption("--chart-gate")
    if any(rep.percent < gate for rep in _reports()) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
