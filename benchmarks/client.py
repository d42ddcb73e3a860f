"""What every client process shares: ``python -m benchmarks.<workload>_client IMPL ...``.

A process per run keeps the measured CPU clean (no threads left over from an
earlier run or from the other library) and lets an import failure of one
implementation be reported instead of ending the benchmark.  Each run prints
one JSON object per line on stdout; the last one is the result, which
``benchmarks.processes.Run.from_record`` reads:

* ``{"ok": true, "count": N, "seconds": S, "cpu": C}`` (and ``"bytes"``) after
  a good run, timed after a warm-up that loads imports and caches;
* ``{"ok": false, "unavailable": true, "error": ...}`` when the library did
  not even load, so that the benchmark marks it unavailable;
* ``{"ok": false, "error": ...}`` when the run failed, with the libraries'
  last warnings.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from benchmarks.core import CALLING_AE

PENDING = (0xFF00, 0xFF01)
SUCCESS = 0x0000

Made = TypeVar("Made")


class RunFailed(Exception):
    pass


class Association(Protocol):
    """What both libraries' associations offer (dimsefsm is shaped like pynetdicom)."""

    @property
    def is_established(self) -> bool: ...

    def release(self) -> None: ...


Assoc = TypeVar("Assoc", bound=Association)


def established(assoc: Assoc) -> Assoc:
    if not assoc.is_established:
        raise RunFailed("association not established")
    return assoc


def requestor(ae_class: Any, *contexts: str, dimse_timeout: float | None = None) -> Any:
    """An AE of either library (their set-up calls agree) proposing ``contexts``."""
    ae = ae_class(ae_title=CALLING_AE)
    if dimse_timeout is not None:
        ae.dimse_timeout = dimse_timeout
    for context in contexts:
        ae.add_requested_context(context)
    return ae


def associator(ae: Any) -> Callable[[str, int, str], Any]:
    """``connect(host, port, called)`` on an AE set up once: both libraries' ``associate``."""

    def connect(host: str, port: int, called: str) -> Any:
        return ae.associate(host, port, ae_title=called)

    return connect


def final_response(responses: Iterable[tuple[Any, Any]]) -> tuple[int, Any]:
    """The number of Pending responses and the final status (None when none came)."""
    pending = 0
    final: Any = None
    for status, _identifier in responses:
        if getattr(status, "Status", None) in PENDING:
            pending += 1
        else:
            final = status
    return pending, final


def check_success(service: str, pending: int, final: Any) -> None:
    code = getattr(final, "Status", None)
    if code != SUCCESS:
        shown = "none (no final response)" if code is None else f"0x{code:04X}"
        raise RunFailed(f"final {service} status {shown} after {pending} pending responses")


def completed_suboperations(pending: int, final: Any) -> int:
    """A C-GET or C-MOVE's completed count, once no sub-operation failed."""
    failed = int(final.get("NumberOfFailedSuboperations", 0) or 0)
    if failed:
        raise RunFailed(f"{failed} failed sub-operations")
    return int(final.get("NumberOfCompletedSuboperations", pending) or pending)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stopwatch:
    """Wall-clock and CPU time of this process from when it was made to ``stop()``."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.cpu_started = own_cpu()
        self.seconds: float | None = None
        self.cpu = 0.0

    def stop(self) -> None:
        """End the timing: what comes after (checking the outcome, say) is not measured."""
        if self.seconds is None:
            self.seconds = time.perf_counter() - self.started
            self.cpu = own_cpu() - self.cpu_started

    def result(self, count: int, **extra: object) -> dict[str, Any]:
        """The result record; stops the watch unless ``stop()`` came first."""
        self.stop()
        return {"ok": True, "count": count, **extra, "seconds": self.seconds, "cpu": self.cpu}


class RecentWarnings(logging.Handler):
    """Keeps the libraries' last warnings so that a failure can say what they saw."""

    def __init__(self, keep: int = 3) -> None:
        super().__init__(logging.WARNING)
        self.keep = keep
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages = [*self.messages[-(self.keep - 1) :], record.getMessage()]


def emit(record: Mapping[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


def peer_arguments(parser: argparse.ArgumentParser) -> None:
    """``HOST PORT CALLED_AE``: the SCP a client associates with."""
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")


def client_main(
    argv: list[str] | None,
    prog: str,
    factories: Mapping[str, Callable[[], Made]],
    arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[Made, argparse.Namespace], dict[str, Any]],
) -> int:
    """``PROG IMPL ARGS...``: make the IMPL client (``factories``), run it, emit the result.

    ``arguments`` adds the workload's own arguments after IMPL; ``run`` does
    the timed work and returns the result record.
    """
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("impl", choices=sorted(factories))
    arguments(parser)
    args = parser.parse_args(argv)
    try:
        made = factories[args.impl]()
    except Exception as exc:  # an unfinished library must not end the benchmark
        emit({"ok": False, "unavailable": True, "error": describe(exc)})
        return 0
    warnings = RecentWarnings()
    logging.getLogger().addHandler(warnings)
    try:
        result = run(made, args)
    except Exception as exc:
        error = describe(exc)
        if warnings.messages:
            error += f" (logged: {'; '.join(warnings.messages)})"
        emit({"ok": False, "error": error})
        return 1
    emit(result)
    return 0
