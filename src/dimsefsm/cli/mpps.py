"""``dimsefsm mppsscu``: report a Modality Performed Procedure Step (PS3.4 F.7) to an SCP.

What a modality does, from a shell: ``create`` sends the N-CREATE that starts
the step (IN PROGRESS) and prints its SOP Instance UID, ``set`` the N-SETs
that update it and end it (``--status COMPLETED`` or ``DISCONTINUED``),
``get`` asks for its attributes with N-GET.  Attributes come from a DICOM
file and ``-k`` keys written as for ``findscu`` (``cli.keys``), later ones
replacing earlier ones; what a modality always knows is filled in when not
given (the status, the start or end date and time: now).

Exit codes are those of every sub-command (README): 0 success, 1 a failure
status, 2 bad arguments, 3 rejected, 4 aborted or unreachable, 5 timeout.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom import Dataset

from dimsefsm.cli.common import (
    EXIT_ABORTED,
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    SubcommandParser,
    add_logging,
    add_peer_args,
    add_timeouts,
    apply_network_args,
    setup_logging,
)
from dimsefsm.cli.connect import add_identity_args, open_association, require_context
from dimsefsm.cli.keys import KeyPath, QueryKeyError, build_identifier, key_argument, parse_key
from dimsefsm.cli.tls import add_tls_args
from dimsefsm.sop_class import MODALITY_PERFORMED_PROCEDURE_STEP, N_SOP_CLASSES

if TYPE_CHECKING:
    from dimsefsm.association import Association

LOG = logging.getLogger("dimsefsm.cli")

MPPS = MODALITY_PERFORMED_PROCEDURE_STEP
"""Modality Performed Procedure Step SOP Class: N-CREATE and N-SET."""
MPPS_RETRIEVE = N_SOP_CLASSES["ModalityPerformedProcedureStepRetrieve"][0]
"""Modality Performed Procedure Step Retrieve SOP Class: N-GET (PS3.4 F.8)."""

ENDS = ("COMPLETED", "DISCONTINUED")


class IntermixedParser(SubcommandParser):
    """Positionals among the flags (``create HOST PORT -aec X FILE -k K``), as dcmtk takes them.

    argparse matches an optional positional (FILE) with the first run of
    positionals (HOST PORT) and then refuses a FILE after a flag; its
    intermixed parsing takes the positionals wherever they are.
    """

    _inner = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._inner:  # the passes of the intermixed parse: the plain parser
            return argparse.ArgumentParser.parse_known_args(self, args, namespace)
        self._inner = True
        try:
            parsed, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


class MppsArgumentError(ValueError):
    """Arguments that cannot make a request: said in one line, exit 2."""


def add_mppsscu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mppsscu",
        help="report a Modality Performed Procedure Step (N-CREATE, N-SET, N-GET)",
        description="create: start a step (IN PROGRESS) and print its SOP Instance UID; "
        "set: update it or end it with --status COMPLETED|DISCONTINUED; get: print it.",
    )
    actions = p.add_subparsers(dest="action", required=True, parser_class=IntermixedParser)
    create = actions.add_parser(
        "create", help="N-CREATE: start a procedure step", prefix_chars="-+"
    )
    _common(create)
    create.add_argument(
        "file",
        nargs="?",
        type=Path,
        help="a DICOM file with the step's attributes (the -k keys are applied over it)",
    )
    create.add_argument(
        "--uid",
        metavar="UID",
        help="the step's SOP Instance UID (default: none sent, the SCP assigns one)",
    )
    update = actions.add_parser(
        "set", help="N-SET: update or end a procedure step", prefix_chars="-+"
    )
    _common(update)
    update.add_argument("uid", help="the step's SOP Instance UID (as create printed it)")
    update.add_argument(
        "file", nargs="?", type=Path, help="a DICOM file with the attributes to set"
    )
    update.add_argument(
        "--status",
        choices=ENDS,
        help="end the step; End Date/Time default to now (the SCP needs a Performed Series "
        "Sequence item too: -k 'PerformedSeriesSequence[0].SeriesInstanceUID=...')",
    )
    get = actions.add_parser("get", help="N-GET: print a procedure step", prefix_chars="-+")
    _common(get, keys_help="an attribute to return (keyword or (gggg,eeee)); none: all")
    get.add_argument("uid", help="the step's SOP Instance UID")


def _common(
    parser: argparse.ArgumentParser,
    keys_help: str = "an attribute as key=value (findscu's -k syntax; sequences "
    "as Sequence[0].Keyword=value)",
) -> None:
    add_peer_args(parser, "MPPSSCU")
    parser.add_argument(
        "-k", "--key", action="append", default=[], type=key_argument, metavar="KEY", help=keys_help
    )
    add_timeouts(parser)
    add_tls_args(parser, server=False)
    add_identity_args(parser)
    add_logging(parser)
    parser.set_defaults(run=run_mppsscu)


# -- the requests the arguments ask for (no network) ----------------------------------------------


def _now() -> tuple[str, str]:
    now = datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def _base(file: Path | None) -> Dataset | None:
    if file is None:
        return None
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        return dcmread(file, force=False)
    except FileNotFoundError:
        raise MppsArgumentError(f"{file}: no such file") from None
    except (InvalidDicomError, OSError) as exc:
        raise MppsArgumentError(f"{file}: not a DICOM file ({exc})") from None


def create_request(keys: list[KeyPath], file: Path | None = None) -> Dataset:
    """The N-CREATE attribute list: the file, the keys, then status and start (now) if absent."""
    attributes = build_identifier(keys, _base(file))
    if "PerformedProcedureStepStatus" not in attributes:
        attributes.PerformedProcedureStepStatus = "IN PROGRESS"
    date, time = _now()
    if "PerformedProcedureStepStartDate" not in attributes:
        attributes.PerformedProcedureStepStartDate = date
    if "PerformedProcedureStepStartTime" not in attributes:
        attributes.PerformedProcedureStepStartTime = time
    return attributes


def set_request(keys: list[KeyPath], status: str | None, file: Path | None = None) -> Dataset:
    """The N-SET modification list; ending the step adds End Date and Time (now) if absent."""
    modification = build_identifier(keys, _base(file))
    if status is not None:
        modification.PerformedProcedureStepStatus = status
    if str(modification.get("PerformedProcedureStepStatus", "")).strip() in ENDS:
        date, time = _now()
        if "PerformedProcedureStepEndDate" not in modification:
            modification.PerformedProcedureStepEndDate = date
        if "PerformedProcedureStepEndTime" not in modification:
            modification.PerformedProcedureStepEndTime = time
    if len(modification) == 0:
        raise MppsArgumentError("nothing to set: give --status, -k keys or a file")
    return modification


def get_request(keys: list[KeyPath]) -> list[int]:
    """The N-GET Attribute Identifier List: the keys' top-level attributes (values ignored)."""
    tags: list[int] = []
    for key in keys:
        if len(key.nodes) != 1:
            raise MppsArgumentError(
                f"N-GET returns whole top-level attributes: {key.label} is inside a sequence"
            )
        tags.append(key.nodes[0].tag)
    return tags


