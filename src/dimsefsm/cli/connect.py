"""Opening the association an SCU's flags name, with the CLI's exit codes on failure."""

from __future__ import annotations

import argparse
import sys

from dimsefsm.ae import AE
from dimsefsm.association import Association
from dimsefsm.cli.common import EXIT_ABORTED, EXIT_REJECTED, EXIT_TIMEOUT
from dimsefsm.cli.tls import client_tls


def open_association(name: str, ae: AE, args: argparse.Namespace) -> Association | int:
    """The established association, or the exit code after saying why there is none.

    One place for every SCU, so a rejection is 3, a timeout 5 and anything else 4
    whichever command met it.
    """
    assoc = ae.associate(args.host, args.port, ae_title=args.call, tls_args=client_tls(args))
    if assoc.is_established:
        return assoc
    print(f"{name}: {assoc.describe_failure()}", file=sys.stderr)
    if assoc.is_rejected:
        return EXIT_REJECTED
    return EXIT_TIMEOUT if assoc.timed_out else EXIT_ABORTED
