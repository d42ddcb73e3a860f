"""Opening the association an SCU's flags name, with the CLI's exit codes on failure."""

from __future__ import annotations

import argparse
import sys

from dimsefsm.ae import AE
from dimsefsm.association import Association
from dimsefsm.cli.common import EXIT_ABORTED, EXIT_REJECTED, EXIT_TIMEOUT, EXIT_USAGE
from dimsefsm.cli.tls import client_tls
from dimsefsm.identity import username_identity
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
    return username_identity(user, password, positive_response=args.pos_response)


def open_association(name: str, ae: AE, args: argparse.Namespace) -> Association | int:
    """The established association, or the exit code after saying why there is none.

    One place for every SCU, so a rejection is 3, a timeout 5 and anything else 4
    whichever command met it.  A rejected user identity is a rejection (3); so
    is a positive response asked for and not received (like dcmtk, we then
    release the association).
    """
    identity = identity_from_args(args)
    if isinstance(identity, str):
        print(f"{name}: {identity}", file=sys.stderr)
        return EXIT_USAGE
    assoc = ae.associate(
        args.host, args.port, ae_title=args.call, tls_args=client_tls(args), user_identity=identity
    )
    if assoc.is_established:
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
