"""What the C-GET and C-MOVE workloads share: the studies, the figures, the run.

Both retrieve one whole study (small or large instances) from every SCP:
dimsefsm and pynetdicom running the same handler over the same files, and
dcmtk dcmqrscp loaded with the same files through storescu.  Every run counts
the files that arrived in one directory.  What differs is where the instances
go, which programs retrieve them and what the notes compare: the hooks of
``RetrieveMatrix``, filled in by ``benchmarks.get`` and ``benchmarks.move``.

pynetdicom's SCP runs with TCP_NODELAY; as shipped (Nagle's algorithm on),
each sub-operation waits for a delayed ACK: that is measured once, on a few
small instances (the ``nagle`` study), in the notes.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from tests.interop.peers import (
    LOCALHOST,
    LineReadyServer,
    ServerProcess,
    ServerStartError,
    free_port,
)

from benchmarks.core import (
    CALLING_AE,
    IMPLEMENTATIONS,
    NOT_APPLICABLE,
    REPO_ROOT,
    Figure,
    Goal,
    Metric,
    Settings,
    WorkloadResult,
)
from benchmarks.get_server import RetrieveSpec, StudyFiles
from benchmarks.matrix import RepeatingMatrix
from benchmarks.processes import (
    DCMTK_ERRORS,
    Run,
    dcmtk_tool,
    empty,
    files_in,
    load_dcmqrscp,
    module_command,
    python_client,
    start_dcmqrscp,
)
from benchmarks.procstat import cpu_seconds
from benchmarks.storage_data import LARGE_SIDE, SMALL_SIDE, InstanceSet, scratch, write_series

CALLED_AE = "COMMON"
MB = 1e6
SHAPES = ("small", "large")
# pynetdicom's SCP as shipped (Nagle on): measured on its own small study, for the notes.
NAGLE = "nagle"
# Whole-run budget per instance before a client is given up.
SECONDS_PER_INSTANCE = {"small": 0.05, "large": 0.5, NAGLE: 0.2}
# dcmqrscp's copy of the small and large studies.
LOAD_TIMEOUT = 120.0


@dataclass(frozen=True)
class Counts:
    small: int
    large: int
    nagle: int


FULL = Counts(small=1000, large=50, nagle=50)
QUICK = Counts(small=100, large=10, nagle=20)

# Worded for C-GET; benchmarks.move rewords titles and footnotes.
SMALL_PER_S = Metric(
    "small_per_s",
    "small instances/s (C-GET of a study of {small} CT instances of {small_kb:.1f} KB)",
    "inst/s",
    footnote="dcmtk SCU: one getscu process, the whole process timed (start-up in the "
    "notes). Python SCUs: association, retrieve (every file written) and release timed "
    "(interpreter start not). dimsefsm/pynetdicom SCPs: the same handler yielding file "
    "paths (pynetdicom: read with dcmread, it takes no paths; TCP_NODELAY set). "
    "Runs under 1 s: best of 5.",
)
SMALL_MB_PER_S = Metric(
    "small_mb_per_s",
    "small instances, MB/s of files retrieved (same runs; 1 MB = 10^6 bytes)",
    "MB/s",
    show_ratios=False,
)
LARGE_MB_PER_S = Metric(
    "large_mb_per_s",
    "large instances, MB/s (C-GET of a study of {large} CT instances of {large_kb:.0f} KB)",
    "MB/s",
    footnote="Every peer at its default maximum PDU length, dcmqrscp at 16 KB (its config).",
)
LARGE_PER_S = Metric(
    "large_per_s",
    "large instances/s (same runs)",
    "inst/s",
    show_ratios=False,
)
SCU_CPU_PER_SMALL = Metric(
    "scu_cpu_us_per_small",
    "SCU CPU per small instance (us, lower is better)",
    "us",
    higher_is_better=False,
    show_ratios=False,
    footnote="dcmtk SCU: the whole getscu process, start-up included.",
)
SCP_CPU_PER_SMALL = Metric(
    "scp_cpu_us_per_small",
    "SCP CPU per small instance (us, lower is better)",
    "us",
    higher_is_better=False,
    show_ratios=False,
    footnote="Averaged over all runs, warm-up retrieves of one instance included. dcmtk "
    "column: n/a, dcmqrscp answers in a forked child whose CPU /proc no longer shows.",
)
METRICS: tuple[Metric, ...] = (
    SMALL_PER_S,
    SMALL_MB_PER_S,
    LARGE_MB_PER_S,
    LARGE_PER_S,
    SCU_CPU_PER_SMALL,
    SCP_CPU_PER_SMALL,
)


@dataclass(frozen=True)
class RetrieveData:
    """The studies every SCP serves: files on disk and the spec the Python parties read."""

    sets: dict[str, InstanceSet]
    spec: RetrieveSpec
    spec_path: Path

    def count(self, name: str) -> int:
        return len(self.sets[name].files)

    def nbytes(self, name: str) -> int:
        return self.sets[name].total_bytes

    def study(self, name: str) -> str:
        return self.spec.studies[name].study


def write_data(root: Path, counts: Counts) -> RetrieveData:
    """One study (one series) per shape, written with pydicom, and its spec."""
    from pydicom import dcmread

    sets = {
        "small": write_series(root / "small", counts.small, SMALL_SIDE),
        "large": write_series(root / "large", counts.large, LARGE_SIDE),
        NAGLE: write_series(root / NAGLE, counts.nagle, SMALL_SIDE),
    }
    studies = {}
    for name, instances in sets.items():
        headers = [dcmread(path, stop_before_pixels=True) for path in instances.files]
        studies[name] = StudyFiles(
            str(headers[0].StudyInstanceUID),
            str(headers[0].SeriesInstanceUID),
            tuple(str(header.SOPInstanceUID) for header in headers),
            tuple(str(path) for path in instances.files),
        )
    spec = RetrieveSpec(studies)
    spec_path = root / "spec.json"
    spec.dump(spec_path)
    return RetrieveData(sets, spec, spec_path)


def formatted(metrics: Iterable[Metric], counts: Counts, data: RetrieveData) -> tuple[Metric, ...]:
    values = {
        "small": f"{counts.small:,}",
        "large": f"{counts.large:,}",
        "small_kb": data.nbytes("small") / counts.small / 1e3,
        "large_kb": data.nbytes("large") / counts.large / 1e3,
    }
    return tuple(metric.formatted(**values) for metric in metrics)


class RetrieveMatrix(RepeatingMatrix):
    """Every SCU retrieves both studies from every SCP; the files land in ``out_dir``."""

    # The dcmtk SCU, and the log prefixes that fail its run.
    tool: ClassVar[str]
    tool_problems: ClassVar[tuple[str, ...]] = DCMTK_ERRORS
    # ``benchmarks.<module>`` of the Python SCUs and SCPs.
    client_module: ClassVar[str]
    server_module: ClassVar[str]
    # Which dimsefsm figure the start-up note compares (see ``Matrix.note_startup``).
    startup_subject: ClassVar[Literal["SCU", "SCP"]] = "SCU"
    _KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "small": (
            SMALL_PER_S.key,
            SMALL_MB_PER_S.key,
            SCU_CPU_PER_SMALL.key,
            SCP_CPU_PER_SMALL.key,
        ),
        "large": (LARGE_MB_PER_S.key, LARGE_PER_S.key),
    }

    def __init__(self, result: WorkloadResult, data: RetrieveData, root: Path) -> None:
        super().__init__(result)
        self.data = data
        self.root = root

    @property
    def out_dir(self) -> Path:
        return self.root / "received"

    # -- what C-GET and C-MOVE fill in -------------------------------------------------------
    @abstractmethod
    def tool_options(self) -> list[str]:
        """The dcmtk SCU's own options: where the instances go."""

    @abstractmethod
    def client_args(self, name: str) -> list[str]:
        """The Python SCU's arguments after ``IMPL HOST PORT CALLED_AE``, for study ``name``."""

    def server_options(self) -> list[str]:
        """The Python SCP's arguments after ``IMPL PORT SPEC``."""
        return []

    def dcmqrscp_hosts(self) -> dict[str, tuple[str, int]] | None:
        return None

    def ready(self) -> str | None:
        """Why a run cannot start now (something besides the SCP is down), or None."""
        return None

    # -- the run ---------------------------------------------------------------------------
    def run(self, scps: Iterable[str] = IMPLEMENTATIONS) -> None:
        empty(self.out_dir)
        super().run(scps)
        if self.ready() is None:
            self._note_nagle()
        self.note_startup(
            self.tool_command(free_port(), self.data.study("small")),
            "process, dictionary",
            {SMALL_PER_S.key: "small {:,.1f} inst/s", LARGE_MB_PER_S.key: "large {:,.1f} MB/s"},
            self.startup_subject,
        )

    def cells(self) -> Iterable[tuple[str, str]]:
        return [(scu, shape) for shape in SHAPES for scu in IMPLEMENTATIONS]

    def keys(self, shape: str) -> tuple[str, ...]:
        return self._KEYS[shape]

    def start_scp(self, scp: str, *, restart: bool) -> ServerProcess:
        if scp != "dcmtk":
            return self.python_scp(scp)
        server = start_dcmqrscp(self.root / "dcmqrscp", CALLED_AE, self.dcmqrscp_hosts())
        if not restart:  # dcmqrscp keeps its database on disk: a restarted one needs no reload
            directories = [self.data.sets[name].directory for name in SHAPES]
            load_dcmqrscp(server, CALLED_AE, directories, LOAD_TIMEOUT)
        return server

    def python_scp(self, impl: str) -> ServerProcess:
        port = free_port()
        flavour = "pynetdicom-nagle" if impl == NAGLE else impl
        args = [flavour, str(port), str(self.data.spec_path), *self.server_options()]
        return LineReadyServer(
            module_command(self.server_module, args), port, cwd=REPO_ROOT
        ).start()

    def attempt(self, scu: str, scp: str, shape: str, server: ServerProcess) -> Run:
        not_ready = self.ready()
        if not_ready is not None:
            return Run(error=not_ready)
        measurable = scp != "dcmtk"  # dcmqrscp answers in a forked child
        empty(self.out_dir)
        scp_cpu = cpu_seconds(server.pid) if measurable else 0.0
        run = self.client(scu, server.port, shape)
        if measurable and server.alive:
            run.scp_cpu = cpu_seconds(server.pid) - scp_cpu
        expected = self.data.count(shape)
        if not self.unloaded(scu, scp, run) and run.error is None:
            files = files_in(self.out_dir)
            if run.count != expected or files != expected:
                run.error = f"{run.count} instances, {files} files, expected {expected}"
            elif run.seconds <= 0:
                run.error = "no time measured"
        return run

    def tool_command(self, port: int, study: str) -> list[str]:
        """The dcmtk SCU retrieving ``study`` from the SCP on ``port``."""
        return [
            self.tool,
            "-S",
            "-aet",
            CALLING_AE,
            "-aec",
            CALLED_AE,
            *self.tool_options(),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={study}",
            LOCALHOST,
            str(port),
        ]

    def client(self, scu: str, port: int, name: str) -> Run:
        if scu == "dcmtk":
            return self.dcmtk_client(port, name)
        timeout = max(60.0, self.data.count(name) * SECONDS_PER_INSTANCE[name])
        args = [scu, LOCALHOST, str(port), CALLED_AE, *self.client_args(name)]
        return python_client(self.client_module, args, timeout)

    def dcmtk_client(self, port: int, name: str) -> Run:
        """The dcmtk SCU, the whole process timed; counted by the files in ``out_dir``."""
        timeout = max(60.0, self.data.count(name) * SECONDS_PER_INSTANCE[name])
        command = self.tool_command(port, self.data.study(name))
        run, _ = dcmtk_tool(command, timeout, self.tool_problems)
        if run.error is None:
            run.count = files_in(self.out_dir)
        return run

    # -- figures ---------------------------------------------------------------------------
    def record(self, scu: str, scp: str, shape: str, runs: list[Run]) -> None:
        """The fastest run gives the rates; SCP CPU is averaged over all runs (10 ms ticks)."""
        best = min(runs, key=lambda run: run.seconds)
        nbytes = self.data.nbytes(shape)
        per_s, mb_per_s = best.count / best.seconds, nbytes / MB / best.seconds
        detail: dict[str, float] = {
            "count": best.count,
            "bytes": nbytes,
            "seconds": best.seconds,
            "runs": len(runs),
            "scu_cpu": best.cpu,
        }
        scp_cpus = [run.scp_cpu for run in runs if run.scp_cpu is not None]
        if scp_cpus:
            detail["scp_cpu"] = sum(scp_cpus) / len(scp_cpus)
        if shape == "small":
            self.add(Figure(SMALL_PER_S.key, scu, scp, per_s, detail=detail))
            self.add(Figure(SMALL_MB_PER_S.key, scu, scp, mb_per_s, detail=detail))
            self.add(Figure(SCU_CPU_PER_SMALL.key, scu, scp, best.cpu / best.count * 1e6))
            if scp_cpus:
                cpu = detail["scp_cpu"] / best.count * 1e6
                self.add(Figure(SCP_CPU_PER_SMALL.key, scu, scp, cpu))
            else:
                why = f"{NOT_APPLICABLE}: dcmqrscp answers in a forked child"
                self.add(Figure(SCP_CPU_PER_SMALL.key, scu, scp, error=why))
        else:
            self.add(Figure(LARGE_MB_PER_S.key, scu, scp, mb_per_s, detail=detail))
            self.add(Figure(LARGE_PER_S.key, scu, scp, per_s, detail=detail))
        scp_shown = f"{detail['scp_cpu']:.2f} s" if scp_cpus else "n/a"
        self.progress(
            scu,
            scp,
            shape,
            f"{per_s:8.1f} inst/s {mb_per_s:7.1f} MB/s ({best.count} in {best.seconds:.3f} s,"
            f" best of {len(runs)}; CPU SCU {best.cpu:.2f} s, SCP {scp_shown})",
        )

    def _note_nagle(self) -> None:
        """pynetdicom's SCP as shipped, the dcmtk SCU retrieving the small Nagle study once."""
        count = self.data.count(NAGLE)
        text = f"pynetdicom SCP as shipped (Nagle on), dcmtk {self.tool}, {count} small instances: "
        try:
            server = self.python_scp(NAGLE)
        except ServerStartError as exc:
            lines = str(exc).strip().splitlines()
            self.result.notes.append(text + f"not measured (SCP did not start: {lines[-1]})")
            return
        try:
            empty(self.out_dir)
            run = self.dcmtk_client(server.port, NAGLE)
        finally:
            server.stop()
        if run.error is None and run.count != count:
            run.error = f"{run.count} instances, expected {count}"
        if run.error is not None:
            self.result.notes.append(text + f"failed: {run.error}")
            return
        per_s = run.count / run.seconds
        text += f"{per_s:,.1f} inst/s ({run.seconds:.2f} s)"
        nodelay = self.result.value(SMALL_PER_S.key, "dcmtk", "pynetdicom")
        if nodelay is not None:
            text += f", against {nodelay:,.1f} inst/s with TCP_NODELAY (the table)"
        self.result.notes.append(text)
        print(f"  {'dcmtk':>10} SCU -> pynetdicom SCP as shipped (Nagle) {per_s:8.1f} inst/s")


@dataclass
class RetrieveWorkload:
    """A retrieve workload: its words, its goals and its matrix; the run is the same."""

    name: str
    description: str
    metrics: tuple[Metric, ...]
    goals: tuple[Goal, ...]
    matrix: Callable[[WorkloadResult, RetrieveData, Path], RetrieveMatrix]

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        started = time.perf_counter()
        # Sources, dcmqrscp's copy and the received copy, with room to spare.
        needed = 4 * (counts.small * 10_000 + counts.large * 530_000 + counts.nagle * 10_000)
        with scratch(self.name, needed) as root:
            print(f"  test data in {root}", flush=True)
            data = write_data(root / "data", counts)
            metrics = formatted(self.metrics, counts, data)
            result = WorkloadResult(self.name, self.description, metrics, goals=self.goals)
            print(f"  data written in {time.perf_counter() - started:.1f} s", flush=True)
            self.matrix(result, data, root).run()
        result.seconds = time.perf_counter() - started
        return result
