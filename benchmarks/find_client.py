"""One C-FIND client run in its own process: ``python -m benchmarks.find_client``.

Usage: ``find_client IMPL HOST PORT CALLED_AE SPEC`` with IMPL ``dimsefsm`` or
``pynetdicom`` and SPEC the JSON file of ``benchmarks.find_server.QuerySpec``.

A first association asks for one instance by its SOP Instance UID, which warms
up imports and caches for one response's cost; then association, the
IMAGE-level query for the whole series (every identifier decoded, as each
library hands it over) and release are timed (interpreter start not).  The last
line on stdout is a JSON result, as for ``benchmarks.echo_client``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from pydicom.dataset import Dataset

from benchmarks.find_server import STUDY_ROOT_FIND, QuerySpec, query

CALLING_AE = "BENCH"
# No response takes this long here; a lost one (pynetdicom's reactor thread can take
# a fast response off its queue as an "unexpected service message") fails sooner.
DIMSE_TIMEOUT = 5.0
PENDING = (0xFF00, 0xFF01)
SUCCESS = 0x0000


class FindAssociation(Protocol):
    """What both libraries offer (dimsefsm is shaped like pynetdicom)."""

    @property
    def is_established(self) -> bool: ...

    def send_c_find(
        self, dataset: Dataset, query_model: str
    ) -> Iterable[tuple[Dataset, Dataset | None]]: ...

    def release(self) -> None: ...


Connect = Callable[[str, int, str], FindAssociation]


class FindFailed(Exception):
    pass


def dimsefsm_connector() -> Connect:
    from dimsefsm import AE

    ae = AE(CALLING_AE)
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.add_requested_context(STUDY_ROOT_FIND)

    def connect(host: str, port: int, called: str) -> FindAssociation:
        assoc: FindAssociation = ae.associate(host, port, ae_title=called)
        return assoc

    return connect


def pynetdicom_connector() -> Connect:
    from pynetdicom import AE

    ae = AE(ae_title=CALLING_AE)
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.add_requested_context(STUDY_ROOT_FIND)

    def connect(host: str, port: int, called: str) -> FindAssociation:
        assoc: FindAssociation = ae.associate(host, port, ae_title=called)
        return assoc

    return connect


CONNECTORS: dict[str, Callable[[], Connect]] = {
    "dimsefsm": dimsefsm_connector,
    "pynetdicom": pynetdicom_connector,
}


def find(connect: Connect, host: str, port: int, called: str, identifier: Dataset) -> int:
    """One association, one C-FIND; the number of matches once the final status is Success."""
    assoc = connect(host, port, called)
    if not assoc.is_established:
        raise FindFailed("association not established")
    matches = 0
    final: int | None = None
    for status, _identifier in assoc.send_c_find(identifier, STUDY_ROOT_FIND):
        code = getattr(status, "Status", None)
        if code in PENDING:
            matches += 1
            continue
        final = code
    assoc.release()
    if final != SUCCESS:
        shown = "none (no final response)" if final is None else f"0x{final:04X}"
        raise FindFailed(f"final C-FIND status {shown} after {matches} matches")
    return matches


def run(connect: Connect, host: str, port: int, called: str, spec: QuerySpec) -> dict[str, Any]:
    warm = find(connect, host, port, called, query(spec, spec.sop_instance_uids[0]))
    if warm != 1:
        raise FindFailed(f"warm-up query for one instance got {warm} matches")
    identifier = query(spec)
    started, cpu = time.perf_counter(), own_cpu()
    matches = find(connect, host, port, called, identifier)
    return {
        "ok": True,
        "count": matches,
        "seconds": time.perf_counter() - started,
        "cpu": own_cpu() - cpu,
    }


class RecentWarnings(logging.Handler):
    """Keeps the libraries' last warnings so that a failure can say what they saw."""

    def __init__(self, keep: int = 3) -> None:
        super().__init__(logging.WARNING)
        self.keep = keep
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages = [*self.messages[-(self.keep - 1) :], record.getMessage()]


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.find_client")
    parser.add_argument("impl", choices=sorted(CONNECTORS))
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")
    parser.add_argument("spec", type=Path)
    args = parser.parse_args(argv)
    spec = QuerySpec.load(args.spec)
    try:
        connect = CONNECTORS[args.impl]()
    except Exception as exc:  # an unfinished library must not end the benchmark
        emit({"ok": False, "unavailable": True, "error": describe(exc)})
        return 0
    warnings = RecentWarnings()
    logging.getLogger().addHandler(warnings)
    try:
        result = run(connect, args.host, args.port, args.called, spec)
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
