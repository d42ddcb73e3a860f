"""pynetdicom's Storage Commitment SCP for the benchmark:
``python -m benchmarks.commitment_server PORT REFS [-aet AET]``.

pynetdicom ships no Storage Commitment application, so this is the one a
pynetdicom user would write: an ``EVT_N_ACTION`` handler that answers at once,
and an ``EVT_DIMSE_SENT`` handler that, once that N-ACTION response is out,
sends the N-EVENT-REPORT on the same association from a thread (the handlers
run on the association's own thread, which reads the report's response).
Sent from the N-ACTION handler's thread straight away, the report could
overtake the response, and pynetdicom's ``send_n_action`` at the other end
then waits for ever.  Its "archive" is the set of SOP Instance UIDs in REFS (a
JSON list of ``[class, instance]``), a dictionary lookup per reference: the
baseline is pynetdicom's networking at its best, with no storage to check.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from benchmarks.server import Shutdown, listen_pynetdicom, serve

INSTANCE = "1.2.840.10008.1.20.1.1"


def start(port: int, refs: Path, ae_title: str) -> Shutdown:
    from pydicom import Dataset
    from pynetdicom import AE, evt

    # pynetdicom creates its SOP class names at import time via globals(): mypy cannot see them.
    from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

    held = {uid for _, uid in json.loads(refs.read_text())}

    def report(assoc: Any, request: Dataset) -> None:
        reply = Dataset()
        reply.TransactionUID = request.TransactionUID
        committed, failed = [], []
        for item in request.ReferencedSOPSequence:
            ref = Dataset()
            ref.ReferencedSOPClassUID = item.ReferencedSOPClassUID
            ref.ReferencedSOPInstanceUID = item.ReferencedSOPInstanceUID
            if item.ReferencedSOPInstanceUID in held:
                committed.append(ref)
            else:
                ref.FailureReason = 0x0112
                failed.append(ref)
        if committed:
            reply.ReferencedSOPSequence = committed
        if failed:
            reply.FailedSOPSequence = failed
        assoc.send_n_event_report(reply, 2 if failed else 1, StorageCommitmentPushModel, INSTANCE)

    pending: dict[Any, Dataset] = {}
    lock = threading.Lock()

    def on_action(event: Any) -> tuple[int, None]:
        with lock:
            pending[event.assoc] = event.action_information
        return 0x0000, None

    def on_sent(event: Any) -> None:
        if type(event.message).__name__ != "N_ACTION_RSP":
            return
        with lock:
            request = pending.pop(event.assoc, None)
        if request is not None:
            threading.Thread(target=report, args=(event.assoc, request), daemon=True).start()

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(StorageCommitmentPushModel)
    handlers = [(evt.EVT_N_ACTION, on_action), (evt.EVT_DIMSE_SENT, on_sent)]
    return listen_pynetdicom(ae, port, handlers, "stgcmtscp")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.commitment_server")
    parser.add_argument("port", type=int)
    parser.add_argument("refs", type=Path)
    parser.add_argument("-aet", default="STGCMTSCP")
    args = parser.parse_args(argv)
    serve(lambda: start(args.port, args.refs, args.aet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
