"""Entry point of the ``dimsefsm`` command.

Start-up time is part of the interface: a script that runs ``dimsefsm echoscu``
in a loop pays it every time.  So the sub-command's module is imported only
when that sub-command runs (``echoscu`` never loads SQLAlchemy, the index or
the query code), and the top-level help lists the others from this table.
When the command line starts with the sub-command's name, as it nearly always
does, only that sub-command's parser is built: each other one would cost an
``ArgumentParser`` (and its translations lookup) for a choice nobody made.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from typing import NamedTuple

from dimsefsm import __version__
from dimsefsm.cli.common import CommandError, HelpFormatter, SubcommandParser


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
    "stgcmtscu": Command(
        "stgcmt", "add_stgcmtscu", "ask for storage commitment of files (Storage Commitment SCU)"
    ),
    "qrscp": Command(
        "qrscp", "add_qrscp", "Query/Retrieve SCP: storage + C-FIND/C-GET/C-MOVE over a directory"
    ),
    "passwd": Command("passwd", "add_passwd", "hash a password for qrscp.toml's [users]"),
    "charts": Command("charts", "add_charts", "write every statechart (SVG, DOT) into a directory"),
    "conformance": Command("charts", "add_conformance", "print the DICOM conformance statement"),
    "trace": Command("trace", "add_trace", "draw a -d transcript as an SVG sequence diagram"),
}


def build_parser(only: str | None = None, *, alone: bool = False) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, that sub-command's parser is the only real one.

    ``alone``: leave the others out altogether (the command line names ``only``
    first, so the top-level parser never has to list or tell them apart).
    """
    parser = argparse.ArgumentParser(
        prog="dimsefsm",
        description="DICOM networking with explicit state machines",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dimsefsm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=SubcommandParser)
    for name, command in COMMANDS.items():
        if only is None or name == only:
            module = importlib.import_module(f"dimsefsm.cli.{command.module}")
            getattr(module, command.add)(sub)
        elif not alone:
            sub.add_parser(name, help=command.help)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not a flag)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: list[str] | None = None, *, as_process: bool = False) -> int:
    """Run the sub-command ``argv`` names; its exit code.

    ``as_process`` (:func:`run`): this call is the whole process, so the garbage
    collector can be tuned for it.  Start-up makes tens of thousands of objects
    that live as long as the process (modules, classes, charts, the parser) and
    almost no garbage: the collector is off while they are made, then they are
    frozen (``gc.freeze``) before the sub-command runs, so neither its
    collections nor the last one at exit walk them again.  That is about a fifth
    of a ``dimsefsm echoscu`` (``make bench``, workload ``startup``).  Called as
    a function (tests, embedding) the collector is left alone.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if as_process:
        gc.disable()
    command = _command_in(argv)
    parser = build_parser(command, alone=command is not None and argv[0] == command)
    args = parser.parse_args(argv)
    if as_process:
        gc.freeze()
        gc.enable()
    try:
        return int(args.run(args))
    except CommandError as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return exc.code


def run() -> int:
    """The process's entry point: the ``dimsefsm`` script and ``python -m dimsefsm``."""
    return main(as_process=True)


if __name__ == "__main__":
    sys.exit(run())
