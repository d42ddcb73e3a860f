"""``python -m benchmarks [--only NAME] [--quick]``: run, print tables, write JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.core import REPO_ROOT, Settings, WorkloadResult
from benchmarks.report import render
from benchmarks.workloads import WORKLOADS, by_name

DEFAULT_OUTPUT = REPO_ROOT / "bench-results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = ", ".join(w.name for w in WORKLOADS)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="dimsefsm against dcmtk and pynetdicom, side by side.",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only this workload (repeatable or comma-separated; known: {names})",
    )
    parser.add_argument("--quick", action="store_true", help="about a tenth of the counts")
    parser.add_argument(
        "--scale",
        type=int,
        default=None,
        metavar="N",
        help="instances in the scale workload's archive (default 100000, 2000 with --quick; "
        "a multiple of 100; 1000000 for a longer run); built once and kept under "
        "/var/tmp/dimsefsm-bench",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"JSON summary (default {DEFAULT_OUTPUT})",
    )
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    return parser.parse_args(argv)


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def dcmtk_version() -> str | None:
    try:
        done = subprocess.run(
            ["storescp", "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():
        if "dcmtk" in line:
            return line.strip(" $").removeprefix("dcmtk: ")
    return None


def machine() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "dimsefsm": version_of("dimsefsm"),
        "pynetdicom": version_of("pynetdicom"),
        "pydicom": version_of("pydicom"),
        "dcmtk": dcmtk_version(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    known = by_name()
    if args.list:
        for workload in WORKLOADS:
            print(f"{workload.name:<10} {workload.description}")
        return 0
    wanted = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        print(f"unknown workload(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return 2
    selected = [w for w in WORKLOADS if not wanted or w.name in wanted]
    settings = Settings(quick=args.quick, scale=args.scale)
    info = machine()
    print(
        f"bench: {', '.join(w.name for w in selected)}{' (quick)' if args.quick else ''} on "
        f"{info['cpus']} CPUs; python {info['python']}, pynetdicom {info['pynetdicom']}, "
        f"{info['dcmtk']}",
        flush=True,
    )
    started = time.perf_counter()
    results: list[WorkloadResult] = []
    for workload in selected:
        print(f"-- {workload.name}: {workload.description}", flush=True)
        results.append(workload.run(settings))
    duration = time.perf_counter() - started
    for result in results:
        print()
        print(render(result))
    summary = {
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(duration, 3),
        "quick": args.quick,
        "machine": info,
        "workloads": {result.name: result.as_json() for result in results},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nbench: {duration:.1f} s; summary written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
