"""``dimsefsm findscu``: query with dcmtk's flags, print matches and the final status."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset

from dimsefsm.ae import AE
from dimsefsm.cli.common import (
    EXIT_ABORTED,
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    add_logging,
    add_peer_args,
    add_timeouts,
    apply_network_args,
    setup_logging,
)
from dimsefsm.cli.connect import add_identity_args, open_association, require_context
from dimsefsm.cli.keys import KeyPath, QueryKeyError, build_identifier, parse_key
from dimsefsm.cli.output import (
    MatchTable,
    describe_status,
    format_match_json,
    print_status_line,
    table_columns,
)
from dimsefsm.cli.progress import on_terminal
from dimsefsm.cli.retrieve import (
    MODEL_HINTS,
    add_model_flags,
    flat_classes,
    log_request,
    show_identifier,
)
from dimsefsm.cli.tls import add_tls_args
from dimsefsm.qr.registry import (
    MODALITY_WORKLIST_FIND,
    PATIENT_ROOT_FIND,
    PATIENT_STUDY_ONLY_FIND,
    STUDY_ROOT_FIND,
)
from dimsefsm.status import Category, category

LOG = logging.getLogger("dimsefsm.cli")

MODELS = {
    "P": PATIENT_ROOT_FIND,
    "S": STUDY_ROOT_FIND,
    "O": PATIENT_STUDY_ONLY_FIND,
    "W": MODALITY_WORKLIST_FIND,
    **flat_classes("find"),
}


def add_findscu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("findscu", help="query (C-FIND SCU)", prefix_chars="-+")
    add_peer_args(p, "FINDSCU")
    add_model_flags(
        p,
        worklist=True,
        key_help="query key by keyword or (gggg,eeee); sequences as dcmtk writes them",
    )
    p.add_argument(
        "--cancel", type=int, default=None, metavar="N", help="send C-CANCEL after N responses"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per match line")
    p.add_argument(
        "-X",
        "--extract",
        action="store_true",
        help="also write each response identifier as a DICOM file rsp0001.dcm, ... (in -od)",
    )
    p.add_argument(
        "-od",
        "--output-directory",
        default=".",
        metavar="DIR",
        help="where -X writes its files (default: the current directory)",
    )
    add_timeouts(p)
    add_tls_args(p, server=False)
    add_identity_args(p)
    add_logging(p)
    p.set_defaults(run=run_findscu)


def run_findscu(args: argparse.Namespace) -> int:
    setup_logging(args)
    try:
        keys = [parse_key(spec) for spec in args.key]
        identifier = build_identifier(keys)
    except QueryKeyError as exc:
        print(f"findscu: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sop_class = MODELS[args.model]
    ae = AE(args.aetitle)
    ae.add_requested_context(sop_class)
    apply_network_args(ae, args)
    out = Path(args.output_directory)
    if args.extract and not out.is_dir():
        print(f"findscu: -od {out} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    assoc = open_association("findscu", ae, args)
    if isinstance(assoc, int):
        return assoc
    refused = require_context("findscu", assoc, args, sop_class, MODEL_HINTS[args.model])
    if refused is not None:
        return refused
    log_request(identifier)
    table = None if args.json else match_table(table_columns(identifier, keys))
    matches = 0
    final: int | None = None
    for status, match in assoc.send_c_find(identifier, sop_class):
        code = int(status.Status)
        if category(code) is Category.PENDING:
            matches += 1
            if match is not None:
                LOG.info("response identifier %d:\n%s", matches, show_identifier(match))
                if args.extract:
                    write_response(out / f"rsp{matches:04d}.dcm", match, sop_class)
                if table is None:
                    print(format_match_json(match), flush=True)
                else:
                    table.add(match)
            if args.cancel is not None and matches == args.cancel:
                assoc.send_c_cancel(assoc.last_message_id)  # type: ignore[arg-type]
            continue
        final = code
        description = describe_status(code)
        if "ErrorComment" in status:
            description += f" ({status.ErrorComment})"
        print_status_line(code, description, matches, stream=sys.stderr)
    if final is None:
        print(f"findscu: no final response: {assoc.describe_failure()}", file=sys.stderr)
        return EXIT_TIMEOUT if assoc.timed_out else EXIT_ABORTED
    if assoc.is_established:
        assoc.release()
    return (
        EXIT_OK if category(final) in (Category.SUCCESS, Category.CANCEL) else (EXIT_FAILED_STATUS)
    )


def write_response(path: Path, identifier: Dataset, sop_class: str) -> None:
    """One response identifier as a Part-10 file (dcmtk's ``findscu -X``), whole or not at all.

    Written to a temporary file in the same directory and renamed, so a reader
    never sees half a file.  The meta group names the query's SOP class: an
    identifier has no SOP class of its own.
    """
    from pydicom import dcmwrite
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    from dimsefsm.assoc.negotiation import IMPLEMENTATION_CLASS_UID

    ds = Dataset()
    ds.update(identifier)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = identifier.get("SOPInstanceUID") or generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            dcmwrite(file, ds, enforce_file_format=True)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def match_table(columns: list[KeyPath]) -> MatchTable:
    """Drawn by rich on a terminal; the plain, script-friendly table anywhere else."""
    if on_terminal(sys.stdout):
        from dimsefsm.cli.terminal_table import TerminalMatchTable

        return TerminalMatchTable(columns, sys.stdout)
    return MatchTable(columns, sys.stdout)
