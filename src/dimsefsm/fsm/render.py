"""DOT and SVG diagrams, generated from the chart declarations with the ``graphviz`` package.

Diagrams are never drawn by hand: ``make statecharts`` runs this module, and a
test compares the committed DOT files with what the charts render now (the SVG
bytes depend on the installed graphviz version, the DOT does not).

Each edge reads ``input [guard] / status``: what arrived, which guard chose the
edge, the status it sends.  Self-loops of one state are drawn as one edge with
one line per transition, so a state that absorbs several inputs stays legible.
Hovering an edge in the SVG shows its ``when`` sentence.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import graphviz

from dimsefsm.fsm.chart import Chart, Transition


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


@dataclass
class _Edge:
    source: str
    dest: str
    labels: list[str]
    tooltips: list[str]
    colours: list[str]

    @property
    def colour(self) -> str:
        return self.colours[0] if len(set(self.colours)) == 1 else "black"


def _edges(chart: Chart) -> Iterator[_Edge]:
    """One edge per declared (transition, source); a state's self-loops merged into one."""
    loops: dict[str, _Edge] = {}
    ordered: list[_Edge] = []
    for t, source in chart.edges():
        dest = chart.destination(t, source)
        label, tooltip, colour = chart.edge_label(t), _sentence(t), _edge_colour(t.status)
        if dest == source and source in loops:
            loop = loops[source]
            loop.labels.append(label)
            loop.tooltips.append(tooltip)
            loop.colours.append(colour)
            continue
        edge = _Edge(source, dest, [label], [tooltip], [colour])
        if dest == source:
            loops[source] = edge
        ordered.append(edge)
    yield from ordered


def _sentence(t: Transition) -> str:
    return " ".join(t.when.split())


def to_graph(chart: Chart) -> graphviz.Digraph:
    """The chart as a ``graphviz.Digraph``; stable ordering so the DOT can be diffed."""
    graph = graphviz.Digraph(chart.name)
    graph.attr(rankdir="LR", label=chart.name, labelloc="t", fontsize="20")
    if chart.doc:
        graph.attr(tooltip=" ".join(chart.doc.split()))
    graph.attr("node", shape="box", style="rounded", fontname="Helvetica")
    graph.attr("edge", fontname="Helvetica", fontsize="9")
    graph.node("__start", shape="point", label="")
    graph.edge("__start", chart.initial)
    for state in chart.states:
        if state in chart.final:
            graph.node(state, label=state, peripheries="2")
        else:
            graph.node(state, label=state)
    for edge in _edges(chart):
        colour = edge.colour
        attrs = {} if colour == "black" else {"color": colour, "fontcolor": colour}
        if colour == "red3":
            attrs["penwidth"] = "2"
        tooltip = "\\n".join(edge.tooltips)
        graph.edge(
            edge.source,
            edge.dest,
            label="\\n".join(edge.labels),
            tooltip=tooltip,
            labeltooltip=tooltip,
            **attrs,
        )
    return graph


def to_dot(chart: Chart) -> str:
    """The chart as DOT text."""
    return to_graph(chart).source


def to_svg(chart: Chart) -> str:
    """The chart laid out by graphviz's ``dot`` (Debian package ``graphviz``)."""
    svg: str = to_graph(chart).pipe(format="svg", encoding="utf-8")
    return svg


def render_all(out_dir: Path) -> list[Path]:
    """Write ``<chart>.dot`` and ``<chart>.svg`` for every chart into ``out_dir``."""
    from dimsefsm.charts import all_charts

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for chart in all_charts():
        dot_path = out_dir / f"{chart.name}.dot"
        svg_path = out_dir / f"{chart.name}.svg"
        dot_path.write_text(to_dot(chart))
        svg_path.write_text(to_svg(chart))
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
