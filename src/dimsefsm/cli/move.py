"""``dimsefsm movescu``: ask a peer to send matches to a destination (maybe ourselves)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dimsefsm.ae import AE
from dimsefsm.cli.common import (
    EXIT_ABORTED,
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    add_logging,
    add_timeouts,
    apply_network_args,
    setup_logging,
)
from dimsefsm.cli.keys import QueryKeyError, build_identifier
from dimsefsm.cli.output import describe_status
from dimsefsm.cli.progress import Progress
from dimsefsm.qr.registry import PATIENT_ROOT_MOVE, PATIENT_STUDY_ONLY_MOVE, STUDY_ROOT_MOVE
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import ALL_TRANSFER_SYNTAXES, STORAGE_SOP_CLASSES, VERIFICATION
from dimsefsm.status import Category, Service, category
from dimsefsm.transport.server import AssociationServer

MODELS = {"P": PATIENT_ROOT_MOVE, "S": STUDY_ROOT_MOVE, "O": PATIENT_STUDY_ONLY_MOVE}


def add_movescu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("movescu", help="retrieve instances with C-MOVE")
    p.add_argument("host")
    p.add_argument("port", type=int)
    model = p.add_mutually_exclusive_group()
    model.add_argument(
        "-P",
        "--patient",
        dest="model",
        action="store_const",
        const="P",
        help="Patient Root information model (default)",
    )
    model.add_argument(
        "-S",
        "--study",
        dest="model",
        action="store_const",
        const="S",
        help="Study Root information model",
    )
    model.add_argument(
        "-O",
        "--psonly",
        dest="model",
        action="store_const",
        const="O",
        help="Patient/Study Only information model",
    )
    p.add_argument(
        "-k",
        "--key",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="retrieve key by keyword or (gggg,eeee)",
    )
    p.add_argument(
        "-aem",
        "--move",
        dest="move_destination",
        default=None,
        help="move destination AE title (default: our own -aet)",
    )
    p.add_argument(
        "--store", action="store_true", help="run our own storage SCP for the sub-operations"
    )
    p.add_argument(
        "--store-port",
        "--port",
        type=int,
        default=None,
        metavar="P",
        help="port of our storage SCP (with --store)",
    )
    p.add_argument("-od", "--output-directory", default=".", help="where --store writes files")
    p.add_argument("-aet", "--aetitle", default="MOVESCU", help="our AE title")
    p.add_argument("-aec", "--call", default="ANY-SCP", help="the peer's AE title")
    add_timeouts(p)
    add_logging(p)
    p.set_defaults(run=run_movescu, model="P")


def start_receiver(args: argparse.Namespace) -> AssociationServer:
    """Our own Storage SCP, for a move whose destination is us."""
    out = Path(args.output_directory)
    out.mkdir(parents=True, exist_ok=True)
    ae = AE(args.aetitle)
    ae.add_supported_context(VERIFICATION)
    for uid in STORAGE_SOP_CLASSES:
        ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
    ae.prefer_requestor_order = True
    ae.storage = StorageConfig(mode="file", directory=out)
    return ae.start_server(("0.0.0.0", args.store_port), block=False)


def run_movescu(args: argparse.Namespace) -> int:
    setup_logging(args)
    if args.store and args.store_port is None:
        print("movescu: --store needs --store-port", file=sys.stderr)
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


def _move(args: argparse.Namespace, identifier: object) -> int:
    sop_class = MODELS[args.model]
    ae = AE(args.aetitle)
    ae.add_requested_context(sop_class)
    apply_network_args(ae, args)
    logging.getLogger("dimsefsm.storage").setLevel(
        logging.INFO if args.verbose or args.debug else logging.WARNING
    )
    assoc = ae.associate(args.host, args.port, ae_title=args.call)
    if not assoc.is_established:
        print(f"movescu: {assoc.describe_failure()}", file=sys.stderr)
        return EXIT_REJECTED if assoc.is_rejected else EXIT_ABORTED
    destination = args.move_destination or args.aetitle
    progress = Progress(0, "movescu")
    final = None
    counts = (0, 0, 0)
    for status, result in assoc.send_c_move(identifier, destination, sop_class):  # type: ignore[arg-type]
        done = (
            int(status.get("NumberOfCompletedSuboperations", 0)),
            int(status.get("NumberOfFailedSuboperations", 0)),
            int(status.get("NumberOfWarningSuboperations", 0)),
        )
        if category(status.Status) is Category.PENDING:
            remaining = int(status.get("NumberOfRemainingSuboperations", 0))
            progress.update(sum(done), sum(done) + remaining)
            counts = done
            continue
        final, counts = status, done
        failed = result.get("FailedSOPInstanceUIDList") if result is not None else None
        if failed:
            print(f"movescu: failed: {failed}", file=sys.stderr)
    progress.finish()
    if final is None:
        print(f"movescu: no final response: {assoc.describe_failure()}", file=sys.stderr)
        return EXIT_TIMEOUT if assoc.timed_out else EXIT_ABORTED
    if assoc.is_established:
        assoc.release()
    comment = f" ({final.ErrorComment})" if "ErrorComment" in final else ""
    print(
        f"movescu: final status {describe_status(final.Status, Service.QR_MOVE)}{comment}; "
        f"{counts[0]} completed, {counts[1]} failed, {counts[2]} warning",
        file=sys.stderr,
    )
    ok = category(final.Status) in (Category.SUCCESS, Category.CANCEL)
    return EXIT_OK if ok else EXIT_FAILED_STATUS
