"""``dimsefsm charts DIR`` and ``dimsefsm conformance``: the shipped pictures and statement.

An installed package has no checkout to run ``make statecharts`` in, and the
diagrams need graphviz to render.  The wheel carries the committed files (the
ones a test keeps identical to what the chart declarations render, see
``tests/unit/test_statecharts_fresh.py``), so these sub-commands only copy
package data: no graphviz, no imports beyond the standard library.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from dimsefsm.cli.common import EXIT_OK, fail


def package_data() -> Traversable:
    """``dimsefsm/data`` of the installed package (links into the checkout when editable)."""
    return resources.files("dimsefsm") / "data"


def add_charts(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "charts",
        help="write every statechart (SVG and DOT) into a directory",
        description="Copies the statecharts shipped with the package (one SVG and one "
        "Graphviz DOT file per chart) into DIR, creating it if needed.",
    )
    p.add_argument("directory", metavar="DIR", type=Path, help="where to write the files")
    p.set_defaults(run=run_charts)


def add_conformance(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "conformance",
        help="print the DICOM conformance statement (Markdown)",
        description="Writes the conformance statement shipped with the package "
        "(Markdown, PS3.2 Annex N layout) to standard output or to FILE.",
    )
    p.add_argument("-o", "--output", metavar="FILE", type=Path, help="write to FILE instead")
    p.set_defaults(run=run_conformance)


def run_charts(args: argparse.Namespace) -> int:
    target: Path = args.directory
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {target}: {exc.strerror or exc}")
    source = package_data() / "statecharts"
    written = 0
    for item in sorted(source.iterdir(), key=lambda t: t.name):
        if item.name.endswith((".svg", ".dot")):
            try:
                (target / item.name).write_bytes(item.read_bytes())
            except OSError as exc:
                fail(f"cannot write {target / item.name}: {exc.strerror or exc}")
            written += 1
    print(f"{written} files written to {target}")
    return EXIT_OK


def run_conformance(args: argparse.Namespace) -> int:
    text = (package_data() / "conformance.md").read_text(encoding="utf-8")
    if args.output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {args.output}: {exc.strerror or exc}")
    return EXIT_OK
