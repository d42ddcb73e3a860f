"""``dimsefsm getscu``: retrieve over the same association, files written as they arrive."""

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
from dimsefsm.qr.registry import PATIENT_ROOT_GET, PATIENT_STUDY_ONLY_GET, STUDY_ROOT_GET
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import COMMON_STORAGE_SOP_CLASSES, UNCOMPRESSED_TRANSFER_SYNTAXES
from dimsefsm.status import Category, Service, category

MODELS = {"P": PATIENT_ROOT_GET, "S": STUDY_ROOT_GET, "O": PATIENT_STUDY_ONLY_GET}


def add_getscu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("getscu", help="retrieve instances with C-GET")
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
    p.add_argument("-od", "--output-directory", default=".", help="where files are written")
    p.add_argument("-aet", "--aetitle", default="GETSCU", help="our AE title")
    p.add_argument("-aec", "--call", default="ANY-SCP", help="the peer's AE title")
    add_timeouts(p)
    add_logging(p)
    p.set_defaults(run=run_getscu, model="P")


def run_getscu(args: argparse.Namespace) -> int:
    setup_logging(args)
    try:
        identifier = build_identifier(args.key)
    except QueryKeyError as exc:
        print(f"getscu: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.output_directory)
    out.mkdir(parents=True, exist_ok=True)
    sop_class = MODELS[args.model]
    ae = AE(args.aetitle)
    ae.add_requested_context(sop_class)
    for uid in COMMON_STORAGE_SOP_CLASSES:
        ae.add_requested_context(uid, UNCOMPRESSED_TRANSFER_SYNTAXES[:2])
        ae.propose_role(uid, scu_role=False, scp_role=True)
    ae.storage = StorageConfig(mode="file", directory=out)
    apply_network_args(ae, args)
    logging.getLogger("dimsefsm.storage").setLevel(
        logging.INFO if args.verbose or args.debug else logging.WARNING
    )
    assoc = ae.associate(args.host, args.port, ae_title=args.call)
    if not assoc.is_established:
        print(f"getscu: {assoc.describe_failure()}", file=sys.stderr)
        return EXIT_REJECTED if assoc.is_rejected else EXIT_ABORTED
    # Created at the first Pending: the total is only known from its counts, and a bar
    # created with a total of 0 would stay disabled.
    progress: Progress | None = None
    final = None
    counts = (0, 0, 0)
    for status, result in assoc.send_c_get(identifier, sop_class):
        done = (
            int(status.get("NumberOfCompletedSuboperations", 0)),
            int(status.get("NumberOfFailedSuboperations", 0)),
            int(status.get("NumberOfWarningSuboperations", 0)),
        )
        if category(status.Status) is Category.PENDING:
            remaining = int(status.get("NumberOfRemainingSuboperations", 0))
            if progress is None:
                progress = Progress(sum(done) + remaining, "getscu")
            progress.update(sum(done), sum(done) + remaining)
            counts = done
            continue
        final, counts = status, done
        failed = result.get("FailedSOPInstanceUIDList") if result is not None else None
        if failed:
            print(f"getscu: failed: {failed}", file=sys.stderr)
    if progress is not None:
        progress.finish()
    if final is None:
        print(f"getscu: no final response: {assoc.describe_failure()}", file=sys.stderr)
        return EXIT_TIMEOUT if assoc.timed_out else EXIT_ABORTED
    if assoc.is_established:
        assoc.release()
    comment = f" ({final.ErrorComment})" if "ErrorComment" in final else ""
    print(
        f"getscu: final status {describe_status(final.Status, Service.QR_GET)}{comment}; "
        f"{counts[0]} completed, {counts[1]} failed, {counts[2]} warning",
        file=sys.stderr,
    )
    ok = category(final.Status) in (Category.SUCCESS, Category.CANCEL)
    return EXIT_OK if ok else EXIT_FAILED_STATUS
