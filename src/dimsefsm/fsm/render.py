"""DOT and SVG diagrams, generated from the chart declarations.

Diagrams are never drawn by hand: ``make statecharts`` runs this module, and a
test compares the committed files with what the charts render now.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from dimsefsm.fsm.chart import Chart, Transition


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _edge_colour(status: int | None) -> str:
    if status is None:
        return "black"
    if status == 0x0000:
        return "darkgreen"
    if status in (0xFF00, 0xFF01):
        return "royalblue"
    if status == 0xFE00:
        return "purple"
    if (status & 0xF000) == 0xB000 or status in (0x0001, 0x0107, 0x0116):
        return "darkorange"
    return "red3"


def _edge_label(t: Transition) -> str:
    label = t.label or f"{t.trigger}: {t.name}"
    if t.status is not None:
        label += f"\\n0x{t.status:04X}"
    return label


def to_dot(chart: Chart) -> str:
    """The chart as DOT text; stable ordering so the output can be diffed."""
    lines = [
        f"digraph {_quote(chart.name)} {{",
        "  rankdir=LR;",
        f"  label={_quote(chart.name)}; labelloc=t; fontsize=20;",
        '  node [shape=box, style="rounded", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=9];',
        '  __start [shape=point, label=""];',
        f"  __start -> {_quote(chart.initial)};",
    ]
    for state in chart.states:
        attrs = ", peripheries=2" if state in chart.final else ""
        lines.append(f"  {_quote(state)} [label={_quote(state)}{attrs}];")
    for t, source in chart.edges():
        colour = _edge_colour(t.status)
        width = ", penwidth=2" if colour == "red3" else ""
        lines.append(
            f"  {_quote(source)} -> {_quote(chart.destination(t, source))} "
            f'[label="{_edge_label(t)}", color={colour}, fontcolor={colour}{width}];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(dot_text: str) -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("graphviz 'dot' is not installed (apt-get install graphviz)")
    result = subprocess.run(
        [dot, "-Tsvg"], input=dot_text.encode(), capture_output=True, check=True
    )
    return result.stdout.decode()


def render_all(out_dir: Path) -> list[Path]:
    """Write ``<chart>.dot`` and ``<chart>.svg`` for every chart into ``out_dir``."""
    from dimsefsm.charts import all_charts

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for chart in all_charts():
        dot_text = to_dot(chart)
        dot_path = out_dir / f"{chart.name}.dot"
        svg_path = out_dir / f"{chart.name}.svg"
        dot_path.write_text(dot_text)
        svg_path.write_text(to_svg(dot_text))
        written += [dot_path, svg_path]
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else Path("statecharts")
    for path in render_all(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
