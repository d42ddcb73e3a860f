"""Flags and conventions shared by every sub-command (dcmtk's names where they exist)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from dimsefsm.ae import AE

# Exit codes: one per kind of failure so scripts can tell them apart (README's table).
EXIT_OK = 0
EXIT_FAILED_STATUS = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3
EXIT_ABORTED = 4
EXIT_TIMEOUT = 5

MAX_AE_TITLE = 16  # PS3.5 Table 6.2-1: AE is at most 16 characters


def terminal_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` finds it ($COLUMNS, stdout, 80).

    argparse asks ``shutil`` for it in every formatter, even when no help is
    printed, and ``shutil`` loads bz2, lzma and zlib: a few ms of every command.
    """
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, sized without importing ``shutil`` (see :func:`terminal_columns`)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class SubcommandParser(argparse.ArgumentParser):
    """A sub-command's parser: its own usage and one error line, exit 2, on bad arguments.

    Left to argparse, a flag the sub-command does not know travels up to the
    top-level parser, which answers with *its* usage ("dimsefsm [-h] {echoscu,...}")
    and says nothing about the flags that do exist.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def ae_title(text: str) -> str:
    """An AE title argument: 1 to 16 characters, no backslash or control characters."""
    stripped = text.strip(" ")
    if not stripped:
        raise argparse.ArgumentTypeError("an AE title cannot be empty")
    if len(text) > MAX_AE_TITLE:
        raise argparse.ArgumentTypeError(
            f"AE title {text!r} is {len(text)} characters long, at most {MAX_AE_TITLE} are allowed"
        )
    if "\\" in text or not text.isprintable() or not text.isascii():
        raise argparse.ArgumentTypeError(
            f"AE title {text!r}: only printable ASCII characters other than backslash"
        )
    return text


def _port(text: str, lowest: int) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port {text!r} is not a number") from None
    if not lowest <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port {number} is out of range ({lowest}-65535)")
    return number


def port_number(text: str) -> int:
    """A peer's TCP port: 1 to 65535."""
    return _port(text, 1)


def listen_port(text: str) -> int:
    """A port to listen on: 0 (any free port) to 65535."""
    return _port(text, 0)


def add_peer_args(parser: argparse.ArgumentParser, our_title: str) -> None:
    """An SCU's peer and titles: HOST PORT, -aet (ours) and -aec (the peer's)."""
    parser.add_argument("host", help="the peer's host name or address")
    parser.add_argument("port", type=port_number, help="the peer's TCP port")
    parser.add_argument(
        "-aet", "--aetitle", type=ae_title, default=our_title, help=f"our AE title ({our_title})"
    )
    parser.add_argument(
        "-aec", "--call", type=ae_title, default="ANY-SCP", help="the peer's AE title (ANY-SCP)"
    )


def add_listen_args(parser: argparse.ArgumentParser, our_title: str) -> None:
    """A server's PORT and -aet."""
    parser.add_argument("port", type=listen_port, help="TCP port to listen on")
    parser.add_argument(
        "-aet", "--aetitle", type=ae_title, default=our_title, help=f"our AE title ({our_title})"
    )


LOG_LEVELS = {
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}


def add_logging(parser: argparse.ArgumentParser) -> None:
    """dcmtk's output options: -q, -v, -d, -ll LEVEL and a log file."""
    group = parser.add_argument_group("output")
    group.add_argument(
        "-q", "--quiet", action="store_true", help="quiet mode: errors only, no progress"
    )
    group.add_argument("-v", "--verbose", action="store_true", help="verbose mode")
    group.add_argument(
        "-d",
        "--debug",
        action="store_true",
        help="debug mode: also every chart transition, PDU and DIMSE message, per association",
    )
    group.add_argument(
        "-ll",
        "--log-level",
        choices=list(LOG_LEVELS),
        default=None,
        metavar="LEVEL",
        help="fatal, error, warn, info, debug or trace (as dcmtk's -ll)",
    )
    group.add_argument(
        "--log-file", default=None, metavar="FILE", help="append the log to FILE, not stderr"
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
    parser.add_argument(
        "--bind",
        default="0.0.0.0",
        help="address to listen on (default 0.0.0.0: every IPv4 address; '::' adds IPv6)",
    )
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


LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname).1s: %(name)s: %(message)s"
LOG_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def log_level(args: argparse.Namespace) -> int:
    """-ll wins, then -d, -v, -q (dcmtk's order); warnings by default."""
    if getattr(args, "log_level", None):
        return LOG_LEVELS[args.log_level]
    if getattr(args, "debug", False):
        return logging.DEBUG
    if getattr(args, "verbose", False):
        return logging.INFO
    if getattr(args, "quiet", False):
        return logging.ERROR
    return logging.WARNING


def verbose(args: argparse.Namespace) -> bool:
    """Whether -v (or more) was asked for: identifiers and negotiation details are shown."""
    return log_level(args) <= logging.INFO


def setup_logging(args: argparse.Namespace) -> None:
    """Timestamped log lines on stderr (or --log-file); Python warnings go there too.

    pydicom reports a peer's odd value with ``warnings.warn``: left alone each
    would print raw (file, line and source) on stderr, in the middle of a
    progress bar, whatever -q says.
    """
    log_file = getattr(args, "log_file", None)
    handler: logging.Handler
    if log_file:
        try:
            handler = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            fail(f"--log-file {log_file}: {exc.strerror}", EXIT_USAGE)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level(args))
    warnings.showwarning = _log_warning


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A Python warning as one log line (logger ``py.warnings``), not three raw lines."""
    logging.getLogger("py.warnings").warning("%s: %s", category.__name__, message)
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


class CommandError(Exception):
    """A failure the command reports in one line and ends with ``code``: no traceback."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """End the sub-command now with one line on stderr and exit ``code``."""
    raise CommandError(message, code)


def cannot_listen(address: tuple[str, int], exc: OSError) -> CommandError:
    """A server's port that is in use, not ours to take, or an address not of this host."""
    host, port = address
    shown = f"[{host}]" if ":" in host else host
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return CommandError(f"cannot listen on {shown}:{port}: {reason}", EXIT_USAGE)
