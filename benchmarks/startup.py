"""Start-up workload: one ``echoscu`` process, start to exit, against a ready dcmtk SCP.

Issue 15 (item 5): a script that checks a peer with ``dimsefsm echoscu`` pays
the interpreter, the imports and one association every time; dcmtk's echoscu
takes ~0.015 s.  Rows: dimsefsm's CLI, pynetdicom's own ``python -m
pynetdicom echoscu`` and dcmtk's ``/usr/bin/echoscu``; one column, dcmtk's
storescp (it answers C-ECHO), so only the client differs.  The figure is the
median wall time of several whole runs (each a successful C-ECHO), and the
import share of dimsefsm's run is noted: ``python -c pass`` and the imports
of the sub-command alone.

Every implementation runs from compiled bytecode, as an installed package
does (pip compiles a wheel's modules at install time; pynetdicom's are).  A
source checkout run with ``PYTHONDONTWRITEBYTECODE=1`` never writes
``__pycache__`` and would compile ~50 modules on every start (~+50 ms), so
dimsefsm's modules are compiled once before timing.
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.interop.peers import LOCALHOST, DcmtkServer, dcmtk_env, free_port

import dimsefsm
from benchmarks.core import CALLING_AE, Figure, Goal, Metric, Settings, WorkloadResult

CALLED_AE = "ANY-SCP"


@dataclass(frozen=True)
class Counts:
    runs: int


FULL = Counts(runs=15)
QUICK = Counts(runs=5)

STARTUP = Metric(
    "echoscu_process_ms",
    "one echoscu process, start to exit (median of {runs} runs)",
    "ms",
    higher_is_better=False,
)
GOALS = (Goal(STARTUP.key, ("dimsefsm", "dcmtk"), maximum=120.0),)


def command(scu: str, port: int) -> list[str]:
    """The echoscu of each implementation, one C-ECHO to ``port``."""
    if scu == "dimsefsm":
        return [sys.executable, "-m", "dimsefsm", "echoscu", "-aet", CALLING_AE]
    if scu == "pynetdicom":
        return [sys.executable, "-m", "pynetdicom", "echoscu", "-aet", CALLING_AE]
    return ["/usr/bin/echoscu", "-aet", CALLING_AE]


def timed_runs(argv: Sequence[str], runs: int) -> tuple[list[float], str | None]:
    """Wall seconds of each successful run, or the first failure's text."""
    times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=60, env=dcmtk_env(), check=False
        )
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return times, f"exit {done.returncode}: {tail}"
        times.append(elapsed)
    return times, None


def compile_bytecode() -> None:
    """Compile dimsefsm's modules (into ``__pycache__``, or ``PYTHONPYCACHEPREFIX``)."""
    compileall.compile_dir(Path(dimsefsm.__file__).parent, quiet=1)


def import_ms(runs: int) -> tuple[float, float]:
    """Median ms of a bare interpreter, and of it importing echoscu's modules as ``run`` does.

    ``run`` (the entry point) imports with the collector off and freezes what it
    made, so the exit's last collection does not walk it: the same here.
    """
    bare, _ = timed_runs([sys.executable, "-c", "pass"], runs)
    imports, _ = timed_runs([sys.executable, "-c", ECHOSCU_IMPORTS], runs)
    return 1000 * statistics.median(bare or [0.0]), 1000 * statistics.median(imports or [0.0])


ECHOSCU_IMPORTS = (
    "import gc; gc.disable(); import dimsefsm.cli.main, dimsefsm.cli.echo; gc.freeze()"
)


class StartupWorkload:
    name = "startup"
    description = "one echoscu process end to end: dimsefsm vs pynetdicom vs dcmtk"

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        result = WorkloadResult(
            self.name, self.description, (STARTUP.formatted(runs=counts.runs),), goals=GOALS
        )
        started = time.perf_counter()
        compile_bytecode()
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as workdir:
            server = DcmtkServer(["storescp", "-od", workdir], free_port())
            with server:
                for scu in ("dimsefsm", "pynetdicom", "dcmtk"):
                    argv = [*command(scu, server.port), LOCALHOST, str(server.port)]
                    times, error = timed_runs(argv, counts.runs)
                    if error is not None:
                        result.figures.append(Figure(STARTUP.key, scu, "dcmtk", error=error))
                        print(f"   {scu:<10} failed: {error}", flush=True)
                        continue
                    median = 1000 * statistics.median(times)
                    detail = {"min_ms": 1000 * min(times), "max_ms": 1000 * max(times)}
                    result.figures.append(Figure(STARTUP.key, scu, "dcmtk", median, detail=detail))
                    print(f"   {scu:<10} {median:8.1f} ms (median of {len(times)})", flush=True)
        bare, imports = import_ms(counts.runs)
        result.notes.append(
            f"dimsefsm's share: the interpreter alone {bare:.0f} ms, interpreter + imports of "
            f"'dimsefsm.cli.echo' {imports:.0f} ms (the C-ECHO path imports no pydicom)"
        )
        result.seconds = time.perf_counter() - started
        return result


WORKLOAD = StartupWorkload()
