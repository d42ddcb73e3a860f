"""Scale workload: qrscp on a synthetic hospital archive (issue 13's goals).

An archive of ``--scale`` instances (100,000 by default: 1,000 patients x 1
study x 4 series x 25, see ``benchmarks.scale_data``) is written once and
imported once with ``dimsefsm qrscp --import``; both are kept under a scratch
directory named after the count and the index's schema version, so later
runs reuse them.  What is measured is then a real start of qrscp on it
(default workers: one per core): launch to the first accepted association
(a C-ECHO), the RSS of its processes after the queries, and study queries
from our SCU in its own process (by Patient ID, a year of Study Dates, an
Operator's Name: a series key that is no column of the index) and from
dcmtk's findscu: one universal study query alone, then 8
findscu processes at once, each the same query.

dcmqrscp and pynetdicom's qrscp get the same archive and queries where they
can hold it, within a time budget each: dcmqrscp's index is filled by
dcmqridx, pynetdicom's database through its own library (what its C-STORE
handler does per instance, without the network).  What each holds when the
budget ends, and where it stops by itself, is measured and reported.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.interop.peers import (
    LOCALHOST,
    DcmtkServer,
    DimsefsmServer,
    ServerProcess,
    ServerStartError,
    dcmqrscp_config,
    dcmtk_env,
    free_port,
    listens_on,
)

from benchmarks.core import (
    NOT_APPLICABLE,
    REPO_ROOT,
    Figure,
    Goal,
    Metric,
    Settings,
    WorkloadResult,
)
from benchmarks.processes import children_cpu, client_record, dcmtk_tool
from benchmarks.procstat import cpu_seconds
from benchmarks.rss import memory
from benchmarks.scale_data import (
    INSTANCES_PER_PATIENT,
    OPERATORS,
    SERIES_PER_STUDY,
    archive_dir,
    operator,
    write_archive,
)
from dimsefsm.archive.db.schema import SCHEMA_VERSION

CALLED_AE = "SCALE"
FULL_SCALE = 100_000
QUICK_SCALE = 2_000
CONCURRENT = 8
ONE_RUNS = 3
OPERATOR_NUMBER = 7
FILL_BUDGET = 60.0
QUICK_FILL_BUDGET = 10.0
DCMQRIDX_BATCH = 100
IMPORT_TIMEOUT = 4 * 3600.0
QUERY_TIMEOUT = 600.0
_IMPORTED = ".imported"

START = Metric(
    "start_s",
    "seconds from launching the SCP on the archive to its first accepted association",
    "s",
    higher_is_better=False,
)
RSS = Metric(
    "rss_mib",
    "RSS of the SCP after the queries, MiB (qrscp: its processes added up)",
    "MiB",
    higher_is_better=False,
    show_ratios=False,
)
BY_PATIENT = Metric(
    "by_patient_ms",
    "C-FIND STUDY by Patient ID, median of 30, ms",
    "ms",
    higher_is_better=False,
)
RANGE_FIRST = Metric(
    "range_first_ms",
    "C-FIND STUDY over a year of Study Dates ({studies:,} studies): first response, ms",
    "ms",
    higher_is_better=False,
)
RANGE_ALL = Metric(
    "range_all_ms",
    "C-FIND STUDY over a year of Study Dates ({studies:,} studies): all responses, ms",
    "ms",
    higher_is_better=False,
)
OUTSIDE = Metric(
    "outside_s",
    "C-FIND STUDY by Operators' Name (a series key that is no column; {matches} of "
    "{studies:,} studies), s",
    "s",
    higher_is_better=False,
)
UNIVERSAL = Metric(
    "universal_s",
    "one universal C-FIND STUDY ({studies:,} studies), s",
    "s",
    higher_is_better=False,
)
CONCURRENCY = Metric(
    "concurrent_ratio",
    "8 findscu at once, each a universal C-FIND STUDY: wall time / one query's",
    "x",
    higher_is_better=False,
    show_ratios=False,
)
METRICS = (START, RSS, BY_PATIENT, RANGE_FIRST, RANGE_ALL, OUTSIDE, UNIVERSAL, CONCURRENCY)

_OURS = ("dimsefsm", "dimsefsm")
GOALS = (
    Goal(START.key, _OURS, maximum=2.0),
    Goal(RSS.key, _OURS, maximum=300.0),
    Goal(BY_PATIENT.key, _OURS, maximum=20.0),
    Goal(RANGE_FIRST.key, _OURS, maximum=100.0),
    Goal(RANGE_ALL.key, _OURS, maximum=1000.0),
    Goal(OUTSIDE.key, _OURS, maximum=2.0),
    Goal(CONCURRENCY.key, ("dcmtk", "dimsefsm"), maximum=2.0),
)


@dataclass(frozen=True)
class Archive:
    files: Path
    instances: int

    @property
    def patients(self) -> int:
        return max(1, self.instances // INSTANCES_PER_PATIENT)

    def paths(self) -> list[Path]:
        """Every file, in patient order (the order the archive was written in)."""
        return sorted(path for path in self.files.rglob("*.dcm"))


def operator_matches(patients: int) -> int:
    """Studies among the first ``patients`` with a series of the queried operator."""
    wanted = operator(0, OPERATOR_NUMBER)
    return sum(
        any(operator(p, s) == wanted for s in range(SERIES_PER_STUDY)) for p in range(patients)
    )


# -- the SCPs ------------------------------------------------------------------------------------
class PortReadyServer(ServerProcess):
    """A server that prints nothing when ready (pynetdicom's qrscp): ready once it listens."""

    def _is_ready(self) -> bool:
        return listens_on(self.pid, self.port)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (qrscp's worker processes), from /proc."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            text = Path(f"/proc/{current}/task/{current}/children").read_text()
        except OSError:
            continue
        queue += [int(child) for child in text.split()]
    return found


def tree_rss(pid: int) -> float:
    total = 0.0
    for member in process_tree(pid):
        try:
            total += memory(member).rss_mib
        except (OSError, KeyError):
            continue
    return total


def tree_cpu(pid: int) -> float:
    total = 0.0
    for member in process_tree(pid):
        try:
            total += cpu_seconds(member)
        except OSError:
            continue
    return total


def echo(port: int) -> None:
    """One association with a C-ECHO (our SCU, in this process): raises unless accepted."""
    from dimsefsm import AE
    from dimsefsm.sop_class import VERIFICATION

    ae = AE("BENCH")
    ae.add_requested_context(VERIFICATION)
    with ae.associate(LOCALHOST, port, ae_title=CALLED_AE) as assoc:
        if not assoc.is_established:
            raise ServerStartError("the association was not accepted")
        assoc.send_c_echo()


def started(server: ServerProcess) -> float:
    """Launch ``server``, then associate: seconds from launch to the first accepted one."""
    began = time.perf_counter()
    server.start()
    echo(server.port)
    return time.perf_counter() - began


def qrscp_args(store: Path, database: str, port: int, *extra: str) -> list[str]:
    return [
        "qrscp",
        str(port),
        "-aet",
        CALLED_AE,
        "-od",
        str(store),
        "--database",
        database,
        *extra,
    ]


# -- building the archives -----------------------------------------------------------------------
def our_index(archive: Archive, notes: list[str]) -> tuple[Path, str]:
    """qrscp's storage directory and index database on the archive, imported once and kept."""
    where = archive_dir(archive.instances) / f"dimsefsm-schema{SCHEMA_VERSION}"
    store, url = where / "store", f"sqlite:///{where / 'index.sqlite'}"
    marker = where / _IMPORTED
    if marker.is_file():
        notes.append(f"qrscp --import of the files: {marker.read_text().strip()} (earlier run)")
        return store, url
    shutil.rmtree(where, ignore_errors=True)
    store.mkdir(parents=True)
    print(f"  importing {archive.instances:,} files into qrscp's index (once)", flush=True)
    began = time.perf_counter()
    server = DimsefsmServer(
        qrscp_args(store, url, free_port(), "--import", str(archive.files)),
        ready_timeout=IMPORT_TIMEOUT,
        cwd=REPO_ROOT,
    )
    server.start()
    seconds = time.perf_counter() - began
    server.stop()
    rate = archive.instances / seconds
    marker.write_text(f"{archive.instances:,} instances in {seconds:.0f} s ({rate:.0f}/s)\n")
    notes.append(f"qrscp --import of the files: {marker.read_text().strip()} (this run)")
    return store, url


@dataclass
class Held:
    instances: int
    studies: int
    problem: str | None = None


def dcmqridx_contents(area: Path) -> Held:
    """Instances and studies in a dcmqrscp index file, from ``dcmqridx -p``."""
    done = subprocess.run(
        ["dcmqridx", "-p", str(area)], capture_output=True, text=True, env=dcmtk_env(), check=False
    )
    counts = [
        int(line.split(":", 1)[1])
        for line in done.stdout.splitlines()
        if line.strip().startswith("NumOfImages:")
    ]
    return Held(sum(counts), sum(1 for count in counts if count > 0))


def dcmqridx(area: Path, paths: list[Path]) -> str | None:
    """Register ``paths``; None, or what went wrong."""
    done = subprocess.run(
        ["dcmqridx", str(area), *map(str, paths)],
        capture_output=True,
        text=True,
        env=dcmtk_env(),
        check=False,
    )
    if done.returncode == 0:
        return None
    lines = (done.stderr + done.stdout).strip().splitlines() or ["no output"]
    return f"dcmqridx exit {done.returncode}: {lines[-1]}"


def dcmqrscp_study_limit(archive: Archive, area: Path) -> str | None:
    """One instance of every study into an empty index: how many studies does it keep?"""
    firsts = [path for path in archive.paths() if path.name.endswith(".1.100.dcm")]
    problem = dcmqridx(area, firsts)
    held = dcmqridx_contents(area)
    if held.studies >= len(firsts):
        return None
    return (
        f"of {len(firsts):,} studies registered one instance each, dcmqrscp's index keeps "
        f"{held.studies:,}" + (f" ({problem})" if problem else "")
    )


def fill_dcmqrscp(archive: Archive, area: Path, budget: float) -> tuple[Held, float]:
    """dcmqridx over the archive's files in order until done, failed or out of budget."""
    paths = archive.paths()
    began = time.perf_counter()
    done, problem = 0, None
    while done < len(paths):
        if time.perf_counter() - began > budget:
            problem = f"time budget of {budget:g} s used"
            break
        batch = paths[done : done + DCMQRIDX_BATCH]
        problem = dcmqridx(area, batch)
        if problem is not None:
            break
        done += len(batch)
    seconds = time.perf_counter() - began
    held = dcmqridx_contents(area)
    held.problem = problem
    return held, seconds


def fill_pynetdicom(archive: Archive, database: Path, budget: float) -> tuple[Held, float]:
    listing = database.with_suffix(".files")
    listing.write_text("\n".join(str(path) for path in archive.paths()) + "\n")
    record = client_record(
        "scale_pynetdicom_fill", [str(database), str(listing), str(budget)], budget + 300
    )
    if not record.get("ok"):
        return Held(0, 0, str(record.get("error"))), 0.0
    instances = int(record["held"])
    problem = None if instances >= archive.instances else f"time budget of {budget:g} s used"
    studies = (instances + INSTANCES_PER_PATIENT - 1) // INSTANCES_PER_PATIENT
    return Held(instances, studies, problem), float(record["seconds"])


# -- measuring ----------------------------------------------------------------------------------
def findscu_universal(port: int) -> list[str]:
    keys = ["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientID", "PatientName", "StudyDate"]
    args = ["findscu", "-S", "-aec", CALLED_AE]
    for key in keys:
        args += ["-k", key]
    return [*args, LOCALHOST, str(port)]


def concurrency(port: int, pid: int | None) -> dict[str, float]:
    """One findscu's universal query (median of a few), then 8 at once: seconds and CPU."""
    ones = []
    for _ in range(ONE_RUNS):
        run, _ = dcmtk_tool(findscu_universal(port), QUERY_TIMEOUT)
        if run.error is not None:
            raise RuntimeError(run.error)
        ones.append(run.seconds)
    cpu_before = tree_cpu(pid) if pid is not None else 0.0
    clients_before = children_cpu()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-scale-findscu-") as logs:
        outputs = [Path(logs) / f"findscu{number}.log" for number in range(CONCURRENT)]
        clients = []
        for output in outputs:
            with output.open("wb") as sink:
                clients.append(
                    subprocess.Popen(
                        findscu_universal(port),
                        stdout=sink,
                        stderr=subprocess.STDOUT,
                        env=dcmtk_env(),
                    )
                )
        codes = [client.wait(timeout=QUERY_TIMEOUT) for client in clients]
        wall = time.perf_counter() - began
        if any(codes):
            failed = outputs[next(n for n, code in enumerate(codes) if code)]
            lines = failed.read_text(errors="replace").strip().splitlines() or ["no output"]
            errors = [line for line in lines if line.startswith(("E:", "F:"))] or lines
            raise PeerGaveUp(f"findscu exit codes {codes}: {errors[-1]}")
    result = {
        "one_s": statistics.median(ones),
        "eight_s": wall,
        "clients_cpu_s": children_cpu() - clients_before,
    }
    if pid is not None:
        result["server_cpu_s"] = tree_cpu(pid) - cpu_before
    return result


class PeerGaveUp(RuntimeError):
    """Some of the concurrent queries failed: the SCP does not hold this load."""


def per_core(timing: dict[str, float]) -> str:
    """What the CPU the 8 queries used allows on this machine's cores, and on more."""
    cores = os.cpu_count() or 1
    server, clients, one = timing["server_cpu_s"], timing["clients_cpu_s"], timing["one_s"]
    bound = (server + clients) / cores
    return (
        f"one universal query {one:.2f} s alone; 8 at once {timing['eight_s']:.2f} s using "
        f"{server:.2f} s of qrscp CPU ({server / CONCURRENT:.3f} s a query) and {clients:.2f} s "
        f"of findscu CPU: on {cores} core(s) that CPU alone needs >= {bound:.2f} s = "
        f"{bound / one:.1f}x one (qrscp's share alone {server / cores / one:.1f}x); < 2x one "
        f"needs >= {(server + clients) / (2 * one):.1f} idle cores"
    )


class ScaleWorkload:
    name = "scale"
    description = "qrscp on a synthetic archive (100,000 instances): start, RSS, queries, 8 at once"

    def run(self, settings: Settings) -> WorkloadResult:
        began = time.perf_counter()
        load = os.getloadavg()[0]
        count = settings.scale or (QUICK_SCALE if settings.quick else FULL_SCALE)
        budget = QUICK_FILL_BUDGET if settings.quick else FILL_BUDGET
        files, wrote = write_archive(count, progress=lambda line: print(line, flush=True))
        archive = Archive(files, count)
        studies = archive.patients
        values = {"studies": studies, "matches": operator_matches(studies)}
        result = WorkloadResult(
            self.name,
            f"qrscp on a synthetic archive of {count:,} instances ({studies:,} studies)",
            tuple(metric.formatted(**values) for metric in METRICS),
            goals=GOALS,
        )
        notes = result.notes
        notes.append(
            f"archive: {studies:,} patients x 1 study x {SERIES_PER_STUDY} series x "
            f"{INSTANCES_PER_PATIENT // SERIES_PER_STUDY} instances, 128 pixel bytes each, "
            f"{OPERATORS} operators; files "
            + (f"written in {wrote:.1f} s" if wrote is not None else "kept from an earlier run")
            + f" ({files})"
        )
        store, url = our_index(archive, notes)
        ours = DimsefsmServer(qrscp_args(store, url, free_port()), cwd=REPO_ROOT)
        self._measure(result, "dimsefsm", ours, archive.patients, ours_cpu=True)
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch:
            root = Path(scratch)
            self._dcmqrscp(result, archive, root / "dcmqrscp", budget)
            self._pynetdicom(result, archive, root / "pynetdicom", budget)
        notes.append(
            f"{os.cpu_count()} core(s); qrscp with its default workers (one per core); "
            f"load average {load:.1f} at the start (other work on the machine)"
        )
        result.seconds = time.perf_counter() - began
        return result

    def _measure(
        self,
        result: WorkloadResult,
        scp: str,
        server: ServerProcess,
        patients: int,
        *,
        ours_cpu: bool = False,
    ) -> None:
        try:
            start_s = started(server)
        except (ServerStartError, OSError, RuntimeError) as exc:
            server.stop()
            for metric in METRICS:
                result.figures.append(Figure(metric.key, "dimsefsm", scp, error=str(exc)))
            return
        try:
            result.figures.append(Figure(START.key, "dimsefsm", scp, start_s))
            print(f"  {scp}: first association {start_s:.2f} s after launch", flush=True)
            self._queries(result, scp, server, patients)
            try:
                timing = concurrency(server.port, server.pid if ours_cpu else None)
                ratio = timing["eight_s"] / timing["one_s"]
                result.figures.append(Figure(CONCURRENCY.key, "dcmtk", scp, ratio, detail=timing))
                result.figures.append(Figure(UNIVERSAL.key, "dcmtk", scp, timing["one_s"]))
                print(f"  {scp}: 8 findscu at once {ratio:.1f}x one ({timing})", flush=True)
                if "server_cpu_s" in timing:
                    result.notes.append(f"{scp}: {per_core(timing)}")
            except PeerGaveUp as exc:
                why = f"{NOT_APPLICABLE}: {scp}: {exc}"
                result.figures.append(Figure(CONCURRENCY.key, "dcmtk", scp, error=why))
                result.notes.append(f"{scp} under 8 concurrent queries: {exc}")
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                result.figures.append(Figure(CONCURRENCY.key, "dcmtk", scp, error=str(exc)))
            rss = tree_rss(server.pid) if scp == "dimsefsm" else memory(server.pid).rss_mib
            result.figures.append(Figure(RSS.key, "dimsefsm", scp, rss))
        finally:
            server.stop()

    def _queries(
        self, result: WorkloadResult, scp: str, server: ServerProcess, patients: int
    ) -> None:
        wanted = operator(0, OPERATOR_NUMBER)
        args = [LOCALHOST, str(server.port), CALLED_AE, str(patients), wanted]
        record = client_record("scale_client", args, QUERY_TIMEOUT)
        if not record.get("ok"):
            for metric in (BY_PATIENT, RANGE_FIRST, RANGE_ALL, OUTSIDE):
                result.figures.append(Figure(metric.key, "dimsefsm", scp, error=record["error"]))
            return
        detail = {key: float(value) for key, value in record.items() if key != "ok"}
        print(f"  {scp}: {detail}", flush=True)
        for metric, key in (
            (BY_PATIENT, "by_patient_ms"),
            (RANGE_FIRST, "range_first_ms"),
            (RANGE_ALL, "range_all_ms"),
        ):
            result.figures.append(Figure(metric.key, "dimsefsm", scp, record[key], detail=detail))
        if record["universal_matches"] != patients:
            result.notes.append(
                f"{scp} answers a universal STUDY query with {record['universal_matches']:,} "
                f"responses for {patients:,} studies"
            )
        expected = operator_matches(patients)
        if record["outside_matches"] == expected:
            result.figures.append(Figure(OUTSIDE.key, "dimsefsm", scp, record["outside_s"]))
        else:
            why = (
                f"{NOT_APPLICABLE}: {scp} answered {record['outside_matches']} studies in "
                f"{record['outside_s']:.2f} s, {expected} match: the key is not matched"
            )
            result.figures.append(Figure(OUTSIDE.key, "dimsefsm", scp, error=why))
            result.notes.append(why.removeprefix(f"{NOT_APPLICABLE}: "))

    def _dcmqrscp(
        self, result: WorkloadResult, archive: Archive, root: Path, budget: float
    ) -> None:
        area = root / CALLED_AE
        probe = root / "probe"
        for folder in (area, probe):
            folder.mkdir(parents=True)
        limit = dcmqrscp_study_limit(archive, probe)
        if limit is not None:
            result.notes.append(f"dcmqrscp: {limit}")
        held, seconds = fill_dcmqrscp(archive, area, budget)
        result.notes.append(
            f"dcmqrscp: dcmqridx registered {held.instances:,} of {archive.instances:,} "
            f"instances ({held.studies:,} studies) in {seconds:.0f} s"
            + (f"; stopped: {held.problem}" if held.problem else "")
            + "; its figures are on what it holds"
        )
        print(f"  {result.notes[-1]}", flush=True)
        if held.studies == 0:
            return
        port = free_port()
        config = dcmqrscp_config(root, port, [CALLED_AE])
        server = DcmtkServer(["dcmqrscp", "-c", str(config)], port)
        self._measure(result, "dcmtk", server, held.studies)

    def _pynetdicom(
        self, result: WorkloadResult, archive: Archive, root: Path, budget: float
    ) -> None:
        root.mkdir(parents=True)
        database = root / "pynetdicom.sqlite"
        held, seconds = fill_pynetdicom(archive, database, budget)
        result.notes.append(
            f"pynetdicom qrscp: its library added {held.instances:,} of {archive.instances:,} "
            f"instances to its database in {seconds:.0f} s"
            + (f"; stopped: {held.problem}" if held.problem else "")
            + "; its figures are on what it holds"
        )
        print(f"  {result.notes[-1]}", flush=True)
        if held.instances == 0:
            return
        port = free_port()
        args = [sys.executable, "-m", "pynetdicom", "qrscp"]
        args += ["--port", str(port), "-aet", CALLED_AE, "--database-location", str(database)]
        args += ["--instance-location", str(root / "instances")]
        server = PortReadyServer(args, port, cwd=root)
        self._measure(result, "pynetdicom", server, held.studies)


WORKLOAD = ScaleWorkload()
