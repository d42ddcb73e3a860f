"""``dimsefsm qrscp``: the Query/Retrieve SCP with its embedded index (``make run``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from dimsefsm.cli.common import (
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_USAGE,
    add_logging,
    add_server_args,
    add_timeouts,
    apply_network_args,
    setup_logging,
)
from dimsefsm.cli.echo import serve
from dimsefsm.cli.progress import Progress
from dimsefsm.cli.store import add_fsync_arg
from dimsefsm.cli.tls import add_tls_args, client_context, server_tls
from dimsefsm.cli.workers import add_workers_arg, serve_in_workers
from dimsefsm.qr.db.schema import SchemaError
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
    p.add_argument(
        "--database",
        default=None,
        metavar="URL",
        help="the index database, an SQLAlchemy URL (postgresql+psycopg://USER@HOST/DB lets "
        "several qrscp share one index); default a SQLite file beside the storage directory, "
        "named after it (dicom-store.index.sqlite)",
    )
    p.add_argument(
        "--import",
        dest="import_dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="index the DICOM files below DIR (once; the files stay where they are), then serve",
    )
    add_fsync_arg(p)
    add_server_args(p)
    add_workers_arg(p)
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


def import_files(scp: QueryRetrieveSCP, directory: Path) -> None:
    """``--import DIR``: index its files, with a progress bar on a terminal."""
    bars: list[Progress] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(Progress(total, f"import {directory}"))
        bars[0].update(done)

    scp.index.import_directory(directory, progress=update)
    if bars:
        bars[0].finish()


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
        database=args.database,
    )
    apply_network_args(scp.ae, args)
    if args.import_dir is not None and not args.import_dir.is_dir():
        print(f"qrscp: --import {args.import_dir} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    try:
        scp.load()
    except (SchemaError, SQLAlchemyError) as exc:
        print(f"qrscp: index database: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.import_dir is not None:
        import_files(scp, args.import_dir)
    address = (args.bind, args.port)
    try:
        if args.workers == 1:
            serve(scp.ae, address, "qrscp", scp.handlers, ssl_context=ssl_context)
        else:
            scp.close()  # each worker opens its own database connections
            if not serve_in_workers(
                scp.ae, address, "qrscp", args.workers, scp.handlers, ssl_context, scp.close
            ):
                return EXIT_FAILED_STATUS
    finally:
        scp.close()
    return EXIT_OK
