"""Storage Commitment workload: requests of 1,000 references each, report on the same association.

Issue 16: "storage commitment of 1,000 references, against pynetdicom in one
run".  Rows: the dimsefsm SCU (``dimsefsm.storage_commitment``) and
pynetdicom's ``send_n_action`` with an ``EVT_N_EVENT_REPORT`` handler
(``benchmarks.commitment_client``); columns: ``dimsefsm qrscp`` holding the
1,000 instances (imported at start; each reference checked against its index
and its file) and the pynetdicom SCP a pynetdicom user would write
(``benchmarks.commitment_server``: a set lookup per reference, the report sent
from a thread).  A figure is requests/s from the N-ACTION to the report
received, every reference committed.  dcmtk has no Storage Commitment tool.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tests.data.make import make_instance, write_instance
from tests.interop.peers import LOCALHOST, DimsefsmServer, LineReadyServer, ServerProcess, free_port

from benchmarks.core import (
    NOT_APPLICABLE,
    REPO_ROOT,
    Figure,
    Goal,
    Metric,
    Settings,
    WorkloadResult,
)
from benchmarks.matrix import Matrix
from benchmarks.processes import module_command, python_client
from benchmarks.procstat import cpu_seconds

CALLED_AE = "STGCMTSCP"
PYTHON_IMPLEMENTATIONS = ("dimsefsm", "pynetdicom")


@dataclass(frozen=True)
class Counts:
    references: int
    requests: int


FULL = Counts(references=1000, requests=10)
QUICK = Counts(references=1000, requests=2)

REQUESTS_PER_S = Metric(
    "commitments_per_s",
    "storage commitment requests/s ({n} references each, report on the same association)",
    "req/s",
    footnote="dimsefsm SCP: qrscp checks every reference against its index and its file; "
    "pynetdicom SCP: a set lookup. dcmtk: no Storage Commitment tool.",
)
SCP_CPU_PER_REQUEST = Metric(
    "scp_cpu_ms_per_commitment",
    "SCP CPU per request of {n} references (ms, lower is better)",
    "ms",
    higher_is_better=False,
    show_ratios=False,
)
# No target: both libraries spend most of a request in pydicom, decoding and building the
# 1,000-item sequences (the ratios are printed; about 1x on the machine this was written on).
GOALS: tuple[Goal, ...] = ()


class CommitmentData:
    """The instances qrscp holds, and the references every request names."""

    def __init__(self, root: Path, count: int) -> None:
        self.instances = root / "instances"
        self.instances.mkdir()
        refs = []
        for n in range(count):
            ds = make_instance(pixel_bytes=64, PatientID="STGCMT", InstanceNumber=n + 1)
            write_instance(self.instances / f"{n:05d}.dcm", ds)
            refs.append([str(ds.SOPClassUID), str(ds.SOPInstanceUID)])
        self.refs = root / "refs.json"
        self.refs.write_text(json.dumps(refs))
        self.store = root / "store"


def start_scp(impl: str, data: CommitmentData) -> ServerProcess:
    port = free_port()
    if impl == "dimsefsm":
        server: ServerProcess = DimsefsmServer(
            [
                "qrscp",
                str(port),
                "-aet",
                CALLED_AE,
                "-od",
                str(data.store),
                "--import",
                str(data.instances),
                "--workers",
                "1",
            ],
            ready_timeout=120,
        )
    else:
        server = LineReadyServer(
            module_command("commitment_server", [str(port), str(data.refs), "-aet", CALLED_AE]),
            port,
            cwd=REPO_ROOT,
        )
    return server.start()


class CommitmentWorkload:
    name = "commitment"
    description = (
        "Storage Commitment: requests of 1,000 references/s, report on the same association"
    )

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        metrics = (
            REQUESTS_PER_S.formatted(n=counts.references),
            SCP_CPU_PER_REQUEST.formatted(n=counts.references),
        )
        result = WorkloadResult(self.name, self.description, metrics, goals=GOALS)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="bench-stgcmt-") as workdir:
            data = CommitmentData(Path(workdir), counts.references)
            CommitmentMatrix(result, counts, data).run()
        result.seconds = time.perf_counter() - started
        return result


class CommitmentMatrix(Matrix):
    shape_width = 0

    def __init__(self, result: WorkloadResult, counts: Counts, data: CommitmentData) -> None:
        super().__init__(result)
        self.counts = counts
        self.data = data

    def cells(self) -> Iterable[tuple[str, str]]:
        return [(scu, "") for scu in (*PYTHON_IMPLEMENTATIONS, "dcmtk")]

    def keys(self, shape: str) -> tuple[str, ...]:
        return (REQUESTS_PER_S.key, SCP_CPU_PER_REQUEST.key)

    def not_applicable(self, scu: str, scp: str, shape: str) -> str | None:
        if "dcmtk" in (scu, scp):
            return f"{NOT_APPLICABLE}: dcmtk has no Storage Commitment tool"
        return None

    def start(self, scp: str, *, restart: bool = False) -> ServerProcess | None:
        if scp == "dcmtk":
            return None
        return super().start(scp, restart=restart)

    def start_scp(self, scp: str, *, restart: bool) -> ServerProcess:
        return start_scp(scp, self.data)

    def cell(self, scu: str, scp: str, shape: str, server: ServerProcess) -> None:
        count = self.counts.requests
        args = [scu, LOCALHOST, str(server.port), CALLED_AE, str(count), str(self.data.refs)]
        scp_cpu = cpu_seconds(server.pid)
        run = python_client("commitment_client", args, timeout=60.0 + 30.0 * count)
        scp_cpu = cpu_seconds(server.pid) - scp_cpu if server.alive else 0.0
        if self.unloaded(scu, scp, run):
            self.fail(scu, scp, shape, run.error or "unavailable")
            return
        if run.error is not None or run.seconds <= 0:
            self.fail(scu, scp, shape, run.error or "no time measured")
            return
        rate = run.count / run.seconds
        detail = {"count": run.count, "seconds": run.seconds, "scu_cpu": run.cpu}
        detail["scp_cpu"] = scp_cpu
        self.add(Figure(REQUESTS_PER_S.key, scu, scp, rate, detail=detail))
        self.add(
            Figure(SCP_CPU_PER_REQUEST.key, scu, scp, scp_cpu / run.count * 1e3, detail=detail)
        )
        self.progress(
            scu,
            scp,
            shape,
            f"{rate:7.2f} req/s ({run.count} x {self.counts.references} references in "
            f"{run.seconds:.2f} s; CPU SCU {run.cpu:.2f} s, SCP {scp_cpu:.2f} s)",
        )


WORKLOAD = CommitmentWorkload()
