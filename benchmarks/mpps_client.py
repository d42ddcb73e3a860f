"""One MPPS client run in its own process: ``python -m benchmarks.mpps_client``.

Usage: ``mpps_client IMPL HOST PORT CALLED_AE STEPS`` with IMPL ``dimsefsm``
or ``pynetdicom``.  Each step is what a modality sends for one procedure: an
N-CREATE (IN PROGRESS, the attributes of PS3.4 Table F.7.2-1) and an N-SET
ending it COMPLETED with its performed series; both must answer Success.  A
first association runs one step to warm up imports and caches; then one
association with STEPS steps is timed, set-up and release included
(interpreter start not).  The output is ``benchmarks.client``'s JSON records.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable
from typing import Any, Protocol

from pydicom import Dataset
from pydicom.uid import generate_uid

from benchmarks.client import (
    RunFailed,
    Stopwatch,
    associator,
    client_main,
    established,
    peer_arguments,
    requestor,
)

MPPS = "1.2.840.10008.3.1.2.3.3"
DIMSE_TIMEOUT = 3.0


class MppsAssociation(Protocol):
    """What both libraries offer (dimsefsm is shaped like pynetdicom)."""

    @property
    def is_established(self) -> bool: ...

    def send_n_create(
        self, dataset: Dataset, class_uid: str, instance_uid: str | None = None
    ) -> tuple[Dataset, Dataset | None]: ...

    def send_n_set(
        self, dataset: Dataset, class_uid: str, instance_uid: str
    ) -> tuple[Dataset, Dataset | None]: ...

    def release(self) -> None: ...


Connect = Callable[[str, int, str], MppsAssociation]


def dimsefsm_connector() -> Connect:
    from dimsefsm import AE

    return associator(requestor(AE, MPPS, dimse_timeout=DIMSE_TIMEOUT))


def pynetdicom_connector() -> Connect:
    """pynetdicom with TCP_NODELAY: as shipped, Nagle's algorithm holds each request's data
    set PDU until the SCP's delayed ACK (~40 ms a request)."""
    from pynetdicom import AE

    connect = associator(requestor(AE, MPPS, dimse_timeout=DIMSE_TIMEOUT))

    def connect_nodelay(host: str, port: int, called: str) -> Any:
        assoc = connect(host, port, called)
        sock = assoc.dul.socket.socket if assoc.is_established else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return assoc

    return connect_nodelay


CONNECTORS: dict[str, Callable[[], Connect]] = {
    "dimsefsm": dimsefsm_connector,
    "pynetdicom": pynetdicom_connector,
}


def create_attributes(study_uid: str) -> Dataset:
    """An N-CREATE attribute list: every Type 1 attribute of Table F.7.2-1, Type 2 empty."""
    ds = Dataset()
    step = Dataset()
    step.StudyInstanceUID = study_uid
    step.AccessionNumber = "A1"
    step.RequestedProcedureID = "RP1"
    step.ScheduledProcedureStepID = "SPS1"
    ds.ScheduledStepAttributesSequence = [step]
    ds.PatientName = "Bench^Patient"
    ds.PatientID = "BENCH1"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "BENCH"
    ds.PerformedProcedureStepStartDate = "20261205"
    ds.PerformedProcedureStepStartTime = "101500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = "CT"
    ds.StudyID = "1"
    ds.PerformedSeriesSequence = []
    return ds


def final_attributes() -> Dataset:
    """The N-SET that ends a step COMPLETED, with its end and one performed series."""
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "COMPLETED"
    ds.PerformedProcedureStepEndDate = "20261205"
    ds.PerformedProcedureStepEndTime = "103000"
    series = Dataset()
    series.ProtocolName = "Head"
    series.SeriesInstanceUID = generate_uid()
    series.RetrieveAETitle = ""
    series.ReferencedImageSequence = []
    ds.PerformedSeriesSequence = [series]
    return ds


def steps(connect: Connect, host: str, port: int, called: str, count: int) -> int:
    """One association, ``count`` create+set pairs; each must answer Success."""
    study = generate_uid()
    assoc = established(connect(host, port, called))
    try:
        for _ in range(count):
            uid = generate_uid()
            status, _ = assoc.send_n_create(create_attributes(study), MPPS, uid)
            _check("N-CREATE", status)
            status, _ = assoc.send_n_set(final_attributes(), MPPS, uid)
            _check("N-SET", status)
    finally:
        if assoc.is_established:
            assoc.release()
    return count


def _check(what: str, status: Dataset) -> None:
    code = getattr(status, "Status", None)
    if code != 0x0000:
        shown = "none (no response)" if code is None else f"0x{code:04X}"
        comment = getattr(status, "ErrorComment", "")
        raise RunFailed(f"{what} answered {shown} {comment}".strip())


def arguments(parser: argparse.ArgumentParser) -> None:
    peer_arguments(parser)
    parser.add_argument("steps", type=int)


def run(connect: Connect, args: argparse.Namespace) -> dict[str, Any]:
    where = (args.host, args.port, args.called)
    steps(connect, *where, 1)
    watch = Stopwatch()
    return watch.result(steps(connect, *where, args.steps))


if __name__ == "__main__":
    sys.exit(client_main(None, "benchmarks.mpps_client", CONNECTORS, arguments, run))
