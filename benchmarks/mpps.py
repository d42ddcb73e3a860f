"""MPPS workload: procedure steps/s, each an N-CREATE and an N-SET round trip.

A modality reports each procedure it performs with an N-CREATE (IN PROGRESS)
and an N-SET (COMPLETED, with its performed series): that pair is the unit
here.  Every SCU (dimsefsm and pynetdicom in ``benchmarks.mpps_client``) runs
against every SCP: dimsefsm's is ``dimsefsm qrscp``, which checks the
attribute rules of PS3.4 F.7.2 in its MPPS chart and commits each step to
its index database (SQLite, WAL) before it answers; pynetdicom's is the SCP
its documentation shows (``tests.interop.pynetdicom_mpps_scp``: the steps in
a dict, the status checked, nothing written).  dcmtk has no MPPS SCU or SCP:
its row and column are n/a.

Runs shorter than a second are repeated and the best kept; a failed run is
retried (up to four times) and reported in the notes: pynetdicom's SCU now and
then takes the SCP's response for a request ("Received unexpected N-SET
service message") and waits for its DIMSE timeout, the more often the faster
the SCP answers, so runs are kept short (100 steps).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.interop.peers import DimsefsmServer, LineReadyServer, ServerProcess, free_port

from benchmarks.core import (
    IMPLEMENTATIONS,
    NOT_APPLICABLE,
    REPO_ROOT,
    Figure,
    Metric,
    Settings,
    WorkloadResult,
)
from benchmarks.matrix import RepeatingMatrix
from benchmarks.processes import REPEATS, Run, fastest, python_client
from benchmarks.procstat import cpu_seconds

CALLED_AE = "ANY-SCP"
MPPS_IMPLEMENTATIONS = ("dimsefsm", "pynetdicom")
SECONDS_PER_STEP_BUDGET = 0.1


@dataclass(frozen=True)
class Counts:
    steps: int


FULL = Counts(steps=100)
QUICK = Counts(steps=50)

STEPS_PER_S = Metric(
    "steps_per_s",
    "MPPS create+set round trips/s ({n} steps on one association)",
    "step/s",
    footnote="dimsefsm SCP: qrscp, every step checked against PS3.4 F.7.2 by its chart and "
    "committed to the index database (SQLite) before each answer; pynetdicom SCP: its "
    "documented handlers keeping steps in a dict. pynetdicom SCU and SCP with TCP_NODELAY "
    "set (as shipped, Nagle's algorithm costs each of its requests and responses a delayed "
    "ACK, ~40 ms). Python SCUs: association, steps and "
    "release timed (interpreter start not). Runs under 1 s: best of 5.",
)
SCP_CPU_PER_STEP = Metric(
    "scp_cpu_ms_per_step",
    "SCP CPU per step (ms, lower is better; same runs)",
    "ms",
    higher_is_better=False,
    show_ratios=False,
    footnote="Includes the SCU's warm-up step.",
)


class MppsWorkload:
    name = "mpps"
    description = "MPPS: procedure steps/s (N-CREATE + N-SET round trips) on one association"

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        started = time.perf_counter()
        metrics = tuple(m.formatted(n=f"{counts.steps:,}") for m in (STEPS_PER_S, SCP_CPU_PER_STEP))
        result = WorkloadResult(self.name, self.description, metrics)
        with tempfile.TemporaryDirectory(prefix="dimsefsm-bench-mpps-") as root:
            MppsMatrix(result, counts, Path(root)).run(MPPS_IMPLEMENTATIONS)
        result.notes.append(same_handlers_note(counts))
        for scu in IMPLEMENTATIONS:  # dcmtk has no MPPS SCP
            for key in (STEPS_PER_S.key, SCP_CPU_PER_STEP.key):
                result.figures.append(Figure(key, scu, "dcmtk", error=_NO_DCMTK))
        result.seconds = time.perf_counter() - started
        return result


_NO_DCMTK = f"{NOT_APPLICABLE}: dcmtk has no MPPS SCU or SCP"


def dict_scp_command(port: int, *, dimsefsm: bool) -> list[str]:
    """pynetdicom's documented MPPS SCP (steps in a dict), or the same handlers on dimsefsm."""
    command = [sys.executable, "-m", "tests.interop.pynetdicom_mpps_scp", str(port)]
    command += ["-aet", CALLED_AE, "-q", "--nodelay"]
    return [*command, "--dimsefsm"] if dimsefsm else command


