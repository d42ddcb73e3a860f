"""C-FIND workload: matches/s for one IMAGE-level query returning a whole series.

Every SCU (dimsefsm and pynetdicom in ``benchmarks.find_client``, dcmtk findscu)
queries every SCP: dimsefsm and pynetdicom running the same handler over
prepared identifiers (``benchmarks.find_server``), and dcmtk dcmqrscp loaded
with the same instances through storescu.  The prepared identifiers carry the
attributes dcmqrscp returns for the query, so all three SCPs send the same
responses; only dcmqrscp searches a database for them.

findscu prints every response (its default) into a file; with two or more
cores that overlaps the SCP's work, and ``-q`` made no measurable difference.

Runs shorter than a second are repeated and the best kept; one failed run is
retried and reported in the notes (pynetdicom's reactor thread sometimes takes a
fast response off its queue as an unexpected request, and the SCU then waits for
its DIMSE timeout).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.uid import generate_uid
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
from benchmarks.find_server import QuerySpec
from benchmarks.procstat import cpu_seconds
from benchmarks.storage_data import scratch_root

CALLED_AE = "COMMON"
CALLING_AE = "BENCH"
# Instances only have to exist in dcmqrscp's database: the smallest valid image will do.
INSTANCE_PIXEL_BYTES = 128
# A run this short is dominated by noise and process start-up: take the best of a few.
REPEAT_BELOW_SECONDS = 1.0
REPEATS = 5
# Whole-run budget per match before a client is given up (pynetdicom manages ~1.6 ms).
SECONDS_PER_MATCH_BUDGET = 0.05


@dataclass(frozen=True)
class Counts:
    matches: int


FULL = Counts(matches=1000)
QUICK = Counts(matches=100)

MATCHES_PER_S = Metric(
    "matches_per_s",
    "matches/s (one Study Root C-FIND at IMAGE level returning {n} matches)",
    "match/s",
    footnote="dcmtk SCP: dcmqrscp (forking) searching its database; dimsefsm and "
    "pynetdicom SCPs: the same handler yielding prepared identifiers. dcmtk SCU: one "
    "findscu process printing every response, the whole process timed (start-up in the "
    "notes). Python SCUs: association, query and release timed, every identifier "
    "decoded (interpreter start not). Runs under 1 s: best of 5.",
)
SCU_CPU_PER_MATCH = Metric(
    "scu_cpu_us_per_match",
    "SCU CPU per match (us, lower is better; same runs)",
    "us",
    higher_is_better=False,
    show_ratios=False,
    footnote="dcmtk SCU: the whole findscu process, start-up and printing included.",
)
SCP_CPU_PER_MATCH = Metric(
    "scp_cpu_us_per_match",
    "SCP CPU per match (us, lower is better; same runs)",
    "us",
    higher_is_better=False,
    show_ratios=False,
    footnote="Python SCUs' figures include their warm-up association (one match). "
    "dcmtk column: n/a, dcmqrscp answers in a forked child whose CPU /proc no longer "
    "shows once it has exited.",
)

GOALS: tuple[Goal, ...] = (
    Goal("matches_per_s", ("dcmtk", "dimsefsm"), minimum=0.5, versus=("dcmtk", "dcmtk")),
    Goal("matches_per_s", ("dcmtk", "dimsefsm"), minimum=5, versus=("dcmtk", "pynetdicom")),
    Goal("matches_per_s", ("dimsefsm", "dcmtk"), minimum=3, versus=("pynetdicom", "dcmtk")),
)


@dataclass
class Run:
    """One SCU run: matches in some seconds, or why not."""

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
class QueryData:
    """The instances dcmqrscp is loaded with and the spec every other party reads."""

    directory: Path
    spec: QuerySpec
    spec_path: Path

    @property
    def matches(self) -> int:
        return len(self.spec.sop_instance_uids)


def write_query_data(root: Path, count: int) -> QueryData:
    """``count`` small CT instances of one study and series, and their query spec."""
    # Imported here: the test-data writer uses dimsefsm's encoder, and an unfinished
    # dimsefsm must fail this workload, not ``python -m benchmarks --list``.
    from tests.data.make import make_instance, write_instance

    directory = root / "instances"
    directory.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    uids = []
    for number in range(1, count + 1):
        ds = make_instance(
            pixel_bytes=INSTANCE_PIXEL_BYTES,
            StudyInstanceUID=study,
            SeriesInstanceUID=series,
            InstanceNumber=number,
        )
        write_instance(directory / f"ct{number:05d}.dcm", ds)
        uids.append(str(ds.SOPInstanceUID))
    spec = QuerySpec(study, series, CALLED_AE, tuple(uids))
    spec_path = root / "query.json"
    spec.dump(spec_path)
    return QueryData(directory, spec, spec_path)


# -- SCPs ----------------------------------------------------------------------------------
def start_scp(impl: str, port: int, data: QueryData, root: Path) -> ServerProcess:
    server: ServerProcess
    if impl == "dcmtk":
        config = dcmqrscp_config(root / "dcmqrscp", port, [CALLED_AE])
        server = DcmtkServer(["dcmqrscp", "-c", str(config)], port)
    else:
        command = [sys.executable, "-m", "benchmarks.find_server", impl, str(port)]
        server = LineReadyServer([*command, str(data.spec_path)], port, cwd=REPO_ROOT)
    return server.start()


def load_dcmqrscp(port: int, data: QueryData) -> str | None:
    """Store every instance into dcmqrscp with storescu; an error text, or None."""
    command = ["storescu", "-aet", CALLING_AE, "-aec", CALLED_AE, "+sd", LOCALHOST, str(port)]
    try:
        done = subprocess.run(
            [*command, str(data.directory)],
            capture_output=True,
            text=True,
            timeout=max(60.0, data.matches * SECONDS_PER_MATCH_BUDGET),
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
def python_client(scu: str, port: int, data: QueryData, timeout: float) -> Run:
    command = [sys.executable, "-m", "benchmarks.find_client", scu, LOCALHOST, str(port)]
    try:
        done = subprocess.run(
            [*command, CALLED_AE, str(data.spec_path)],
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


def findscu_command(port: int, spec: QuerySpec) -> list[str]:
    return [
        "findscu",
        "-S",
        "-k",
        "QueryRetrieveLevel=IMAGE",
        "-k",
        f"StudyInstanceUID={spec.study}",
        "-k",
        f"SeriesInstanceUID={spec.series}",
        "-k",
        "SOPInstanceUID",
        "-aet",
        CALLING_AE,
        "-aec",
        CALLED_AE,
        LOCALHOST,
        str(port),
    ]


def findscu(port: int, data: QueryData, timeout: float) -> Run:
    """dcmtk's findscu, the whole process timed; matches counted from what it printed.

    Without ``-v`` findscu prints neither the final status nor anything for a
    failed one (it exits 0 either way), so the pending responses it printed are
    the check; the Python SCUs check the final status of the same SCPs.

    Its output goes to a file, not a pipe: a pipe would make findscu wait for
    this process to read 600 KB of response dumps.
    """
    command = findscu_command(port, data.spec)
    with tempfile.TemporaryFile() as output:
        started, cpu = time.perf_counter(), children_cpu()
        try:
            done = subprocess.run(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                env=dcmtk_env(),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Run(error=f"findscu: no result within {timeout:g} s")
        seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
        output.seek(0)
        printed = output.read().decode("utf-8", "replace")
    lines = printed.splitlines()
    errors = [line for line in lines if line.startswith(("E:", "F:"))]
    if done.returncode != 0 or errors:
        tail = (errors or lines or ["no output"])[-1]
        return Run(error=f"findscu exit {done.returncode}: {tail}")
    return Run(printed.count("(Pending)"), seconds, cpu)


def findscu_startup(data: QueryData) -> float | None:
    """Seconds findscu spends before its first packet: a run against a closed port.

    It covers process start, loading the data dictionary and building the
    query; the best of several runs, like the figures it is compared with.
    """
    command = findscu_command(free_port(), data.spec)
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


def run_client(scu: str, port: int, data: QueryData) -> Run:
    timeout = max(60.0, data.matches * SECONDS_PER_MATCH_BUDGET)
    if scu == "dcmtk":
        return findscu(port, data, timeout)
    return python_client(scu, port, data, timeout)


# -- the workload -------------------------------------------------------------------------
class FindWorkload:
    name = "find"
    description = "C-FIND: matches/s for one IMAGE-level query returning a whole series"

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        started = time.perf_counter()
        metrics = tuple(
            Metric(
                m.key,
                m.title.format(n=f"{counts.matches:,}"),
                m.unit,
                m.higher_is_better,
                m.show_ratios,
                m.footnote,
            )
            for m in (MATCHES_PER_S, SCU_CPU_PER_MATCH, SCP_CPU_PER_MATCH)
        )
        result = WorkloadResult(self.name, self.description, metrics, goals=GOALS)
        with scratch() as root:
            data = write_query_data(root, counts.matches)
            print(
                f"  {data.matches} instances written in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            _Matrix(result, data, root).run()
        result.seconds = time.perf_counter() - started
        return result


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    # dcmqrscp's database on tmpfs where possible: the disk must not set its pace.
    with tempfile.TemporaryDirectory(prefix="bench-find-", dir=scratch_root(64 << 20)) as root:
        yield Path(root)


@dataclass
class _Matrix:
    """Runs every SCU against every SCP and records figures as they come."""

    result: WorkloadResult
    data: QueryData
    root: Path
    unavailable: dict[tuple[str, str], str] = field(default_factory=dict)

    def run(self) -> None:
        for scp in IMPLEMENTATIONS:
            server = self._start(scp)
            try:
                for scu in IMPLEMENTATIONS:
                    server = self._revive(scp, server)
                    self._cell(scu, scp, server)
            finally:
                if server is not None:
                    server.stop()
        self._note_startup(findscu_startup(self.data))

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
            print(
                f"  dcmqrscp loaded with {self.data.matches} instances in "
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

    def _cell(self, scu: str, scp: str, server: ServerProcess | None) -> None:
        if server is None or (scu, "SCU") in self.unavailable:
            self._fail(scu, scp, self._why(scu, scp))
            return
        runs = self._measure(f"{scu} SCU -> {scp} SCP", lambda: self._attempt(scu, scp, server))
        if isinstance(runs, str):
            self._fail(scu, scp, runs)
        else:
            self._record(scu, scp, runs)

    def _measure(self, what: str, attempt: Callable[[], Run]) -> list[Run] | str:
        """Good runs (best of a few when short), or why there are none.

        A failed run is retried once and noted, never silent: a rare race
        (pynetdicom has one) must not blank a cell, but a second failure without
        any good run does.
        """
        runs: list[Run] = []
        retried = False
        while len(runs) < REPEATS:
            run = attempt()
            if run.error is not None and not run.unavailable and (runs or not retried):
                action = "ended the repeats" if runs else "was retried"
                self.result.notes.append(f"{what}: a run failed and {action}: {run.error}")
                print(f"  {what:>30}  failed run: {run.error}", flush=True)
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

    def _attempt(self, scu: str, scp: str, server: ServerProcess) -> Run:
        measurable = scp != "dcmtk"  # dcmqrscp answers in a forked child
        scp_cpu = cpu_seconds(server.pid) if measurable else 0.0
        run = run_client(scu, server.port, self.data)
        if measurable and server.alive:
            run.scp_cpu = cpu_seconds(server.pid) - scp_cpu
        if run.unavailable:
            self._mark_unavailable(scu, "SCU", f"SCU failed to load: {run.error}")
            run.error = self._why(scu, scp)
        elif run.error is None:
            if run.count != self.data.matches:
                run.error = f"{run.count} matches, expected {self.data.matches}"
            elif run.seconds <= 0:
                run.error = "no time measured"
        return run

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
    def _record(self, scu: str, scp: str, runs: list[Run]) -> None:
        """The fastest run gives the rate; SCP CPU is averaged over all runs (10 ms ticks)."""
        best = min(runs, key=lambda run: run.seconds)
        rate = best.count / best.seconds
        detail: dict[str, float] = {
            "count": best.count,
            "seconds": best.seconds,
            "runs": len(runs),
            "scu_cpu": best.cpu,
        }
        self._add(Figure(MATCHES_PER_S.key, scu, scp, rate, detail=detail))
        self._add(Figure(SCU_CPU_PER_MATCH.key, scu, scp, best.cpu / best.count * 1e6))
        scp_cpus = [run.scp_cpu for run in runs if run.scp_cpu is not None]
        scp_shown = "n/a"
        if scp_cpus:
            scp_cpu = sum(scp_cpus) / len(scp_cpus)
            detail["scp_cpu"] = scp_cpu
            self._add(Figure(SCP_CPU_PER_MATCH.key, scu, scp, scp_cpu / best.count * 1e6))
            scp_shown = f"{scp_cpu:.2f} s"
        else:
            why = f"{NOT_APPLICABLE}: dcmqrscp answers in a forked child"
            self._add(Figure(SCP_CPU_PER_MATCH.key, scu, scp, error=why))
        print(
            f"  {scu + ' SCU -> ' + scp + ' SCP':>30}  {rate:9,.0f} match/s"
            f" ({best.count} in {best.seconds:.3f} s, best of {len(runs)};"
            f" CPU SCU {best.cpu:.2f} s, SCP {scp_shown})",
            flush=True,
        )

    def _fail(self, scu: str, scp: str, error: str) -> None:
        for key in (MATCHES_PER_S.key, SCU_CPU_PER_MATCH.key, SCP_CPU_PER_MATCH.key):
            self._add(Figure(key, scu, scp, error=error))
        if not error.startswith((NOT_AVAILABLE, NOT_APPLICABLE)):
            print(f"  {scu + ' SCU -> ' + scp + ' SCP':>30}  FAILED: {error}", flush=True)

    def _note_startup(self, startup: float | None) -> None:
        """dcmtk SCU figures include process start-up; show what they are without it."""
        if startup is None:
            return
        text = (
            f"dcmtk findscu start-up (process, dictionary, query; a run against a closed "
            f"port): {startup * 1e3:.0f} ms, included in every dcmtk SCU figure"
        )
        dcmtk = self._figure(MATCHES_PER_S.key, "dcmtk", "dcmtk")
        if dcmtk is not None and dcmtk.value is not None:
            seconds = dcmtk.detail["seconds"]
            if seconds > startup:
                corrected = dcmtk.value * seconds / (seconds - startup)
                dcmtk.detail["value_without_startup"] = corrected
                text += f"; without it dcmtk SCU -> dcmtk SCP: {corrected:,.0f} matches/s"
                ours = self.result.value(MATCHES_PER_S.key, "dimsefsm", "dcmtk")
                if ours is not None:
                    text += f" (dimsefsm SCU {ours / corrected:.2f}x that)"
        self.result.notes.append(text)

    def _figure(self, key: str, scu: str, scp: str) -> Figure | None:
        for figure in self.result.figures:
            if (figure.metric, figure.scu, figure.scp) == (key, scu, scp):
                return figure
        return None

    def _add(self, figure: Figure) -> None:
        self.result.figures.append(figure)


WORKLOAD = FindWorkload()
