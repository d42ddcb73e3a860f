"""C-GET workload: small instances/s and large MB/s retrieved over one association.

Every SCU (dimsefsm and pynetdicom in ``benchmarks.get_client``, dcmtk getscu)
retrieves one whole study from every SCP: dimsefsm and pynetdicom running
the same handler over the same files (``benchmarks.get_server``: the count,
then one Pending per file path), and dcmtk dcmqrscp loaded with the same
files through storescu.  So the dcmtk row compares the SCPs and the dcmtk
column compares the SCUs.  Receivers write every instance into a tmpfs
directory when there is one, so that the disk does not set the pace.

pynetdicom's SCP runs with TCP_NODELAY set on each connection: as shipped it
leaves Nagle's algorithm on, and every sub-operation then waits for the
requestor's delayed ACK (measured once, on a few small instances, in the
notes).  pynetdicom's SCU is measured as shipped: Nagle costs a requestor
nothing here.

Runs shorter than a second are repeated and the best kept; one failed run is
retried and reported in the notes.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.interop.peers import (
    LOCALHOST,
    DcmtkServer,
    LineReadyServer,
    ServerProcess,
    ServerStartError,
    dcmqrscp_config,
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
from benchmarks.get_server import RetrieveSpec, StudyFiles
from benchmarks.procstat import cpu_seconds
from benchmarks.storage_data import LARGE_SIDE, SMALL_SIDE, InstanceSet, scratch_root, write_series

CALLED_AE = "COMMON"
CALLING_AE = "BENCH"
MB = 1e6
SHAPES = ("small", "large")
# pynetdicom's SCP as shipped (Nagle on): measured on its own small study, for the notes.
NAGLE = "nagle"
# A run this short is dominated by noise and process start-up: take the best of a few.
REPEAT_BELOW_SECONDS = 1.0
REPEATS = 5
# Whole-run budget per instance before a client is given up.
SECONDS_PER_INSTANCE = {"small": 0.05, "large": 0.5, NAGLE: 0.2}


@dataclass(frozen=True)
class Counts:
    small: int
    large: int
    nagle: int


FULL = Counts(small=1000, large=50, nagle=50)
QUICK = Counts(small=100, large=10, nagle=20)

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

GOALS: tuple[Goal, ...] = (
    Goal("small_per_s", ("dcmtk", "dimsefsm"), minimum=0.5, versus=("dcmtk", "dcmtk")),
    Goal("small_per_s", ("dcmtk", "dimsefsm"), minimum=8, versus=("dcmtk", "pynetdicom")),
    Goal("small_per_s", ("dimsefsm", "dcmtk"), minimum=0.4, versus=("dcmtk", "dcmtk")),
    Goal("small_per_s", ("dimsefsm", "dcmtk"), minimum=5, versus=("pynetdicom", "dcmtk")),
    Goal("large_mb_per_s", ("dcmtk", "dimsefsm"), minimum=0.7, versus=("dcmtk", "dcmtk")),
    Goal("large_mb_per_s", ("dimsefsm", "dcmtk"), minimum=0.7, versus=("dcmtk", "dcmtk")),
)


@dataclass
class Run:
    """One SCU run: instances in some seconds, or why not."""

    count: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    scp_cpu: float | None = None
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


@dataclass(frozen=True)
class GetData:
    """The studies every SCP serves: files on disk and the spec the Python parties read."""

    sets: dict[str, InstanceSet]
    spec: RetrieveSpec
    spec_path: Path

    def count(self, name: str) -> int:
        return len(self.sets[name].files)

    def nbytes(self, name: str) -> int:
        return self.sets[name].total_bytes


def write_data(root: Path, counts: Counts) -> GetData:
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
    return GetData(sets, spec, spec_path)


def metrics(counts: Counts, data: GetData) -> tuple[Metric, ...]:
    values = {
        "small": f"{counts.small:,}",
        "large": f"{counts.large:,}",
        "small_kb": data.nbytes("small") / counts.small / 1e3,
        "large_kb": data.nbytes("large") / counts.large / 1e3,
    }
    return tuple(
        Metric(
            m.key,
            m.title.format(**values),
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
            SCU_CPU_PER_SMALL,
            SCP_CPU_PER_SMALL,
        )
    )


# -- SCPs ----------------------------------------------------------------------------------
def start_scp(impl: str, port: int, data: GetData, root: Path) -> ServerProcess:
    server: ServerProcess
    if impl == "dcmtk":
        config = dcmqrscp_config(root / "dcmqrscp", port, [CALLED_AE])
        server = DcmtkServer(["dcmqrscp", "-c", str(config)], port)
    else:
        flavour = "pynetdicom-nagle" if impl == NAGLE else impl
        command = [sys.executable, "-m", "benchmarks.get_server", flavour, str(port)]
        server = LineReadyServer([*command, str(data.spec_path)], port, cwd=REPO_ROOT)
    return server.start()


def load_dcmqrscp(port: int, data: GetData) -> str | None:
    """Store every instance into dcmqrscp with storescu; an error text, or None."""
    command = ["storescu", "-aet", CALLING_AE, "-aec", CALLED_AE, "+sd", LOCALHOST, str(port)]
    directories = [str(data.sets[name].directory) for name in SHAPES]
    try:
        done = subprocess.run(
            [*command, *directories],
            capture_output=True,
            text=True,
            timeout=120,
            env=dcmtk_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "storescu loading dcmqrscp: no result in time"
    errors = [line for line in done.stderr.splitlines() if line.startswith(("E:", "F:"))]
    if done.returncode != 0 or errors:
        tail = (errors or done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"storescu loading dcmqrscp: exit {done.returncode}: {tail}"
    return None


# -- SCUs ----------------------------------------------------------------------------------
def received_files(directory: Path) -> int:
    return sum(1 for path in directory.iterdir() if path.is_file())


def python_client(scu: str, port: int, data: GetData, name: str, out_dir: Path) -> Run:
    timeout = max(60.0, data.count(name) * SECONDS_PER_INSTANCE[name])
    command = [sys.executable, "-m", "benchmarks.get_client", scu, LOCALHOST, str(port)]
    try:
        done = subprocess.run(
            [*command, CALLED_AE, str(data.spec_path), name, str(out_dir)],
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


def getscu_command(port: int, study: str, out_dir: Path) -> list[str]:
    return [
        "getscu",
        "-S",
        "-aet",
        CALLING_AE,
        "-aec",
        CALLED_AE,
        "-od",
        str(out_dir),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        LOCALHOST,
        str(port),
    ]


def getscu(port: int, data: GetData, name: str, out_dir: Path) -> Run:
    """dcmtk's getscu, the whole process timed; counted by the files it wrote.

    Without ``-v`` getscu prints only errors; every expected file in its
    output directory is the check that the retrieve succeeded.
    """
    timeout = max(60.0, data.count(name) * SECONDS_PER_INSTANCE[name])
    command = getscu_command(port, data.spec.studies[name].study, out_dir)
    started, cpu = time.perf_counter(), children_cpu()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=dcmtk_env(), check=False
        )
    except subprocess.TimeoutExpired:
        return Run(error=f"getscu: no result within {timeout:g} s")
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    errors = [line for line in done.stderr.splitlines() if line.startswith(("E:", "F:"))]
    if done.returncode != 0 or errors:
        tail = (errors or done.stderr.strip().splitlines() or ["no output"])[-1]
        return Run(error=f"getscu exit {done.returncode}: {tail}")
    return Run(received_files(out_dir), seconds, cpu)


def getscu_startup(data: GetData, out_dir: Path) -> float | None:
    """Seconds getscu spends before its first packet: a run against a closed port."""
    command = getscu_command(free_port(), data.spec.studies["small"].study, out_dir)
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


def run_client(scu: str, port: int, data: GetData, name: str, out_dir: Path) -> Run:
    if scu == "dcmtk":
        return getscu(port, data, name, out_dir)
    return python_client(scu, port, data, name, out_dir)


# -- the workload -------------------------------------------------------------------------
class GetWorkload:
    name = "get"
    description = "C-GET: small instances/s and large MB/s retrieved over one association"

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        started = time.perf_counter()
        with scratch(counts) as root:
            print(f"  test data in {root}", flush=True)
            data = write_data(root / "data", counts)
            result = WorkloadResult(self.name, self.description, metrics(counts, data), goals=GOALS)
            print(f"  data written in {time.perf_counter() - started:.1f} s", flush=True)
            _Matrix(result, data, root).run()
        result.seconds = time.perf_counter() - started
        return result


@contextlib.contextmanager
def scratch(counts: Counts) -> Iterator[Path]:
    # Sources, dcmqrscp's copy and one received copy, with room to spare.
    needed = 4 * (counts.small * 10_000 + counts.large * 530_000 + counts.nagle * 10_000)
    with tempfile.TemporaryDirectory(prefix="bench-get-", dir=scratch_root(needed)) as root:
        yield Path(root)


@dataclass
class _Matrix:
    """Runs every SCU against every SCP and records figures as they come."""

    result: WorkloadResult
    data: GetData
    root: Path
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def out_dir(self) -> Path:
        return self.root / "received"

    def run(self) -> None:
        for scp in IMPLEMENTATIONS:
            server = self._start(scp)
            try:
                for shape in SHAPES:
                    for scu in IMPLEMENTATIONS:
                        server = self._revive(scp, server)
                        self._cell(scu, scp, shape, server)
            finally:
                if server is not None:
                    server.stop()
        self._note_nagle()
        self._fresh_out_dir()
        self._note_startup(getscu_startup(self.data, self.out_dir))

    # -- one SCP column -------------------------------------------------------------
    def _start(self, scp: str, *, load: bool = True) -> ServerProcess | None:
        if (scp, "SCP") in self.unavailable:
            return None
        try:
            server = start_scp(scp, free_port(), self.data, self.root)
        except ServerStartError as exc:
            lines = str(exc).strip().splitlines()
            self._mark_unavailable(scp, "SCP", f"SCP did not start: {lines[-1]}")
            return None
        if scp == "dcmtk" and load:
            started = time.perf_counter()
            error = load_dcmqrscp(server.port, self.data)
            if error is not None:
                server.stop()
                self._mark_unavailable(scp, "SCP", error)
                return None
            total = sum(self.data.count(name) for name in SHAPES)
            print(
                f"  dcmqrscp loaded with {total} instances in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
        return server

    def _revive(self, scp: str, server: ServerProcess | None) -> ServerProcess | None:
        """A crashed SCP is reported once and restarted so the next cell still runs.

        dcmqrscp keeps its database on disk: a restarted one needs no reload.
        """
        if server is None or server.alive:
            return server
        output = server.output().strip().splitlines()
        self.result.notes.append(
            f"{scp} SCP exited (code {server.returncode}) and was restarted: "
            f"{output[-1] if output else 'no output'}"
        )
        server.stop()
        return self._start(scp, load=False)

    def _cell(self, scu: str, scp: str, shape: str, server: ServerProcess | None) -> None:
        if server is None or (scu, "SCU") in self.unavailable:
            self._fail(scu, scp, shape, self._why(scu, scp))
            return
        what = f"{scu} SCU -> {scp} SCP {shape}"
        runs = self._measure(what, lambda: self._attempt(scu, scp, shape, server))
        if isinstance(runs, str):
            self._fail(scu, scp, shape, runs)
        else:
            self._record(scu, scp, shape, runs)

    def _measure(self, what: str, attempt: Callable[[], Run]) -> list[Run] | str:
        """Good runs (best of a few when short), or why there are none.

        A failed run is retried once and noted, never silent: a rare race must
        not blank a cell, but a second failure without any good run does.
        """
        runs: list[Run] = []
        retried = False
        while len(runs) < REPEATS:
            run = attempt()
            if run.error is not None and not run.unavailable and (runs or not retried):
                action = "ended the repeats" if runs else "was retried"
                self.result.notes.append(f"{what}: a run failed and {action}: {run.error}")
                print(f"  {what:>36}  failed run: {run.error}", flush=True)
                if runs:
                    break
                retried = True
                continue
            if run.error is not None:
                return run.error
            runs.append(run)
            if run.seconds >= REPEAT_BELOW_SECONDS:
                break
        return runs

    def _attempt(self, scu: str, scp: str, shape: str, server: ServerProcess) -> Run:
        measurable = scp != "dcmtk"  # dcmqrscp answers in a forked child
        self._fresh_out_dir()
        scp_cpu = cpu_seconds(server.pid) if measurable else 0.0
        run = run_client(scu, server.port, self.data, shape, self.out_dir)
        if measurable and server.alive:
            run.scp_cpu = cpu_seconds(server.pid) - scp_cpu
        expected = self.data.count(shape)
        if run.unavailable:
            self._mark_unavailable(scu, "SCU", f"SCU failed to load: {run.error}")
            run.error = self._why(scu, scp)
        elif run.error is None:
            files = received_files(self.out_dir)
            if run.count != expected or files != expected:
                run.error = f"{run.count} instances, {files} files, expected {expected}"
            elif run.seconds <= 0:
                run.error = "no time measured"
        return run

    def _fresh_out_dir(self) -> None:
        shutil.rmtree(self.out_dir, ignore_errors=True)
        self.out_dir.mkdir(parents=True)

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
    def _record(self, scu: str, scp: str, shape: str, runs: list[Run]) -> None:
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
            self._add(Figure(SMALL_PER_S.key, scu, scp, per_s, detail=detail))
            self._add(Figure(SMALL_MB_PER_S.key, scu, scp, mb_per_s, detail=detail))
            self._add(Figure(SCU_CPU_PER_SMALL.key, scu, scp, best.cpu / best.count * 1e6))
            if scp_cpus:
                cpu = detail["scp_cpu"] / best.count * 1e6
                self._add(Figure(SCP_CPU_PER_SMALL.key, scu, scp, cpu))
            else:
                why = f"{NOT_APPLICABLE}: dcmqrscp answers in a forked child"
                self._add(Figure(SCP_CPU_PER_SMALL.key, scu, scp, error=why))
        else:
            self._add(Figure(LARGE_MB_PER_S.key, scu, scp, mb_per_s, detail=detail))
            self._add(Figure(LARGE_PER_S.key, scu, scp, per_s, detail=detail))
        scp_shown = f"{detail['scp_cpu']:.2f} s" if scp_cpus else "n/a"
        print(
            f"  {scu:>10} SCU -> {scp:<10} SCP  {shape:<5} {per_s:8.1f} inst/s"
            f" {mb_per_s:7.1f} MB/s ({best.count} in {best.seconds:.3f} s, best of"
            f" {len(runs)}; CPU SCU {best.cpu:.2f} s, SCP {scp_shown})",
            flush=True,
        )

    def _fail(self, scu: str, scp: str, shape: str, error: str) -> None:
        keys: tuple[str, ...] = (LARGE_MB_PER_S.key, LARGE_PER_S.key)
        if shape == "small":
            keys = (
                SMALL_PER_S.key,
                SMALL_MB_PER_S.key,
                SCU_CPU_PER_SMALL.key,
                SCP_CPU_PER_SMALL.key,
            )
        for key in keys:
            self._add(Figure(key, scu, scp, error=error))
        if not error.startswith((NOT_AVAILABLE, NOT_APPLICABLE)):
            print(f"  {scu:>10} SCU -> {scp:<10} SCP  {shape:<5} FAILED: {error}", flush=True)

    def _note_nagle(self) -> None:
        """pynetdicom's SCP as shipped, dcmtk getscu retrieving the small Nagle study once."""
        count = self.data.count(NAGLE)
        text = f"pynetdicom SCP as shipped (Nagle on), dcmtk getscu, {count} small instances: "
        try:
            server = start_scp(NAGLE, free_port(), self.data, self.root)
        except ServerStartError as exc:
            lines = str(exc).strip().splitlines()
            self.result.notes.append(text + f"not measured (SCP did not start: {lines[-1]})")
            return
        try:
            self._fresh_out_dir()
            run = getscu(server.port, self.data, NAGLE, self.out_dir)
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
            f"dcmtk getscu start-up (process, dictionary; a run against a closed port): "
            f"{startup * 1e3:.0f} ms, included in every dcmtk SCU figure"
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


WORKLOAD = GetWorkload()
