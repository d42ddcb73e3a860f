"""One C-ECHO client run in its own process: ``python -m benchmarks.echo_client``.

Usage: ``echo_client IMPL MODE HOST PORT COUNT`` with IMPL ``dimsefsm`` or
``pynetdicom`` and MODE

* ``assoc``: COUNT sequential associations with one C-ECHO each;
* ``echoes``: one association with COUNT C-ECHOs;
* ``idle``: open an association, send one C-ECHO, print ``established``, wait
  for a line on stdin, release.

The output is ``benchmarks.client``'s JSON records.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

from benchmarks.client import (
    RunFailed,
    Stopwatch,
    associator,
    client_main,
    emit,
    established,
    requestor,
)

CALLED_AE = "ANY-SCP"


class EchoAssociation(Protocol):
    """What both libraries offer (dimsefsm is shaped like pynetdicom)."""

    @property
    def is_established(self) -> bool: ...

    def send_c_echo(self) -> Any: ...

    def release(self) -> None: ...


Connect = Callable[[str, int, str], EchoAssociation]


def dimsefsm_connector() -> Connect:
    from dimsefsm import AE
    from dimsefsm.sop_class import VERIFICATION

    return associator(requestor(AE, VERIFICATION))


def pynetdicom_connector() -> Connect:
    from pynetdicom import AE

    # pynetdicom creates its SOP class names at import time via globals(): mypy cannot see them.
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    return associator(requestor(AE, Verification))


CONNECTORS: dict[str, Callable[[], Connect]] = {
    "dimsefsm": dimsefsm_connector,
    "pynetdicom": pynetdicom_connector,
}


def open_association(connect: Connect, host: str, port: int) -> EchoAssociation:
    return established(connect(host, port, CALLED_AE))


def echo(assoc: EchoAssociation) -> None:
    status = getattr(assoc.send_c_echo(), "Status", None)
    if status != 0:
        raise RunFailed(f"C-ECHO status {status!r}")


def warm_up(connect: Connect, host: str, port: int) -> None:
    warm = open_association(connect, host, port)
    echo(warm)
    warm.release()


def run_assoc(connect: Connect, host: str, port: int, count: int) -> dict[str, Any]:
    warm_up(connect, host, port)
    watch = Stopwatch()
    for done in range(count):
        try:
            assoc = open_association(connect, host, port)
            echo(assoc)
            assoc.release()
        except RunFailed as exc:
            raise RunFailed(f"association {done + 1}/{count}: {exc}") from None
    return watch.result(count)


def run_echoes(connect: Connect, host: str, port: int, count: int) -> dict[str, Any]:
    warm_up(connect, host, port)
    watch = Stopwatch()
    assoc = open_association(connect, host, port)
    for done in range(count):
        try:
            echo(assoc)
        except RunFailed as exc:
            raise RunFailed(f"echo {done + 1}/{count}: {exc}") from None
    assoc.release()
    return watch.result(count)


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


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("count", type=int)


def run(connect: Connect, args: argparse.Namespace) -> dict[str, Any]:
    return MODES[args.mode](connect, args.host, args.port, args.count)


if __name__ == "__main__":
    sys.exit(client_main(None, "benchmarks.echo_client", CONNECTORS, arguments, run))
