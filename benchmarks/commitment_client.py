"""One Storage Commitment client run in its own process: ``python -m benchmarks.commitment_client``.

Usage: ``commitment_client IMPL HOST PORT CALLED COUNT REFS`` with IMPL
``dimsefsm`` or ``pynetdicom``: one association; COUNT times, an N-ACTION
Request Storage Commitment naming every reference of REFS (a JSON list of
``[class, instance]``), then the wait for the SCP's N-EVENT-REPORT on the same
association, which must commit them all.  One request first, untimed (imports,
caches).  The output is ``benchmarks.client``'s JSON records.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.client import RunFailed, Stopwatch, client_main
from benchmarks.core import CALLING_AE

INSTANCE = "1.2.840.10008.1.20.1.1"
REPORT_TIMEOUT = 120.0

# (host, port, called AE, references) -> a function that asks once and returns how many
# references the report committed.
Session = Callable[[], int]
Opener = Callable[[str, int, str, list[tuple[str, str]]], tuple[Session, Callable[[], None]]]


def dimsefsm_opener() -> Opener:
    from dimsefsm import evt
    from dimsefsm.services.commitment import Reference
    from dimsefsm.storage_commitment import (
        ReportCollector,
        commitment_ae,
        send_request,
        wait_on_association,
    )

    def open_session(
        host: str, port: int, called: str, refs: list[tuple[str, str]]
    ) -> tuple[Session, Callable[[], None]]:
        collector = ReportCollector()
        ae = commitment_ae(CALLING_AE)
        assoc = ae.associate(
            host,
            port,
            ae_title=called,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, collector.on_report)],
        )
        if not assoc.is_established:
            raise RunFailed(f"association not established: {assoc.describe_failure()}")
        references = [Reference(c, i) for c, i in refs]

        def ask() -> int:
            result = send_request(assoc, references)
            if result.status != 0:
                raise RunFailed(f"N-ACTION status {result.status!r} {result.comment}")
            outcome = wait_on_association(assoc, collector, result.transaction_uid, REPORT_TIMEOUT)
            if outcome is None:
                raise RunFailed("no report")
            return len(outcome.committed)

        return ask, assoc.release

    return open_session


def pynetdicom_opener() -> Opener:
    from pydicom import Dataset
    from pydicom.uid import generate_uid
    from pynetdicom import AE, evt

    # pynetdicom creates its SOP class names at import time via globals(): mypy cannot see them.
    from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

    def open_session(
        host: str, port: int, called: str, refs: list[tuple[str, str]]
    ) -> tuple[Session, Callable[[], None]]:
        reports: dict[str, int] = {}
        arrived = threading.Condition()

        def on_report(event: Any) -> tuple[int, None]:
            info = event.event_information
            with arrived:
                reports[str(info.TransactionUID)] = len(info.get("ReferencedSOPSequence", []))
                arrived.notify_all()
            return 0x0000, None

        ae = AE(ae_title=CALLING_AE)
        ae.add_requested_context(StorageCommitmentPushModel)
        assoc = ae.associate(
            host, port, ae_title=called, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]
        )
        if not assoc.is_established:
            raise RunFailed("association not established")

        def ask() -> int:
            request = Dataset()
            request.TransactionUID = uid = generate_uid()
            items = []
            for sop_class, sop_instance in refs:
                item = Dataset()
                item.ReferencedSOPClassUID = sop_class
                item.ReferencedSOPInstanceUID = sop_instance
                items.append(item)
            request.ReferencedSOPSequence = items
            status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, INSTANCE)
            if getattr(status, "Status", None) != 0:
                raise RunFailed(f"N-ACTION status {getattr(status, 'Status', None)!r}")
            with arrived:
                if not arrived.wait_for(lambda: uid in reports, REPORT_TIMEOUT):
                    raise RunFailed("no report")
                return reports[uid]

        return ask, assoc.release

    return open_session


CONNECTORS: dict[str, Callable[[], Opener]] = {
    "dimsefsm": dimsefsm_opener,
    "pynetdicom": pynetdicom_opener,
}


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")
    parser.add_argument("count", type=int)
    parser.add_argument("refs", type=Path)


def run(open_session: Opener, args: argparse.Namespace) -> dict[str, Any]:
    refs = [(str(c), str(i)) for c, i in json.loads(args.refs.read_text())]
    ask, release = open_session(args.host, args.port, args.called, refs)
    if ask() != len(refs):  # the warm-up request, untimed
        raise RunFailed("the report did not commit every reference")
    watch = Stopwatch()
    for done in range(args.count):
        committed = ask()
        if committed != len(refs):
            raise RunFailed(f"request {done + 1}: {committed} of {len(refs)} committed")
    watch.stop()
    release()
    return watch.result(args.count, references=len(refs))


if __name__ == "__main__":
    sys.exit(client_main(None, "benchmarks.commitment_client", CONNECTORS, arguments, run))
