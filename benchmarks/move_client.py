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
as only it sees the destination.  The last line on stdout is a JSON result,
as for ``benchmarks.echo_client``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from pydicom.dataset import Dataset

from benchmarks.get_client import (
    DIMSE_TIMEOUT,
    PENDING,
    SUCCESS,
    RecentWarnings,
    describe,
    emit,
    identifier,
    own_cpu,
)
from benchmarks.get_server import RetrieveSpec, StudyFiles
from benchmarks.move_server import STUDY_ROOT_MOVE

CALLING_AE = "BENCH"


class MoveAssociation(Protocol):
    @property
    def is_established(self) -> bool: ...

    def send_c_move(
        self, dataset: Dataset, move_aet: str, query_model: str
    ) -> Iterable[tuple[Dataset, Dataset | None]]: ...

    def release(self) -> None: ...


Connect = Callable[[str, int, str], MoveAssociation]


class MoveFailed(Exception):
    pass


def dimsefsm_connector() -> Connect:
    from dimsefsm import AE

    def connect(host: str, port: int, called: str) -> MoveAssociation:
        ae = AE(CALLING_AE)
        ae.dimse_timeout = DIMSE_TIMEOUT
        ae.add_requested_context(STUDY_ROOT_MOVE)
        assoc: MoveAssociation = ae.associate(host, port, ae_title=called)
        return assoc

    return connect


def pynetdicom_connector() -> Connect:
    from pynetdicom import AE

    ae = AE(ae_title=CALLING_AE)
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.add_requested_context(STUDY_ROOT_MOVE)

    def connect(host: str, port: int, called: str) -> MoveAssociation:
        assoc: MoveAssociation = ae.associate(host, port, ae_title=called)
        return assoc

    return connect


CONNECTORS: dict[str, Callable[[], Connect]] = {
    "dimsefsm": dimsefsm_connector,
    "pynetdicom": pynetdicom_connector,
}


def move(
    connect: Connect, host: str, port: int, called: str, destination: str, query: Dataset
) -> int:
    """One association, one C-MOVE: the completed count once the final status is Success."""
    assoc = connect(host, port, called)
    if not assoc.is_established:
        raise MoveFailed("association not established")
    final: Dataset | None = None
    pending = 0
    for status, _identifier in assoc.send_c_move(query, destination, STUDY_ROOT_MOVE):
        if getattr(status, "Status", None) in PENDING:
            pending += 1
        else:
            final = status
    assoc.release()
    code = getattr(final, "Status", None)
    if final is None or code != SUCCESS:
        shown = "none (no final response)" if code is None else f"0x{code:04X}"
        raise MoveFailed(f"final C-MOVE status {shown} after {pending} pending responses")
    failed = int(final.get("NumberOfFailedSuboperations", 0) or 0)
    if failed:
        raise MoveFailed(f"{failed} failed sub-operations")
    return int(final.get("NumberOfCompletedSuboperations", pending) or pending)


def run(
    connect: Connect, host: str, port: int, called: str, destination: str, study: StudyFiles
) -> dict[str, Any]:
    one = study.sop_instance_uids[0]
    warm = move(connect, host, port, called, destination, identifier(study, one))
    if warm != 1:
        raise MoveFailed(f"warm-up move of one instance completed {warm}")
    started, cpu = time.perf_counter(), own_cpu()
    completed = move(connect, host, port, called, destination, identifier(study))
    seconds, cpu = time.perf_counter() - started, own_cpu() - cpu
    if completed != len(study.paths):
        raise MoveFailed(f"{completed} completed, expected {len(study.paths)}")
    return {"ok": True, "count": completed, "seconds": seconds, "cpu": cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.move_client")
    parser.add_argument("impl", choices=sorted(CONNECTORS))
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")
    parser.add_argument("destination")
    parser.add_argument("spec", type=Path)
    parser.add_argument("name")
    args = parser.parse_args(argv)
    study = RetrieveSpec.load(args.spec).studies[args.name]
    try:
        connect = CONNECTORS[args.impl]()
    except Exception as exc:  # an unfinished library must not end the benchmark
        emit({"ok": False, "unavailable": True, "error": describe(exc)})
        return 0
    warnings = RecentWarnings()
    logging.getLogger().addHandler(warnings)
    try:
        result = run(connect, args.host, args.port, args.called, args.destination, study)
    except Exception as exc:
        error = describe(exc)
        if warnings.messages:
            error += f" (logged: {'; '.join(warnings.messages)})"
        emit({"ok": False, "error": error})
        return 1
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
