"""What the benchmark's own SCP processes share: listening, announcing, stopping.

Each one (``benchmarks.*_server``) runs one library's AE until SIGTERM, which
``tests.interop.peers`` sends to stop it.  Once bound, it prints ``listening
on HOST:PORT`` on stderr: the line ``peers.LineReadyServer`` waits for, so the
first association never races the bind.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

Shutdown = Callable[[], None]
Handler = Callable[[Any], Any]
# Starts one library's SCP: (port, AE title, handler) -> its shutdown.
Starter = Callable[[int, str, Handler], Shutdown]


def serve(start: Callable[[], Shutdown]) -> None:
    """Start the SCP, run it until SIGTERM, then shut it down."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    shutdown = start()
    stop.wait()
    shutdown()


def listen_dimsefsm(ae: Any, port: int, handlers: Sequence[Any], name: str) -> Shutdown:
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=list(handlers))
    announce(f"dimsefsm {name}", *server.address)
    shutdown: Shutdown = server.shutdown
    return shutdown


def listen_pynetdicom(ae: Any, port: int, handlers: Sequence[Any], name: str) -> Shutdown:
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=list(handlers))
    assert server is not None  # block=False returns the running server
    announce(f"pynetdicom {name}", *server.server_address[:2])
    shutdown: Shutdown = server.shutdown
    return shutdown


def announce(name: str, host: str, port: int) -> None:
    print(f"{name}: listening on {host}:{port}", file=sys.stderr, flush=True)


def spec_server_main(
    prog: str,
    starters: Mapping[str, Starter],
    handler: Callable[[argparse.Namespace], Handler],
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None,
    argv: list[str] | None = None,
) -> int:
    """``PROG IMPL PORT SPEC [-aet AET]``: the IMPL SCP answering from a spec file.

    ``handler`` makes the event handler from the arguments, ``arguments`` adds
    the server's own.
    """
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("impl", choices=sorted(starters))
    parser.add_argument("port", type=int)
    parser.add_argument("spec", type=Path)
    parser.add_argument("-aet", default="COMMON")
    arguments(parser)
    args = parser.parse_args(argv)
    made = handler(args)
    serve(lambda: starters[args.impl](args.port, args.aet, made))
    return 0
