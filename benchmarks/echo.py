"""C-ECHO workloads: associations/s, echoes/s on one association, CPU of an idle association.

Every SCU (dimsefsm, pynetdicom, dcmtk echoscu) runs against every SCP
(dimsefsm echoscp, pynetdicom, dcmtk storescp), so one run gives both the SCU
view (rows) and the SCP view (columns).  Python clients run in their own process
(``benchmarks.echo_client``); the SCP's CPU is read from /proc around each run.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.interop.peers import (
    LOCALHOST,
    DcmtkServer,
    DimsefsmServer,
    PynetdicomEchoServer,
    ServerProcess,
    ServerStartError,
    dcmtk_env,
    free_port,
)

from benchmarks.core import (
    IMPLEMENTATIONS,
    REPO_ROOT,
    Figure,
    Goal,
    Metric,
    Settings,
    WorkloadResult,
)
from benchmarks.procstat import cpu_seconds

CALLED_AE = "ANY-SCP"
NOT_APPLICABLE = "n/a"
NOT_AVAILABLE = "not available"
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


@dataclass
class Run:
    """The outcome of one client run: a count in some seconds, or why not."""

    count: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    error: str | None = None
    unavailable: bool = False

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Run:
        if not record.get("ok"):
            return cls(
                error=str(record.get("error", "failed")),
                unavailable=bool(record.get("unavailable")),
            )
        return cls(
            count=int(record["count"]),
            seconds=float(record["seconds"]),
            cpu=float(record["cpu"]),
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
def client_command(impl: str, mode: str, port: int, count: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks.echo_client",
        impl,
        mode,
        LOCALHOST,
        str(port),
        str(count),
    ]


def last_record(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            return record
    return None


def python_client(impl: str, mode: str, port: int, count: int, timeout: float) -> Run:
    try:
        done = subprocess.run(
            client_command(impl, mode, port, count),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO_ROOT,
            env=dcmtk_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Run(error=f"no result within {timeout:g} s")
    record = last_record(done.stdout)
    if record is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Run(error=f"exit {done.returncode}: {tail}")
    return Run.from_record(record)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def echoscu(port: int, *options: str, timeout: float) -> str | None:
    """Run dcmtk's echoscu; returns an error text, or None on success."""
    try:
        done = subprocess.run(
            ["echoscu", *options, LOCALHOST, str(port)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dcmtk_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"echoscu: no result within {timeout:g} s"
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"echoscu exit {done.returncode}: {tail}"
    return None


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
    return python_client(scu, mode, port, count, timeout=max(60.0, count * budget))


@dataclass
class IdleRun:
    scp_cpu: float = 0.0
    scu_cpu: float = 0.0
    seconds: float = 0.0
    error: str | None = None
    unavailable: bool = False


def idle_client(scu: str, server: ServerProcess, seconds: float) -> IdleRun:
    """Hold one association open and idle; both processes' CPU over the window."""
    proc = subprocess.Popen(
        client_command(scu, "idle", server.port, 0),
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
                failed = Run.from_record(final)
                return IdleRun(error=failed.error, unavailable=failed.unavailable)
            tail = (err.strip().splitlines() or ["no output"])[-1]
            return IdleRun(error=f"exit {proc.returncode}: {tail}")
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
            return IdleRun(error=f"release failed: {final}")
        return IdleRun(scp1 - scp0, scu1 - scu0, elapsed)
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
            Metric(
                m.key,
                m.title.format(n=n, s=counts.idle_seconds),
                m.unit,
                m.higher_is_better,
                m.show_ratios,
                m.footnote,
            )
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
            _Matrix(result, counts, workdir).run()
        result.seconds = time.perf_counter() - started
        return result


class _Matrix:
    """Runs every SCU against every SCP and records figures as they come."""

    def __init__(self, result: WorkloadResult, counts: Counts, workdir: str) -> None:
        self.result = result
        self.counts = counts
        self.workdir = workdir
        self.unavailable: dict[tuple[str, str], str] = {}

    def run(self) -> None:
        for scp in IMPLEMENTATIONS:
            server = self._start(scp)
            try:
                for scu in IMPLEMENTATIONS:
                    server = self._cells(scu, scp, server)
            finally:
                if server is not None:
                    server.stop()

    # -- one SCP column -------------------------------------------------------------
    def _start(self, scp: str) -> ServerProcess | None:
        if (scp, "SCP") in self.unavailable:
            return None
        try:
            return start_scp(scp, free_port(), self.workdir)
        except ServerStartError as exc:
            lines = str(exc).strip().splitlines()
            self._mark_unavailable(scp, "SCP", f"SCP did not start: {lines[-1]}")
            return None

    def _cells(self, scu: str, scp: str, server: ServerProcess | None) -> ServerProcess | None:
        for mode, count in (("assoc", self.counts.associations), ("echoes", self.counts.echoes)):
            server = self._revive(scp, server)
            if server is None or (scu, "SCU") in self.unavailable:
                self._fail_rate(mode, scu, scp, self._why(scu, scp))
                continue
            scp_cpu = cpu_seconds(server.pid)
            run = run_client(scu, mode, server.port, count)
            scp_cpu = cpu_seconds(server.pid) - scp_cpu if server.alive else 0.0
            if run.unavailable:
                self._mark_unavailable(scu, "SCU", f"SCU failed to load: {run.error}")
                run.error = self._why(scu, scp)
            self._record_rate(mode, scu, scp, run, scp_cpu)
        server = self._revive(scp, server)
        self._record_idle(scu, scp, server)
        return server

    def _revive(self, scp: str, server: ServerProcess | None) -> ServerProcess | None:
        """A crashed SCP is reported once and restarted so the next cell still runs."""
        if server is None or server.alive:
            return server
        output = server.output().strip().splitlines()
        self.result.notes.append(
            f"{scp} SCP exited (code {server.returncode}) and was restarted: "
            f"{output[-1] if output else 'no output'}"
        )
        server.stop()
        return self._start(scp)

    def _why(self, scu: str, scp: str) -> str:
        for impl, role in ((scu, "SCU"), (scp, "SCP")):
            if (impl, role) in self.unavailable:
                return f"{NOT_AVAILABLE}: {impl} {role}"
        return "SCP not running"

    def _mark_unavailable(self, impl: str, role: str, error: str) -> None:
        if (impl, role) not in self.unavailable:
            self.unavailable[impl, role] = error
            note = f"{impl}: {NOT_AVAILABLE}: {error}"
            self.result.notes.append(note)
            print(note, flush=True)

    # -- figures ------------------------------------------------------------------------
    def _record_rate(self, mode: str, scu: str, scp: str, run: Run, scp_cpu: float) -> None:
        if run.error is not None or run.seconds <= 0:
            self._fail_rate(mode, scu, scp, run.error or "no time measured")
            return
        rate_metric, cpu_metric, scale = (
            (ASSOC_PER_S, SCP_CPU_PER_ASSOC, 1e3)
            if mode == "assoc"
            else (ECHO_PER_S, SCP_CPU_PER_ECHO, 1e6)
        )
        detail = {"count": run.count, "seconds": run.seconds, "scu_cpu": run.cpu}
        detail["scp_cpu"] = scp_cpu
        rate = run.count / run.seconds
        self._add(Figure(rate_metric.key, scu, scp, rate, detail=detail))
        self._add(Figure(cpu_metric.key, scu, scp, scp_cpu / run.count * scale, detail=detail))
        print(
            f"  {scu:>10} SCU -> {scp:<10} SCP  {mode:<6} {rate:9.1f} {rate_metric.unit:<8}"
            f" ({run.count} in {run.seconds:.2f} s; CPU SCU {run.cpu:.2f} s,"
            f" SCP {scp_cpu:.2f} s)",
            flush=True,
        )

    def _fail_rate(self, mode: str, scu: str, scp: str, error: str) -> None:
        keys = ("assoc_per_s", "scp_cpu_ms_per_assoc")
        if mode != "assoc":
            keys = ("echo_per_s", "scp_cpu_us_per_echo")
        for key in keys:
            self._add(Figure(key, scu, scp, error=error))
        if not error.startswith(NOT_AVAILABLE):
            print(f"  {scu:>10} SCU -> {scp:<10} SCP  {mode:<6} FAILED: {error}", flush=True)

    def _record_idle(self, scu: str, scp: str, server: ServerProcess | None) -> None:
        if scu == "dcmtk":
            idle = IdleRun(error=f"{NOT_APPLICABLE}: echoscu cannot hold an association open")
        elif server is None or (scu, "SCU") in self.unavailable:
            idle = IdleRun(error=self._why(scu, scp))
        else:
            idle = idle_client(scu, server, self.counts.idle_seconds)
            if idle.unavailable:
                self._mark_unavailable(scu, "SCU", f"SCU failed to load: {idle.error}")
                idle.error = self._why(scu, scp)
        if idle.error is not None:
            self._add(Figure(IDLE_CPU_SCP.key, scu, scp, error=idle.error))
            self._add(Figure(IDLE_CPU_SCU.key, scu, scp, error=idle.error))
            return
        detail = {"seconds": idle.seconds, "scp_cpu": idle.scp_cpu, "scu_cpu": idle.scu_cpu}
        scp_pct = 100 * idle.scp_cpu / idle.seconds
        scu_pct = 100 * idle.scu_cpu / idle.seconds
        self._add(Figure(IDLE_CPU_SCP.key, scu, scp, scp_pct, detail=detail))
        self._add(Figure(IDLE_CPU_SCU.key, scu, scp, scu_pct, detail=detail))
        print(
            f"  {scu:>10} SCU -> {scp:<10} SCP  idle   SCP {scp_pct:5.1f} %core,"
            f" SCU {scu_pct:5.1f} %core over {idle.seconds:.1f} s",
            flush=True,
        )

    def _add(self, figure: Figure) -> None:
        self.result.figures.append(figure)


WORKLOAD = EchoWorkload()
