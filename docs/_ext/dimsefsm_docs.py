"""Sphinx directives that generate pages from the code instead of copying it.

- ``cli-reference``: every sub-command's ``--help``, from the argparse parsers
  that ``dimsefsm`` itself builds (:func:`dimsefsm.cli.main.build_parser`).
- ``chart-gallery``: every chart drawn for reading (inline SVG, so tooltips
  work): each edge's tooltip is its ``when`` sentence, the upper layer's states
  carry their PS3.8 names, parallel edges of one colour (the many abort
  edges) are collapsed into one, and a legend of the colours.
- ``sequence-diagram``: a transcript under ``docs/traces/`` drawn by
  :mod:`dimsefsm.sequence`, as ``dimsefsm trace`` draws it.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive, directives

from dimsefsm.charts import all_charts
from dimsefsm.fsm.chart import Chart
from dimsefsm.fsm.render import _edge_colour
from dimsefsm.ul.chart import STATES

DOCS = Path(__file__).resolve().parents[1]


def _section(name: str, title: str) -> nodes.section:
    section = nodes.section(ids=[nodes.make_id(name)], names=[nodes.fully_normalize_name(name)])
    section += nodes.title(text=title)
    return section


class CliReference(Directive):
    """One section per sub-command with its usage and options, as ``--help`` prints them."""

    def run(self) -> list[nodes.Node]:
        from dimsefsm.cli.main import COMMANDS, build_parser

        found: list[nodes.Node] = []
        for name in COMMANDS:
            parser = build_parser(only=name)
            sub = next(
                action.choices[name]
                for action in parser._actions
                if isinstance(getattr(action, "choices", None), dict)
            )
            sub.prog = f"dimsefsm {name}"
            section = _section(f"cli-{name}", f"dimsefsm {name}")
            summary = COMMANDS[name].help
            section += nodes.paragraph(text=summary[:1].upper() + summary[1:] + ".")
            text = sub.format_help()
            section += nodes.literal_block(text, text)
            for action_name, action_parser in _actions_of(sub):  # e.g. mppsscu create|set|get
                action_parser.prog = f"dimsefsm {name} {action_name}"
                text = action_parser.format_help()
                section += nodes.literal_block(text, text)
            found.append(section)
        return found


def _actions_of(parser: Any) -> list[tuple[str, Any]]:
    """A sub-command's own sub-commands (``mppsscu create``), in their order."""
    return [
        (name, choice)
        for action in parser._actions
        if isinstance(getattr(action, "choices", None), dict)
        for name, choice in action.choices.items()
    ]


# -- gallery ----------------------------------------------------------------------------
COLOURS = {
    "black": "an input without a status (protocol steps, refusals handled by the chart)",
    "darkgreen": "success (0x0000)",
    "royalblue": "pending (0xFF00, 0xFF01)",
    "purple": "cancel (0xFE00)",
    "darkorange": "warning (0xB000 family, 0x0001, 0x0107, 0x0116)",
    "red3": "failure or refusal (any other status), drawn thicker",
}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


COUNTS = DOCS / "_build" / "chart-counts.json"  # written by `make test` (--chart-counts)


def load_counts() -> dict[str, dict[str, int]] | None:
    """The last test run's firing count of every edge, if ``make test`` left one."""
    if not COUNTS.exists():
        return None
    return json.loads(COUNTS.read_text(encoding="utf-8"))


