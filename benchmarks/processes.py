"""The benchmark's side of the programs it runs: client runs, dcmtk tools, dcmqrscp.

A Python client runs in its own process (``benchmarks.*_client``) and reports
one JSON record per line, the last being its result; a dcmtk client is timed
as a whole process, its CPU read from the children's rusage.  Either way the
outcome is a ``Run``, so every workload compares them with the same code.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.interop.peers import (
    LOCALHOST,
    DcmtkServer,
    ServerProcess,
    dcmqrscp_config,
    dcmtk_env,
    free_port,
)

from benchmarks.core import CALLING_AE, REPO_ROOT

# A run this short is dominated by noise and process start-up: take the best of a few.
REPEAT_BELOW_SECONDS = 1.0
REPEATS = 5
# What dcmtk prefixes its error and fatal log lines with.
DCMTK_ERRORS = ("E:", "F:")


class ScpUnusable(Exception):
    """The SCP started but cannot serve the workload; the message says why."""


@dataclass
class Run:
    """One client run: a count (and bytes) in some seconds, or why not."""

    count: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    nbytes: int = 0
    # The SCP's CPU over the run, where /proc can show it.
    scp_cpu: float | None = None
    error: str | None = None
    # The client could not even load its library: the SCU is marked unavailable.
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
            nbytes=int(record.get("bytes", 0)),
        )

    def check_count(self, expected: int, unit: str) -> None:
        """A run that answered too few (or no time) is an error, not a figure."""
        if self.error is not None:
            return
        if self.count != expected:
            self.error = f"{self.count} {unit}, expected {expected}"
        elif self.seconds <= 0:
            self.error = "no time measured"


def fastest(runs: Sequence[Run]) -> tuple[Run, dict[str, float]]:
    """The fastest run (it gives the rate) and the detail every rate figure records."""
    best = min(runs, key=lambda run: run.seconds)
    detail: dict[str, float] = {
        "count": best.count,
        "seconds": best.seconds,
        "runs": len(runs),
        "scu_cpu": best.cpu,
    }
    return best, detail


def last_record(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            return record
    return None


def module_command(module: str, args: Sequence[str]) -> list[str]:
    """``python -m benchmarks.MODULE ARGS``: a client or server of the benchmark's own."""
    return [sys.executable, "-m", f"benchmarks.{module}", *args]


def client_record(module: str, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run a client module to its end: its last JSON record, or ``ok`` false and why not."""
    try:
        done = subprocess.run(
            module_command(module, args),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO_ROOT,
            env=dcmtk_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"no result within {timeout:g} s"}
    record = last_record(done.stdout)
    if record is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "error": f"exit {done.returncode}: {tail}"}
    return record


def python_client(module: str, args: Sequence[str], timeout: float) -> Run:
    """Run a client module to its end: its count, or why there is none."""
    return Run.from_record(client_record(module, args, timeout))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def dcmtk_tool(
    command: Sequence[str], timeout: float, problems: tuple[str, ...] = DCMTK_ERRORS
) -> tuple[Run, str]:
    """A dcmtk client, the whole process timed: a Run with seconds and CPU, and its output.

    A non-zero exit or an output line starting with one of ``problems`` fails
    the run.  Output (stdout and stderr) goes to a file, not a pipe: a pipe
    would make a talkative tool (findscu prints every response) wait for this
    process to read it.
    """
    name = command[0]
    with tempfile.TemporaryFile() as output:
        started, cpu = time.perf_counter(), children_cpu()
        try:
            done = subprocess.run(
                list(command),
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                env=dcmtk_env(),
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Run(error=f"{name}: no result within {timeout:g} s"), ""
        seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
        output.seek(0)
        printed = output.read().decode("utf-8", "replace")
    lines = printed.splitlines()
    errors = [line for line in lines if line.startswith(problems)]
    if done.returncode != 0 or errors:
        tail = (errors or printed.strip().splitlines() or ["no output"])[-1]
        return Run(error=f"{name} exit {done.returncode}: {tail}"), printed
    return Run(seconds=seconds, cpu=cpu), printed


def startup_seconds(command: Sequence[str]) -> float | None:
    """Seconds a dcmtk client spends before its first packet: runs against a closed port.

    ``command`` names a port nobody listens on; the run covers process start,
    loading the data dictionary and whatever the tool reads first.  The best of
    several runs, like the figures it is compared with.
    """
    best: float | None = None
    for _ in range(REPEATS):
        started = time.perf_counter()
        try:
            subprocess.run(
                list(command), capture_output=True, timeout=30, env=dcmtk_env(), check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    return best


def storescu_command(port: int, called: str, *targets: str) -> list[str]:
    """dcmtk's storescu sending every target (file or directory) on one association."""
    return ["storescu", "-aet", CALLING_AE, "-aec", called, "+sd", LOCALHOST, str(port), *targets]


def start_dcmqrscp(
    root: Path, called: str, hosts: dict[str, tuple[str, int]] | None = None
) -> ServerProcess:
    """dcmqrscp serving ``called`` from its database in ``root`` (kept across restarts)."""
    port = free_port()
    config = dcmqrscp_config(root, port, [called], hosts)
    return DcmtkServer(["dcmqrscp", "-c", str(config)], port).start()


def load_dcmqrscp(
    server: ServerProcess, called: str, directories: Sequence[Path], timeout: float
) -> None:
    """Store every file of ``directories`` into dcmqrscp; a failed load stops it and raises."""
    started = time.perf_counter()
    command = storescu_command(server.port, called, *(str(path) for path in directories))
    run, _ = dcmtk_tool(command, timeout)
    if run.error is not None:
        server.stop()
        raise ScpUnusable(f"loading dcmqrscp: {run.error}")
    instances = sum(1 for path in directories for item in path.iterdir() if item.is_file())
    print(
        f"  dcmqrscp loaded with {instances} instances in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def files_in(directory: Path) -> int:
    return sum(1 for path in directory.iterdir() if path.is_file())


def empty(directory: Path) -> None:
    """Remove what ``directory`` holds, not the directory: a receiving server keeps using it."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
