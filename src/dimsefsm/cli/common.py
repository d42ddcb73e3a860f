"""Flags and conventions shared by every sub-command (dcmtk's names where they exist)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dimsefsm.ae import AE

# Exit codes: one per kind of failure so scripts can tell them apart.
EXIT_OK = 0
EXIT_FAILED_STATUS = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_ABORTED = 4
EXIT_TIMEOUT = 5


def add_logging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="verbose mode")
    parser.add_argument(
        "-d",
        "--debug",
        action="store_true",
        help="debug mode: also every chart transition, PDU and DIMSE message, per association",
    )


def add_timeouts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-to",
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="timeout for connection requests (default 30)",
    )
    parser.add_argument(
        "-ta",
        "--acse-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="timeout for ACSE messages (default 30)",
    )
    parser.add_argument(
        "-td",
        "--dimse-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="timeout for DIMSE messages (default 30)",
    )
    parser.add_argument(
        "-pdu", "--max-pdu", type=int, default=None, metavar="N", help="maximum PDU size we receive"
    )


def apply_network_args(ae: AE, args: argparse.Namespace) -> None:
    """Timeouts and PDU size from the shared flags; server flags when present."""
    ae.connection_timeout = args.timeout
    ae.acse_timeout = args.acse_timeout
    ae.dimse_timeout = args.dimse_timeout
    if args.max_pdu:
        ae.maximum_pdu_size = args.max_pdu
    if hasattr(args, "promiscuous"):
        ae.require_called_aet = not args.promiscuous
        ae.maximum_associations = args.max_associations


def add_server_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on")
    parser.add_argument(
        "--promiscuous",
        action="store_true",
        help="accept any called AE title (default: must match -aet)",
    )
    parser.add_argument("--max-associations", type=int, default=32)


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname).1s: %(name)s: %(message)s"
    )
    # -d shows the per-association transcript (dimsefsm.trace): chart transitions, PDUs and
    # DIMSE messages.  transitions' own logger only repeats machine construction.
    logging.getLogger("transitions").setLevel(logging.WARNING)


def stop_on_sigterm() -> None:
    """SIGTERM ends a server the same way Ctrl-C does: a clean shutdown."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
