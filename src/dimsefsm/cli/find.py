"""``dimsefsm findscu``: query with dcmtk's flags, print matches and the final status."""

from __future__ import annotations

import argparse
import sys

from dimsefsm.ae import AE
from dimsefsm.cli.common import (
    EXIT_ABORTED,
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    add_logging,
    add_timeouts,
    apply_network_args,
    setup_logging,
)
from dimsefsm.cli.connect import add_identity_args, open_association
from dimsefsm.cli.keys import QueryKeyError, build_identifier, parse_key
from dimsefsm.cli.output import (
    MatchTable,
    describe_status,
    format_match_json,
    print_status_line,
    table_columns,
)
from dimsefsm.cli.retrieve import add_model_flags
from dimsefsm.cli.tls import add_tls_args
from dimsefsm.qr.registry import (
    MODALITY_WORKLIST_FIND,
    PATIENT_ROOT_FIND,
    PATIENT_STUDY_ONLY_FIND,
    STUDY_ROOT_FIND,
)
from dimsefsm.status import Category, category

MODELS = {
    "P": PATIENT_ROOT_FIND,
    "S": STUDY_ROOT_FIND,
    "O": PATIENT_STUDY_ONLY_FIND,
    "W": MODALITY_WORKLIST_FIND,
}


def add_findscu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("findscu", help="query (C-FIND SCU)", prefix_chars="-+")
    p.add_argument("host")
    p.add_argument("port", type=int)
    add_model_flags(
        p,
        worklist=True,
        key_help="query key by keyword or (gggg,eeee); sequences as dcmtk writes them",
    )
    p.add_argument(
        "--cancel", type=int, default=None, metavar="N", help="send C-CANCEL after N responses"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per match line")
    p.add_argument("-aet", "--aetitle", default="FINDSCU", help="our AE title")
    p.add_argument("-aec", "--call", default="ANY-SCP", help="the peer's AE title")
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
    assoc = open_association("findscu", ae, args)
    if isinstance(assoc, int):
        return assoc
    if assoc.negotiated is None or assoc.negotiated.find_context(sop_class) is None:
        print(
            f"findscu: {args.call} did not accept the information model {sop_class}",
            file=sys.stderr,
        )
        assoc.release()
        return EXIT_FAILED_STATUS
    table = None if args.json else MatchTable(table_columns(identifier, keys), sys.stdout)
    matches = 0
    final: int | None = None
    for status, match in assoc.send_c_find(identifier, sop_class):
        code = int(status.Status)
        if category(code) is Category.PENDING:
            matches += 1
            if match is not None:
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
