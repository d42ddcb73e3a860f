"""One C-FIND client run in its own process: ``python -m benchmarks.find_client``.

Usage: ``find_client IMPL HOST PORT CALLED_AE SPEC`` with IMPL ``dimsefsm`` or
``pynetdicom`` and SPEC the JSON file of ``benchmarks.find_server.QuerySpec``.

A first association asks for one instance by its SOP Instance UID, which warms
up imports and caches for one response's cost; then association, the
IMAGE-level query for the whole series (every identifier decoded, as each
library hands it over) and release are timed (interpreter start not).  The
output is ``benchmarks.client``'s JSON records.
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
    established,
    final_response,
    peer_arguments,
    requestor,
)
from benchmarks.find_server import STUDY_ROOT_FIND, QuerySpec, query

# No response takes this long here; a lost one (pynetdicom's reactor thread can take
# a fast response off its queue as an "unexpected service message") fails sooner.
DIMSE_TIMEOUT = 5.0


class FindAssociation(Protocol):
    """What both libraries offer (dimsefsm is shaped like pynetdicom)."""

    @property
    def is_established(self) -> bool: ...

    def send_c_find(
        self, dataset: Dataset, query_model: str
    ) -> Iterable[tuple[Dataset, Dataset | None]]: ...

    def release(self) -> None: ...


Connect = Callable[[str, int, str], FindAssociation]


def dimsefsm_connector() -> Connect:
    from dimsefsm import AE

    return associator(requestor(AE, STUDY_ROOT_FIND, dimse_timeout=DIMSE_TIMEOUT))


def pynetdicom_connector() -> Connect:
    from pynetdicom import AE

    return associator(requestor(AE, STUDY_ROOT_FIND, dimse_timeout=DIMSE_TIMEOUT))


CONNECTORS: dict[str, Callable[[], Connect]] = {
    "dimsefsm": dimsefsm_connector,
    "pynetdicom": pynetdicom_connector,
}


def find(connect: Connect, host: str, port: int, called: str, identifier: Dataset) -> int:
    """One association, one C-FIND; the number of matches once the final status is Success."""
    assoc = established(connect(host, port, called))
    matches, final = final_response(assoc.send_c_find(identifier, STUDY_ROOT_FIND))
    assoc.release()
    check_success("C-FIND", matches, final)
    return matches


def arguments(parser: argparse.ArgumentParser) -> None:
    peer_arguments(parser)
    parser.add_argument("spec", type=Path)


def run(connect: Connect, args: argparse.Namespace) -> dict[str, Any]:
    spec = QuerySpec.load(args.spec)
    where = (args.host, args.port, args.called)
    warm = find(connect, *where, query(spec, spec.sop_instance_uids[0]))
    if warm != 1:
        raise RunFailed(f"warm-up query for one instance got {warm} matches")
    identifier = query(spec)
    watch = Stopwatch()
    return watch.result(find(connect, *where, identifier))


if __name__ == "__main__":
    sys.exit(client_main(None, "benchmarks.find_client", CONNECTORS, arguments, run))
