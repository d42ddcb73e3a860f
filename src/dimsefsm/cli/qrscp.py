"""``dimsefsm qrscp``: the Query/Retrieve SCP with its embedded index (``make run``)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dimsefsm.cli.common import (
    EXIT_OK,
    add_logging,
    add_server_args,
    add_timeouts,
    apply_network_args,
    setup_logging,
)
from dimsefsm.cli.echo import serve
from dimsefsm.qr.scp import QueryRetrieveSCP


def add_qrscp(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("qrscp", help="Query/Retrieve SCP: storage + C-FIND over a directory")
    p.add_argument("port", type=int)
    p.add_argument(
        "-od",
        "--output-directory",
        default="dicom-store",
        help="where instances are stored and indexed from",
    )
    p.add_argument("-aet", "--aetitle", default="DIMSEFSM", help="our AE title")
    add_server_args(p)
    add_timeouts(p)
    add_logging(p)
    p.set_defaults(run=run_qrscp)


def run_qrscp(args: argparse.Namespace) -> int:
    setup_logging(args)
    logging.getLogger("dimsefsm.qrscp").setLevel(logging.INFO)
    logging.getLogger("dimsefsm.storage").setLevel(logging.INFO)
    scp = QueryRetrieveSCP(args.aetitle, Path(args.output_directory))
    apply_network_args(scp.ae, args)
    scp.load()
    serve(scp.ae, (args.bind, args.port), "qrscp", scp.handlers)
    return EXIT_OK
