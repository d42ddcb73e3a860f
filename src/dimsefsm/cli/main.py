"""Entry point of the ``dimsefsm`` command.

Start-up time is part of the interface: a script that runs ``dimsefsm echoscu``
in a loop pays it every time.  So the sub-command's module is imported only
when that sub-command runs (``echoscu`` never loads SQLAlchemy, the index or
the query code), and the top-level help lists the others from this table.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple

from dimsefsm import __version__
from dimsefsm.cli.common import CommandError, SubcommandParser


class Command(NamedTuple):
    module: str  # the dimsefsm.cli module with the sub-command
    add: str  # its function that adds the sub-command's parser
    help: str  # the line in ``dimsefsm --help``


COMMANDS: dict[str, Command] = {
    "echoscu": Command("echo", "add_echoscu", "send C-ECHO (Verification SCU)"),
    "echoscp": Command("echo", "add_echoscp", "answer C-ECHO (Verification SCP)"),
    "storescu": Command("store", "add_storescu", "send instances (Storage SCU)"),
    "storescp": Command("store", "add_storescp", "receive instances (Storage SCP)"),
    "findscu": Command("find", "add_findscu", "query (C-FIND SCU)"),
    "getscu": Command("get", "add_getscu", "retrieve instances with C-GET"),
    "movescu": Command("move", "add_movescu", "retrieve instances with C-MOVE"),
    "mppsscu": Command(
        "mpps", "add_mppsscu", "report a Modality Performed Procedure Step (N-CREATE, N-SET)"
    ),
    "qrscp": Command(
        "qrscp", "add_qrscp", "Query/Retrieve SCP: storage + C-FIND/C-GET/C-MOVE over a directory"
    ),
    "passwd": Command("passwd", "add_passwd", "hash a password for qrscp.toml's [users]"),
    "charts": Command("charts", "add_charts", "write every statechart (SVG, DOT) into a directory"),
    "conformance": Command("charts", "add_conformance", "print the DICOM conformance statement"),
    "trace": Command("trace", "add_trace", "draw a -d transcript as an SVG sequence diagram"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, that sub-command's parser is the only real one."""
    parser = argparse.ArgumentParser(
        prog="dimsefsm", description="DICOM networking with explicit state machines"
    )
    parser.add_argument("--version", action="version", version=f"dimsefsm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=SubcommandParser)
    for name, command in COMMANDS.items():
        if only is None or name == only:
            module = importlib.import_module(f"dimsefsm.cli.{command.module}")
            getattr(module, command.add)(sub)
        else:
            sub.add_parser(name, help=command.help)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not a flag)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except CommandError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
