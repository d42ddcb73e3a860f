"""One C-MOVE client run in its own process: ``python -m benchmarks.move_client``.

Usage: ``move_client IMPL HOST PORT CALLED_AE DEST_AE SPEC NAME`` with IMPL
``dimsefsm`` or ``pynetdicom``, SPEC the JSON file of
``benchmarks.get_server.RetrieveSpec`` and NAME the study to move (``small``
or ``large``) to DEST_AE.  Both libraries are used as shipped: the requestor
sends one request and reads responses, so Nagle's algorithm costs it nothing.

A first association moves one instance by its SOP Instance UID, which warms
up imports and caches (the destination overwrites that file when the study
follows); then association, the study-level C-MOVE and release are timed
(interpreter start not).  The run counts only if the final status is Success
and no sub-operation failed; whether the files arrived is the caller's check,
as only it sees the destination.  The output is ``benchmarks.client``'s JSON
records.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from pydicom.dataset import Dataset

from benchmarks.client import (
    RunFailed,
    Stopwatch,
    associator,
    check_success,
    client_main,
    completed_suboperations,
    established,
    final_response,
    peer_arguments,
    requestor,
)
from benchmarks.get_client import DIMSE_TIMEOUT
from benchmarks.get_server import RetrieveSpec, identifier
from benchmarks.move_server import STUDY_ROOT_MOVE


class MoveAssociation(Protocol):
    @property
    def is_established(self) -> bool: ...

    def send_c_move(
        self, dataset: Dataset, move_aet: str, query_model: str
    ) -> Iterable[tuple[Dataset, Dataset | None]]: ...

    def release(self) -> None: ...


Connect = Callable[[str, int, str], MoveAssociation]


def dimsefsm_connector() -> Connect:
    from dimsefsm import AE

    def connect(host: str, port: int, called: str) -> MoveAssociation:
        ae = requestor(AE, STUDY_ROOT_MOVE, dimse_timeout=DIMSE_TIMEOUT)
        assoc: MoveAssociation = ae.associate(host, port, ae_title=called)
        return assoc

    return connect


def pynetdicom_connector() -> Connect:
    from pynetdicom import AE

    return associator(requestor(AE, STUDY_ROOT_MOVE, dimse_timeout=DIMSE_TIMEOUT))


CONNECTORS: dict[str, Callable[[], Connect]] = {
    "dimsefsm": dimsefsm_connector,
    "pynetdicom": pynetdicom_connector,
}


def move(
    connect: Connect, host: str, port: int, called: str, destination: str, query: Dataset
) -> int:
    """One association, one C-MOVE: the completed count once the final status is Success."""
    assoc = established(connect(host, port, called))
    pending, final = final_response(assoc.send_c_move(query, destination, STUDY_ROOT_MOVE))
    assoc.release()
    check_success("C-MOVE", pending, final)
    return completed_suboperations(pending, final)


def arguments(parser: argparse.ArgumentParser) -> None:
    peer_arguments(parser)
    parser.add_argument("destination")
    parser.add_argument("spec", type=Path)
    parser.add_argument("name")


def run(connect: Connect, args: argparse.Namespace) -> dict[str, Any]:
    study = RetrieveSpec.load(args.spec).studies[args.name]
    where = (args.host, args.port, args.called, args.destination)
    warm = move(connect, *where, identifier(study, study.sop_instance_uids[0]))
    if warm != 1:
        raise RunFailed(f"warm-up move of one instance completed {warm}")
    watch = Stopwatch()
    completed = move(connect, *where, identifier(study))
    watch.stop()
    if completed != len(study.paths):
        raise RunFailed(f"{completed} completed, expected {len(study.paths)}")
    return watch.result(completed)


if __name__ == "__main__":
    sys.exit(client_main(None, "benchmarks.move_client", CONNECTORS, arguments, run))
