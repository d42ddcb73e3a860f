"""``--workers N`` for a CLI server: its associations served by N processes on one port.

The foreground loop of :func:`dimsefsm.cli.echo.serve`, for several worker
processes (``transport.workers``): the parent binds the port, forks the
workers, prints the usual ``listening on`` line once every worker serves,
and stops them all on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import socket
import ssl
import sys
from collections.abc import Callable

from dimsefsm.ae import AE, HandlerList
from dimsefsm.cli.common import cannot_listen, favour_latency
from dimsefsm.transport.server import listening_socket
from dimsefsm.transport.workers import SUPPORTED, Supervisor, WorkerStartError, default_workers

_BACKLOG = 128


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1 worker, not {value}")
    if value > 1 and not SUPPORTED:
        raise argparse.ArgumentTypeError("worker processes need fork() and sigwaitinfo()")
    return value


def add_workers_arg(parser: argparse.ArgumentParser) -> None:
    """``--workers N``; without it ``args.workers`` is None: the file's ``workers`` or
    :func:`default_workers` (see :func:`worker_count`)."""
    parser.add_argument(
        "--workers",
        type=_count,
        metavar="N",
        help="worker processes serving associations on the one port (default: one per core, "
        f"here {default_workers()}; 1 serves from this process). --max-associations and "
        "--max-pending hold per worker: the server accepts up to N times as many",
    )


def worker_count(configured: int | None) -> int:
    """The flag's or the file's count, else one per core; ``ValueError`` where unsupported."""
    if configured is None:
        return default_workers()
    if configured > 1 and not SUPPORTED:
        raise ValueError("workers: worker processes need fork() and sigwaitinfo()")
    return configured


def serve_in_workers(
    ae: AE,
    address: tuple[str, int],
    name: str,
    count: int,
    handlers: HandlerList | None = None,
    ssl_context: ssl.SSLContext | None = None,
    release: Callable[[], None] | None = None,
) -> bool:
    """Serve ``address`` from ``count`` worker processes until Ctrl-C or SIGTERM.

    ``release`` runs in each worker after it stopped (its database connections).
    False when a worker could not start (logged).
    """
    logging.getLogger("dimsefsm.workers").setLevel(logging.INFO)
    try:
        listener = listening_socket(address, _BACKLOG)
    except OSError as exc:
        raise cannot_listen(address, exc) from None

    def start(shared: socket.socket) -> Callable[[], None]:
        favour_latency()
        server = ae.start_server(
            address, block=False, evt_handlers=handlers, ssl_context=ssl_context, listener=shared
        )

        def stop() -> None:
            server.shutdown()
            if release is not None:
                release()

        return stop

    host, port = listener.getsockname()[:2]
    secure = " (TLS)" if ssl_context is not None else ""

    def ready() -> None:
        print(
            f"{name}: {ae.ae_title} listening on {host}:{port}{secure} ({count} worker processes)",
            file=sys.stderr,
            flush=True,
        )

    try:
        Supervisor(listener, count, start).run(on_ready=ready)
    except WorkerStartError as exc:
        print(f"{name}: {exc}", file=sys.stderr, flush=True)
        return False
    finally:
        listener.close()
    print(f"{name}: shutting down", file=sys.stderr, flush=True)
    return True
