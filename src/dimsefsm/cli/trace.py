"""``dimsefsm trace FILE...``: draw ``-d`` transcripts as a sequence diagram (SVG or HTML).

See :mod:`dimsefsm.sequence` for what is drawn.  Given the SCU's and the
SCP's transcripts of the same exchange, each association is drawn once with
both sides' chart transitions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dimsefsm.cli.common import EXIT_FAILED_STATUS, EXIT_OK, fail


def add_trace(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trace",
        help="draw a -d transcript as an SVG sequence diagram",
        description="Reads the transcript that -d writes (log lines, or JSON lines with "
        "'message' and 'time') and draws each association's PDUs, DIMSE messages and chart "
        "transitions with their timestamps; a C-MOVE's sub-association appears beside it. "
        "Give the transcripts of both sides to see both sides' transitions.",
    )
    p.add_argument("files", metavar="FILE", nargs="+", type=Path, help="a transcript ('-': stdin)")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        type=Path,
        help="write here (.html: a page with a legend; otherwise SVG); default: SVG on stdout",
    )
    p.set_defaults(run=run_trace)


def run_trace(args: argparse.Namespace) -> int:
    from dimsefsm.sequence import Step, merge, parse_lines, render_html, render_svg

    transcripts: list[list[Step]] = []
    names = []
    for number, path in enumerate(args.files):
        if str(path) == "-":
            transcripts.append(parse_lines(sys.stdin, number))
            names.append("stdin")
            continue
        try:
            with path.open(encoding="utf-8", errors="replace") as lines:
                transcripts.append(parse_lines(lines, number))
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or exc}")
        names.append(path.stem)
    steps = merge(transcripts)
    if not steps:
        print("trace: no transcript lines (dimsefsm.trace, from -d) found", file=sys.stderr)
        return EXIT_FAILED_STATUS
    output: Path | None = args.output
    html = output is not None and output.suffix.lower() in (".html", ".htm")
    text = render_html(steps, names) if html else render_svg(steps, names)
    if output is None:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    return EXIT_OK
