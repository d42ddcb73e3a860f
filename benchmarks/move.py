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
workload's (``benchmarks.get``); what differs is where the instances go and
who is timed: the files are counted in the destination's directory, and the
SCP's CPU covers its sub-association.

pynetdicom's SCP gets TCP_NODELAY on its sub-association (the handler's
destination carries ``AE.associate`` options): as shipped, Nagle's algorithm
makes each C-STORE wait for storescp's delayed ACK; that is measured once, on
a few small instances, in the notes.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

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

from benchmarks.core import IMPLEMENTATIONS, REPO_ROOT, Goal, Metric, Settings, WorkloadResult
from benchmarks.echo import children_cpu, last_record
from benchmarks.get import (
    CALLED_AE,
    CALLING_AE,
    FULL,
    LARGE_MB_PER_S,
    LARGE_PER_S,
    NAGLE,
    QUICK,
    REPEAT_BELOW_SECONDS,
    REPEATS,
    SCP_CPU_PER_SMALL,
    SCU_CPU_PER_SMALL,
    SECONDS_PER_INSTANCE,
    SHAPES,
    SMALL_MB_PER_S,
    SMALL_PER_S,
    Counts,
    GetData,
    Run,
    load_dcmqrscp,
    received_files,
    write_data,
)
from benchmarks.get import _Matrix as RetrieveMatrix
from benchmarks.procstat import cpu_seconds
from benchmarks.storage_data import scratch_root

DEST_AE = "STORESCP"
# pynetdicom's SCP loses a C-STORE response now and then (see benchmarks.move_server)
# and the run fails; a cell is given up after this many failed runs without a good one.
FAILED_RUNS_ALLOWED = 4


def _metric(base: Metric, title: str, footnote: str | None = None) -> Metric:
    return Metric(
        base.key,
        title,
        base.unit,
        base.higher_is_better,
        base.show_ratios,
        base.footnote if footnote is None else footnote,
    )


_METRICS = (
    _metric(
        SMALL_PER_S,
        "small instances/s (C-MOVE of a study of {small} CT instances of {small_kb:.1f} KB "
        "to dcmtk storescp)",
        "dcmtk SCU: one movescu process, the whole process timed (start-up in the notes). "
        "Python SCUs: association, move and release timed (interpreter start not). "
        "dimsefsm/pynetdicom SCPs: the same handler yielding file paths (pynetdicom: read "
        "with dcmread, it takes no paths; TCP_NODELAY set on its sub-association). Every "
        "run counts the files in the destination's directory. Runs under 1 s: best of 5.",
    ),
    _metric(SMALL_MB_PER_S, "small instances, MB/s of files moved (same runs; 1 MB = 10^6 bytes)"),
    _metric(
        LARGE_MB_PER_S,
        "large instances, MB/s (C-MOVE of a study of {large} CT instances of {large_kb:.0f} KB "
        "to dcmtk storescp)",
        "Every SCP at its default maximum PDU length, dcmqrscp at 16 KB (its config); "
        "storescp at its default.",
    ),
    LARGE_PER_S,
    _metric(
        SCU_CPU_PER_SMALL,
        SCU_CPU_PER_SMALL.title,
        "dcmtk SCU: the whole movescu process, start-up included.",
    ),
    _metric(
        SCP_CPU_PER_SMALL,
        SCP_CPU_PER_SMALL.title + ", sub-association included",
    ),
)

GOALS: tuple[Goal, ...] = (
    Goal("small_per_s", ("dcmtk", "dimsefsm"), minimum=0.7, versus=("dcmtk", "dcmtk")),
    Goal("small_per_s", ("dcmtk", "dimsefsm"), minimum=5, versus=("dcmtk", "pynetdicom")),
    Goal("large_mb_per_s", ("dcmtk", "dimsefsm"), minimum=0.7, versus=("dcmtk", "dcmtk")),
    Goal("large_mb_per_s", ("dimsefsm", "dcmtk"), minimum=0.7, versus=("dcmtk", "dcmtk")),
)


def metrics(counts: Counts, data: GetData) -> tuple[Metric, ...]:
    values = {
        "small": f"{counts.small:,}",
        "large": f"{counts.large:,}",
        "small_kb": data.nbytes("small") / counts.small / 1e3,
        "large_kb": data.nbytes("large") / counts.large / 1e3,
    }
    return tuple(_metric(m, m.title.format(**values)) for m in _METRICS)


