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

The durability test prices ``--fsync``: dcmtk storescu sends the small
instances to dimsefsm storescp and qrscp with and without it, into a directory
on a real disk (tmpfs makes fsync free), best of two runs each; the figures go
to the notes (key ``disk_small_per_s``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.interop.peers import (
    LOCALHOST,
    DcmtkServer,
    DimsefsmServer,
    LineReadyServer,
    ServerProcess,
    ServerStartError,
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
from benchmarks.matrix import RepeatingMatrix
from benchmarks.processes import (
    Run,
    dcmtk_tool,
    empty,
    files_in,
    python_client,
    storescu_command,
)
from benchmarks.procstat import cpu_seconds
from benchmarks.rss import memory, reset_peak
from benchmarks.storage_data import (
    LARGE_SIDE,
    SMALL_SIDE,
    InstanceSet,
    scratch,
    write_huge,
    write_series,
)

CALLED_AE = "STORESCP"
MIB = 1 << 20
MB = 1e6
# The stock pynetdicom SCU in the table, and the same with TCP_NODELAY set.
NODELAY = "pynetdicom+nodelay"
# dcmtk storescp with +B: bit-preserving, streams the dataset into the file.
DCMTK_STREAMING = "dcmtk+B"
SHAPES = ("small", "large")


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


# -- SCUs ----------------------------------------------------------------------------------
def storescu(port: int, targets: list[str], timeout: float) -> Run:
    """dcmtk's storescu, all targets on one association; the whole process is timed."""
    run, _ = dcmtk_tool(storescu_command(port, CALLED_AE, *targets), timeout)
    return run


def run_client(scu: str, port: int, instances: InstanceSet, timeout: float) -> Run:
    if scu != "dcmtk":
        impl = "pynetdicom-nodelay" if scu == NODELAY else scu
        args = [impl, LOCALHOST, str(port), CALLED_AE, str(instances.directory)]
        return python_client("storage_client", args, timeout)
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
        # Room for the huge instance twice (sent and received) and the rest.
        with scratch("store", 2 * counts.huge_bytes + 200 * MIB) as root:
            print(f"  test data in {root}", flush=True)
            data = {
                "small": write_series(root / "small", counts.small, SMALL_SIDE),
                "large": write_series(root / "large", counts.large, LARGE_SIDE),
            }
            result = WorkloadResult(self.name, self.description, metrics(counts, data), goals=GOALS)
            print(f"  data written in {time.perf_counter() - started:.1f} s", flush=True)
            matrix = StorageMatrix(result, counts, data, root)
            matrix.run()
            matrix.run_memory()
            matrix.run_fsync()
        result.seconds = time.perf_counter() - started
        return result


def metrics(counts: Counts, data: dict[str, InstanceSet]) -> tuple[Metric, ...]:
    sizes = {
        "small": counts.small,
        "large": counts.large,
        "small_kb": data["small"].total_bytes / len(data["small"].files) / 1e3,
        "large_kb": data["large"].total_bytes / len(data["large"].files) / 1e3,
        "huge_mib": counts.huge_bytes // MIB,
    }
    return tuple(
        m.formatted(**sizes)
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


class StorageMatrix(RepeatingMatrix):
    """Every SCU (and pynetdicom with TCP_NODELAY) sends both shapes to every SCP."""

    scu_width = 18
    aliases = {NODELAY: "pynetdicom", DCMTK_STREAMING: "dcmtk"}
    _KEYS = {
        "small": (SMALL_PER_S.key, SMALL_MB_PER_S.key, SCP_CPU_PER_SMALL.key),
        "large": (LARGE_MB_PER_S.key, LARGE_PER_S.key, SCP_CPU_PER_LARGE_MB.key),
        "huge": (RSS_GROWTH.key,),
    }

    def __init__(
        self, result: WorkloadResult, counts: Counts, data: dict[str, InstanceSet], root: Path
    ) -> None:
        super().__init__(result)
        self.counts = counts
        self.data = data
        self.root = root

    def run(self, scps: Iterable[str] = IMPLEMENTATIONS) -> None:
        super().run(scps)
        self._note_nodelay()
        self.note_startup(
            storescu_command(free_port(), CALLED_AE, str(self.data["small"].files[0])),
            "process, dictionary, file scan",
            {SMALL_PER_S.key: "small {:,.1f} inst/s", LARGE_MB_PER_S.key: "large {:,.1f} MB/s"},
        )

    # -- one SCP column -------------------------------------------------------------
    def cells(self) -> Iterable[tuple[str, str]]:
        return [(scu, shape) for scu in (*IMPLEMENTATIONS, NODELAY) for shape in SHAPES]

    def keys(self, shape: str) -> tuple[str, ...]:
        return self._KEYS[shape]

    def received(self, scp: str) -> Path:
        return self.root / "received" / scp

    def start_scp(self, scp: str, *, restart: bool) -> ServerProcess:
        received = self.received(scp)
        received.mkdir(parents=True, exist_ok=True)
        return start_scp(scp, free_port(), received)

    def end_column(self, scp: str) -> None:
        shutil.rmtree(self.received(scp), ignore_errors=True)

    def not_applicable(self, scu: str, scp: str, shape: str) -> str | None:
        if scu == "pynetdicom" and scp != "dcmtk" and shape == "small":
            return (
                f"{NOT_APPLICABLE}: stock pynetdicom waits ~40 ms per instance for a delayed "
                "ACK whatever the SCP; measured against dcmtk only"
            )
        return None

    def attempt(self, scu: str, scp: str, shape: str, server: ServerProcess) -> Run:
        instances, received = self.data[shape], self.received(scp)
        budget = 0.1 if shape == "small" else 1.0
        timeout = max(60.0, len(instances.files) * budget)
        scp_cpu = cpu_seconds(server.pid)
        run = run_client(scu, server.port, instances, timeout)
        run.scp_cpu = cpu_seconds(server.pid) - scp_cpu if server.alive else 0.0
        if not self.unloaded(scu, scp, run) and run.error is None:
            stored = files_in(received)
            if stored < len(instances.files):
                run.error = f"SCP stored {stored} of {len(instances.files)} instances"
            elif run.seconds <= 0 or run.count <= 0:
                run.error = "no time measured"
        empty(received)
        return run

    # -- figures ------------------------------------------------------------------------
    def record(self, scu: str, scp: str, shape: str, runs: list[Run]) -> None:
        """The fastest run gives the rates; CPU is summed over all runs (10 ms ticks)."""
        best = min(runs, key=lambda run: run.seconds)
        instances = sum(run.count for run in runs)
        scp_cpu = sum(run.scp_cpu or 0.0 for run in runs)
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
            cpu = scp_cpu / instances * 1e6
            values = (per_s, mb_per_s, cpu)
        else:
            megabytes = sum(run.nbytes for run in runs) / MB
            values = (mb_per_s, per_s, scp_cpu / megabytes * 1e3)
        for key, value in zip(self.keys(shape), values, strict=True):
            self.add(Figure(key, scu, scp, value, detail=detail))
        self.progress(
            scu,
            scp,
            shape,
            f"{per_s:8.1f} inst/s {mb_per_s:7.1f} MB/s ({best.count} in {best.seconds:.2f} s,"
            f" best of {len(runs)}; CPU SCU {best.cpu:.2f} s, SCP {scp_cpu / len(runs):.2f} s)",
        )

    def _note_nodelay(self) -> None:
        def shown(key: str) -> str:
            cells = []
            for scp in IMPLEMENTATIONS:
                figure = self.result.figure(key, NODELAY, scp)
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

    # -- the cost of --fsync --------------------------------------------------------------
    def run_fsync(self) -> None:
        """Small instances/s on disk: dimsefsm storescp and qrscp, without and with --fsync."""
        instances = self.data["small"]
        timeout = max(60.0, len(instances.files) * 0.1)
        rates: dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix="bench-store-disk-", dir=disk_root()) as root:
            for program in ("storescp", "qrscp"):
                for flags in ((), ("--fsync",)):
                    label = " ".join((program, *flags))
                    received = Path(root) / label.replace(" ", "")
                    received.mkdir()
                    best = None
                    for _ in range(2):
                        args = [program, str(free_port()), "-od", str(received), "-aet", CALLED_AE]
                        try:
                            with DimsefsmServer([*args, *flags]) as server:
                                run = storescu(server.port, [str(instances.directory)], timeout)
                        except ServerStartError as exc:
                            run = Run(error=f"server did not start: {exc}")
                        stored = sum(1 for p in received.glob("*.dcm"))
                        shutil.rmtree(received)
                        received.mkdir()
                        if run.error is None and stored < len(instances.files):
                            run.error = f"stored {stored} of {len(instances.files)}"
                        if run.error is not None:
                            self.result.notes.append(f"--fsync cost: {label}: {run.error}")
                            break
                        rate = len(instances.files) / run.seconds
                        best = rate if best is None else max(best, rate)
                    if best is None:
                        continue
                    rates[label] = best
                    self.add(Figure("disk_small_per_s", "dcmtk", f"dimsefsm {label}", best))
                    self.progress("dcmtk", f"dimsefsm {label}", "disk", f"{best:8.1f} inst/s")
        parts = []
        for program in ("storescp", "qrscp"):
            plain, synced = rates.get(program), rates.get(f"{program} --fsync")
            if plain and synced:
                parts.append(
                    f"{program} {plain:,.0f} -> {synced:,.0f} inst/s with --fsync "
                    f"({synced / plain:.2f}x, "
                    f"{1e3 / synced - 1e3 / plain:.2f} ms more per instance)"
                )
        if parts:
            self.result.notes.append(
                f"--fsync cost, {len(instances.files)} small instances from dcmtk storescu into "
                f"{disk_root()} (a real disk, one association): " + "; ".join(parts)
            )

    # -- peak memory ----------------------------------------------------------------------
    def run_memory(self) -> None:
        huge_mib = self.counts.huge_bytes // MIB
        for scu in IMPLEMENTATIONS:
            if scu != "dcmtk":
                for scp in IMPLEMENTATIONS:
                    error = f"{NOT_APPLICABLE}: only dcmtk storescu sends the huge instance"
                    self.add(Figure(RSS_GROWTH.key, scu, scp, error=error))
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
        server = self.start(scp)
        error: str | None
        try:
            if server is None:
                error = self.why("dcmtk", scp)
            else:
                error = self._measure_memory(scp, server, huge)
        finally:
            if server is not None:
                server.stop()
            self.end_column(scp)
        if error is not None:
            self.fail("dcmtk", scp, "huge", error)

    def _measure_memory(self, scp: str, server: ServerProcess, huge: InstanceSet) -> str | None:
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
        if files_in(self.received(scp)) < 2:  # the warm-up instance and the huge one
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
        self.add(Figure(RSS_GROWTH.key, "dcmtk", scp, growth, detail=detail))
        self.progress(
            "dcmtk",
            scp,
            "huge",
            f"peak RSS +{growth:.1f} MiB (RSS {before.rss_mib:.1f} -> peak {after.peak_mib:.1f}"
            f" MiB; {huge.total_bytes / MB:.0f} MB in {run.seconds:.2f} s, {mb_per_s:.0f} MB/s)",
        )
        return None


WORKLOAD = StorageWorkload()


def disk_root() -> Path:
    """A directory on a real file system: the temporary directory unless it is tmpfs."""
    candidate = Path(tempfile.gettempdir())
    return candidate if not _on_tmpfs(candidate) else Path.home()


def _on_tmpfs(path: Path) -> bool:
    """True when the longest mount point above ``path`` is a tmpfs (Linux /proc/mounts)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    best, kind = "", ""
    resolved = os.path.realpath(path)
    for line in mounts:
        fields = line.split()
        if (
            len(fields) >= 3
            and (resolved + "/").startswith(fields[1].rstrip("/") + "/")
            and len(fields[1]) > len(best)
        ):
            best, kind = fields[1], fields[2]
    return kind == "tmpfs"
