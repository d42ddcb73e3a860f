"""``dimsefsm qrscp``: the Query/Retrieve SCP with its embedded index (``make run``)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from dimsefsm.ae import AE
from dimsefsm.archive.access import AccessPolicy
from dimsefsm.archive.config import (
    ConfigError,
    Settings,
    apply_overrides,
    format_settings,
    load_settings,
)
from dimsefsm.archive.db.schema import SchemaError
from dimsefsm.archive.scp import QueryRetrieveSCP
from dimsefsm.archive.security import identity_rules, identity_summary
from dimsefsm.audit import AuditTrail
from dimsefsm.cli.common import (
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_USAGE,
    add_logging,
    add_server_args,
    add_timeouts,
    ae_title,
    listen_port,
    setup_logging,
)
from dimsefsm.cli.echo import serve
from dimsefsm.cli.operations import retrieve_log_handlers
from dimsefsm.cli.progress import progress_bar
from dimsefsm.cli.store import add_fsync_arg
from dimsefsm.cli.tls import add_tls_args, client_context, server_tls
from dimsefsm.cli.workers import add_workers_arg, serve_in_workers, worker_count

# Flags that override the configuration file: argparse dest -> setting.  Their parser
# defaults are None, so a flag left out leaves the file's value (or the default) alone.
FLAG_SETTINGS = {
    "port": "port",
    "aetitle": "ae_title",
    "output_directory": "storage",
    "bind": "bind_address",
    "worklist": "worklist",
    "dest": "dest",
    "dest_tls": "dest_tls",
    "fsync": "fsync",
    "promiscuous": "promiscuous",
    "max_associations": "max_associations",
    "max_pending": "max_pending",
    "max_pdu": "max_pdu",
    "workers": "workers",
    "audit": "audit",
    "database": "database",
    "timeout": "timeout",
    "acse_timeout": "acse_timeout",
    "dimse_timeout": "dimse_timeout",
    "network_timeout": "network_timeout",
    "pdu_timeout": "pdu_timeout",
}


def add_qrscp(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "qrscp",
        help="Query/Retrieve SCP: storage + C-FIND/C-GET/C-MOVE over a directory",
        description="Settings come from --config FILE (qrscp.toml), flags override them; "
        "without a file the embedded defaults apply (AE title DIMSEFSM, port 11112, "
        "127.0.0.1 only, storage dicom-store, any calling AE accepted).",
        prefix_chars="-+",
    )
    p.add_argument("port", type=listen_port, nargs="?", help="port to listen on (default 11112)")
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the configuration file (TOML): server, timeouts, [peers] and what each may do",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="check the configuration, print the effective settings and exit "
        "(0, or 2 with the line at fault)",
    )
    p.add_argument(
        "-od",
        "--output-directory",
        help="where instances are stored and indexed from (default dicom-store)",
    )
    p.add_argument("-aet", "--aetitle", type=ae_title, help="our AE title (default DIMSEFSM)")
    p.add_argument(
        "--dest",
        action="append",
        metavar="AET=HOST:PORT",
        help="a C-MOVE destination (repeatable): a peer that may receive, like dcmqrscp's "
        "HostTable",
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
        metavar="DIR",
        help="serve Modality Worklist C-FIND from the DICOM files in DIR (like wlmscpfs)",
    )
    p.add_argument(
        "--database",
        default=None,
        metavar="URL",
        help="the index database, an SQLAlchemy URL (postgresql+psycopg://USER@HOST/DB lets "
        "several qrscp share one index); default a SQLite file under the storage directory "
        "(dicom-store/.dimsefsm/index.sqlite; one beside it, where earlier versions kept it, "
        "is moved there)",
    )
    p.add_argument(
        "--import",
        dest="import_dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="index the DICOM files below DIR (once; the files stay where they are), then serve",
    )
    p.add_argument(
        "--audit",
        metavar="FILE",
        help="append one JSON line per association and per operation to FILE ('-': stdout)",
    )
    add_fsync_arg(p)
    add_server_args(p)
    add_workers_arg(p)
    add_timeouts(p)
    add_tls_args(p, server=True)
    add_logging(p)
    p.set_defaults(run=run_qrscp, **dict.fromkeys(FLAG_SETTINGS))
    for action in p._actions:
        if action.dest == "bind":
            action.help = "address to listen on (default 127.0.0.1: this machine only)"


def parse_destination(spec: str) -> tuple[str, tuple[str, int]]:
    aet, sep, address = spec.partition("=")
    host, colon, port = address.rpartition(":")
    if not (sep and colon and aet and host and port.isdigit()):
        raise ValueError(f"--dest wants AET=HOST:PORT, got {spec!r}")
    return aet.strip(), (host, int(port))


def import_files(scp: QueryRetrieveSCP, directory: Path) -> None:
    """``--import DIR``: index its files, with a progress bar on a terminal."""
    with progress_bar(f"import {directory}", 0) as bar:
        scp.index.import_directory(directory, progress=bar.update)


def effective_settings(args: argparse.Namespace) -> Settings:
    """The file's settings (or the defaults) with the flags given on the command line."""
    settings = Settings() if args.config is None else load_settings(args.config)
    given: dict[str, Any] = {
        setting: getattr(args, flag)
        for flag, setting in FLAG_SETTINGS.items()
        if getattr(args, flag) is not None
    }
    if "dest" in given:
        given["dest"] = [parse_destination(spec) for spec in given["dest"]]
    return apply_overrides(settings, given)