def same_handlers_note(counts: Counts) -> str:
    """The library-to-library figure: pynetdicom's dict handlers on dimsefsm's AE.

    The matrix's dimsefsm column is qrscp, which persists every step; this
    note runs the very handlers of the pynetdicom column on dimsefsm, so the
    two engines are compared doing the same work.
    """
    server = LineReadyServer(dict_scp_command(free_port(), dimsefsm=True), cwd=REPO_ROOT)
    server.start()
    shown = []
    try:
        for scu in MPPS_IMPLEMENTATIONS:
            best: Run | None = None
            for _ in range(REPEATS):
                before = cpu_seconds(server.pid)
                args = [scu, "127.0.0.1", str(server.port), CALLED_AE, str(counts.steps)]
                run = python_client("mpps_client", args, 60.0)
                run.scp_cpu = cpu_seconds(server.pid) - before
                if run.error is None and (best is None or run.seconds < best.seconds):
                    best = run
            if best is None:
                shown.append(f"{scu} SCU: failed")
                continue
            scp_ms = (best.scp_cpu or 0.0) / (best.count + 1) * 1e3
            shown.append(
                f"{scu} SCU {best.count / best.seconds:,.0f} step/s (SCP CPU {scp_ms:.2f} ms/step)"
            )
    finally:
        server.stop()
    return (
        "the pynetdicom column's handlers (steps in a dict) on dimsefsm's AE, the same work "
        f"for both engines: {'; '.join(shown)} (best of {REPEATS})"
    )


class MppsMatrix(RepeatingMatrix):
    """Every SCU reports the same steps to every SCP."""

    shape_width = 0
    # pynetdicom's SCU sometimes takes a fast response for a request (its reactor thread
    # reads the queue before the caller waits: "Received unexpected N-SET service
    # message", then a DIMSE timeout); short runs and a few retries keep its cells filled.
    retries = 4
    _KEYS = (STEPS_PER_S.key, SCP_CPU_PER_STEP.key)

    def __init__(self, result: WorkloadResult, counts: Counts, root: Path) -> None:
        super().__init__(result)
        self.counts = counts
        self.root = root

    def cells(self) -> Iterable[tuple[str, str]]:
        return [(scu, "") for scu in IMPLEMENTATIONS]

    def keys(self, shape: str) -> tuple[str, ...]:
        return self._KEYS

    def not_applicable(self, scu: str, scp: str, shape: str) -> str | None:
        return _NO_DCMTK if "dcmtk" in (scu, scp) else None

    def start_scp(self, scp: str, *, restart: bool) -> ServerProcess:
        port = free_port()
        if scp == "dimsefsm":
            store = self.root / "qrscp"
            args = ["qrscp", str(port), "-aet", CALLED_AE, "-od", str(store), "-q"]
            args += ["--workers", "1"]  # one process, as pynetdicom: its CPU is measurable
            return DimsefsmServer(args, cwd=REPO_ROOT).start()
        return LineReadyServer(dict_scp_command(port, dimsefsm=False), port, cwd=REPO_ROOT).start()

    def attempt(self, scu: str, scp: str, shape: str, server: ServerProcess) -> Run:
        scp_cpu = cpu_seconds(server.pid)
        timeout = max(60.0, self.counts.steps * SECONDS_PER_STEP_BUDGET)
        args = [scu, "127.0.0.1", str(server.port), CALLED_AE, str(self.counts.steps)]
        run = python_client("mpps_client", args, timeout)
        if server.alive:
            run.scp_cpu = cpu_seconds(server.pid) - scp_cpu
        if not self.unloaded(scu, scp, run):
            run.check_count(self.counts.steps, "steps")
        return run

    def record(self, scu: str, scp: str, shape: str, runs: list[Run]) -> None:
        best, detail = fastest(runs)
        rate = best.count / best.seconds
        self.add(Figure(STEPS_PER_S.key, scu, scp, rate, detail=detail))
        scp_cpus = [run.scp_cpu for run in runs if run.scp_cpu is not None]
        if scp_cpus:
            scp_cpu = sum(scp_cpus) / len(scp_cpus)
            self.add(Figure(SCP_CPU_PER_STEP.key, scu, scp, scp_cpu / (best.count + 1) * 1e3))
        self.progress(
            scu,
            scp,
            shape,
            f"{rate:9,.0f} step/s ({best.count} in {best.seconds:.3f} s, best of {len(runs)})",
        )


WORKLOAD = MppsWorkload()
