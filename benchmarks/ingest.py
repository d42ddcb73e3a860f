"""Ingest workload: 16 dcmtk storescu senders at once into one archive, nothing lost.

Issue 13 (item 4): one qrscp process uses one core, so its store throughput
fell from ~1,000/s with one sender to ~500/s with 16-64 concurrent ones;
dcmqrscp forks a process per association but loses writes to its index
("Index database error": 496-552 of 800 instances stored).  Here 16
storescu processes send ``per_sender`` small instances each, all started
together; the figure is the aggregate rate of acknowledged instances (launch
of the first sender to exit of the last), and every acknowledged instance
must then be found by a C-FIND on the archive (``lost`` counts those that
are not).  Rows: dcmtk storescu; columns: dimsefsm qrscp (one worker process,
then ``--workers`` one per core, on its SQLite index and on PostgreSQL) and
dcmqrscp (the dcmtk column).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset, dcmread
from tests.data.make import make_study, write_study
from tests.interop.peers import LOCALHOST, DimsefsmServer, ServerProcess, dcmtk_env, free_port
from tests.pg import PostgresCluster

from benchmarks.core import REPO_ROOT, Figure, Goal, Metric, Settings, WorkloadResult
from benchmarks.processes import ScpUnusable, dcmtk_tool, start_dcmqrscp
from benchmarks.storage_data import scratch
from dimsefsm.transport.workers import default_workers

CALLED_AE = "COMMON"
SENDERS = 16
PIXEL_BYTES = 128


StartScp = Callable[[Path], AbstractContextManager[ServerProcess]]
"""Starts an SCP storing below the given directory; stops it on leaving."""


@dataclass(frozen=True)
class Counts:
    per_sender: int


FULL = Counts(per_sender=100)
QUICK = Counts(per_sender=10)

RATE_ONE = Metric(
    "ingest_per_s_one_worker",
    "instances/s acknowledged, 16 concurrent storescu x {per_sender}: qrscp --workers 1",
    "inst/s",
)
RATE = Metric(
    "ingest_per_s",
    "instances/s acknowledged, 16 concurrent storescu x {per_sender}: qrscp --workers "
    "{workers} (SQLite index), dcmqrscp",
    "inst/s",
)
RATE_PG = Metric(
    "ingest_per_s_postgresql",
    "instances/s acknowledged, 16 concurrent storescu x {per_sender}: qrscp --workers "
    "{workers} on PostgreSQL",
    "inst/s",
)
LOST = Metric(
    "ingest_lost",
    "acknowledged but not found by C-FIND afterwards (qrscp --workers {workers}, SQLite; dcmqrscp)",
    "instances",
    higher_is_better=False,
    show_ratios=False,
)
REFUSED = Metric(
    "ingest_refused",
    "sent but not acknowledged (qrscp --workers {workers}, SQLite; dcmqrscp)",
    "instances",
    higher_is_better=False,
    show_ratios=False,
)

GOALS = (
    Goal(RATE.key, ("dcmtk", "dimsefsm"), minimum=1.5, versus=("dcmtk", "dcmtk")),
    Goal(LOST.key, ("dcmtk", "dimsefsm"), maximum=0),
)


@dataclass
class Outcome:
    sent: int
    acknowledged: int
    found: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0


def write_senders(root: Path, per_sender: int) -> list[Path]:
    """One folder of ``per_sender`` small instances (one study) per sender."""
    folders = []
    for number in range(SENDERS):
        folder = root / f"sender{number:02d}"
        study = make_study(
            per_sender, n_series=1, pixel_bytes=PIXEL_BYTES, patient_id=f"ING{number:02d}"
        )
        write_study(folder, study)
        folders.append(folder)
    return folders


def send_all(port: int, folders: list[Path], timeout: float) -> tuple[int, float]:
    """Every folder by its own storescu, all at once: (acknowledged instances, seconds)."""
    started = time.perf_counter()
    senders = [
        subprocess.Popen(
            ["storescu", "-v", "-aec", CALLED_AE, "+sd", LOCALHOST, str(port), str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dcmtk_env(),
        )
        for folder in folders
    ]
    logs = [sender.communicate(timeout=timeout)[0] for sender in senders]
    seconds = time.perf_counter() - started
    return sum(log.count("Received Store Response (Success)") for log in logs), seconds


def found_instances(port: int, out_dir: Path) -> int:
    """Distinct SOP Instance UIDs the archive names, walked level by level (study root).

    Hierarchical queries (one study, one series above the IMAGE level) are what
    dcmqrscp answers; each sender's patient is looked up by its Patient ID.
    """
    uids: set[str] = set()
    for number in range(SENDERS):
        base = out_dir / f"p{number:02d}"
        for study in _find(port, base / "st", "STUDY", PatientID=f"ING{number:02d}"):
            study_uid = str(study.StudyInstanceUID)
            for series in _find(port, base / study_uid, "SERIES", StudyInstanceUID=study_uid):
                series_uid = str(series.SeriesInstanceUID)
                images = _find(
                    port,
                    base / study_uid / series_uid,
                    "IMAGE",
                    StudyInstanceUID=study_uid,
                    SeriesInstanceUID=series_uid,
                )
                uids |= {str(ds.SOPInstanceUID) for ds in images}
    return len(uids)


_UNIQUE = {"STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID", "IMAGE": "SOPInstanceUID"}


def _find(port: int, out_dir: Path, level: str, **keys: str) -> list[Dataset]:
    """findscu (study root) at ``level`` with ``keys``, the level's unique key returned."""
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["findscu", "-S", "-aec", CALLED_AE, "-X", "-od", str(out_dir)]
    for key, value in {"QueryRetrieveLevel": level, _UNIQUE[level]: "", **keys}.items():
        args += ["-k", f"{key}={value}" if value else key]
    run, _ = dcmtk_tool([*args, LOCALHOST, str(port)], timeout=60.0)
    if run.error is not None:
        raise ScpUnusable(f"findscu: {run.error}")
    return [dcmread(path) for path in sorted(out_dir.glob("rsp*.dcm"))]


