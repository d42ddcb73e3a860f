"""C-ECHO workloads: associations/s, echoes/s on one association, CPU of an idle association.

Every SCU (dimsefsm, pynetdicom, dcmtk echoscu) runs against every SCP
(dimsefsm echoscp, pynetdicom, dcmtk storescp), so one run gives both the SCU
view (rows) and the SCP view (columns).  Python clients run in their own process
(``benchmarks.echo_client``); the SCP's CPU is read from /proc around each run.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from tests.interop.peers import (
    LOCALHOST,
    DcmtkServer,
    DimsefsmServer,
    PynetdicomEchoServer,
    ServerProcess,
    dcmtk_env,
    free_port,
)

from benchmarks.core import (
    IMPLEMENTATIONS,
    NOT_APPLICABLE,
    REPO_ROOT,
    Figure,
    Goal,
    Metric,
    Settings,
    WorkloadResult,
)
from benchmarks.matrix import Matrix
from benchmarks.processes import (
    Run,
    children_cpu,
    dcmtk_tool,
    last_record,
    module_command,
    python_client,
)
from benchmarks.procstat import cpu_seconds

CALLED_AE = "ANY-SCP"
MODES = ("assoc", "echoes", "idle")
# Lets the association's set-up traffic die down before the idle window opens.
IDLE_SETTLE_SECONDS = 0.25


@dataclass(frozen=True)
class Counts:
    associations: int
    echoes: int
    idle_seconds: float


FULL = Counts(associations=200, echoes=2000, idle_seconds=2.0)
QUICK = Counts(associations=20, echoes=200, idle_seconds=0.5)

ASSOC_PER_S = Metric(
    "assoc_per_s",
    "associations/s ({n} sequential associations, one C-ECHO each)",
    "assoc/s",
    footnote="dcmtk SCU: one echoscu process per association, process start included.",
)
ECHO_PER_S = Metric(
    "echo_per_s",
    "C-ECHOs/s ({n} C-ECHOs on one association)",
    "echo/s",
    footnote="dcmtk SCU: echoscu --repeat N, the whole process timed. "
    "Python SCUs: association set-up, echoes and release timed (interpreter start not).",
)
SCP_CPU_PER_ASSOC = Metric(
    "scp_cpu_ms_per_assoc",
    "SCP CPU per association (ms, lower is better)",
    "ms",
    higher_is_better=False,
    show_ratios=False,
)
SCP_CPU_PER_ECHO = Metric(
    "scp_cpu_us_per_echo",
    "SCP CPU per C-ECHO on one association (us, lower is better)",
    "us",
    higher_is_better=False,
    show_ratios=False,
)
IDLE_CPU_SCP = Metric(
    "idle_cpu_scp",
    "idle association: SCP process CPU (% of a core, {s:g} s window)",
    "%core",
    higher_is_better=False,
    show_ratios=False,
)
IDLE_CPU_SCU = Metric(
    "idle_cpu_scu",
    "idle association: SCU process CPU (% of a core, {s:g} s window)",
    "%core",
    higher_is_better=False,
    show_ratios=False,
    footnote="dcmtk SCU: n/a, echoscu cannot hold an association open.",
)

GOALS: tuple[Goal, ...] = (
    Goal("assoc_per_s", ("dimsefsm", "dcmtk"), minimum=300),
    Goal("assoc_per_s", ("dimsefsm", "dimsefsm"), minimum=300),
    Goal("echo_per_s", ("dimsefsm", "dcmtk"), minimum=2000),
    Goal("echo_per_s", ("dcmtk", "dimsefsm"), minimum=2000),
    Goal("assoc_per_s", ("dimsefsm", "dcmtk"), minimum=5, versus=("pynetdicom", "dcmtk")),
    Goal("assoc_per_s", ("dimsefsm", "dimsefsm"), minimum=5, versus=("dimsefsm", "pynetdicom")),
    Goal("echo_per_s", ("dimsefsm", "dcmtk"), minimum=5, versus=("pynetdicom", "dcmtk")),
    Goal("echo_per_s", ("dcmtk", "dimsefsm"), minimum=5, versus=("dcmtk", "pynetdicom")),
    Goal("echo_per_s", ("dimsefsm", "dcmtk"), minimum=0.5, versus=("dcmtk", "dcmtk")),
    Goal("echo_per_s", ("dcmtk", "dimsefsm"), minimum=0.5, versus=("dcmtk", "dcmtk")),
    Goal("idle_cpu_scp", ("dimsefsm", "dimsefsm"), maximum=1.0),
    Goal("idle_cpu_scu", ("dimsefsm", "dimsefsm"), maximum=1.0),
)


# -- SCPs ----------------------------------------------------------------------------------
def start_scp(impl: str, port: int, workdir: str) -> ServerProcess:
    server: ServerProcess
    if impl == "dimsefsm":
        server = DimsefsmServer(["echoscp", str(port), "-aet", CALLED_AE])
    elif impl == "pynetdicom":
        server = PynetdicomEchoServer(port, CALLED_AE)
    else:
        server = DcmtkServer(["storescp", "-od", workdir], port)
    return server.start()


# -- SCUs ----------------------------------------------------------------------------------
def echoscu(port: int, *options: str, timeout: float) -> str | None:
    """Run dcmtk's echoscu; returns an error text, or None on success."""
    run, _ = dcmtk_tool(["echoscu", *options, LOCALHOST, str(port)], timeout, problems=())
    return run.error


