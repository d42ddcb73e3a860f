"""``dimsefsm passwd NAME``: the ``[users]`` line of a qrscp.toml for one user.

The password comes from standard input (one line, for scripts) or, on a
terminal, is typed twice without echo.  Only the salted scrypt hash is
printed (see :mod:`dimsefsm.passwords`); the password itself is never stored.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import TextIO

from dimsefsm.cli.common import EXIT_OK, EXIT_USAGE
from dimsefsm.passwords import hash_password


def add_passwd(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "passwd",
        help="hash a password for qrscp.toml's [users]",
        description="Reads the password on standard input (or asks twice on a terminal) "
        'and prints the line to paste under [users]: NAME = "<salted scrypt hash>".',
    )
    p.add_argument("name", help="the user name (as sent in User Identity negotiation)")
    p.set_defaults(run=run_passwd)


def read_password(stdin: TextIO | None = None) -> str | None:
    """The password typed twice on a terminal, or stdin's first line; None on a mismatch."""
    stream = sys.stdin if stdin is None else stdin
    if stream.isatty():
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Again: ")
        return first if first == second else None
    return stream.readline().rstrip("\r\n")


def run_passwd(args: argparse.Namespace) -> int:
    password = read_password()
    if password is None:
        print("passwd: the passwords differ", file=sys.stderr)
        return EXIT_USAGE
    if not password:
        print("passwd: empty password refused", file=sys.stderr)
        return EXIT_USAGE
    # A TOML key: bare when it can be, quoted (JSON escapes are TOML's) otherwise.
    bare = args.name.replace("-", "").replace("_", "").isalnum() and args.name.isascii()
    key = args.name if bare else json.dumps(args.name)
    print(f'{key} = "{hash_password(password)}"')
    return EXIT_OK
