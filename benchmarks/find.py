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

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom.uid import generate_uid
from tests.interop.peers import LOCALHOST, LineReadyServer, ServerProcess, free_port

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
from benchmarks.find_server import QuerySpec
from benchmarks.matrix import RepeatingMatrix
from benchmarks.processes import (
    Run,
    dcmtk_tool,
    fastest,
    load_dcmqrscp,
    module_command,
    python_client,
    start_dcmqrscp,
)
from benchmarks.procstat import cpu_seconds
from benchmarks.storage_data import scratch

CALLED_AE = "COMMON"
# Instances only have to exist in dcmqrscp's database: the smallest valid image will do.
INSTANCE_PIXEL_BYTES = 128
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


# -- SCUs ----------------------------------------------------------------------------------
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
    """
    run, printed = dcmtk_tool(findscu_command(port, data.spec), timeout)
    if run.error is None:
        run.count = printed.count("(Pending)")
    return run


def run_client(scu: str, port: int, data: QueryData) -> Run:
    timeout = max(60.0, data.matches * SECONDS_PER_MATCH_BUDGET)
    if scu == "dcmtk":
        return findscu(port, data, timeout)
    args = [scu, LOCALHOST, str(port), CALLED_AE, str(data.spec_path)]
    return python_client("find_client", args, timeout)


# -- the workload -------------------------------------------------------------------------
class FindWorkload:
    name = "find"
    description = "C-FIND: matches/s for one IMAGE-level query returning a whole series"

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        started = time.perf_counter()
        metrics = tuple(
            m.formatted(n=f"{counts.matches:,}")
            for m in (MATCHES_PER_S, SCU_CPU_PER_MATCH, SCP_CPU_PER_MATCH)
        )
        result = WorkloadResult(self.name, self.description, metrics, goals=GOALS)
        # dcmqrscp's database on tmpfs where possible: the disk must not set its pace.
        with scratch("find", 64 << 20) as root:
            data = write_query_data(root, counts.matches)
            print(
                f"  {data.matches} instances written in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            FindMatrix(result, data, root).run()
        result.seconds = time.perf_counter() - started
        return result


class FindMatrix(RepeatingMatrix):
    """Every SCU sends the same query to every SCP."""

    shape_width = 0
    _KEYS = (MATCHES_PER_S.key, SCU_CPU_PER_MATCH.key, SCP_CPU_PER_MATCH.key)

    def __init__(self, result: WorkloadResult, data: QueryData, root: Path) -> None:
        super().__init__(result)
        self.data = data
        self.root = root

    def run(self, scps: Iterable[str] = IMPLEMENTATIONS) -> None:
        super().run(scps)
        self.note_startup(
            findscu_command(free_port(), self.data.spec),
            "process, dictionary, query",
            {MATCHES_PER_S.key: "{:,.0f} matches/s"},
        )

    def cells(self) -> Iterable[tuple[str, str]]:
        return [(scu, "") for scu in IMPLEMENTATIONS]

    def keys(self, shape: str) -> tuple[str, ...]:
        return self._KEYS

    def start_scp(self, scp: str, *, restart: bool) -> ServerProcess:
        if scp != "dcmtk":
            port = free_port()
            command = module_command("find_server", [scp, str(port), str(self.data.spec_path)])
            return LineReadyServer(command, port, cwd=REPO_ROOT).start()
        server = start_dcmqrscp(self.root / "dcmqrscp", CALLED_AE)
        if not restart:  # dcmqrscp keeps its database on disk: a restarted one needs no reload
            timeout = max(60.0, self.data.matches * SECONDS_PER_MATCH_BUDGET)
            load_dcmqrscp(server, CALLED_AE, [self.data.directory], timeout)
        return server

    def attempt(self, scu: str, scp: str, shape: str, server: ServerProcess) -> Run:
        measurable = scp != "dcmtk"  # dcmqrscp answers in a forked child
        scp_cpu = cpu_seconds(server.pid) if measurable else 0.0
        run = run_client(scu, server.port, self.data)
        if measurable and server.alive:
            run.scp_cpu = cpu_seconds(server.pid) - scp_cpu
        if not self.unloaded(scu, scp, run):
            run.check_count(self.data.matches, "matches")
        return run

    def record(self, scu: str, scp: str, shape: str, runs: list[Run]) -> None:
        """The fastest run gives the rate; SCP CPU is averaged over all runs (10 ms ticks)."""
        best, detail = fastest(runs)
        rate = best.count / best.seconds
        self.add(Figure(MATCHES_PER_S.key, scu, scp, rate, detail=detail))
        self.add(Figure(SCU_CPU_PER_MATCH.key, scu, scp, best.cpu / best.count * 1e6))
        scp_cpus = [run.scp_cpu for run in runs if run.scp_cpu is not None]
        scp_shown = "n/a"
        if scp_cpus:
            scp_cpu = sum(scp_cpus) / len(scp_cpus)
            detail["scp_cpu"] = scp_cpu
            self.add(Figure(SCP_CPU_PER_MATCH.key, scu, scp, scp_cpu / best.count * 1e6))
            scp_shown = f"{scp_cpu:.2f} s"
        else:
            why = f"{NOT_APPLICABLE}: dcmqrscp answers in a forked child"
            self.add(Figure(SCP_CPU_PER_MATCH.key, scu, scp, error=why))
        self.progress(
            scu,
            scp,
            shape,
            f"{rate:9,.0f} match/s ({best.count} in {best.seconds:.3f} s, best of {len(runs)};"
            f" CPU SCU {best.cpu:.2f} s, SCP {scp_shown})",
        )


WORKLOAD = FindWorkload()
