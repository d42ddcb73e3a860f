"""Pathological wild card queries with a C-ECHO loop beside them: ``benchmarks.wildcard_client``.

Usage: ``wildcard_client HOST PORT CALLED_AE QUERIES RUNS [--dimse-timeout S]``
with QUERIES the JSON file ``benchmarks.wildcard`` writes (name -> PatientName
pattern).

Associations from one dimsefsm AE: one per query sends that Study Root
STUDY-level query ``RUNS`` times, timing each from request to final response
(a query unanswered within the DIMSE timeout is reported as such); another
sends C-ECHO after C-ECHO from before the first query until after the last,
timing each round trip.  A server that holds its interpreter for one query
shows here as an echo that waits.  Prints one JSON line: per query the answer
times and the match count, and the echo latencies' worst and median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from benchmarks.core import CALLING_AE

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
VERIFICATION = "1.2.840.10008.1.1"
PENDING = (0xFF00, 0xFF01)


def study_query(pattern: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = pattern
    ds.PatientID = ""
    ds.StudyInstanceUID = ""
    return ds


class EchoLoop:
    """C-ECHO after C-ECHO on its own association until stopped; every latency kept."""

    def __init__(self, assoc: Any) -> None:
        self.assoc = assoc
        self.latencies: list[float] = []
        self.failures = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="echo-loop")

    def _run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            status = self.assoc.send_c_echo()
            elapsed = time.perf_counter() - started
            if status.get("Status") == 0:
                self.latencies.append(elapsed)
            else:
                self.failures += 1
                return

    def __enter__(self) -> EchoLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def timed_find(assoc: Any, pattern: str) -> tuple[float, int]:
    """Seconds from the request to the final Success, and the number of matches."""
    started = time.perf_counter()
    matches, final = 0, None
    for status, _identifier in assoc.send_c_find(study_query(pattern), STUDY_ROOT_FIND):
        code = status.get("Status")
        if code in PENDING:
            matches += 1
        else:
            final = code
    seconds = time.perf_counter() - started
    if final is None:
        raise RuntimeError(f"no final response within the DIMSE timeout ({seconds:.0f} s)")
    if final != 0:
        raise RuntimeError(f"final status 0x{final:04X}")
    return seconds, matches


def query_runs(ae: Any, where: tuple[str, int, str], pattern: str, runs: int) -> dict[str, Any]:
    """``runs`` timed answers on one association, or the error that ended them.

    A fresh association per query: a query that timed out aborts its own
    association, and the next query still gets measured.
    """
    assoc = ae.associate(*where)
    if not assoc.is_established:
        return {"error": "association not established"}
    seconds: list[float] = []
    matches = 0
    try:
        for _ in range(runs):
            took, matches = timed_find(assoc, pattern)
            seconds.append(took)
    except RuntimeError as exc:
        return {"error": str(exc), "seconds": seconds}
    finally:
        if assoc.is_established:
            assoc.release()
    return {"seconds": seconds, "median": statistics.median(seconds), "matches": matches}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from dimsefsm import AE

    queries: dict[str, str] = json.loads(Path(args.queries).read_text())
    ae = AE(CALLING_AE)
    ae.add_requested_context(STUDY_ROOT_FIND)
    ae.add_requested_context(VERIFICATION)
    ae.dimse_timeout = args.dimse_timeout
    where = (args.host, args.port, args.called)
    echoer = ae.associate(*where)
    if not echoer.is_established:
        raise RuntimeError("association not established")
    results: dict[str, Any] = {}
    try:
        query_runs(ae, where, "WARMUP^NOBODY", 1)  # imports and caches, on both sides
        with EchoLoop(echoer) as echo:
            for name, pattern in queries.items():
                results[name] = query_runs(ae, where, pattern, args.runs)
    finally:
        echoer.release()
    latencies = echo.latencies
    if echo.failures or not latencies:
        raise RuntimeError("the C-ECHO loop failed")
    return {
        "ok": True,
        "queries": results,
        "echo": {
            "count": len(latencies),
            "worst_ms": max(latencies) * 1e3,
            "median_ms": statistics.median(latencies) * 1e3,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.wildcard_client")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")
    parser.add_argument("queries", type=Path)
    parser.add_argument("runs", type=int)
    parser.add_argument("--dimse-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    try:
        record = run(args)
    except Exception as exc:  # reported to the workload, which shows it as a failure
        record = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(record), flush=True)
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
