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
from dimsefsm.cli.retrieve import MODEL_HINTS, add_model_flags, flat_classes, log_request, report
from dimsefsm.cli.tls import add_tls_args
from dimsefsm.qr.flat_models import FLAT_MODELS, MODEL_NAMES
from dimsefsm.qr.registry import PATIENT_ROOT_GET, PATIENT_STUDY_ONLY_GET, STUDY_ROOT_GET
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import COMMON_STORAGE_SOP_CLASSES, DEFAULT_TRANSFER_SYNTAXES
from dimsefsm.status import Service

MODELS = {
    "P": PATIENT_ROOT_GET,
    "S": STUDY_ROOT_GET,
    "O": PATIENT_STUDY_ONLY_GET,
    **flat_classes("get"),
}


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
    for uid, syntaxes in storage_proposal(model=args.model):
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


# Compressed syntaxes a retrieved image most often is in, each in a context of its own
# (an acceptor picks one syntax per context, so one context listing them all would let
# through only the syntax it prefers): RLE, JPEG Lossless SV1, JPEG Baseline, JPEG 2000
# lossless and lossy, JPEG-LS lossless.
COMPRESSED_SYNTAXES = (
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.80",
)
# The image classes that get them, most common first, while the 128 contexts last.
COMPRESSED_IMAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # DX, for presentation
    "1.2.840.10008.5.1.4.1.1.1.2",  # MG, for presentation
    "1.2.840.10008.5.1.4.1.1.6.1",  # US
    "1.2.840.10008.5.1.4.1.1.3.1",  # US multi-frame
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.12.1",  # XA
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # DX, for processing
)
MAX_CONTEXTS = 128


def storage_proposal(
    reserved: int = 1, model: str | None = None
) -> list[tuple[str, tuple[str, ...]]]:
    """Uncompressed contexts for every common storage class, then compressed ones.

    The C-GET SCP sends each instance on a context of its SOP class in the
    file's own syntax where one was accepted, else converted to an uncompressed
    one, which a compressed file cannot be: without these contexts a JPEG or
    RLE study would not arrive at all.  ``reserved`` contexts are left for the
    query model.  A single-level ``model`` (``--model`` name) retrieves its own
    storage classes only (a Defined Procedure Protocol is not among the common ones).
    """
    flat = MODEL_NAMES.get(model or "")
    if flat is not None:
        return [(uid, DEFAULT_TRANSFER_SYNTAXES) for uid in FLAT_MODELS[flat].storage_classes]
    contexts = [(uid, DEFAULT_TRANSFER_SYNTAXES) for uid in COMMON_STORAGE_SOP_CLASSES]
    for uid in COMPRESSED_IMAGE_CLASSES:
        if uid not in COMMON_STORAGE_SOP_CLASSES:
            continue
        if len(contexts) + len(COMPRESSED_SYNTAXES) + reserved > MAX_CONTEXTS:
            break
        contexts.extend((uid, (syntax,)) for syntax in COMPRESSED_SYNTAXES)
    return contexts
