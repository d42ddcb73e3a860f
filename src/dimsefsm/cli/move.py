"""``dimsefsm movescu``: ask a peer to send matches to a destination (maybe ourselves)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydicom import Dataset

from dimsefsm.ae import AE
from dimsefsm.cli.common import (
    EXIT_USAGE,
    add_logging,
    add_peer_args,
    add_timeouts,
    ae_title,
    apply_network_args,
    cannot_listen,
    listen_port,
    setup_logging,
    verbose,
)
from dimsefsm.cli.connect import add_identity_args, open_association, require_context
from dimsefsm.cli.keys import QueryKeyError, build_identifier
from dimsefsm.cli.retrieve import MODEL_HINTS, add_model_flags, flat_classes, log_request, report
from dimsefsm.cli.tls import add_tls_args, server_tls
from dimsefsm.qr.registry import PATIENT_ROOT_MOVE, PATIENT_STUDY_ONLY_MOVE, STUDY_ROOT_MOVE
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import ALL_TRANSFER_SYNTAXES, STORAGE_SOP_CLASSES, VERIFICATION
from dimsefsm.status import Service
from dimsefsm.transport.server import AssociationServer

MODELS = {
    "P": PATIENT_ROOT_MOVE,
    "S": STUDY_ROOT_MOVE,
    "O": PATIENT_STUDY_ONLY_MOVE,
    **flat_classes("move"),
}


def add_movescu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("movescu", help="retrieve instances with C-MOVE", prefix_chars="-+")
    add_peer_args(p, "MOVESCU")
    add_model_flags(p)
    p.add_argument(
        "-aem",
        "--move",
        dest="move_destination",
        default=None,
        type=ae_title,
        help="move destination AE title (default: our own -aet)",
    )
    p.add_argument(
        "--store",
        action="store_true",
        help="run our own storage SCP for the sub-operations (needs +P)",
    )
    p.add_argument(
        "+P",
        "--port",
        "--store-port",
        dest="store_port",
        type=listen_port,
        default=None,
        metavar="P",
        help="port of our own storage SCP, as dcmtk's movescu +P (implies --store)",
    )
    p.add_argument("-od", "--output-directory", default=".", help="where --store writes files")
    add_timeouts(p)
    add_tls_args(p, server=False)
    add_identity_args(p)
    add_logging(p)
    p.set_defaults(run=run_movescu)


def start_receiver(args: argparse.Namespace) -> AssociationServer:
    """Our own Storage SCP, for a move whose destination is us (TLS with +tls, as dcmtk)."""
    out = Path(args.output_directory)
    out.mkdir(parents=True, exist_ok=True)
    ae = AE(args.aetitle)
    ae.add_supported_context(VERIFICATION)
    for uid in STORAGE_SOP_CLASSES:
        ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
    ae.prefer_requestor_order = True
    ae.storage = StorageConfig(mode="file", directory=out)
    address = ("0.0.0.0", args.store_port)
    try:
        return ae.start_server(address, block=False, ssl_context=server_tls(args))
    except OSError as exc:
        raise cannot_listen(address, exc) from None


def run_movescu(args: argparse.Namespace) -> int:
    setup_logging(args)
    if args.store_port is not None:
        args.store = True
    if args.store and args.store_port is None:
        print("movescu: --store needs +P/--port", file=sys.stderr)
        return EXIT_USAGE
    try:
        identifier = build_identifier(args.key)
    except QueryKeyError as exc:
        print(f"movescu: {exc}", file=sys.stderr)
        return EXIT_USAGE
    receiver = start_receiver(args) if args.store else None
    try:
        return _move(args, identifier)
    finally:
        if receiver is not None:
            receiver.shutdown()


def _move(args: argparse.Namespace, identifier: Dataset) -> int:
    sop_class = MODELS[args.model]
    ae = AE(args.aetitle)
    ae.add_requested_context(sop_class)
    apply_network_args(ae, args)
    logging.getLogger("dimsefsm.storage").setLevel(
        logging.INFO if verbose(args) else logging.WARNING
    )
    assoc = open_association("movescu", ae, args)
    if isinstance(assoc, int):
        return assoc
    refused = require_context("movescu", assoc, args, sop_class, MODEL_HINTS[args.model])
    if refused is not None:
        return refused
    destination = args.move_destination or args.aetitle
    log_request(identifier)
    return report(
        "movescu",
        assoc,
        assoc.send_c_move(identifier, destination, sop_class),
        Service.QR_MOVE,
        quiet=args.quiet,
    )
