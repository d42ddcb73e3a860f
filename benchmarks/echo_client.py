"""One C-ECHO client run in its own process: ``python -m benchmarks.echo_client``.

A process per run keeps the measured CPU clean (no threads left over from an
earlier run or from the other library) and lets an import failure of one
implementation be reported instead of ending the benchmark.

Usage: ``echo_client IMPL MODE HOST PORT COUNT`` with IMPL ``dimsefsm`` or
``pynetdicom`` and MODE

* ``assoc``: COUNT sequential associations with one C-ECHO each;
* ``echoes``: one association with COUNT C-ECHOs;
* ``idle``: open an association, send one C-ECHO, print ``established``, wait
  for a line on stdin, release.

Each run prints one JSON object per line on stdout; the last one is the result.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

CALLED_AE = "ANY-SCP"
CALLING_AE = "BENCH"


class EchoAssociation(Protocol):
    """What both libraries offer (dimsefsm is shaped like pynetdicom)."""

    @property
    def is_established(self) -> bool: ...

    def send_c_echo(self) -> Any: ...

    def release(self) -> None: ...


Connect = Callable[[str, int], EchoAssociation]


class EchoFailed(Exception):
    pass


def dimsefsm_connector() -> Connect:
    from dimsefsm import AE
    from dimsefsm.sop_class import VERIFICATION

    ae = AE(ae_title=CALLING_AE)
    ae.add_requested_context(VERIFICATION)

    def connect(host: str, port: int) -> EchoAssociation:
        assoc: EchoAssociation = ae.associate(host, port, ae_title=CALLED_AE)
        return assoc

    return connect


def pynetdicom_connector() -> Connect:
    from pynetdicom import AE

    # pynetdicom creates its SOP class names at import time via globals(): mypy cannot see them.
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    ae = AE(ae_title=CALLING_AE)
    ae.add_requested_context(Verification)

    def connect(host: str, port: int) -> EchoAssociation:
        assoc: EchoAssociation = ae.associate(host, port, ae_title=CALLED_AE)
        return assoc

    return connect


CONNECTORS: dict[str, Callable[[], Connect]] = {
    "dimsefsm": dimsefsm_connector,
    "pynetdicom": pynetdicom_connector,
}


def open_association(connect: Connect, host: str, port: int) -> EchoAssociation:
    assoc = connect(host, port)
    if not assoc.is_established:
        raise EchoFailed("association not established")
    return assoc


def echo(assoc: EchoAssociation) -> None:
    status = getattr(assoc.send_c_echo(), "Status", None)
    if status != 0:
        raise EchoFailed(f"C-ECHO status {status!r}")


def run_assoc(connect: Connect, host: str, port: int, count: int) -> dict[str, Any]:
    warm = open_association(connect, host, port)
    echo(warm)
    warm.release()
    started, cpu = time.perf_counter(), own_cpu()
    for done in range(count):
        try:
            assoc = open_association(connect, host, port)
            echo(assoc)
            assoc.release()
        except EchoFailed as exc:
            raise EchoFailed(f"association {done + 1}/{count}: {exc}") from None
    return measured(count, started, cpu)


def run_echoes(connect: Connect, host: str, port: int, count: int) -> dict[str, Any]:
    warm = open_association(connect, host, port)
    echo(warm)
    warm.release()
    started, cpu = time.perf_counter(), own_cpu()
    assoc = open_association(connect, host, port)
    for done in range(count):
        try:
            echo(assoc)
        except EchoFailed as exc:
            raise EchoFailed(f"echo {done + 1}/{count}: {exc}") from None
    assoc.release()
    return measured(count, started, cpu)


def run_idle(connect: Connect, host: str, port: int, count: int) -> dict[str, Any]:
    assoc = open_association(connect, host, port)
    echo(assoc)
    emit({"event": "established", "pid": os.getpid()})
    sys.stdin.readline()
    assoc.release()
    return {"ok": True}


MODES: dict[str, Callable[[Connect, str, int, int], dict[str, Any]]] = {
    "assoc": run_assoc,
    "echoes": run_echoes,
    "idle": run_idle,
}


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measured(count: int, started: float, cpu: float) -> dict[str, Any]:
    return {
        "ok": True,
        "count": count,
        "seconds": time.perf_counter() - started,
        "cpu": own_cpu() - cpu,
    }


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.echo_client")
    parser.add_argument("impl", choices=sorted(CONNECTORS))
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("count", type=int)
    args = parser.parse_args(argv)
    try:
        connect = CONNECTORS[args.impl]()
    except Exception as exc:  # an unfinished library must not end the benchmark
        emit({"ok": False, "unavailable": True, "error": describe(exc)})
        return 0
    try:
        result = MODES[args.mode](connect, args.host, args.port, args.count)
    except Exception as exc:
        emit({"ok": False, "error": describe(exc)})
        return 1
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
