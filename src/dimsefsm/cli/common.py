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
    """dcmtk's -to/-ta/-td: each help says what it bounds for a client and for a server."""
    parser.add_argument(
        "-to",
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="connection timeout: our TCP connects and TLS handshakes; a server's ARTIM too: "
        "a new connection must complete its A-ASSOCIATE-RQ (and TLS handshake) within S "
        "seconds or is closed, and a closing one is closed after S (default 30)",
    )
    parser.add_argument(
        "-ta",
        "--acse-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="ACSE timeout: waiting for an A-ASSOCIATE-AC/RJ or A-RELEASE-RP (default 30)",
    )
    parser.add_argument(
        "-td",
        "--dimse-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="DIMSE timeout: waiting for the response to each request we sent, a server's "
        "C-GET/C-MOVE sub-operations included (default 30)",
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
        ae.maximum_pending_connections = args.max_pending
        ae.artim_timeout = args.timeout
        ae.network_timeout = args.network_timeout
        ae.pdu_timeout = args.pdu_timeout


def add_server_args(parser: argparse.ArgumentParser) -> None:
    """Listening flags, the association limits and the timeouts only a server has."""
    parser.add_argument("--bind", default="0.0.0.0", help="address to listen on")
    parser.add_argument(
        "--promiscuous",
        action="store_true",
        help="accept any called AE title (default: must match -aet)",
    )
    parser.add_argument(
        "--max-associations",
        type=int,
        default=32,
        metavar="N",
        help="established associations at once; one more is rejected (default 32)",
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        default=None,
        metavar="N",
        help="connections still without an association (awaiting their A-ASSOCIATE-RQ, "
        "or closing) at once; one more closes the oldest (default 4 x --max-associations)",
    )
    parser.add_argument(
        "-tn",
        "--network-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="an association with nothing received for S seconds is aborted (default 60)",
    )
    parser.add_argument(
        "--pdu-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="a PDU must be complete S seconds after its first byte arrived, else A-ABORT: "
        "a peer trickling bytes cannot hold its association (default 60)",
    )


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname).1s: %(name)s: %(message)s"
    )
    # -d shows the per-association transcript (dimsefsm.trace): chart transitions, PDUs and
    # DIMSE messages.  transitions' own logger only repeats machine construction.
    logging.getLogger("transitions").setLevel(logging.WARNING)


# The interpreter's thread switch interval in a server process (CPython's default: 5 ms).
SERVER_SWITCH_INTERVAL = 0.001


def favour_latency() -> None:
    """Let a server process hand the interpreter between its threads every 1 ms, not 5.

    A thread waiting for the GIL gets it only once the running thread has held
    it for the switch interval, and answering one C-ECHO takes several such
    hand-offs (wake-up, receive, send).  Behind a CPU-bound query on another
    association each costs up to the interval: with 5 ms the echo's median was
    5.4 ms in ``make bench`` (workload ``wildcard``), with 1 ms 1.4 ms.  An
    association alone never waits, so throughput is unchanged; a library user's
    process keeps its own setting (only the CLI servers call this).
    """
    sys.setswitchinterval(SERVER_SWITCH_INTERVAL)


def stop_on_sigterm() -> None:
    """SIGTERM ends a server the same way Ctrl-C does: a clean shutdown."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
