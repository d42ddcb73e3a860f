"""The committed diagrams are exactly what the chart declarations render now."""

from __future__ import annotations

from pathlib import Path

import pytest

from dimsefsm.charts import all_charts
from dimsefsm.conformance import render as render_conformance
from dimsefsm.fsm.chart import Chart
from dimsefsm.fsm.render import to_dot, to_svg

REPO = Path(__file__).resolve().parents[2]
STATECHARTS = REPO / "statecharts"
CHARTS = all_charts()


@pytest.mark.parametrize("chart", CHARTS, ids=[c.name for c in CHARTS])
def test_committed_diagram_is_fresh(chart: Chart) -> None:
    """The DOT is compared byte for byte; the SVG only exists (its bytes vary with the
    installed graphviz version, not with the chart)."""
    dot_path = STATECHARTS / f"{chart.name}.dot"
    svg_path = STATECHARTS / f"{chart.name}.svg"
    assert dot_path.exists(), f"{dot_path.name} missing: run `make statecharts`"
    assert svg_path.exists(), f"{svg_path.name} missing: run `make statecharts`"
    assert dot_path.read_text() == to_dot(chart), (
        f"{dot_path.name} is stale: run `make statecharts`"
    )


def test_svg_shows_the_when_sentence_of_an_edge_on_hover() -> None:
    chart = next(c for c in CHARTS if c.name == "c-store-scp")
    svg = to_svg(chart)
    assert svg.lstrip().startswith("<?xml")
    mistyped = next(t for t in chart.transitions if t.name == "mistyped")
    assert f'xlink:title="{mistyped.when}"' in svg
    assert "request_received [arguments missing] / 0x0212" in svg


def test_no_orphan_diagrams() -> None:
    names = {c.name for c in CHARTS}
    orphans = [p.name for p in STATECHARTS.glob("*.dot") if p.stem not in names]
    assert orphans == []


def test_upper_layer_diagram_shows_the_ps38_machine() -> None:
    dot_text = (STATECHARTS / "upper-layer.dot").read_text()
    for n in range(1, 14):
        assert f"\tSta{n} [label=Sta{n}" in dot_text
    svg = (STATECHARTS / "upper-layer.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "Sta13" in svg


def test_committed_conformance_statement_is_fresh() -> None:
    path = REPO / "docs" / "conformance.md"
    assert path.exists(), "docs/conformance.md missing: run `make statecharts`"
    assert path.read_text() == render_conformance(), "docs/conformance.md is stale"


def test_conformance_statement_lists_each_move_failure_with_its_condition() -> None:
    text = render_conformance()
    section = text.split("### c-move-scp", 1)[1].split("###", 1)[0]
    for code in ("0xC510", "0xC511", "0xC513", "0xC514", "0xC515", "0xA801"):
        row = next(line for line in section.splitlines() if f"| {code} |" in line)
        cells = [cell.strip() for cell in row.strip("| ").split(" | ")]
        assert len(cells) == 7 and cells[5].startswith("Failure") and cells[6].endswith(".")
    assert "| Patient/Study Only Query/Retrieve Information Model - FIND (Retired) |" in text
