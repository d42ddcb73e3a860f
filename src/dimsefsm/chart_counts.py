"""pytest plugin: ``--chart-counts FILE`` writes how often each chart edge fired in the run.

The coverage gate (:mod:`dimsefsm.fsm.pytest_plugin`) says whether every edge
fired; the counts say how much each one is exercised.  ``make test`` writes
them to ``docs/_build/chart-counts.json`` and the site's chart gallery draws
them on the edges (``docs/_ext/dimsefsm_docs.py``).  The file maps each chart
to ``{"<transition> from <source state>": count}`` for every declared edge.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dimsefsm.fsm.coverage import RECORDER


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("dimsefsm").addoption(
        "--chart-counts",
        default=None,
        metavar="FILE",
        help="write each chart edge's firing count in this run to FILE (JSON)",
    )


def edge_key(name: str, source: str) -> str:
    return f"{name} from {source}"


def counts() -> dict[str, dict[str, int]]:
    from dimsefsm.charts import all_charts

    return {
        chart.name: {
            edge_key(name, source): RECORDER.count(chart.name, name, source)
            for name, source in chart.declared_edges()
        }
        for chart in all_charts()
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = session.config.getoption("--chart-counts")
    if target:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(counts(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