def dcmtk_assoc(port: int, count: int) -> Run:
    started, cpu = time.perf_counter(), children_cpu()
    for done in range(count):
        error = echoscu(port, timeout=30)
        if error:
            return Run(error=f"association {done + 1}/{count}: {error}")
    return Run(count, time.perf_counter() - started, children_cpu() - cpu)


def dcmtk_echoes(port: int, count: int) -> Run:
    started, cpu = time.perf_counter(), children_cpu()
    error = echoscu(port, "--repeat", str(count), timeout=max(60.0, count * 0.05))
    if error:
        return Run(error=error)
    return Run(count, time.perf_counter() - started, children_cpu() - cpu)


def run_client(scu: str, mode: str, port: int, count: int) -> Run:
    if scu == "dcmtk":
        return dcmtk_assoc(port, count) if mode == "assoc" else dcmtk_echoes(port, count)
    budget = 0.3 if mode == "assoc" else 0.05
    args = [scu, mode, LOCALHOST, str(port), str(count)]
    return python_client("echo_client", args, timeout=max(60.0, count * budget))


def idle_client(scu: str, server: ServerProcess, seconds: float) -> Run:
    """Hold one association open and idle; both processes' CPU over the window.

    The run's ``cpu`` is the SCU's, ``scp_cpu`` the SCP's, ``seconds`` the window.
    """
    proc = subprocess.Popen(
        module_command("echo_client", [scu, "idle", LOCALHOST, str(server.port), "0"]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=dcmtk_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    # A hung client must not hang the benchmark: killing it ends the blocking readline.
    watchdog = threading.Timer(30.0 + seconds, proc.kill)
    watchdog.start()
    try:
        record = last_record(proc.stdout.readline())
        if not record or record.get("event") != "established":
            out, err = proc.communicate()
            final = last_record(out) or record
            if final is not None and not final.get("ok", True):
                return Run.from_record(final)
            tail = (err.strip().splitlines() or ["no output"])[-1]
            return Run(error=f"exit {proc.returncode}: {tail}")
        time.sleep(IDLE_SETTLE_SECONDS)
        started = time.perf_counter()
        scp0, scu0 = cpu_seconds(server.pid), cpu_seconds(proc.pid)
        time.sleep(seconds)  # the measurement window itself, not a synchronisation
        scp1, scu1 = cpu_seconds(server.pid), cpu_seconds(proc.pid)
        elapsed = time.perf_counter() - started
        proc.stdin.write("\n")
        proc.stdin.flush()
        out, _ = proc.communicate()
        final = last_record(out)
        if final is None or not final.get("ok"):
            return Run(error=f"release failed: {final}")
        return Run(seconds=elapsed, cpu=scu1 - scu0, scp_cpu=scp1 - scp0)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# -- the workload -------------------------------------------------------------------------
class EchoWorkload:
    name = "echo"
    description = "C-ECHO: associations/s, echoes/s on one association, idle CPU"

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        metrics = tuple(
            m.formatted(n=n, s=counts.idle_seconds)
            for m, n in (
                (ASSOC_PER_S, counts.associations),
                (ECHO_PER_S, counts.echoes),
                (SCP_CPU_PER_ASSOC, counts.associations),
                (SCP_CPU_PER_ECHO, counts.echoes),
                (IDLE_CPU_SCP, 0),
                (IDLE_CPU_SCU, 0),
            )
        )
        result = WorkloadResult(self.name, self.description, metrics, goals=GOALS)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="bench-echo-") as workdir:
            EchoMatrix(result, counts, workdir).run()
        result.seconds = time.perf_counter() - started
        return result


class EchoMatrix(Matrix):
    """Per SCU and SCP: associations/s, echoes/s, then one idle association."""

    shape_width = 6
    # One mode's rate and SCP CPU per unit; the idle mode's two CPU shares.
    _KEYS = {
        "assoc": (ASSOC_PER_S.key, SCP_CPU_PER_ASSOC.key),
        "echoes": (ECHO_PER_S.key, SCP_CPU_PER_ECHO.key),
        "idle": (IDLE_CPU_SCP.key, IDLE_CPU_SCU.key),
    }

    def __init__(self, result: WorkloadResult, counts: Counts, workdir: str) -> None:
        super().__init__(result)
        self.counts = counts
        self.workdir = workdir

    def cells(self) -> Iterable[tuple[str, str]]:
        return [(scu, mode) for scu in IMPLEMENTATIONS for mode in MODES]

    def keys(self, shape: str) -> tuple[str, ...]:
        return self._KEYS[shape]

    def start_scp(self, scp: str, *, restart: bool) -> ServerProcess:
        return start_scp(scp, free_port(), self.workdir)

    def not_applicable(self, scu: str, scp: str, shape: str) -> str | None:
        if scu == "dcmtk" and shape == "idle":
            return f"{NOT_APPLICABLE}: echoscu cannot hold an association open"
        return None

    def cell(self, scu: str, scp: str, shape: str, server: ServerProcess) -> None:
        if shape == "idle":
            self._idle(scu, scp, server)
        else:
            self._rate(scu, scp, shape, server)

    def _rate(self, scu: str, scp: str, mode: str, server: ServerProcess) -> None:
        count = self.counts.associations if mode == "assoc" else self.counts.echoes
        scp_cpu = cpu_seconds(server.pid)
        run = run_client(scu, mode, server.port, count)
        scp_cpu = cpu_seconds(server.pid) - scp_cpu if server.alive else 0.0
        self.unloaded(scu, scp, run)
        if run.error is not None or run.seconds <= 0:
            self.fail(scu, scp, mode, run.error or "no time measured")
            return
        rate_key, cpu_key = self._KEYS[mode]
        unit, scale = ("assoc/s", 1e3) if mode == "assoc" else ("echo/s", 1e6)
        detail = {"count": run.count, "seconds": run.seconds, "scu_cpu": run.cpu}
        detail["scp_cpu"] = scp_cpu
        rate = run.count / run.seconds
        self.add(Figure(rate_key, scu, scp, rate, detail=detail))
        self.add(Figure(cpu_key, scu, scp, scp_cpu / run.count * scale, detail=detail))
        self.progress(
            scu,
            scp,
            mode,
            f"{rate:9.1f} {unit:<8} ({run.count} in {run.seconds:.2f} s;"
            f" CPU SCU {run.cpu:.2f} s, SCP {scp_cpu:.2f} s)",
        )

    def _idle(self, scu: str, scp: str, server: ServerProcess) -> None:
        idle = idle_client(scu, server, self.counts.idle_seconds)
        self.unloaded(scu, scp, idle)
        if idle.error is not None:
            self.fail(scu, scp, "idle", idle.error)
            return
        scp_cpu = idle.scp_cpu or 0.0
        detail = {"seconds": idle.seconds, "scp_cpu": scp_cpu, "scu_cpu": idle.cpu}
        scp_pct = 100 * scp_cpu / idle.seconds
        scu_pct = 100 * idle.cpu / idle.seconds
        self.add(Figure(IDLE_CPU_SCP.key, scu, scp, scp_pct, detail=detail))
        self.add(Figure(IDLE_CPU_SCU.key, scu, scp, scu_pct, detail=detail))
        self.progress(
            scu,
            scp,
            "idle",
            f"SCP {scp_pct:5.1f} %core, SCU {scu_pct:5.1f} %core over {idle.seconds:.1f} s",
        )


WORKLOAD = EchoWorkload()