# -- the destination and the SCPs ------------------------------------------------------------
def start_destination(port: int, directory: Path) -> ServerProcess:
    """dcmtk storescp as it ships, writing every instance it receives into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    return DcmtkServer(["storescp", "-aet", DEST_AE, "-od", str(directory)], port).start()


def start_scp(impl: str, port: int, data: GetData, root: Path, dest_port: int) -> ServerProcess:
    server: ServerProcess
    if impl == "dcmtk":
        hosts = {DEST_AE: (LOCALHOST, dest_port)}
        config = dcmqrscp_config(root / "dcmqrscp", port, [CALLED_AE], hosts)
        server = DcmtkServer(["dcmqrscp", "-c", str(config)], port)
    else:
        flavour = "pynetdicom-nagle" if impl == NAGLE else impl
        command = [sys.executable, "-m", "benchmarks.move_server", flavour, str(port)]
        options = [str(data.spec_path), "-aet", CALLED_AE]
        options += ["--dest", f"{DEST_AE}={LOCALHOST}:{dest_port}"]
        server = LineReadyServer([*command, *options], port, cwd=REPO_ROOT)
    return server.start()


# -- SCUs ------------------------------------------------------------------------------------
def python_client(scu: str, port: int, data: GetData, name: str) -> Run:
    timeout = max(60.0, data.count(name) * SECONDS_PER_INSTANCE[name])
    command = [sys.executable, "-m", "benchmarks.move_client", scu, LOCALHOST, str(port)]
    try:
        done = subprocess.run(
            [*command, CALLED_AE, DEST_AE, str(data.spec_path), name],
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


def movescu_command(port: int, study: str) -> list[str]:
    return [
        "movescu",
        "-S",
        "-aet",
        CALLING_AE,
        "-aec",
        CALLED_AE,
        "-aem",
        DEST_AE,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study}",
        LOCALHOST,
        str(port),
    ]


def movescu(port: int, data: GetData, name: str, dest_dir: Path) -> Run:
    """dcmtk's movescu, the whole process timed; counted by the files the destination wrote.

    Without ``-v`` movescu prints only errors and warnings (a final status
    other than Success among them).
    """
    timeout = max(60.0, data.count(name) * SECONDS_PER_INSTANCE[name])
    command = movescu_command(port, data.spec.studies[name].study)
    started, cpu = time.perf_counter(), children_cpu()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=dcmtk_env(), check=False
        )
    except subprocess.TimeoutExpired:
        return Run(error=f"movescu: no result within {timeout:g} s")
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    errors = [line for line in done.stderr.splitlines() if line.startswith(("E:", "F:", "W:"))]
    if done.returncode != 0 or errors:
        tail = (errors or done.stderr.strip().splitlines() or ["no output"])[-1]
        return Run(error=f"movescu exit {done.returncode}: {tail}")
    return Run(received_files(dest_dir), seconds, cpu)


def movescu_startup(data: GetData) -> float | None:
    """Seconds movescu spends before its first packet: a run against a closed port."""
    command = movescu_command(free_port(), data.spec.studies["small"].study)
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


# -- the workload ----------------------------------------------------------------------------
class MoveWorkload:
    name = "move"
    description = "C-MOVE: small instances/s and large MB/s moved to a dcmtk storescp"

    def run(self, settings: Settings) -> WorkloadResult:
        counts = QUICK if settings.quick else FULL
        started = time.perf_counter()
        with scratch(counts) as root:
            print(f"  test data in {root}", flush=True)
            data = write_data(root / "data", counts)
            result = WorkloadResult(self.name, self.description, metrics(counts, data), goals=GOALS)
            print(f"  data written in {time.perf_counter() - started:.1f} s", flush=True)
            _MoveMatrix(result, data, root).run()
        result.seconds = time.perf_counter() - started
        return result


@contextlib.contextmanager
def scratch(counts: Counts) -> Iterator[Path]:
    # Sources, dcmqrscp's copy and the destination's copy, with room to spare.
    needed = 4 * (counts.small * 10_000 + counts.large * 530_000 + counts.nagle * 10_000)
    with tempfile.TemporaryDirectory(prefix="bench-move-", dir=scratch_root(needed)) as root:
        yield Path(root)


@dataclass
class _MoveMatrix(RetrieveMatrix):
    """C-GET's matrix with a destination: every SCU against every SCP, into one storescp."""

    destination: ServerProcess | None = None
    dest_port: int = 0

    def run(self) -> None:
        self._fresh_out_dir()
        self.dest_port = free_port()
        try:
            self.destination = start_destination(self.dest_port, self.out_dir)
        except ServerStartError as exc:
            lines = str(exc).strip().splitlines()
            for scp in IMPLEMENTATIONS:
                self._mark_unavailable(scp, "SCP", f"destination did not start: {lines[-1]}")
        try:
            for scp in IMPLEMENTATIONS:
                self._column(scp)
            if self.destination is not None:
                self._note_nagle()
        finally:
            if self.destination is not None:
                self.destination.stop()
        self._note_startup(movescu_startup(self.data))

    def _column(self, scp: str) -> None:
        server = self._start(scp)
        try:
            for shape in SHAPES:
                for scu in IMPLEMENTATIONS:
                    server = self._revive(scp, server)
                    self._cell(scu, scp, shape, server)
        finally:
            if server is not None:
                server.stop()

    def _note_startup(self, startup: float | None) -> None:
        """dcmtk SCU figures include movescu's start-up; show the SCPs' figures without it.

        The SCP goals compare cells of the dcmtk row, which carry the same
        start-up, so the note gives both sides corrected.
        """
        if startup is None:
            return
        parts = []
        for key, shape, unit in (
            (SMALL_PER_S.key, "small", "inst/s"),
            (LARGE_MB_PER_S.key, "large", "MB/s"),
        ):
            theirs = self._without_startup(key, "dcmtk", startup)
            if theirs is None:
                continue
            shown = f"{shape} {theirs:,.1f} {unit}"
            ours = self._without_startup(key, "dimsefsm", startup)
            if ours is not None:
                shown += f" (dimsefsm SCP, same correction: {ours / theirs:.2f}x that)"
            parts.append(shown)
        text = (
            f"dcmtk movescu start-up (process, dictionary; a run against a closed port): "
            f"{startup * 1e3:.0f} ms, included in every dcmtk SCU figure"
        )
        if parts:
            text += f"; without it dcmtk SCU -> dcmtk SCP: {'; '.join(parts)}"
        self.result.notes.append(text)

    def _without_startup(self, key: str, scp: str, startup: float) -> float | None:
        """The dcmtk SCU -> ``scp`` figure had movescu started in no time (also recorded)."""
        figure = self._figure(key, "dcmtk", scp)
        if figure is None or figure.value is None or figure.detail["seconds"] <= startup:
            return None
        seconds = figure.detail["seconds"]
        corrected = figure.value * seconds / (seconds - startup)
        figure.detail["value_without_startup"] = corrected
        return corrected

    def _start(self, scp: str, *, load: bool = True) -> ServerProcess | None:
        if (scp, "SCP") in self.unavailable:
            return None
        try:
            server = start_scp(scp, free_port(), self.data, self.root, self.dest_port)
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

    def _attempt(self, scu: str, scp: str, shape: str, server: ServerProcess) -> Run:
        if not self._destination_up():
            return Run(error="the destination storescp is not running")
        measurable = scp != "dcmtk"  # dcmqrscp answers in a forked child
        self._fresh_out_dir()
        scp_cpu = cpu_seconds(server.pid) if measurable else 0.0
        run = self._client(scu, server.port, shape)
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

    def _measure(self, what: str, attempt: Callable[[], Run]) -> list[Run] | str:
        """C-GET's rule (best of a few when short), with more failed runs allowed.

        Every failed run is noted; a failure after a good run ends the repeats.
        """
        runs: list[Run] = []
        failures = 0
        while len(runs) < REPEATS:
            run = attempt()
            if run.error is None:
                runs.append(run)
                if run.seconds >= REPEAT_BELOW_SECONDS:
                    break
                continue
            if run.unavailable:
                return run.error
            failures += 1
            last = bool(runs) or failures >= FAILED_RUNS_ALLOWED
            action = "ended the repeats" if runs else "gave up" if last else "was retried"
            self.result.notes.append(f"{what}: a run failed and {action}: {run.error}")
            print(f"  {what:>36}  failed run: {run.error}", flush=True)
            if last:
                return runs or run.error
        return runs

    def _client(self, scu: str, port: int, shape: str) -> Run:
        if scu == "dcmtk":
            return movescu(port, self.data, shape, self.out_dir)
        return python_client(scu, port, self.data, shape)

    def _fresh_out_dir(self) -> None:
        """Empty the destination's directory, which storescp keeps using."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for path in self.out_dir.iterdir():
            path.unlink()

    def _destination_up(self) -> bool:
        """A crashed storescp is reported and restarted on its port, which the SCPs know."""
        destination = self.destination
        if destination is None:
            return False
        if destination.alive:
            return True
        output = destination.output().strip().splitlines()
        note = f"destination storescp exited (code {destination.returncode}): "
        self.result.notes.append(note + (output[-1] if output else "no output"))
        destination.stop()
        try:
            self.destination = start_destination(self.dest_port, self.out_dir)
        except ServerStartError as exc:
            self.destination = None
            self.result.notes.append(f"destination storescp not restarted: {exc}")
            return False
        return True

    def _note_nagle(self) -> None:
        """pynetdicom's SCP as shipped, dcmtk movescu moving the small Nagle study once."""
        count = self.data.count(NAGLE)
        text = f"pynetdicom SCP as shipped (Nagle on), dcmtk movescu, {count} small instances: "
        try:
            server = start_scp(NAGLE, free_port(), self.data, self.root, self.dest_port)
        except ServerStartError as exc:
            lines = str(exc).strip().splitlines()
            self.result.notes.append(text + f"not measured (SCP did not start: {lines[-1]})")
            return
        try:
            self._fresh_out_dir()
            run = movescu(server.port, self.data, NAGLE, self.out_dir)
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


WORKLOAD = MoveWorkload()
