"""One C-STORE client run in its own process: ``python -m benchmarks.storage_client``.

Usage: ``storage_client IMPL HOST PORT CALLED_AE DIR`` with IMPL one of

* ``dimsefsm``: ``send_c_store(path)``, the library reading the file itself;
* ``pynetdicom``: pydicom reads each file, ``send_c_store(dataset)`` sends it;
* ``pynetdicom-nodelay``: the same with TCP_NODELAY set on the association's
  socket, which stock pynetdicom never does (without it every instance waits
  for the peer's delayed ACK, about 40 ms on Linux).

Every file of DIR (sorted) is sent on one association.  A first association
sending one file warms up imports and caches; then association, sends and
release are timed (reading the files included, interpreter start not).  The
last line on stdout is a JSON result, as for ``benchmarks.echo_client``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

CALLING_AE = "BENCH"
# No response takes this long here; a lost one (pynetdicom's reactor thread can take
# a fast response off its queue as an "unexpected service message") fails sooner.
DIMSE_TIMEOUT = 5.0
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


class StoreAssociation(Protocol):
    @property
    def is_established(self) -> bool: ...

    def release(self) -> None: ...

    # dimsefsm takes a path, pynetdicom a decoded Dataset: each client passes its own.
    def send_c_store(self, dataset: Any, /) -> Any: ...


class StoreFailed(Exception):
    pass


class Client(Protocol):
    def connect(self, host: str, port: int, called: str) -> StoreAssociation: ...

    def store(self, assoc: StoreAssociation, path: Path) -> Any: ...


class DimsefsmClient:
    def __init__(self) -> None:
        from dimsefsm import AE, Association

        if not hasattr(Association, "send_c_store"):
            raise NotImplementedError("Association.send_c_store does not exist yet")
        self.ae = AE(CALLING_AE)
        self.ae.dimse_timeout = DIMSE_TIMEOUT
        self.ae.add_requested_context(CT_IMAGE_STORAGE, [EXPLICIT_VR_LITTLE_ENDIAN])

    def connect(self, host: str, port: int, called: str) -> StoreAssociation:
        assoc: StoreAssociation = self.ae.associate(host, port, ae_title=called)
        return assoc

    def store(self, assoc: StoreAssociation, path: Path) -> Any:
        return assoc.send_c_store(str(path))


class PynetdicomClient:
    def __init__(self, nodelay: bool = False) -> None:
        from pydicom import dcmread
        from pynetdicom import AE

        self.nodelay = nodelay
        self.read = dcmread
        self.ae = AE(ae_title=CALLING_AE)
        self.ae.dimse_timeout = DIMSE_TIMEOUT
        self.ae.add_requested_context(CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN)

    def connect(self, host: str, port: int, called: str) -> StoreAssociation:
        assoc: Any = self.ae.associate(host, port, ae_title=called)
        if self.nodelay and assoc.is_established:
            assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        established: StoreAssociation = assoc
        return established

    def store(self, assoc: StoreAssociation, path: Path) -> Any:
        return assoc.send_c_store(self.read(path))


CLIENTS: dict[str, Callable[[], Client]] = {
    "dimsefsm": DimsefsmClient,
    "pynetdicom": PynetdicomClient,
    "pynetdicom-nodelay": lambda: PynetdicomClient(nodelay=True),
}


def open_association(client: Client, host: str, port: int, called: str) -> StoreAssociation:
    assoc = client.connect(host, port, called)
    if not assoc.is_established:
        raise StoreFailed("association not established")
    return assoc


def send_all(client: Client, assoc: StoreAssociation, files: list[Path]) -> None:
    for done, path in enumerate(files):
        status = getattr(client.store(assoc, path), "Status", None)
        if status != 0:
            shown = "none" if status is None else f"0x{status:04X}"
            raise StoreFailed(f"instance {done + 1}/{len(files)}: C-STORE status {shown}")


def run(client: Client, host: str, port: int, called: str, files: list[Path]) -> dict[str, Any]:
    warm = open_association(client, host, port, called)
    send_all(client, warm, files[:1])
    warm.release()
    started, cpu = time.perf_counter(), own_cpu()
    assoc = open_association(client, host, port, called)
    send_all(client, assoc, files)
    assoc.release()
    return {
        "ok": True,
        "count": len(files),
        "bytes": sum(path.stat().st_size for path in files),
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
    parser = argparse.ArgumentParser(prog="benchmarks.storage_client")
    parser.add_argument("impl", choices=sorted(CLIENTS))
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    files = sorted(path for path in args.directory.iterdir() if path.is_file())
    if not files:
        emit({"ok": False, "error": f"no files in {args.directory}"})
        return 1
    try:
        client = CLIENTS[args.impl]()
    except Exception as exc:  # an unfinished library must not end the benchmark
        emit({"ok": False, "unavailable": True, "error": describe(exc)})
        return 0
    warnings = RecentWarnings()
    logging.getLogger().addHandler(warnings)
    try:
        result = run(client, args.host, args.port, args.called, files)
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
