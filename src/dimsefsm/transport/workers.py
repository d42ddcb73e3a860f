"""One listening socket served by several worker processes, supervised by their parent.

A Python process runs one thread at a time, so one server process uses one
core however many senders it has.  Like dcmqrscp's fork per association,
but with a fixed pool: the parent binds and listens, then forks ``count``
workers that accept on the inherited socket (an idle worker takes the next
connection; the kernel gives each connection to exactly one of them) and
serve their associations in threads, exactly as a single-process server
does.  What they share is the socket and whatever the worker's ``start``
opens itself (the index database: no connection crosses a fork, the caller
closes its own before :meth:`Supervisor.run`).

The parent only supervises:

* a worker that exits on its own (a crash, a kill) is logged and replaced by
  a new fork of the parent, which holds no thread and no connection;
* SIGTERM or SIGINT stops every worker (SIGTERM to each, then each is waited
  for: their associations are aborted cleanly, nothing is left running);
* a worker that dies before it serves (a start that cannot succeed) stops
  them all with :class:`WorkerStartError` instead of being restarted forever.

Signals are taken synchronously: the parent blocks SIGTERM, SIGINT and
SIGCHLD and waits for them with ``sigwaitinfo``; a worker inherits the mask,
so its association threads never see them and its main thread waits for the
stop in ``sigwait``.  No handler runs between two statements, nothing sleeps.

Limits such as ``max_associations`` are per worker (each has its own
server); the server as a whole accepts up to ``count`` times as many.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import Final, NoReturn

__all__ = ["SUPPORTED", "StartWorker", "Supervisor", "WorkerStartError", "default_workers"]

LOG = logging.getLogger("dimsefsm.workers")

StartWorker = Callable[[socket.socket], Callable[[], None]]
"""Runs in a new worker: start serving on the listening socket, return the function that
stops serving and releases what the worker opened."""

SUPPORTED: Final = hasattr(os, "fork") and hasattr(signal, "sigwaitinfo")
"""Worker processes need fork() and sigwaitinfo(): Linux and the BSDs, not macOS or Windows."""

_STOP = frozenset({signal.SIGTERM, signal.SIGINT})
_WATCHED = _STOP | {signal.SIGCHLD}
_READY = b"r"


class WorkerStartError(RuntimeError):
    """A worker exited before it served: starting more would fail the same way."""


def default_workers() -> int:
    """One worker per core this process may run on (1 where workers are not supported)."""
    if not SUPPORTED:
        return 1
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


class Supervisor:
    """Forks ``count`` workers serving ``listener`` and keeps them running until stopped."""

    def __init__(self, listener: socket.socket, count: int, start: StartWorker) -> None:
        if count < 1:
            raise ValueError(f"at least one worker is needed, not {count}")
        if not SUPPORTED:
            raise ValueError("worker processes need fork() and sigwaitinfo() (not on this OS)")
        self.listener = listener
        self.count = count
        self.start = start
        self.workers: dict[int, int] = {}
        """pid -> worker number (1..count), of the workers running now."""
        self.restarts = 0

    # -- the parent ------------------------------------------------------------------------
    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Start the workers, call ``on_ready``, supervise until SIGTERM/SIGINT; stop them all."""
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
        try:
            for number in range(1, self.count + 1):
                self._spawn(number)
            if on_ready is not None:
                on_ready()
            self._supervise()
        finally:
            self._stop_all()
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def _supervise(self) -> None:
        while True:
            info = signal.sigwaitinfo(_WATCHED)
            if info.si_signo in _STOP:
                name = signal.Signals(info.si_signo).name
                LOG.info("%s: stopping %d worker process(es)", name, len(self.workers))
                return
            self._replace_exited()

    def _replace_exited(self) -> None:
        while self.workers:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            number = self.workers.pop(pid, None)
            if number is None:
                continue  # not a worker (a child the caller started)
            if _STOP & signal.sigpending():
                LOG.info("worker %d (pid %d) %s while stopping", number, pid, _describe(status))
                continue
            LOG.warning("worker %d (pid %d) %s: starting another", number, pid, _describe(status))
            self.restarts += 1
            self._spawn(number)

    def _spawn(self, number: int) -> None:
        """Fork worker ``number`` and wait until it serves (its first byte on a pipe)."""
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(ready_read)
            self._worker(number, ready_write)
        os.close(ready_write)
        self.workers[pid] = number
        with os.fdopen(ready_read, "rb") as ready:
            serving = ready.read(1) == _READY
        if not serving:
            _, status = os.waitpid(pid, 0)
            del self.workers[pid]
            raise WorkerStartError(
                f"worker {number} (pid {pid}) {_describe(status)} before it served"
            )
        LOG.info("worker %d (pid %d) serving", number, pid)

    def _stop_all(self) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid, number in list(self.workers.items()):
            _, status = os.waitpid(pid, 0)
            if status != 0:
                LOG.warning("worker %d (pid %d) %s", number, pid, _describe(status))
        self.workers.clear()

    # -- a worker --------------------------------------------------------------------------
    def _worker(self, number: int, ready: int) -> NoReturn:
        """Serve until SIGTERM/SIGINT, then stop; never returns into the parent's code."""
        code = 1
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            stop = self.start(self.listener)
            try:
                os.write(ready, _READY)
                os.close(ready)
                signal.sigwait(_STOP)
            finally:
                stop()
            code = 0
        except BaseException:
            LOG.exception("worker %d (pid %d) failed", number, os.getpid())
        finally:
            logging.shutdown()
            os._exit(code)
