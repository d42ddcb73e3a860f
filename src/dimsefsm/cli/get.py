"""``dimsefsm getscu``: retrieve over the same association, files written as they arrive."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dimsefsm.ae import AE
from dimsefsm.cli.common import (
    EXIT_USAGE,
    add_logging,
    add_timeouts,
    apply_network_args,
    setup_logging,
)
from dimsefsm.cli.connect import add_identity_args, open_association
from dimsefsm.cli.keys import QueryKeyError, build_identifier
from dimsefsm.cli.retrieve import add_model_flags, report
from dimsefsm.cli.tls import add_tls_args
from dimsefsm.qr.registry import PATIENT_ROOT_GET, PATIENT_STUDY_ONLY_GET, STUDY_ROOT_GET
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import COMMON_STORAGE_SOP_CLASSES, UNCOMPRESSED_TRANSFER_SYNTAXES
from dimsefsm.status import Service

MODELS = {"P": PATIENT_ROOT_GET, "S": STUDY_ROOT_GET, "O": PATIENT_STUDY_ONLY_GET}


def add_getscu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("getscu", help="retrieve instances with C-GET", prefix_chars="-+")
    p.add_argument("host")
    p.add_argument("port", type=int)
    add_model_flags(p)
    p.add_argument("-od", "--output-directory", default=".", help="where files are written")
    p.add_argument("-aet", "--aetitle", default="GETSCU", help="our AE title")
    p.add_argument("-aec", "--call", default="ANY-SCP", help="the peer's AE title")
    add_timeouts(p)
    add_tls_args(p, server=False)
    add_identity_args(p)
    add_logging(p)
    p.set_defaults(run=run_getscu)


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
    assoc = open_association("getscu", ae, args)
    if isinstance(assoc, int):
        return assoc
    return report("getscu", assoc, assoc.send_c_get(identifier, sop_class), Service.QR_GET)
