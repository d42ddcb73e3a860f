"""``dimsefsm qrscp``: the Query/Retrieve SCP with its embedded index (``make run``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dimsefsm.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    add_logging,
    add_server_args,
    add_timeouts,
    apply_network_args,
    setup_logging,
)
from dimsefsm.cli.echo import serve
from dimsefsm.cli.store import add_fsync_arg
from dimsefsm.cli.tls import add_tls_args, client_context, server_tls
from dimsefsm.qr.scp import QueryRetrieveSCP


def add_qrscp(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "qrscp",
        help="Query/Retrieve SCP: storage + C-FIND over a directory",
        prefix_chars="-+",
    )
    p.add_argument("port", type=int)
    p.add_argument(
        "-od",
        "--output-directory",
        default="dicom-store",
        help="where instances are stored and indexed from",
    )
    p.add_argument("-aet", "--aetitle", default="DIMSEFSM", help="our AE title")
    p.add_argument(
        "--dest",
        action="append",
        default=[],
        metavar="AET=HOST:PORT",
        help="a C-MOVE destination (repeatable), like dcmqrscp's HostTable",
    )
    p.add_argument(
        "--dest-tls",
        action="store_true",
        help="reach the C-MOVE destinations over TLS too (our +tls certificate, the +cf/+cd "
        "trust, -ic to skip verifying them)",
    )
    p.add_argument(
        "--worklist",
        type=Path,
        default=None,
        metavar="DIR",
        help="serve Modality Worklist C-FIND from the DICOM files in DIR (like wlmscpfs)",
    )
    add_fsync_arg(p)
    add_server_args(p)
    add_timeouts(p)
    add_tls_args(p, server=True)
    add_logging(p)
    p.set_defaults(run=run_qrscp)


def parse_destination(spec: str) -> tuple[str, tuple[str, int]]:
    aet, sep, address = spec.partition("=")
    host, colon, port = address.rpartition(":")
    if not (sep and colon and aet and host and port.isdigit()):
        raise ValueError(f"--dest wants AET=HOST:PORT, got {spec!r}")
    return aet.strip(), (host, int(port))


def run_qrscp(args: argparse.Namespace) -> int:
    setup_logging(args)
    logging.getLogger("dimsefsm.qrscp").setLevel(logging.INFO)
    logging.getLogger("dimsefsm.storage").setLevel(logging.INFO)
    logging.getLogger("dimsefsm.qr.worklist").setLevel(logging.INFO)
    try:
        destinations = dict(parse_destination(spec) for spec in args.dest)
    except ValueError as exc:
        print(f"qrscp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.worklist is not None and not args.worklist.is_dir():
        print(f"qrscp: --worklist {args.worklist} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    if args.dest_tls and args.enable_tls is None:
        print("qrscp: --dest-tls needs +tls KEY CERT", file=sys.stderr)
        return EXIT_USAGE
    ssl_context = server_tls(args)
    scp = QueryRetrieveSCP(
        args.aetitle,
        Path(args.output_directory),
        destinations,
        worklist=args.worklist,
        destination_tls=client_context(args) if args.dest_tls else None,
        fsync=args.fsync,
    )
    apply_network_args(scp.ae, args)
    scp.load()
    try:
        serve(scp.ae, (args.bind, args.port), "qrscp", scp.handlers, ssl_context=ssl_context)
    finally:
        scp.close()
    return EXIT_OK
