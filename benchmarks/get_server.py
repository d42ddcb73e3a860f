"""A C-GET SCP sending files from disk: ``python -m benchmarks.get_server IMPL PORT SPEC``.

IMPL is ``dimsefsm``, ``pynetdicom`` or ``pynetdicom-nagle``; SPEC is the JSON
file ``benchmarks.get`` writes (``RetrieveSpec``: per study its instances' SOP
Instance UIDs and file paths).

Both libraries run the same handler: find the files the identifier names
(a whole study, or one instance when it carries a SOP Instance UID, which is
what the clients' warm-up asks for), yield their number, then one
``(0xFF00, path)`` per file.  dimsefsm sends a yielded path's data set as raw
bytes.  pynetdicom 3 refuses anything but a Dataset from a C-GET handler
("Received invalid dataset from callback"), so its handler reads each file
with ``dcmread`` at that point: what its own ``send_c_store(path)`` would do.

``pynetdicom`` sets TCP_NODELAY on every accepted connection (EVT_CONN_OPEN);
``pynetdicom-nagle`` is pynetdicom as shipped, where each sub-operation waits
for the peer's delayed ACK.

It says when it is listening and stops on SIGTERM (``benchmarks.server``).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from benchmarks import server
from benchmarks.server import Handler, Shutdown

PENDING = 0xFF00
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"


@dataclass(frozen=True)
class StudyFiles:
    study: str
    series: str
    sop_instance_uids: tuple[str, ...]
    paths: tuple[str, ...]


@dataclass(frozen=True)
class RetrieveSpec:
    """Every study the SCPs serve, by name (``small``, ``large``); shared through JSON."""

    studies: dict[str, StudyFiles]

    def dump(self, path: Path) -> None:
        record = {
            name: {
                "study": files.study,
                "series": files.series,
                "sop_instance_uids": list(files.sop_instance_uids),
                "paths": list(files.paths),
            }
            for name, files in self.studies.items()
        }
        path.write_text(json.dumps(record))

    @classmethod
    def load(cls, path: Path) -> RetrieveSpec:
        record = json.loads(path.read_text())
        return cls(
            {
                name: StudyFiles(
                    entry["study"],
                    entry["series"],
                    tuple(entry["sop_instance_uids"]),
                    tuple(entry["paths"]),
                )
                for name, entry in record.items()
            }
        )


def identifier(study: StudyFiles, sop_instance_uid: str = "") -> Dataset:
    """The Study Root identifier for the whole study, or for one instance of it."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE" if sop_instance_uid else "STUDY"
    ds.StudyInstanceUID = study.study
    if sop_instance_uid:
        ds.SeriesInstanceUID = study.series
        ds.SOPInstanceUID = sop_instance_uid
    return ds


def make_handler(
    spec: RetrieveSpec, load: Callable[[str], Any] = str
) -> Callable[[Any], Iterator[Any]]:
    """The C-GET handler; ``load`` turns a path into what the library accepts."""
    by_study = {files.study: files.paths for files in spec.studies.values()}
    by_instance = {
        uid: path
        for files in spec.studies.values()
        for uid, path in zip(files.sop_instance_uids, files.paths, strict=True)
    }

    def handle_get(event: Any) -> Iterator[Any]:
        identifier = event.identifier
        wanted = str(identifier.get("SOPInstanceUID", "") or "")
        if wanted:
            paths: tuple[str, ...] = (by_instance[wanted],) if wanted in by_instance else ()
        else:
            paths = by_study.get(str(identifier.get("StudyInstanceUID", "")), ())
        yield len(paths)
        for path in paths:
            yield PENDING, load(path)

    return handle_get


def start_dimsefsm(port: int, ae_title: str, handler: Handler) -> Shutdown:
    from dimsefsm import AE, evt

    ae = AE(ae_title)
    ae.add_supported_context(STUDY_ROOT_GET)
    ae.add_supported_context(
        CT_IMAGE_STORAGE, (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN), scp_role=True
    )
    return server.listen_dimsefsm(ae, port, [(evt.EVT_C_GET, handler)], "get SCP")


def start_pynetdicom(port: int, ae_title: str, handler: Handler, nodelay: bool) -> Shutdown:
    from pynetdicom import AE, evt

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(STUDY_ROOT_GET)
    # The requestor takes the Storage SCP role for the sub-operations (pynetdicom's docs).
    ae.add_supported_context(
        CT_IMAGE_STORAGE,
        [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN],
        scu_role=False,
        scp_role=True,
    )
    handlers: list[Any] = [(evt.EVT_C_GET, handler)]
    if nodelay:
        handlers.append((evt.EVT_CONN_OPEN, set_nodelay))
    return server.listen_pynetdicom(ae, port, handlers, "get SCP")


def set_nodelay(event: Any) -> None:
    sock = event.assoc.dul.socket.socket
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def loader(impl: str) -> Callable[[str], Any]:
    if impl == "dimsefsm":
        return str
    from pydicom import dcmread

    return dcmread


STARTERS: dict[str, server.Starter] = {
    "dimsefsm": start_dimsefsm,
    "pynetdicom": lambda port, aet, handler: start_pynetdicom(port, aet, handler, True),
    "pynetdicom-nagle": lambda port, aet, handler: start_pynetdicom(port, aet, handler, False),
}


def handler(args: argparse.Namespace) -> Handler:
    return make_handler(RetrieveSpec.load(args.spec), loader(args.impl))


if __name__ == "__main__":
    sys.exit(server.spec_server_main("benchmarks.get_server", STARTERS, handler))