def gallery_dot(chart: Chart, counts: dict[str, int] | None = None) -> str:
    """The chart for reading: named states, tooltips, one edge per (source, dest, colour).

    With ``counts`` (edge -> times fired in the test suite) each edge says how
    often it fired, and an edge that never fired is dashed.
    """
    lines = [
        f"digraph {_q(chart.name)} {{",
        "  rankdir=LR; bgcolor=transparent;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f6f8fb", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=9];',
        '  __start [shape=point, label=""];',
        f"  __start -> {_q(chart.initial)};",
    ]
    upper = chart.name == "upper-layer"
    for state in chart.states:
        name = STATES.get(state, "") if upper else ""
        label = f"{state}\n{name}" if name else state
        periph = ", peripheries=2" if state in chart.final else ""
        lines.append(f"  {_q(state)} [label={_q(label)}, tooltip={_q(name or state)}{periph}];")
    grouped: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for t, source in chart.edges():
        grouped[(source, chart.destination(t, source), _edge_colour(t.status))].append(t)
    for (source, dest, colour), edges in grouped.items():
        first = edges[0]
        label = first.label or f"{first.trigger}: {first.name}"
        if first.status is not None:
            label += f"\n0x{first.status:04X}"
        if len(edges) > 1:
            label += f"\n(+{len(edges) - 1} more)"
        fired = [(counts or {}).get(f"{t.name} from {source}", 0) for t in edges]
        tooltip = "\n".join(
            f"{t.label or t.trigger + ': ' + t.name}: {t.when}"
            + (f" [fired {n} times in the tests]" if counts is not None else "")
            for t, n in zip(edges, fired, strict=True)
        )
        style = ", penwidth=2" if colour == "red3" else ""
        if counts is not None:
            label += f"\n(fired {sum(fired)})"
            style += ", style=dashed" if not all(fired) else ""
        lines.append(
            f"  {_q(source)} -> {_q(dest)} [label={_q(label)}, tooltip={_q(tooltip)}, "
            f"labeltooltip={_q(tooltip)}, color={colour}, fontcolor={colour}{style}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def inline_svg(dot_text: str) -> str:
    svg = subprocess.run(
        ["dot", "-Tsvg"], input=dot_text, capture_output=True, text=True, check=True
    ).stdout
    # Inline: drop the XML prolog, the DOCTYPE and the generator comment.
    svg = svg[svg.index("<svg") :]
    fluid = 'style="max-width:100%;height:auto"'
    return re.sub(r'width="[^"]*" height="[^"]*"', fluid, svg, count=1)


class ChartGallery(Directive):
    """Every chart, its legend, and the upper layer's state names."""

    def run(self) -> list[nodes.Node]:
        found: list[nodes.Node] = []
        legend = _section("legend", "Legend")
        items = nodes.bullet_list()
        for colour, meaning in COLOURS.items():
            item = nodes.list_item()
            item += nodes.raw(
                "",
                f'<span style="color:{colour.replace("3", "")};font-weight:bold">'
                f"&#9644;&#9654; {colour}</span>: {meaning}",
                format="html",
            )
            items += item
        legend += items
        legend += nodes.paragraph(
            text="Double borders mark final states. Hover an edge for its 'when' sentence "
            "(all of them when parallel edges of one colour are collapsed, shown as "
            "'(+N more)'), a state for its name."
        )
        found.append(legend)
        states = _section("upper-layer-states", "Upper-layer states (PS3.8 Table 9-1)")
        table = nodes.bullet_list()
        for state, name in STATES.items():
            item = nodes.list_item()
            item += nodes.paragraph(text=f"{state}: {name}")
            table += item
        states += table
        found.append(states)
        counts = load_counts()
        if counts is None:
            legend += nodes.paragraph(
                text="Test coverage: not drawn (run make test, which writes "
                "docs/_build/chart-counts.json, then make docs)."
            )
        else:
            legend += nodes.paragraph(
                text="Test coverage from the last make test: each edge's label ends with "
                "(fired N): how often it fired in the test suite's own processes (summed over "
                "collapsed edges); a dashed edge has an edge that never fired."
            )
        self.state.document.settings.record_dependencies.add(str(COUNTS))
        for chart in all_charts():
            section = _section(f"chart-{chart.name}", chart.name)
            dot = gallery_dot(chart, None if counts is None else counts.get(chart.name, {}))
            section += nodes.raw("", inline_svg(dot), format="html")
            found.append(section)
        return found


class SequenceDiagram(Directive):
    """``.. sequence-diagram:: a.log b.log``: transcripts under docs/traces/, drawn inline."""

    required_arguments = 1
    optional_arguments = 4

    def run(self) -> list[nodes.Node]:
        from dimsefsm.sequence import merge, parse_lines, render_svg

        transcripts = []
        names = []
        for number, name in enumerate(self.arguments):
            path = DOCS / "traces" / name
            self.state.document.settings.record_dependencies.add(str(path))
            with path.open(encoding="utf-8") as lines:
                transcripts.append(parse_lines(lines, number))
            names.append(Path(name).stem)
        svg = render_svg(merge(transcripts), names)
        svg = svg.replace("<svg ", '<svg style="max-width:100%;height:auto" ', 1)
        return [nodes.raw("", f'<div style="overflow-x:auto">{svg}</div>', format="html")]


def setup(app: Any) -> dict[str, Any]:
    directives.register_directive("cli-reference", CliReference)
    directives.register_directive("chart-gallery", ChartGallery)
    directives.register_directive("sequence-diagram", SequenceDiagram)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
