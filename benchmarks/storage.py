"""C-STORE workloads: small instances/s, large MB/s, peak SCP memory for one huge instance.

Every SCU (dimsefsm, pynetdicom, dcmtk storescu) sends the same files to every
SCP (dimsefsm storescp, pynetdicom's SCP in ``benchmarks.storage_server``, dcmtk
storescp), all instances on one association, so the dcmtk column compares the
SCUs and the dcmtk row compares the SCPs.  SCPs write into a tmpfs directory
when there is one, so that the disk does not set the pace.

Stock pynetdicom leaves Nagle's algorithm on, so each small instance waits for
the peer's delayed ACK (about 22/s whatever the SCP); it is measured as shipped
(the table; small instances against dcmtk only, to save 90 s) and with
TCP_NODELAY set on its socket (``pynetdicom+nodelay``, in the notes and goals).

Runs shorter than a second are repeated and the best kept; one failed run is
retried and reported in the notes (pynetdicom's reactor thread sometimes takes a
fast C-STORE response off its queue as an unexpected request, and the SCU then
waits for its DIMSE timeout).

The memory test sends one huge instance with dcmtk storescu to a fresh SCP and
reads the SCP's peak RSS from the kernel (``benchmarks.rss``).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.interop.peers import (
    LOCALHOST,
    DcmtkServer,
    DimsefsmServer,
    LineReadyServer,
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
from benchmarks.echo import NOT_APPLICABLE, NOT_AVAILABLE, children_cpu, last_record
from benchmarks.procstat import cpu_seconds
from benchmarks.rss import memory, reset_peak
from benchmarks.storage_data import (
    LARGE_SIDE,
    SMALL_SIDE,
    InstanceSet,
    scratch_root,
    write_huge,
    write_series,
)

CALLED_AE = "STORESCP"
CALLING_AE = "BENCH"
MIB = 1 << 20
MB = 1e6
# The stock pynetdicom SCU in the table, and the same with TCP_NODELAY set.
NODELAY = "pynetdicom+nodelay"
# dcmtk storescp with +B: bit-preserving, streams the dataset into the file.
DCMTK_STREAMING = "dcmtk+B"
SHAPES = ("small", "large")
# A run this short is dominated by noise and process start-up: take the best of a few.
REPEAT_BELOW_SECONDS = 1.0
REPEATS = 5


@dataclass(frozen=True)
class Counts:
    small: int
    large: int
    huge_bytes: int


FULL = Counts(small=1000, large=50, huge_bytes=500 * MIB)
QUICK = Counts(small=100, large=10, huge_bytes=50 * MIB)

SMALL_PER_S = Metric(
    "small_per_s",
    "small instances/s ({small} CT instances of {small_kb:.1f} KB on one association)",
    "inst/s",
    footnote="dcmtk SCU: one storescu process (+sd DIR), the whole process timed "
    "(start-up in the notes). Python SCUs: association, reading the files, sends and "
    "release timed (interpreter start not). Runs under 1 s: best of 5.",
)
SMALL_MB_PER_S = Metric(
    "small_mb_per_s",
    "small instances, MB/s of files sent (same runs; 1 MB = 10^6 bytes)",
    "MB/s",
    show_ratios=False,
)
LARGE_MB_PER_S = Metric(
    "large_mb_per_s",
    "large instances, MB/s ({large} CT instances of {large_kb:.0f} KB on one association)",
    "MB/s",
    footnote="Every peer at its default maximum PDU length; the SCP's sets the size of "
    "the P-DATA PDUs it receives.",
)
LARGE_PER_S = Metric(
    "large_per_s",
    "large instances/s (same runs)",
    "inst/s",
    show_ratios=False,
)
SCP_CPU_PER_SMALL = Metric(
    "scp_cpu_us_per_small",
    "SCP CPU per small instance (us, lower is better)",
    "us",
    higher_is_better=False,
    show_ratios=False,
)
SCP_CPU_PER_LARGE_MB = Metric(
    "scp_cpu_ms_per_large_mb",
    "SCP CPU per MB of large instances (ms, lower is better)",
    "ms/MB",
    higher_is_better=False,
    show_ratios=False,
)
RSS_GROWTH = Metric(
    "scp_rss_growth_mib",
    "SCP peak RSS growth receiving one {huge_mib} MiB instance from storescu (MiB)",
    "MiB",
    higher_is_better=False,
    show_ratios=False,
    footnote="Peak (VmHWM) after the transfer minus RSS after a small warm-up instance; "
    "dcmtk column: storescp by default (with +B in the notes).",
)

GOALS: tuple[Goal, ...] = (
    Goal("small_per_s", ("dimsefsm", "dcmtk"), minimum=0.5, versus=("dcmtk", "dcmtk")),
    Goal("small_per_s", ("dcmtk", "dimsefsm"), minimum=0.5, versus=("dcmtk", "dcmtk")),
    Goal("small_per_s", ("dimsefsm", "dcmtk"), minimum=4, versus=("pynetdicom", "dcmtk")),
    Goal("small_per_s", ("dimsefsm", "dcmtk"), minimum=4, versus=(NODELAY, "dcmtk")),
    Goal("small_per_s", ("dcmtk", "dimsefsm"), minimum=4, versus=("dcmtk", "pynetdicom")),
    Goal("large_mb_per_s", ("dimsefsm", "dcmtk"), minimum=0.7, versus=("dcmtk", "dcmtk")),
    Goal("large_mb_per_s", ("dcmtk", "dimsefsm"), minimum=0.7, versus=("dcmtk", "dcmtk")),
    Goal("scp_rss_growth_mib", ("dcmtk", "dimsefsm"), maximum=16),
)


@dataclass
class Run:
    """One SCU run: instances and bytes in some seconds, or why not."""

    count: int = 0
    nbytes: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    scp_cpu: float = 0.0
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
            nbytes=int(record["bytes"]),
            seconds=float(record["seconds"]),
            cpu=float(record["cpu"]),
        )


# -- SCPs ----------------------------------------------------------------------------------
def start_scp(impl: str, port: int, directory: Path) -> ServerProcess:
    server: ServerProcess
    if impl == "dimsefsm":
        server = DimsefsmServer(["storescp", str(port), "-od", str(directory), "-aet", CALLED_AE])
    elif impl == "pynetdicom":
        server = LineReadyServer(
            [sys.executable, "-m", "benchmarks.storage_server", str(port), str(directory)],
            port,
            cwd=REPO_ROOT,
        )
    else:
        streaming = ["+B"] if impl == DCMTK_STREAMING else []
        server = DcmtkServer(
            ["storescp", *streaming, "-aet", CALLED_AE, "-od", str(directory)], port
        )
    return server.start()


def stored_files(directory: Path) -> int:
    return sum(1 for path in directory.iterdir() if path.is_file())


def empty(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


# -- SCUs ----------------------------------------------------------------------------------
def python_client(scu: str, port: int, instances: InstanceSet, timeout: float) -> Run:
    impl = "pynetdicom-nodelay" if scu == NODELAY else scu
    command = [
        sys.executable,
        "-m",
        "benchmarks.storage_client",
        impl,
        LOCALHOST,
        str(port),
        CALLED_AE,
        str(instances.directory),
    ]
    try:
        done = subprocess.run(
            command,
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


def storescu(port: int, targets: list[str], timeout: float) -> Run:
    """dcmtk's storescu, all targets on one association; the whole process is timed."""
    command = ["storescu", "-aet", CALLING_AE, "-aec", CALLED_AE, "+sd", LOCALHOST, str(port)]
    started, cpu = time.perf_counter(), children_cpu()
    try:
        done = subprocess.run(
            [*command, *targets],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dcmtk_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Run(error=f"storescu: no result within {timeout:g} s")
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    errors = [line for line in done.stderr.splitlines() if line.startswith(("E:", "F:"))]
    if done.returncode != 0 or errors:
        tail = (errors or done.stderr.strip().splitlines() or ["no output"])[-1]
        return Run(error=f"storescu exit {done.returncode}: {tail}")
    return Run(seconds=seconds, cpu=cpu)


def storescu_startup(one: Path) -> float | None:
    """Seconds storescu spends before its first packet: a run against a closed port.

    It covers process start, loading the data dictionary and reading the file;
    the best of several runs, like the figures it is compared with.
    """
    port = free_port()
    command = ["storescu", "+sd", LOCALHOST, str(port), str(one)]
    best: float | None = None
    for _ in range(REPEATS):
        started = time.perf_counter()
        try:
            subprocess.run(command, capture_output=True, timeout=30, env=dcmtk_env(), check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    return best


def run_client(scu: str, port: int, instances: InstanceSet, timeout: float) -> Run:
    if scu != "dcmtk":
        return python_client(scu, port, instances, timeout)
    run = storescu(port, [str(instances.directory)], timeout)
    if run.error is None:
        run.count, run.nbytes = len(instances.files), instances.total_bytes
    return run


# -- the workload -------------------------------------------------------------------------
class StorageWorkload:
    name = "store"
    description = "C-STORE: small instances/s, large MB/s, SCP peak RSS for a huge instance"

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        started = time.perf_counter()
        with scratch(counts) as root:
            print(f"  test data in {root}", flush=True)
            data = {
                "small": write_series(root / "small", counts.small, SMALL_SIDE),
                "large": write_series(root / "large", counts.large, LARGE_SIDE),
            }
            result = WorkloadResult(self.name, self.description, metrics(counts, data), goals=GOALS)
            print(f"  data written in {time.perf_counter() - started:.1f} s", flush=True)
            matrix = _Matrix(result, counts, data, root)
            matrix.run()
            matrix.run_memory()
        result.seconds = time.perf_counter() - started
        return result


@contextlib.contextmanager
def scratch(counts: Counts) -> Iterator[Path]:
    # Room for the huge instance twice (sent and received) and the rest.
    needed = 2 * counts.huge_bytes + 200 * MIB
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=scratch_root(needed)) as root:
        yield Path(root)


def metrics(counts: Counts, data: dict[str, InstanceSet]) -> tuple[Metric, ...]:
    sizes = {
        "small": counts.small,
        "large": counts.large,
        "small_kb": data["small"].total_bytes / len(data["small"].files) / 1e3,
        "large_kb": data["large"].total_bytes / len(data["large"].files) / 1e3,
        "huge_mib": counts.huge_bytes // MIB,
    }
    return tuple(
        Metric(
            m.key,
            m.title.format(**sizes),
            m.unit,
            m.higher_is_better,
            m.show_ratios,
            m.footnote,
        )
        for m in (
            SMALL_PER_S,
            SMALL_MB_PER_S,
            LARGE_MB_PER_S,
            LARGE_PER_S,
            SCP_CPU_PER_SMALL,
            SCP_CPU_PER_LARGE_MB,
            RSS_GROWTH,
        )
    )


@dataclass
class _Matrix:
    """Runs every SCU against every SCP and records figures as they come."""

    result: WorkloadResult
    counts: Counts
    data: dict[str, InstanceSet]
    root: Path
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)

    def run(self) -> None:
        for scp in IMPLEMENTATIONS:
            received = self.root / "received" / scp
            received.mkdir(parents=True, exist_ok=True)
            server = self._start(scp, received)
            try:
                for scu in (*IMPLEMENTATIONS, NODELAY):
                    for shape in SHAPES:
                        server = self._revive(scp, server, received)
                        self._cell(scu, scp, shape, server, received)
            finally:
                if server is not None:
                    server.stop()
                shutil.rmtree(received, ignore_errors=True)
        self._note_nodelay()
        self._note_startup(storescu_startup(self.data["small"].files[0]))

    # -- one SCP column -------------------------------------------------------------
    def _start(self, scp: str, received: Path) -> ServerProcess | None:
        if (self._impl(scp), "SCP") in self.unavailable:
            return None
        try:
            return start_scp(scp, free_port(), received)
        except ServerStartError as exc:
            lines = str(exc).strip().splitlines()
            self._mark_unavailable(self._impl(scp), "SCP", f"SCP did not start: {lines[-1]}")
            return None

    def _revive(
        self, scp: str, server: ServerProcess | None, received: Path
    ) -> ServerProcess | None:
        """A crashed SCP is reported once and restarted so the next cell still runs."""
        if server is None or server.alive:
            return server
        output = server.output().strip().splitlines()
        self.result.notes.append(
            f"{scp} SCP exited (code {server.returncode}) and was restarted: "
            f"{output[-1] if output else 'no output'}"
        )
        server.stop()
        return self._start(scp, received)

    def _cell(
        self, scu: str, scp: str, shape: str, server: ServerProcess | None, received: Path
    ) -> None:
        if server is None or (self._impl(scu), "SCU") in self.unavailable:
            self._fail(scu, scp, shape, self._why(scu, scp))
            return
        if scu == "pynetdicom" and scp != "dcmtk" and shape == "small":
            self._fail(
                scu,
                scp,
                shape,
                f"{NOT_APPLICABLE}: stock pynetdicom waits ~40 ms per instance for a delayed "
                "ACK whatever the SCP; measured against dcmtk only",
            )
            return
        runs: list[Run] = []
        retried = False
        while len(runs) < REPEATS:
            run = self._attempt(scu, scp, shape, server, received)
            if run.error is not None and not run.unavailable and (runs or not retried):
                # Reported, never silent: a rare race (pynetdicom has one) must not blank
                # a cell, but a second failure without any good run does.
                action = "ended the repeats" if runs else "was retried"
                self.result.notes.append(
                    f"{scu} SCU -> {scp} SCP {shape}: a run failed and {action}: {run.error}"
                )
                print(f"  {scu:>18} SCU -> {scp:<10} SCP  {shape:<5} failed run: {run.error}")
                if runs:
                    break
                retried = True
                continue
            if run.error is not None:
                self._fail(scu, scp, shape, run.error)
                return
            runs.append(run)
            if run.seconds >= REPEAT_BELOW_SECONDS:
                break
        self._record(scu, scp, shape, runs)

    def _attempt(
        self,
        scu: str,
        scp: str,
        shape: str,
        server: ServerProcess,
        received: Path,
    ) -> Run:
        instances = self.data[shape]
        budget = 0.1 if shape == "small" else 1.0
        timeout = max(60.0, len(instances.files) * budget)
        scp_cpu = cpu_seconds(server.pid)
        run = run_client(scu, server.port, instances, timeout)
        run.scp_cpu = cpu_seconds(server.pid) - scp_cpu if server.alive else 0.0
        if run.unavailable:
            self._mark_unavailable(self._impl(scu), "SCU", f"SCU failed to load: {run.error}")
            run.error = self._why(scu, scp)
        elif run.error is None:
            stored = stored_files(received)
            if stored < len(instances.files):
                run.error = f"SCP stored {stored} of {len(instances.files)} instances"
            elif run.seconds <= 0 or run.count <= 0:
                run.error = "no time measured"
        empty(received)
        return run

    @staticmethod
    def _impl(name: str) -> str:
        return {NODELAY: "pynetdicom", DCMTK_STREAMING: "dcmtk"}.get(name, name)

    def _why(self, scu: str, scp: str) -> str:
        for impl, role in ((self._impl(scu), "SCU"), (self._impl(scp), "SCP")):
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
    def _record(self, scu: str, scp: str, shape: str, runs: list[Run]) -> None:
        """The fastest run gives the rates; CPU is summed over all runs (10 ms ticks)."""
        best = min(runs, key=lambda run: run.seconds)
        instances = sum(run.count for run in runs)
        scp_cpu = sum(run.scp_cpu for run in runs)
        detail = {
            "count": best.count,
            "bytes": best.nbytes,
            "seconds": best.seconds,
            "runs": len(runs),
            "scu_cpu": best.cpu,
            "scp_cpu_all_runs": scp_cpu,
        }
        per_s, mb_per_s = best.count / best.seconds, best.nbytes / MB / best.seconds
        if shape == "small":
            self._add(Figure(SMALL_PER_S.key, scu, scp, per_s, detail=detail))
            self._add(Figure(SMALL_MB_PER_S.key, scu, scp, mb_per_s, detail=detail))
            cpu = scp_cpu / instances * 1e6
            self._add(Figure(SCP_CPU_PER_SMALL.key, scu, scp, cpu, detail=detail))
        else:
            self._add(Figure(LARGE_MB_PER_S.key, scu, scp, mb_per_s, detail=detail))
            self._add(Figure(LARGE_PER_S.key, scu, scp, per_s, detail=detail))
            megabytes = sum(run.nbytes for run in runs) / MB
            cpu = scp_cpu / megabytes * 1e3
            self._add(Figure(SCP_CPU_PER_LARGE_MB.key, scu, scp, cpu, detail=detail))
        print(
            f"  {scu:>18} SCU -> {scp:<10} SCP  {shape:<5} {per_s:8.1f} inst/s"
            f" {mb_per_s:7.1f} MB/s ({best.count} in {best.seconds:.2f} s, best of"
            f" {len(runs)}; CPU SCU {best.cpu:.2f} s, SCP {scp_cpu / len(runs):.2f} s)",
            flush=True,
        )

    def _fail(self, scu: str, scp: str, shape: str, error: str) -> None:
        keys = (SMALL_PER_S.key, SMALL_MB_PER_S.key, SCP_CPU_PER_SMALL.key)
        if shape != "small":
            keys = (LARGE_MB_PER_S.key, LARGE_PER_S.key, SCP_CPU_PER_LARGE_MB.key)
        for key in keys:
            self._add(Figure(key, scu, scp, error=error))
        if not error.startswith((NOT_AVAILABLE, NOT_APPLICABLE)):
            print(f"  {scu:>18} SCU -> {scp:<10} SCP  {shape:<5} FAILED: {error}", flush=True)

    def _note_nodelay(self) -> None:
        def shown(key: str) -> str:
            cells = []
            for scp in IMPLEMENTATIONS:
                figure = self._figure(key, NODELAY, scp)
                if figure is None:
                    cells.append(f"{scp} -")
                elif figure.value is None:
                    cells.append(f"{scp} failed ({figure.error})")
                else:
                    cells.append(f"{scp} {figure.value:,.1f}")
            return ", ".join(cells)

        self.result.notes.append(
            f"{NODELAY} SCU (stock pynetdicom with TCP_NODELAY set on its socket after "
            f"association; not in the tables): small inst/s: {shown(SMALL_PER_S.key)}; "
            f"large MB/s: {shown(LARGE_MB_PER_S.key)}"
        )

    def _note_startup(self, startup: float | None) -> None:
        """dcmtk SCU figures include process start-up; show what they are without it."""
        if startup is None:
            return
        parts = []
        for key, shape, unit in (
            (SMALL_PER_S.key, "small", "inst/s"),
            (LARGE_MB_PER_S.key, "large", "MB/s"),
        ):
            dcmtk = self._figure(key, "dcmtk", "dcmtk")
            if dcmtk is None or dcmtk.value is None:
                continue
            seconds = dcmtk.detail["seconds"]
            if seconds <= startup:
                continue
            corrected = dcmtk.value * seconds / (seconds - startup)
            dcmtk.detail["value_without_startup"] = corrected
            shown = f"{shape} {corrected:,.1f} {unit}"
            ours = self.result.value(key, "dimsefsm", "dcmtk")
            if ours is not None:
                shown += f" (dimsefsm SCU {ours / corrected:.2f}x that)"
            parts.append(shown)
        text = (
            f"dcmtk storescu start-up (process, dictionary, file scan; a run against a "
            f"closed port): {startup * 1e3:.0f} ms, included in every dcmtk SCU figure"
        )
        if parts:
            text += f"; without it dcmtk SCU -> dcmtk SCP: {'; '.join(parts)}"
        self.result.notes.append(text)

    def _figure(self, key: str, scu: str, scp: str) -> Figure | None:
        for figure in self.result.figures:
            if (figure.metric, figure.scu, figure.scp) == (key, scu, scp):
                return figure
        return None

    def _add(self, figure: Figure) -> None:
        self.result.figures.append(figure)

    # -- peak memory ----------------------------------------------------------------------
    def run_memory(self) -> None:
        huge_mib = self.counts.huge_bytes // MIB
        for scu in IMPLEMENTATIONS:
            if scu != "dcmtk":
                for scp in IMPLEMENTATIONS:
                    error = f"{NOT_APPLICABLE}: only dcmtk storescu sends the huge instance"
                    self._add(Figure(RSS_GROWTH.key, scu, scp, error=error))
        started = time.perf_counter()
        huge = write_huge(self.root / "huge", self.counts.huge_bytes)
        print(f"  {huge_mib} MiB instance written in {time.perf_counter() - started:.1f} s")
        try:
            for scp in (*IMPLEMENTATIONS, DCMTK_STREAMING):
                self._memory_cell(scp, huge)
        finally:
            shutil.rmtree(huge.directory, ignore_errors=True)
        value = self.result.value(RSS_GROWTH.key, "dcmtk", DCMTK_STREAMING)
        if value is not None:
            self.result.notes.append(
                f"dcmtk storescp +B (bit-preserving, writes the dataset straight to the "
                f"file): peak RSS growth {value:.1f} MiB for the {huge_mib} MiB instance"
            )

    def _memory_cell(self, scp: str, huge: InstanceSet) -> None:
        received = self.root / "received" / scp
        received.mkdir(parents=True, exist_ok=True)
        server = self._start(scp, received)
        error: str | None
        try:
            if server is None:
                error = self._why("dcmtk", scp)
            else:
                error = self._measure_memory(scp, server, received, huge)
        finally:
            if server is not None:
                server.stop()
            shutil.rmtree(received, ignore_errors=True)
        if error is not None:
            self._add(Figure(RSS_GROWTH.key, "dcmtk", scp, error=error))
            if not error.startswith(NOT_AVAILABLE):
                print(f"  {'dcmtk':>18} SCU -> {scp:<10} SCP  huge  FAILED: {error}", flush=True)

    def _measure_memory(
        self, scp: str, server: ServerProcess, received: Path, huge: InstanceSet
    ) -> str | None:
        warm = storescu(server.port, [str(self.data["small"].files[0])], timeout=30)
        if warm.error is not None:
            return f"warm-up: {warm.error}"
        reset = reset_peak(server.pid)
        before = memory(server.pid)
        # Without a reset the start-up peak stays in VmHWM: growth from it is a lower bound.
        baseline = before.rss_mib if reset else before.peak_mib
        timeout = max(120.0, huge.total_bytes / (2 * MB))
        run = storescu(server.port, [str(huge.directory)], timeout)
        if run.error is not None:
            return run.error
        if not server.alive:
            return f"SCP exited (code {server.returncode}) after the transfer"
        after = memory(server.pid)
        if stored_files(received) < 2:  # the warm-up instance and the huge one
            return "SCP did not store the huge instance"
        growth = after.peak_mib - baseline
        mb_per_s = huge.total_bytes / MB / run.seconds
        detail = {
            "baseline_rss_mib": before.rss_mib,
            "baseline_peak_mib": before.peak_mib,
            "peak_mib": after.peak_mib,
            "rss_after_mib": after.rss_mib,
            "peak_reset": float(reset),
            "bytes": huge.total_bytes,
            "seconds": run.seconds,
            "mb_per_s": mb_per_s,
        }
        self._add(Figure(RSS_GROWTH.key, "dcmtk", scp, growth, detail=detail))
        print(
            f"  {'dcmtk':>18} SCU -> {scp:<10} SCP  huge  peak RSS +{growth:.1f} MiB"
            f" (RSS {before.rss_mib:.1f} -> peak {after.peak_mib:.1f} MiB;"
            f" {huge.total_bytes / MB:.0f} MB in {run.seconds:.2f} s, {mb_per_s:.0f} MB/s)",
            flush=True,
        )
        return None


WORKLOAD = StorageWorkload()
