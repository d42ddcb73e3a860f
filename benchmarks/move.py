"""C-MOVE workload: small instances/s and large MB/s moved to a dcmtk storescp.

Every SCU (dimsefsm and pynetdicom in ``benchmarks.move_client``, dcmtk
movescu) moves one whole study from every SCP to the same destination, one
dcmtk storescp (``STORESCP``) writing into a tmpfs directory when there is
one.  The SCPs are dimsefsm and pynetdicom running the same handler over the
same files (``benchmarks.move_server``: the destination, the count, then one
Pending per file path) and dcmtk dcmqrscp loaded with the same files through
storescu.  So the dcmtk row compares the SCPs (the issue's main figures) and
the dcmtk column compares the SCUs, whose part is only the request and the
responses.

The study data, the repeat and retry rules and the figures are the C-GET
workload's (``benchmarks.retrieve``); what differs is where the instances go
and who is timed: the files are counted in the destination's directory, and
the SCP's CPU covers its sub-association.

pynetdicom's SCP gets TCP_NODELAY on its sub-association (the handler's
destination carries ``AE.associate`` options): as shipped, Nagle's algorithm
makes each C-STORE wait for storescp's delayed ACK; that is measured once, on
a few small instances, in the notes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from tests.interop.peers import LOCALHOST, DcmtkServer, ServerProcess, ServerStartError, free_port

from benchmarks.core import IMPLEMENTATIONS, Goal, Metric, WorkloadResult
from benchmarks.retrieve import (
    CALLED_AE,
    LARGE_MB_PER_S,
    LARGE_PER_S,
    SCP_CPU_PER_SMALL,
    SCU_CPU_PER_SMALL,
    SMALL_MB_PER_S,
    SMALL_PER_S,
    RetrieveData,
    RetrieveMatrix,
    RetrieveWorkload,
)

DEST_AE = "STORESCP"


METRICS: tuple[Metric, ...] = (
    replace(
        SMALL_PER_S,
        title="small instances/s (C-MOVE of a study of {small} CT instances of {small_kb:.1f} "
        "KB to dcmtk storescp)",
        footnote="dcmtk SCU: one movescu process, the whole process timed (start-up in the notes). "
        "Python SCUs: association, move and release timed (interpreter start not). "
        "dimsefsm/pynetdicom SCPs: the same handler yielding file paths (pynetdicom: read "
        "with dcmread, it takes no paths; TCP_NODELAY set on its sub-association). Every "
        "run counts the files in the destination's directory. Runs under 1 s: best of 5.",
    ),
    replace(
        SMALL_MB_PER_S,
        title="small instances, MB/s of files moved (same runs; 1 MB = 10^6 bytes)",
    ),
    replace(
        LARGE_MB_PER_S,
        title="large instances, MB/s (C-MOVE of a study of {large} CT instances of {large_kb:.0f} "
        "KB to dcmtk storescp)",
        footnote="Every SCP at its default maximum PDU length, dcmqrscp at 16 KB (its config); "
        "storescp at its default.",
    ),
    LARGE_PER_S,
    replace(SCU_CPU_PER_SMALL, footnote="dcmtk SCU: the whole movescu process, start-up included."),
    replace(SCP_CPU_PER_SMALL, title=SCP_CPU_PER_SMALL.title + ", sub-association included"),
)

GOALS: tuple[Goal, ...] = (
    Goal("small_per_s", ("dcmtk", "dimsefsm"), minimum=0.7, versus=("dcmtk", "dcmtk")),
    Goal("small_per_s", ("dcmtk", "dimsefsm"), minimum=5, versus=("dcmtk", "pynetdicom")),
    Goal("large_mb_per_s", ("dcmtk", "dimsefsm"), minimum=0.7, versus=("dcmtk", "dcmtk")),
    Goal("large_mb_per_s", ("dimsefsm", "dcmtk"), minimum=0.7, versus=("dcmtk", "dcmtk")),
)


def start_destination(port: int, directory: Path) -> ServerProcess:
    """dcmtk storescp as it ships, writing every instance it receives into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return DcmtkServer(["storescp", "-aet", DEST_AE, "-od", str(directory)], port).start()


class MoveMatrix(RetrieveMatrix):
    """Every SCU moves both studies from every SCP into one storescp, ``out_dir`` its directory."""

    tool = "movescu"
    # Without -v movescu prints only errors and warnings (a final status other than Success).
    tool_problems = ("E:", "F:", "W:")
    client_module = "move_client"
    server_module = "move_server"
    # pynetdicom's SCP loses a C-STORE response now and then (see benchmarks.move_server)
    # and the run fails: a cell is given up only after four failed runs without a good one.
    retries = 3
    # The SCP goals compare cells of the dcmtk row, which carry movescu's start-up.
    startup_subject = "SCP"

    def __init__(self, result: WorkloadResult, data: RetrieveData, root: Path) -> None:
        super().__init__(result, data, root)
        self.dest_port = free_port()
        self.destination: ServerProcess | None = None

    def run(self, scps: Iterable[str] = IMPLEMENTATIONS) -> None:
        try:
            self.destination = start_destination(self.dest_port, self.out_dir)
        except ServerStartError as exc:
            lines = str(exc).strip().splitlines()
            for scp in IMPLEMENTATIONS:
                self.mark_unavailable(scp, "SCP", f"destination did not start: {lines[-1]}")
        try:
            super().run(scps)
        finally:
            if self.destination is not None:
                self.destination.stop()

    def tool_options(self) -> list[str]:
        return ["-aem", DEST_AE]

    def client_args(self, name: str) -> list[str]:
        return [DEST_AE, str(self.data.spec_path), name]

    def server_options(self) -> list[str]:
        return ["-aet", CALLED_AE, "--dest", f"{DEST_AE}={LOCALHOST}:{self.dest_port}"]

    def dcmqrscp_hosts(self) -> dict[str, tuple[str, int]] | None:
        return {DEST_AE: (LOCALHOST, self.dest_port)}

    def ready(self) -> str | None:
        """A crashed storescp is reported and restarted on its port, which the SCPs know."""
        destination = self.destination
        if destination is None:
            return "the destination storescp is not running"
        if destination.alive:
            return None
        output = destination.output().strip().splitlines()
        note = f"destination storescp exited (code {destination.returncode}): "
        self.result.notes.append(note + (output[-1] if output else "no output"))
        destination.stop()
        try:
            self.destination = start_destination(self.dest_port, self.out_dir)
        except ServerStartError as exc:
            self.destination = None
            self.result.notes.append(f"destination storescp not restarted: {exc}")
            return "the destination storescp is not running"
        return None


WORKLOAD = RetrieveWorkload(
    "move",
    "C-MOVE: small instances/s and large MB/s moved to a dcmtk storescp",
    METRICS,
    GOALS,
    MoveMatrix,
)
