"""Entry point of the ``dimsefsm`` command."""

from __future__ import annotations

import argparse
import sys

from dimsefsm import __version__
from dimsefsm.cli import echo, find, get, move, passwd, qrscp, store


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dimsefsm", description="DICOM networking with explicit state machines"
    )
    parser.add_argument("--version", action="version", version=f"dimsefsm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    echo.add_echoscu(sub)
    echo.add_echoscp(sub)
    store.add_storescu(sub)
    store.add_storescp(sub)
    find.add_findscu(sub)
    get.add_getscu(sub)
    move.add_movescu(sub)
    qrscp.add_qrscp(sub)
    passwd.add_passwd(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
