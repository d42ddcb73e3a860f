"""``dimsefsm stgcmtscu``: ask a peer to commit the instances of some files (Storage
Commitment Push Model SCU) and print, per instance, what its report says.

Without ``--port`` the association stays open after the N-ACTION and the
report is awaited on it; with ``--port P`` we listen on P, release the
association, and take the report on the association the peer opens to us
(the peer must know our AE title at this host and port).  Exit 0 when every
instance is committed, 1 when one failed (or the N-ACTION was refused), 5 when
no report came within ``--report-timeout``; 2, 3 and 4 as every SCU.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dimsefsm.cli.common import (
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    add_logging,
    add_peer_args,
    add_timeouts,
    apply_network_args,
    cannot_listen,
    listen_port,
    setup_logging,
)
from dimsefsm.cli.connect import add_identity_args, open_association, require_context
from dimsefsm.cli.store import read_instance
from dimsefsm.cli.tls import add_tls_args
from dimsefsm.part10 import Part10Error
from dimsefsm.services.commitment import (
    FAILURE_REASONS,
    STORAGE_COMMITMENT_PUSH_MODEL,
    Reference,
)

NAME = "stgcmtscu"
DEFAULT_REPORT_TIMEOUT = 60.0


def add_stgcmtscu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        NAME,
        help="ask for storage commitment of files' instances (Storage Commitment SCU)",
        description="Send an N-ACTION Request Storage Commitment naming the SOP Class and "
        "Instance UIDs of FILES, then wait for the peer's N-EVENT-REPORT: on the same "
        "association, or with --port P on the association the peer opens to us on P.",
        prefix_chars="-+",
    )
    add_peer_args(p, "STGCMTSCU")
    p.add_argument("files", nargs="+", type=Path, metavar="FILES", help="DICOM files")
    p.add_argument(
        "--port",
        dest="listen_port",
        type=listen_port,
        default=None,
        metavar="P",
        help="listen on port P for the report on a new association (the peer must know our "
        "AE title, host and port); without it the report is awaited on the same association",
    )
    p.add_argument(
        "--bind",
        default="0.0.0.0",
        help="address to listen on with --port (default 0.0.0.0)",
    )
    p.add_argument(
        "--report-timeout",
        type=float,
        default=DEFAULT_REPORT_TIMEOUT,
        metavar="S",
        help=f"wait at most S seconds for the report (default {DEFAULT_REPORT_TIMEOUT:g})",
    )
    p.add_argument(
        "--transaction-uid", default=None, metavar="UID", help="the Transaction UID to use"
    )
    add_timeouts(p)
    add_tls_args(p, server=False)
    add_identity_args(p)
    add_logging(p)
    p.set_defaults(run=run_stgcmtscu)


def run_stgcmtscu(args: argparse.Namespace) -> int:
    from dimsefsm.storage_commitment import (
        ReportCollector,
        ReportListener,
        commitment_ae,
        send_request,
        wait_on_association,
    )

    setup_logging(args)
    for path in args.files:
        if not path.is_file():
            print(f"{NAME}: {path}: no such file", file=sys.stderr)
            return EXIT_USAGE
    references = []
    for path in args.files:
        try:
            instance = read_instance(path)  # Part-10, or a bare data set as storescu reads it
        except (OSError, Part10Error) as exc:
            print(f"{NAME}: {path}: not a DICOM file: {exc}", file=sys.stderr)
            return EXIT_USAGE
        references.append(Reference(instance.sop_class_uid, instance.sop_instance_uid))
    collector = ReportCollector()
    listener = None
    if args.listen_port is not None:
        try:
            listener = ReportListener(args.aetitle, (args.bind, args.listen_port), collector)
        except OSError as exc:
            raise cannot_listen((args.bind, args.listen_port), exc) from None
    try:
        ae = commitment_ae(args.aetitle)
        apply_network_args(ae, args)
        from dimsefsm import evt

        ae_handlers = [(evt.EVT_N_EVENT_REPORT, collector.on_report)]
        assoc = open_association(NAME, ae, args, evt_handlers=ae_handlers)
        if isinstance(assoc, int):
            return assoc
        refused = require_context(NAME, assoc, args, STORAGE_COMMITMENT_PUSH_MODEL)
        if refused is not None:
            return refused
        result = send_request(assoc, references, args.transaction_uid)
        if result.status is None:
            print(f"{NAME}: {result.comment}", file=sys.stderr)
            return EXIT_TIMEOUT if assoc.timed_out else EXIT_FAILED_STATUS
        if result.status != 0:
            comment = f": {result.comment}" if result.comment else ""
            print(
                f"{NAME}: N-ACTION failed with status 0x{result.status:04X}{comment}",
                file=sys.stderr,
            )
            assoc.release()
            return EXIT_FAILED_STATUS
        if listener is None:
            result.outcome = wait_on_association(
                assoc, collector, result.transaction_uid, args.report_timeout
            )
        if assoc.is_established:
            assoc.release()
        if result.outcome is None:
            # With --port the report may still come, on an association the peer opens.
            timeout = args.report_timeout if listener is not None else 0
            result.outcome = collector.wait(result.transaction_uid, timeout)
    finally:
        if listener is not None:
            listener.close()
    return report(result)


def report(result: object) -> int:
    """Print one line per instance; the exit code."""
    from dimsefsm.storage_commitment import CommitmentResult

    assert isinstance(result, CommitmentResult)
    for reference, reason, reported in result.per_instance():
        uid = reference.sop_instance_uid
        if reason is not None:
            print(f"failed     {uid}  0x{reason:04X} {FAILURE_REASONS.get(reason, 'unknown')}")
        elif reported:
            print(f"committed  {uid}")
        else:
            why = "no report" if result.outcome is None else "not in the report"
            print(f"unknown    {uid}  ({why})")
    if result.outcome is None:
        print(
            f"{NAME}: no report for transaction {result.transaction_uid} came",
            file=sys.stderr,
        )
        return EXIT_TIMEOUT
    return EXIT_OK if result.all_committed else EXIT_FAILED_STATUS
