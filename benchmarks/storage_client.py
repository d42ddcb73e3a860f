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
output is ``benchmarks.client``'s JSON records.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from benchmarks.client import RunFailed, Stopwatch, client_main, established, peer_arguments
from benchmarks.core import CALLING_AE

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


def send_all(client: Client, assoc: StoreAssociation, files: list[Path]) -> None:
    for done, path in enumerate(files):
        status = getattr(client.store(assoc, path), "Status", None)
        if status != 0:
            shown = "none" if status is None else f"0x{status:04X}"
            raise RunFailed(f"instance {done + 1}/{len(files)}: C-STORE status {shown}")


def send(client: Client, host: str, port: int, called: str, files: list[Path]) -> None:
    assoc = established(client.connect(host, port, called))
    send_all(client, assoc, files)
    assoc.release()


def arguments(parser: argparse.ArgumentParser) -> None:
    peer_arguments(parser)
    parser.add_argument("directory", type=Path)


def run(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    files = sorted(path for path in args.directory.iterdir() if path.is_file())
    if not files:
        raise RunFailed(f"no files in {args.directory}")
    send(client, args.host, args.port, args.called, files[:1])
    watch = Stopwatch()
    send(client, args.host, args.port, args.called, files)
    return watch.result(len(files), bytes=sum(path.stat().st_size for path in files))


if __name__ == "__main__":
    sys.exit(client_main(None, "benchmarks.storage_client", CLIENTS, arguments, run))
