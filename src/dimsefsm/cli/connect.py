"""Opening the association an SCU's flags name, with the CLI's exit codes on failure."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator

from dimsefsm.ae import AE, HandlerList
from dimsefsm.assoc.reasons import context_result_text, refused_contexts, sop_class_name
from dimsefsm.association import Association
from dimsefsm.cli.common import (
    EXIT_ABORTED,
    EXIT_FAILED_STATUS,
    EXIT_REJECTED,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    verbose,
)
from dimsefsm.cli.tls import client_tls
from dimsefsm.pdu.model import UserIdentityRQ


def add_identity_args(parser: argparse.ArgumentParser) -> None:
    """dcmtk storescu's user identity flags (PS3.7 D.3.3.7), for every SCU."""
    group = parser.add_argument_group("user identity negotiation")
    group.add_argument("-usr", "--user", metavar="NAME", help="authenticate as user NAME")
    group.add_argument(
        "-pwd", "--password", metavar="PW", help="authenticate with password PW (with --user)"
    )
    group.add_argument(
        "-epw",
        "--empty-password",
        action="store_true",
        help="send an empty password (with --user)",
    )
    group.add_argument(
        "-rsp",
        "--pos-response",
        "-usr-req",
        dest="pos_response",
        action="store_true",
        help="ask for a positive response; without one the association is released, exit 3",
    )


def identity_from_args(args: argparse.Namespace) -> UserIdentityRQ | str | None:
    """The User Identity item the flags ask for, None, or an error message."""
    user = getattr(args, "user", None)
    password = getattr(args, "password", None)
    if getattr(args, "empty_password", False):
        password = "" if password is None else password
    if user is None:
        if password is not None or getattr(args, "pos_response", False):
            return "--password, --empty-password and --pos-response need --user"
        return None
    from dimsefsm.identity import username_identity  # only with -u: it loads the hashing

    return username_identity(user, password, positive_response=args.pos_response)


LOG = logging.getLogger("dimsefsm.cli")


@contextlib.contextmanager
def _said_once(args: argparse.Namespace) -> Iterator[None]:
    """While associating, leave the failure to our one line (``describe_failure``).

    The library logs why a connection or negotiation failed and keeps the same
    text for ``describe_failure``; below -v the command's line is enough.
    """
    logger = logging.getLogger("dimsefsm.association")
    before = logger.level
    if not verbose(args):
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(before)


def proposed_syntaxes(assoc: Association) -> dict[int, str]:
    """Our proposal: presentation context ID -> abstract syntax."""
    rq = getattr(assoc.engine, "rq", None)
    if rq is None:
        return {}
    return {pc.context_id: pc.abstract_syntax for pc in rq.presentation_contexts}


def log_refused_contexts(assoc: Association) -> None:
    """At -v, one line per context the peer refused, naming its SOP class and why."""
    negotiated = assoc.negotiated
    if negotiated is None or not negotiated.rejected:
        return
    for line in refused_contexts(negotiated.rejected, proposed_syntaxes(assoc)):
        LOG.info("the peer refused %s", line)


def require_context(
    name: str,
    assoc: Association,
    args: argparse.Namespace,
    sop_class: str,
    hint: str = "",
    *,
    as_scp: bool = False,
) -> int | None:
    """None when the peer accepted a context for ``sop_class``; else say why and exit 1.

    The association is released: it was accepted, but with nothing we can ask.
    """
    negotiated = assoc.negotiated
    if negotiated is not None and negotiated.find_context(sop_class, as_scp=as_scp):
        return None
    why = ""
    if negotiated is not None:
        proposed = proposed_syntaxes(assoc)
        results = {
            negotiated.rejected[cid]
            for cid, uid in proposed.items()
            if uid == sop_class and cid in negotiated.rejected
        }
        if results:
            why = f" ({'; '.join(sorted(context_result_text(r) for r in results))})"
    suggestion = f" — {hint}" if hint else ""
    print(
        f"{name}: {args.call} accepted no {sop_class_name(sop_class)} context{why}{suggestion}",
        file=sys.stderr,
    )
    assoc.release()
    return EXIT_FAILED_STATUS


def open_association(
    name: str, ae: AE, args: argparse.Namespace, evt_handlers: HandlerList | None = None
) -> Association | int:
    """The established association, or the exit code after saying why there is none.

    One place for every SCU, so a rejection is 3, a timeout 5 and anything else 4
    whichever command met it.  A rejected user identity is a rejection (3); so
    is a positive response asked for and not received (like dcmtk, we then
    release the association).  ``evt_handlers``: bound on the association (requests
    the peer sends us on it, e.g. a Storage Commitment report).
    """
    identity = identity_from_args(args)
    if isinstance(identity, str):
        print(f"{name}: {identity}", file=sys.stderr)
        return EXIT_USAGE
    with _said_once(args):
        assoc = ae.associate(
            args.host,
            args.port,
            ae_title=args.call,
            tls_args=client_tls(args),
            user_identity=identity,
            evt_handlers=evt_handlers,
        )
    if assoc.is_established:
        log_refused_contexts(assoc)
        if identity is not None and identity.positive_response_requested:
            negotiated = assoc.negotiated
            response = None if negotiated is None else negotiated.user_identity_response
            if response is None:
                print(f"{name}: user identity: no positive response received", file=sys.stderr)
                assoc.release()
                return EXIT_REJECTED
            if getattr(args, "verbose", False) or getattr(args, "debug", False):
                shown = response.decode("utf-8", "replace") if response else "(empty)"
                print(f"{name}: user identity accepted; server response: {shown}", file=sys.stderr)
        return assoc
    print(f"{name}: {assoc.describe_failure()}", file=sys.stderr)
    if assoc.is_rejected:
        return EXIT_REJECTED
    return EXIT_TIMEOUT if assoc.timed_out else EXIT_ABORTED
