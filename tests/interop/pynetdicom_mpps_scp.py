"""pynetdicom as an MPPS SCP, the way its documentation writes one: ``python -m
tests.interop.pynetdicom_mpps_scp PORT [-aet AET]``.

EVT_N_CREATE keeps the attribute list under its SOP Instance UID (assigning one
when the request has none), EVT_N_SET applies a modification list to a step it
knows, EVT_N_GET returns the attributes asked for (MPPS Retrieve SOP Class).
Steps live in a dict: the peer of our SCU in the interop tests, and the
pynetdicom SCP of ``make bench``'s MPPS workload.

Lines on stderr: ``listening on HOST:PORT`` once bound, then one
``N-CREATE UID`` / ``N-SET UID STATUS`` per request it accepted (what the
tests read to see what pynetdicom received).  Stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from typing import Any

from pydicom import Dataset
from pydicom.uid import generate_uid

MPPS = "1.2.840.10008.3.1.2.3.3"
MPPS_RETRIEVE = "1.2.840.10008.3.1.2.3.4"


class Steps:
    """The steps received, by SOP Instance UID."""

    def __init__(self, quiet: bool) -> None:
        self.steps: dict[str, Dataset] = {}
        self.lock = threading.Lock()
        self.quiet = quiet

    def say(self, line: str) -> None:
        if not self.quiet:
            print(line, file=sys.stderr, flush=True)

    def on_create(self, event: Any) -> tuple[int, Dataset | None]:
        asked = getattr(event.request, "AffectedSOPInstanceUID", None)
        uid = asked or generate_uid()
        attributes = event.attribute_list
        with self.lock:
            if uid in self.steps:
                return 0x0111, None
            if attributes.get("PerformedProcedureStepStatus") != "IN PROGRESS":
                return 0x0106, None
            attributes.SOPInstanceUID = uid
            self.steps[uid] = attributes
        self.say(f"N-CREATE {uid}")
        answer = Dataset(dict(attributes.items()))
        if not asked:  # pynetdicom's way of naming the UID it assigned
            answer.AffectedSOPInstanceUID = uid
        return 0x0000, answer

    def on_set(self, event: Any) -> tuple[int, Dataset | None]:
        uid = event.request.RequestedSOPInstanceUID
        modification = event.modification_list
        with self.lock:
            step = self.steps.get(uid)
            if step is None:
                return 0x0112, None
            if step.PerformedProcedureStepStatus != "IN PROGRESS":
                return 0x0110, None
            step.update(modification)
            status = step.PerformedProcedureStepStatus
        self.say(f"N-SET {uid} {status}")
        return 0x0000, modification

    def on_get(self, event: Any) -> tuple[int, Dataset | None]:
        uid = event.request.RequestedSOPInstanceUID
        with self.lock:
            step = self.steps.get(uid)
            if step is None:
                return 0x0112, None
            answer = Dataset()
            wanted = getattr(event.request, "AttributeIdentifierList", None)
            if wanted is not None and not isinstance(wanted, list):
                wanted = [wanted]
            for tag in wanted or list(step.keys()):
                if tag in step:
                    answer[tag] = step[tag]
        return 0x0000, answer


def set_nodelay(event: Any) -> None:
    sock = event.assoc.dul.socket.socket
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pynetdicom_mpps_scp")
    parser.add_argument("port", type=int)
    parser.add_argument("-aet", default="ANY-SCP")
    parser.add_argument("-q", "--quiet", action="store_true", help="no line per request")
    parser.add_argument(
        "--nodelay",
        action="store_true",
        help="TCP_NODELAY on each connection (as shipped, Nagle's algorithm holds every "
        "response's data set PDU until the peer's delayed ACK)",
    )
    parser.add_argument(
        "--dimsefsm",
        action="store_true",
        help="the same handlers on dimsefsm's AE (its API is pynetdicom's): the benchmark's "
        "library-to-library comparison",
    )
    args = parser.parse_args(argv)
    if args.dimsefsm:
        from dimsefsm import AE, evt
    else:
        from pynetdicom import AE, evt  # type: ignore[assignment,no-redef]
    steps = Steps(args.quiet)
    ae = AE(ae_title=args.aet)
    ae.add_supported_context(MPPS)
    ae.add_supported_context(MPPS_RETRIEVE)
    handlers: list[Any] = [
        (evt.EVT_N_CREATE, steps.on_create),
        (evt.EVT_N_SET, steps.on_set),
        (evt.EVT_N_GET, steps.on_get),
    ]
    if args.nodelay and not args.dimsefsm:  # dimsefsm sets TCP_NODELAY itself
        handlers.append((evt.EVT_CONN_OPEN, set_nodelay))
    server: Any = ae.start_server(("127.0.0.1", args.port), block=False, evt_handlers=handlers)
    assert server is not None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    host, bound = (server.address if args.dimsefsm else server.server_address)[:2]
    name = "dimsefsm" if args.dimsefsm else "pynetdicom"
    print(f"{name} MPPS SCP: listening on {host}:{bound}", file=sys.stderr, flush=True)
    stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