def apply_settings(ae: AE, settings: Settings) -> None:
    """Timeouts and limits of the settings onto the server's AE (as ``-to -ta -td ...``)."""
    timeouts = settings.timeouts
    ae.connection_timeout = timeouts.connection
    ae.artim_timeout = timeouts.connection
    ae.acse_timeout = timeouts.acse
    ae.dimse_timeout = timeouts.dimse
    ae.network_timeout = timeouts.network
    ae.pdu_timeout = timeouts.pdu
    ae.maximum_pdu_size = settings.max_pdu
    ae.require_called_aet = not settings.promiscuous
    ae.maximum_associations = settings.max_associations
    ae.maximum_pending_connections = settings.max_pending


def run_qrscp(args: argparse.Namespace) -> int:
    setup_logging(args)
    for name in (
        "dimsefsm.qrscp",
        "dimsefsm.storage",
        "dimsefsm.qr.worklist",
        "dimsefsm.access",
        "dimsefsm.mpps",
        "dimsefsm.commitment",
    ):
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        settings = effective_settings(args)
        access = AccessPolicy.from_settings(settings)
        identity = identity_rules(settings)
        workers = worker_count(settings.workers)
    except (ConfigError, ValueError) as exc:
        print(f"qrscp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if settings.worklist is not None and not settings.worklist.is_dir():
        print(f"qrscp: worklist {settings.worklist} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    if settings.dest_tls and args.enable_tls is None:
        print("qrscp: --dest-tls needs +tls KEY CERT", file=sys.stderr)
        return EXIT_USAGE
    if args.check:
        print(format_settings(settings), end="")
        return EXIT_OK
    if access.accept_any_caller and not _loopback(settings.bind_address):
        logging.getLogger("dimsefsm.access").warning(
            "listening on %s without [peers]: anyone who reaches port %d may store, query "
            "and retrieve; list the peers in a --config file",
            settings.bind_address,
            settings.port,
        )
    if args.import_dir is not None and not args.import_dir.is_dir():
        print(f"qrscp: --import {args.import_dir} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    ssl_context = server_tls(args)
    try:
        trail = AuditTrail.open(settings.audit) if settings.audit else None
    except OSError as exc:
        print(f"qrscp: audit {settings.audit}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    scp = QueryRetrieveSCP(
        settings.ae_title,
        settings.storage,
        worklist=settings.worklist,
        destination_tls=client_context(args) if settings.dest_tls else None,
        fsync=settings.fsync,
        access=access,
        database=settings.database,
        commitment=settings.commitment,
    )
    apply_settings(scp.ae, settings)
    scp.ae.identity_gate = identity
    logging.getLogger("dimsefsm.access").info("%s", access.summary())
    logging.getLogger("dimsefsm.access").info("%s", identity_summary(identity))
    handlers = [*scp.handlers, *retrieve_log_handlers()]
    handlers += trail.handlers() if trail is not None else []
    try:
        scp.load()
    except (SchemaError, SQLAlchemyError) as exc:
        print(f"qrscp: index database: {exc}", file=sys.stderr)
        if trail is not None:
            trail.close()
        return EXIT_USAGE
    if args.import_dir is not None:
        import_files(scp, args.import_dir)
    _, stop_resumed = scp.resume_commitments(separate=workers > 1)
    try:
        address = (settings.bind_address, settings.port)
        if workers == 1:
            serve(scp.ae, address, "qrscp", handlers, ssl_context=ssl_context)
        else:
            scp.close()  # each worker opens its own database connections
            if not serve_in_workers(
                scp.ae, address, "qrscp", workers, handlers, ssl_context, scp.stop_serving
            ):
                return EXIT_FAILED_STATUS
    finally:
        stop_resumed()
        scp.commitment.stop()
        scp.close()
        if trail is not None:
            trail.close()
    return EXIT_OK


def _loopback(address: str) -> bool:
    """Whether ``address`` is reachable from this machine only (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"