# -- running it -----------------------------------------------------------------------------


def run_mppsscu(args: argparse.Namespace) -> int:
    setup_logging(args)
    name = f"mppsscu {args.action}"
    try:
        keys = [k if isinstance(k, KeyPath) else parse_key(k) for k in args.key]
        if args.action == "create":
            request: Any = create_request(keys, args.file)
        elif args.action == "set":
            request = set_request(keys, args.status, args.file)
        else:
            request = get_request(keys)
    except (QueryKeyError, MppsArgumentError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from dimsefsm.ae import AE

    sop_class = MPPS_RETRIEVE if args.action == "get" else MPPS
    ae = AE(args.aetitle)
    ae.add_requested_context(sop_class)
    apply_network_args(ae, args)
    assoc = open_association(name, ae, args)
    if isinstance(assoc, int):
        return assoc
    refused = require_context(name, assoc, args, sop_class)
    if refused is not None:
        return refused
    if args.action == "create":
        status, answer = assoc.send_n_create(request, MPPS, args.uid)
    elif args.action == "set":
        status, answer = assoc.send_n_set(request, MPPS, args.uid)
    else:
        status, answer = assoc.send_n_get(request, MPPS_RETRIEVE, args.uid)
    return _report(name, assoc, args, status, answer)


def _report(
    name: str, assoc: Association, args: argparse.Namespace, status: Dataset, answer: Any
) -> int:
    if "Status" not in status:
        print(f"{name}: no response: {assoc.describe_failure()}", file=sys.stderr)
        return EXIT_TIMEOUT if assoc.timed_out else EXIT_ABORTED
    if assoc.is_established:
        assoc.release()
    code = int(status.Status)
    from dimsefsm.cli.output import describe_status

    if code != 0x0000 and not 0xB000 <= code <= 0xBFFF and code != 0x0001:
        text = describe_status(code)
        if "ErrorComment" in status:
            text += f": {status.ErrorComment}"
        if "AttributeIdentifierList" in status:
            text += f" [attributes {_tags(status.AttributeIdentifierList)}]"
        print(f"{name}: {text}", file=sys.stderr)
        return EXIT_FAILED_STATUS
    if args.action == "create":
        uid = _created_uid(status, answer, args.uid)
        print(uid)
    elif args.action == "get" and answer is not None:
        from dimsefsm.cli.output import format_match_json

        print(format_match_json(answer))
    elif args.action == "set":
        LOG.info("%s: %s set", name, args.uid)
    return EXIT_OK


def _created_uid(status: Dataset, answer: Dataset | None, asked: str | None) -> str:
    """The step's UID: ours if we sent one, else the one the SCP assigned and answered."""
    if asked:
        return asked
    for source in (status, answer):
        if source is None:
            continue
        for keyword in ("AffectedSOPInstanceUID", "SOPInstanceUID"):
            if keyword in source:
                return str(source[keyword].value)
    return ""


def _tags(value: Any) -> str:
    values = value if isinstance(value, list | tuple) or hasattr(value, "__iter__") else [value]
    if isinstance(value, int):
        values = [value]
    return ", ".join(f"({int(t) >> 16:04X},{int(t) & 0xFFFF:04X})" for t in values)
