"""A C-MOVE SCP sending files from disk: ``python -m benchmarks.move_server IMPL PORT SPEC``.

IMPL is ``dimsefsm``, ``pynetdicom`` or ``pynetdicom-nagle``; SPEC is the JSON
file of ``benchmarks.get_server.RetrieveSpec``; ``--dest AET=HOST:PORT``
(repeatable) names the move destinations the SCP knows.

Both libraries run the C-GET benchmark's handler behind one extra first
yield, the destination: ``(host, port)`` for a known Move Destination,
``(None, None)`` otherwise.  So the handler finds the files the identifier
names, yields their number, then one ``(0xFF00, path)`` per file; dimsefsm
sends a yielded path's data set as raw bytes, pynetdicom (which accepts only
a Dataset there) gets each file read with ``dcmread``.

pynetdicom's SCP lets warnings through to stderr: now and then its reactor
thread takes a C-STORE response off the sub-association as an unexpected
request ("Received unexpected C-STORE service message"), the sub-operation
waits for the DIMSE timeout and the association is aborted.  The timeout is
cut to a few seconds here so that such a run fails fast and is retried.

pynetdicom opens the sub-association itself, with ``AE.associate``; the
destination's optional third element is that call's keyword arguments, the
only way to reach the sub-association's socket.  ``pynetdicom`` uses it to
set TCP_NODELAY once the connection is open (EVT_CONN_OPEN): as shipped,
Nagle's algorithm makes every C-STORE wait for the destination's delayed
ACK.  ``pynetdicom-nagle`` is pynetdicom as shipped.

It says when it is listening and stops on SIGTERM (``benchmarks.server``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from benchmarks import server
from benchmarks.get_server import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_LITTLE_ENDIAN,
    RetrieveSpec,
    loader,
    set_nodelay,
)
from benchmarks.get_server import make_handler as make_get_handler
from benchmarks.server import Handler, Shutdown

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
# No C-STORE response takes a tenth of this here; a lost one costs this much.
DIMSE_TIMEOUT = 5.0

Address = tuple[str, int]


def ae_title(value: object) -> str:
    """An AE title as text, whatever the library hands over (pynetdicom 1 gave bytes)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip()


def make_handler(
    spec: RetrieveSpec,
    destinations: Mapping[str, Address],
    load: Callable[[str], Any] = str,
    associate_options: Mapping[str, Any] | None = None,
) -> Handler:
    """The C-MOVE handler: the destination, then exactly what the C-GET handler yields."""
    retrieve = make_get_handler(spec, load)

    def handle_move(event: Any) -> Iterator[Any]:
        address = destinations.get(ae_title(event.move_destination))
        if address is None:
            yield None, None
            return
        yield (*address, dict(associate_options)) if associate_options else address
        yield from retrieve(event)

    return handle_move


def parse_destination(text: str) -> tuple[str, Address]:
    """``AET=HOST:PORT`` -> ``("AET", ("HOST", PORT))``."""
    title, _, address = text.partition("=")
    host, _, port = address.rpartition(":")
    if not (title and host and port.isdigit()):
        raise argparse.ArgumentTypeError(f"expected AET=HOST:PORT, got {text!r}")
    return title.strip(), (host, int(port))


def start_dimsefsm(port: int, title: str, handler: Handler) -> Shutdown:
    from dimsefsm import AE, evt

    ae = AE(title)
    ae.add_supported_context(STUDY_ROOT_MOVE)
    return server.listen_dimsefsm(ae, port, [(evt.EVT_C_MOVE, handler)], "move SCP")


def start_pynetdicom(port: int, title: str, handler: Handler) -> Shutdown:
    from pynetdicom import AE, evt

    ae = AE(ae_title=title)
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.add_supported_context(STUDY_ROOT_MOVE)
    # The sub-association proposes the AE's requested contexts (pynetdicom's docs).
    ae.add_requested_context(CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN)
    return server.listen_pynetdicom(ae, port, [(evt.EVT_C_MOVE, handler)], "move SCP")


def nodelay_options() -> dict[str, Any]:
    """``AE.associate`` keywords that set TCP_NODELAY on pynetdicom's sub-association."""
    from pynetdicom import evt

    return {"evt_handlers": [(evt.EVT_CONN_OPEN, set_nodelay)]}


STARTERS: dict[str, server.Starter] = {
    "dimsefsm": start_dimsefsm,
    "pynetdicom": start_pynetdicom,
    "pynetdicom-nagle": start_pynetdicom,
}


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dest", type=parse_destination, action="append", default=[])


def handler(args: argparse.Namespace) -> Handler:
    # Warnings only: a failed sub-operation should say why in the benchmark's notes.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(name)s: %(message)s")
    options = nodelay_options() if args.impl == "pynetdicom" else None
    return make_handler(RetrieveSpec.load(args.spec), dict(args.dest), loader(args.impl), options)


if __name__ == "__main__":
    sys.exit(server.spec_server_main("benchmarks.move_server", STARTERS, handler, arguments))