@contextmanager
def qrscp(root: Path, workers: int, database: str | None = None) -> Iterator[ServerProcess]:
    args = ["qrscp", str(free_port()), "-aet", CALLED_AE, "-od", str(root / "store")]
    args += ["--workers", str(workers)]
    if database is not None:
        args += ["--database", database]
    server = DimsefsmServer(args, cwd=REPO_ROOT).start()
    try:
        yield server
    finally:
        server.stop()


class IngestWorkload:
    name = "ingest"
    description = "16 concurrent dcmtk storescu senders into one archive: rate, nothing lost"

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        workers = max(2, default_workers())
        started = time.perf_counter()
        values = {"per_sender": counts.per_sender, "workers": workers}
        metrics = tuple(m.formatted(**values) for m in (RATE_ONE, RATE, RATE_PG, LOST, REFUSED))
        result = WorkloadResult(self.name, self.description, metrics, goals=GOALS)
        timeout = 120.0 + counts.per_sender * SENDERS * 0.05
        with scratch("ingest", 64 << 20) as root:
            folders = write_senders(root / "data", counts.per_sender)
            sent = SENDERS * counts.per_sender
            runs: list[tuple[str, str, Path, StartScp]] = [
                (RATE_ONE.key, "dimsefsm", root / "one", lambda r: qrscp(r, 1)),
                (RATE.key, "dimsefsm", root / "many", lambda r: qrscp(r, workers)),
                (RATE.key, "dcmtk", root / "dcmqrscp", _dcmqrscp),
            ]
            for key, scp, where, start in runs:
                self._measure(result, key, scp, where, start, folders, sent, timeout)
            cluster = PostgresCluster()
            try:
                cluster.start()
                url = cluster.fresh_url()
                self._measure(
                    result,
                    RATE_PG.key,
                    "dimsefsm",
                    root / "pg",
                    lambda r: qrscp(r, workers, url),
                    folders,
                    sent,
                    timeout,
                )
            except RuntimeError as exc:
                result.figures.append(Figure(RATE_PG.key, "dcmtk", "dimsefsm", error=str(exc)))
            finally:
                cluster.stop()
        result.notes.append(
            f"{SENDERS} storescu processes started together, {counts.per_sender} instances of "
            f"{PIXEL_BYTES} pixel bytes each; rate = acknowledged / (first launch to last exit); "
            f"{default_workers()} core(s) here, qrscp --workers {workers}"
        )
        result.seconds = time.perf_counter() - started
        return result

    def _measure(
        self,
        result: WorkloadResult,
        key: str,
        scp: str,
        where: Path,
        start: StartScp,
        folders: list[Path],
        sent: int,
        timeout: float,
    ) -> None:
        where.mkdir(parents=True, exist_ok=True)
        try:
            with start(where) as server:
                acknowledged, seconds = send_all(server.port, folders, timeout)
                found = found_instances(server.port, where / "find")
        except (ScpUnusable, OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            result.figures.append(Figure(key, "dcmtk", scp, error=str(exc)))
            print(f"  {key} {scp}: {exc}", flush=True)
            return
        outcome = Outcome(sent, acknowledged, found, seconds)
        detail = {"sent": sent, "acknowledged": acknowledged, "found": found, "seconds": seconds}
        result.figures.append(Figure(key, "dcmtk", scp, outcome.rate, detail=detail))
        if key == RATE.key:
            lost = max(0, acknowledged - found)
            result.figures.append(Figure(LOST.key, "dcmtk", scp, lost, detail=detail))
            result.figures.append(Figure(REFUSED.key, "dcmtk", scp, sent - acknowledged))
        print(
            f"  {key:<26} {scp:>8}: {outcome.rate:8.1f} inst/s ({acknowledged} of {sent} "
            f"acknowledged in {seconds:.2f} s, {found} found)",
            flush=True,
        )


@contextmanager
def _dcmqrscp(root: Path) -> Iterator[ServerProcess]:
    server = start_dcmqrscp(root, CALLED_AE)
    try:
        yield server
    finally:
        server.stop()


WORKLOAD = IngestWorkload()
