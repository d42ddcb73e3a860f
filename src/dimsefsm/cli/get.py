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
    add_peer_args,
    add_timeouts,
    apply_network_args,
    setup_logging,
    verbose,
)
from dimsefsm.cli.connect import add_identity_args, open_association, require_context
from dimsefsm.cli.keys import QueryKeyError, build_identifier
from dimsefsm.cli.retrieve import MODEL_HINTS, add_model_flags, log_request, report
from dimsefsm.cli.tls import add_tls_args
from dimsefsm.qr.registry import PATIENT_ROOT_GET, PATIENT_STUDY_ONLY_GET, STUDY_ROOT_GET
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import (
    ALL_TRANSFER_SYNTAXES,
    COMMON_STORAGE_SOP_CLASSES,
    DEFAULT_TRANSFER_SYNTAXES,
    UNCOMPRESSED_TRANSFER_SYNTAXES,
)
from dimsefsm.status import Service

MODELS = {"P": PATIENT_ROOT_GET, "S": STUDY_ROOT_GET, "O": PATIENT_STUDY_ONLY_GET}
UNCOMPRESSED_SET = frozenset(UNCOMPRESSED_TRANSFER_SYNTAXES)


def add_getscu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("getscu", help="retrieve instances with C-GET", prefix_chars="-+")
    add_peer_args(p, "GETSCU")
    add_model_flags(p)
    p.add_argument("-od", "--output-directory", default=".", help="where files are written")
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
    for uid, syntaxes in storage_proposal():
        ae.add_requested_context(uid, syntaxes)
        ae.propose_role(uid, scu_role=False, scp_role=True)
    ae.storage = StorageConfig(mode="file", directory=out)
    apply_network_args(ae, args)
    logging.getLogger("dimsefsm.storage").setLevel(
        logging.INFO if verbose(args) else logging.WARNING
    )
    assoc = open_association("getscu", ae, args)
    if isinstance(assoc, int):
        return assoc
    refused = require_context("getscu", assoc, args, sop_class, MODEL_HINTS[args.model])
    if refused is not None:
        return refused
    log_request(identifier)
    return report(
        "getscu", assoc, assoc.send_c_get(identifier, sop_class), Service.QR_GET, quiet=args.quiet
    )


def storage_proposal() -> list[tuple[str, tuple[str, ...]]]:
    """Per common storage class, an uncompressed context and one with the compressed syntaxes.

    The C-GET SCP sends each instance on a context of its SOP class, in the
    file's own syntax where one was accepted (it picks one syntax per context),
    else converted to an uncompressed one, which a compressed file cannot be:
    without the compressed context, a JPEG study would not arrive at all.
    """
    compressed = tuple(ts for ts in ALL_TRANSFER_SYNTAXES if ts not in UNCOMPRESSED_SET)
    contexts: list[tuple[str, tuple[str, ...]]] = []
    for uid in COMMON_STORAGE_SOP_CLASSES:
        contexts.append((uid, DEFAULT_TRANSFER_SYNTAXES))
        contexts.append((uid, compressed))
    return contexts
